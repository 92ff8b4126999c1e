"""The one place that knows about NumPy and CuPy.

Every other module asks this one for the array module of a tensor or a device
(``xp = get_array_module(x)``), for transfers between devices, for dtypes and
for random numbers. Nothing else in minae imports numpy or cupy; host-side
code (file readers, checkpoints) uses the ``np`` re-exported here.
"""

from __future__ import annotations

import contextlib
import numbers
import operator
import os

import numpy as np

try:  # CuPy is optional: `pip install "minae[cuda]"`
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that cannot find its CUDA libraries
    _cupy = None

__all__ = [
    "np",
    "Device",
    "device",
    "get_array_module",
    "array_device",
    "cuda_available",
    "float32",
    "float64",
    "int64",
    "bool_",
]

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int64 = np.dtype("int64")
int32 = np.dtype("int32")
uint8 = np.dtype("uint8")
bool_ = np.dtype("bool")

_default_dtype = float32


# ---------------------------------------------------------------- devices ---
class Device:
    """A place where arrays live: ``cpu`` (NumPy) or ``cuda:N`` (CuPy on GPU N)."""

    __slots__ = ("type", "index")

    def __init__(self, type: str, index: int | None = None):
        self.type = type
        self.index = 0 if type == "cuda" and index is None else index  # "cuda" means the first GPU

    @property
    def xp(self):
        """The array module that holds this device's arrays."""
        return np if self.type == "cpu" else _cupy

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        if isinstance(other, str):  # compare names only: "cuda" on a machine without a GPU is just unequal
            try:
                other = _parse(other)
            except ValueError:
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


CPU = Device("cpu")


def on(dev: Device):
    """A context in which new arrays of ``dev.xp`` are allocated on ``dev`` (CuPy allocates on the
    current GPU, which need not be ``dev``); nothing to do on the CPU."""
    if dev.type == "cpu":
        return contextlib.nullcontext()
    return _cupy.cuda.Device(dev.index)


_NOTHING_TO_DO = contextlib.nullcontext()


def on_device_of(arrays):
    """A context in which the GPU of the first CuPy array among ``arrays`` is current: CuPy allocates
    and computes on the current GPU, not on its operands' (and reads another GPU's array only where
    the two have peer access). A do-nothing context where there is none: the CPU, or ``arrays`` None."""
    if _cupy is not None and arrays is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return a.device  # a cupy.cuda.Device, itself the context that makes it current
    return _NOTHING_TO_DO


def cupy_module():
    """The cupy module, or None where it is not installed (for version reports; arrays go through xp)."""
    return _cupy


def cuda_available() -> bool:
    """True when CuPy is installed and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def cuda_device_count() -> int:
    return _cupy.cuda.runtime.getDeviceCount() if cuda_available() else 0


def _require_cuda(index: int) -> None:
    if _cupy is None:
        raise RuntimeError(
            "CUDA was asked for, but CuPy is not installed. Install the CUDA extra that matches "
            'your CUDA toolkit: pip install "minae[cuda]" (CUDA 12) or "minae[cuda13]" (CUDA 13).'
        )
    n = cuda_device_count()
    if n == 0:
        raise RuntimeError("CUDA was asked for, but CuPy finds no GPU on this machine (no CUDA device found).")
    if index >= n:
        raise RuntimeError(f"cuda:{index} was asked for, but this machine has {n} GPU(s) (cuda:0 … cuda:{n - 1}).")


def device(spec=None) -> Device:
    """Parse ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a Device; None means the default device.

    Asking for CUDA where it cannot run raises at once, saying how to fix it.
    """
    if spec is None:
        return default_device()
    if isinstance(spec, Device):
        if spec.type == "cuda":
            _require_cuda(spec.index)
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {type(spec).__name__}")
    dev = _parse(spec)
    if dev.type == "cuda":
        _require_cuda(dev.index)
    return dev


def _parse(spec: str) -> Device:
    """The Device a name means, without asking whether it exists here."""
    name = spec.strip().lower()
    if name == "cpu":
        return CPU
    if name == "cuda" or name.startswith("cuda:"):
        index_text = name[5:] if name.startswith("cuda:") else "0"
        if not index_text.isdigit():
            raise ValueError(f"invalid device {spec!r}: expected 'cuda' or 'cuda:N'")
        return Device("cuda", int(index_text))
    raise ValueError(f"invalid device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")


_default_device: Device | None = None


def default_device() -> Device:
    """The device new tensors go to: set_default_device(), else $MINAE_DEVICE, else cpu."""
    global _default_device
    if _default_device is None:
        _default_device = device(os.environ.get("MINAE_DEVICE", "cpu"))
    return _default_device


def set_default_device(spec) -> None:
    global _default_device
    _default_device = device(spec)


# ------------------------------------------------------------------- arrays ---
def is_array(x) -> bool:
    """True for a NumPy or CuPy ndarray."""
    return isinstance(x, np.ndarray) or (_cupy is not None and isinstance(x, _cupy.ndarray))


def get_array_module(x):
    """numpy or cupy, whichever holds ``x`` (numpy for anything that is not a CuPy array)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy
    return np


def array_device(x) -> Device:
    """The Device an array lives on."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return Device("cuda", x.device.id)
    return CPU


def to_device(x, dev: Device):
    """Move an array to ``dev`` (a no-op when it is already there)."""
    if dev.type == "cpu":
        if _cupy is not None and isinstance(x, _cupy.ndarray):
            return _cupy.asnumpy(x)
        return x
    if isinstance(x, _cupy.ndarray) and x.device.id == dev.index:
        return x
    with _cupy.cuda.Device(dev.index):
        return _cupy.asarray(x)


def to_numpy(x):
    """A host (NumPy) copy-or-view of an array from any device (or of lists holding such arrays)."""
    if _cupy is not None and isinstance(x, _cupy.ndarray):
        return _cupy.asnumpy(x)
    return np.asarray(_host(x))


def _host(data):
    """Nested lists/tuples with CuPy arrays inside, those arrays copied to the host: np.asarray
    refuses a CuPy array (no implicit device-to-host copy), even inside a list."""
    if _cupy is None:
        return data
    if isinstance(data, _cupy.ndarray):
        return _cupy.asnumpy(data)
    if isinstance(data, (list, tuple)):
        return [_host(d) for d in data]
    return data


def as_dtype(dtype) -> np.dtype:
    """Accept minae.float32, a NumPy dtype, a Python type or a name like "float64"."""
    if dtype is None:
        return _default_dtype
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: use minae.float32, minae.float64 or a NumPy dtype name") from None


def get_default_dtype() -> np.dtype:
    return _default_dtype


def set_default_dtype(dtype) -> None:
    """The floating dtype of new tensors made from Python floats (float32 unless changed)."""
    global _default_dtype
    dt = as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"the default dtype must be a floating dtype, got {dt}")
    _default_dtype = dt


def as_array(data, dtype=None, dev: Device | None = None):
    """Make an array on ``dev`` from nested lists, scalars or an array of either device.

    Python floats become the default float dtype (float32), as in PyTorch; integer
    and boolean data keep their kind unless ``dtype`` says otherwise.
    """
    dev = default_device() if dev is None else dev
    if isinstance(data, np.generic):  # a NumPy scalar keeps its dtype
        data = np.asarray(data)
    if is_array(data):
        arr = to_device(data, dev)
        if dtype is not None:
            with on(dev):  # CuPy casts on the current GPU, which need not be dev
                arr = arr.astype(as_dtype(dtype), copy=False)
        return arr
    data = _host(data)
    if dtype is None:
        probe = np.asarray(data)
        if probe.dtype.kind == "f":
            dtype = _default_dtype
        elif probe.dtype.kind in "iu" and probe.dtype != uint8:
            dtype = int64
        elif probe.dtype.kind == "O":
            raise TypeError(f"cannot make a tensor from {type(data).__name__} data with ragged or mixed elements")
        else:
            dtype = probe.dtype
        arr = probe.astype(dtype, copy=False)
    else:
        arr = np.asarray(data, dtype=as_dtype(dtype))
    if dev.type == "cpu":
        return arr
    return to_device(arr, dev)


def as_weak_scalar(x):
    """NumPy scalars (np.float64(2.0)) would upcast float32 arrays; plain Python numbers do not."""
    if isinstance(x, np.generic):
        return x.item()
    return x


def kernel_scalar(x, like):
    """A Python number made fit to be a GPU kernel's operand beside the array ``like``: the same result dtype
    on every CuPy minae supports (13 and 14), and the CPU's.

    NumPy 2 and CuPy 14 read a Python number as weak (NEP 50): float32 array × 1e300 is float32 (inf), and
    int8 array + 300 raises OverflowError. CuPy 13 reads it by value: 1e300 does not fit float32, so the
    result is float64; 300 does not fit int8, so it is int16. A float beyond ``like``'s range therefore
    becomes that dtype's ±inf (what NEP 50 computes), and an integer beyond it raises NumPy's OverflowError.
    Anything else, and every number beside a NumPy array, is returned as it is (the CPU pays one type test).
    """
    if _cupy is None or not isinstance(like, _cupy.ndarray):
        return x
    dt, t = like.dtype, type(x)
    if t is float and dt.kind == "f" and dt.itemsize < 8 and abs(x) > np.finfo(dt).max and x == x:
        with np.errstate(over="ignore"):
            return dt.type(x)  # ±inf of dt, a NumPy scalar of dt: dt on both CuPy versions
    if t is int and dt.kind in "iu" and not np.iinfo(dt).min <= x <= np.iinfo(dt).max:
        raise OverflowError(f"Python integer {x} out of bounds for {dt}")
    return x


def index_to(index, xp, dev: Device | None = None):
    """Move the arrays inside an indexing key to the array module of the indexed array.

    dev, the indexed array's device, when given, is where they go (cupy.asarray alone would
    copy them to the current GPU, which need not be the array's).
    """
    if isinstance(index, tuple):
        return tuple(index_to(i, xp, dev) for i in index)
    if is_array(index):
        if dev is not None:
            return to_device(index, dev)
        if get_array_module(index) is not xp:
            # to the host with to_numpy (np.asarray refuses a CuPy array); to a GPU with cupy.asarray
            return to_numpy(index) if xp is np else xp.asarray(index)
        return index
    if isinstance(index, list):
        with on(dev) if dev is not None else contextlib.nullcontext():
            return xp.asarray(index)
    return index


def blas_info() -> str:
    """A one-line description of the BLAS NumPy uses and its thread count, when known."""
    try:
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        if pools:
            p = pools[0]
            return f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
    except Exception:
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
        threads = f"{threads} threads (from the environment)" if threads else f"up to {os.cpu_count()} threads"
        return f"{blas.get('name')} {blas.get('version')} ({threads})"
    except Exception:
        return "unknown"


# --------------------------------------------------------------- randomness ---
_MASK64 = (1 << 64) - 1


def _mix64(*words: int) -> int:
    """The words folded through SplitMix64's finaliser: nearby inputs (draw 7, draw 8) give unrelated seeds."""
    h = 0
    for w in words:
        h = ((h ^ (w & _MASK64)) + 0x9E3779B97F4A7C15) & _MASK64
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h


class _RandomState:
    """One generator per device, all seeded by manual_seed.

    CPU: NumPy's PCG64 Generator, whose state a checkpoint saves.

    CUDA: CuPy's generator states cannot be read back or written (CuPy documents that they cannot be
    serialized), so a GPU draw never continues a hidden state. Draw number n on GPU i re-seeds a
    Philox generator (counter-based, so re-seeding costs no setup kernel) with mix(key, i, n). The GPU
    state is then two integers, (key, n), saved and restored with the CPU's: a resumed GPU run draws
    exactly the numbers the interrupted run would have drawn. The same seed gives the same numbers on
    the same device (not across devices).
    """

    def __init__(self, seed=None):
        self.seed(seed)

    def seed(self, seed):
        self.initial_seed = seed
        self.cpu = np.random.Generator(np.random.PCG64(seed))
        # unseeded: fresh entropy, not a draw from the CPU stream, whose numbers must not depend on GPU use
        self.gpu_key = seed if seed is not None else int(np.random.SeedSequence().entropy) & _MASK64
        self.gpu_draws = 0
        self.gpus = {}

    def generator(self, dev: Device):
        """The generator for the next draw on ``dev``; call it once per draw, inside ``on(dev)``."""
        if dev.type == "cpu":
            return self.cpu
        gen = self.gpus.get(dev.index)
        if gen is None:
            gen = _cupy.random.RandomState(0, method=_cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
            self.gpus[dev.index] = gen
        gen.seed(_mix64(self.gpu_key, dev.index, self.gpu_draws))
        self.gpu_draws += 1
        return gen


_rng = _RandomState(None)


def cpu_generator():
    """minae's global NumPy Generator (the one manual_seed seeds and checkpoints save), for host-side
    shuffles and toy data that must follow the global seed."""
    return _rng.cpu


def manual_seed(seed: int) -> None:
    """Seed every device's generator (and those created later)."""
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _rng.seed(int(seed))


def get_rng_state() -> dict:
    """Every device's generator state as plain JSON-able data (for checkpoints): the CPU generator's,
    and the GPU key and draw count."""
    return {
        "initial_seed": _rng.initial_seed,
        "cpu": _rng.cpu.bit_generator.state,
        "gpu": {"key": _rng.gpu_key, "draws": _rng.gpu_draws},
    }


def set_rng_state(state: dict) -> None:
    """Restore what get_rng_state returned (a state without "gpu", from an older checkpoint, restarts the GPU draws)."""
    _rng.seed(state.get("initial_seed"))
    _rng.cpu.bit_generator.state = state["cpu"]
    gpu = state.get("gpu")
    if gpu is not None:
        _rng.gpu_key, _rng.gpu_draws = int(gpu["key"]), int(gpu["draws"])


def _gpu_draw_dtype(dtype):
    # cuRAND (and so CuPy's samplers) makes float32 and float64 only; float16 and integers are cast from float32
    return dtype if dtype in (float32, float64) else float32


def random_uniform(shape, dtype, dev: Device, low=0.0, high=1.0):
    """U(low, high) samples of ``shape`` on ``dev``."""
    dtype = np.dtype(dtype)
    if dev.type == "cpu":
        if dtype in (float32, float64):
            out = _rng.cpu.random(shape, dtype=dtype)
        else:
            out = _rng.cpu.random(shape).astype(dtype)
    else:
        with on(dev):  # the draw and the scaling on dev: CuPy runs kernels on the current GPU
            out = _rng.generator(dev).random_sample(shape, dtype=_gpu_draw_dtype(dtype)).astype(dtype, copy=False)
            return _scale(out, high - low, low)
    return _scale(out, high - low, low)


def random_normal(shape, dtype, dev: Device, mean=0.0, std=1.0):
    """N(mean, std²) samples of ``shape`` on ``dev``."""
    dtype = np.dtype(dtype)
    if dev.type == "cpu":
        draw = dtype if dtype in (float32, float64) else float64
        out = _rng.cpu.standard_normal(shape, dtype=draw).astype(dtype, copy=False)
    else:
        with on(dev):
            out = _rng.generator(dev).standard_normal(shape, dtype=_gpu_draw_dtype(dtype)).astype(dtype, copy=False)
            return _scale(out, std, mean)
    return _scale(out, std, mean)


def _scale(out, scale, shift):
    """out · scale + shift, in place (skipping the identity steps)."""
    if scale != 1.0:
        out *= scale
    if shift != 0.0:
        out += shift
    return out


def random_integers(low, high, shape, dev: Device):
    """Integers in [low, high) of ``shape`` (int64) on ``dev``."""
    if dev.type == "cpu":
        return _rng.cpu.integers(low, high, size=shape, dtype=np.int64)
    with on(dev):
        return _rng.generator(dev).randint(low, high, size=shape, dtype=_cupy.int64)


def random_permutation(n: int, dev: Device):
    """A random permutation of 0 … n-1 (int64) on ``dev``; n any integer (np.int64 too)."""
    n = operator.index(n)  # CuPy permutes a range only for a Python int, anything else it takes for an array
    if dev.type == "cpu":
        return _rng.cpu.permutation(n)
    with on(dev):
        return _rng.generator(dev).permutation(n).astype(_cupy.int64, copy=False)


def synchronize(dev: Device | None = None) -> None:
    """Wait for all GPU work queued on ``dev``, on every stream (for honest timings); a no-op on the CPU."""
    dev = default_device() if dev is None else dev
    if dev.type == "cuda":
        _cupy.cuda.Device(dev.index).synchronize()


# ------------------------------------------------------------------- blocks ---
CACHE_BLOCK_BYTES = 1 << 18  # 256 kB a piece: the 4–6 arrays of an update rule stay in a core's L2 cache


def blocks(*arrays):
    """Matching flat pieces of equally shaped arrays (None entries stay None), one tuple a piece.

    For a rule of many elementwise passes (Adam makes twelve): each piece's passes then run
    while it is in the cache, instead of every pass streaming the whole arrays from memory.
    Whole arrays where pieces cannot help or cannot be views: CuPy arrays, small arrays, and
    arrays that are not C-contiguous (their flat view would be a copy, and writes to it lost).
    """
    first = arrays[0]
    step = CACHE_BLOCK_BYTES // first.itemsize
    given = [a for a in arrays if a is not None]
    if (
        type(first) is not np.ndarray
        or first.size <= step
        or not all(type(a) is np.ndarray and a.shape == first.shape and a.flags.c_contiguous for a in given)
    ):
        yield arrays
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for i in range(0, first.size, step):
        yield tuple(None if a is None else a[i : i + step] for a in flat)
