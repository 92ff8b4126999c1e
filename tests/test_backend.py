"""The array backend: the only module that imports NumPy or CuPy, device names, dtypes."""

import ast
from pathlib import Path

import numpy as np
import pytest

import minae
from minae import backend

PACKAGE = Path(minae.__file__).resolve().parent
ARRAY_LIBRARIES = ("numpy", "cupy")


def _is_array_library(name: str) -> bool:
    return name.split(".")[0] in ARRAY_LIBRARIES


def array_library_imports(source: str) -> list:
    """(line, what) for every import of numpy or cupy in ``source``: statements, and
    importlib.import_module("numpy") / __import__("cupy") calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _is_array_library(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.level == 0 and _is_array_library(node.module):
                found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_array_library(arg.value):
                    found.append((node.lineno, f"{name}({arg.value!r})"))
    return found


def test_the_import_detector_finds_every_form():
    source = "\n".join(
        [
            "import numpy as np",
            "import os, cupy",
            "from numpy.linalg import norm",
            "from cupy import asnumpy",
            "import importlib",
            "m = importlib.import_module('numpy')",
            "c = __import__('cupy.random')",
            "from . import backend",  # relative: fine
            "import numbers",  # not numpy
            "x = 'numpy'",  # a mere string: fine
        ]
    )
    assert [line for line, _ in array_library_imports(source)] == [1, 2, 3, 4, 6, 7]


def test_only_backend_imports_numpy_or_cupy():
    offenders = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "autograd.py" in modules and PACKAGE / "ops.py" in modules
    for path in modules:
        if path == PACKAGE / "backend.py":
            continue
        for line, what in array_library_imports(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert not offenders, "only minae/backend.py may import numpy or cupy (use backend.np / get_array_module):\n" + (
        "\n".join(offenders)
    )


def test_backend_does_import_numpy():
    assert any("numpy" in what for _, what in array_library_imports((PACKAGE / "backend.py").read_text()))


# ------------------------------------------------------------------ devices ---
def test_parse_cpu():
    for spec in ("cpu", "CPU", " cpu "):
        d = minae.device(spec)
        assert d.type == "cpu" and d.index is None and str(d) == "cpu"
    assert minae.device(None) == minae.get_default_device()
    assert minae.device(minae.device("cpu")) == "cpu"


def test_parse_cuda_names(monkeypatch):
    asked = []
    monkeypatch.setattr(backend, "_require_cuda", asked.append)  # pretend GPUs exist
    d = minae.device("cuda")
    assert (d.type, d.index, str(d)) == ("cuda", 0, "cuda:0")
    d = minae.device("cuda:1")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 1, "cuda:1", "device(type='cuda', index=1)")
    assert asked == [0, 1]  # every CUDA name is checked at the point of asking


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "", "cpu:0", "tpu"])
def test_bad_device_strings_raise_naming_the_string(spec):
    with pytest.raises(ValueError, match=f"invalid device {spec!r}"):
        minae.device(spec)


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="int"):
        minae.device(0)


def test_device_equality_with_strings():
    cpu = minae.device("cpu")
    assert cpu == "cpu" and cpu == "CPU" and cpu == backend.Device("cpu")
    assert cpu != "cuda" and cpu != "cuda:0"  # unequal, not an error, on a machine without a GPU
    assert cpu != "nonsense" and cpu != 3
    gpu1 = backend.Device("cuda", 1)
    assert gpu1 == "cuda:1" and gpu1 != "cuda:0" and gpu1 != "cuda" and gpu1 != cpu
    assert hash(backend.Device("cuda", 1)) == hash(gpu1)
    assert len({cpu, backend.Device("cpu"), gpu1}) == 2


def test_cuda_helpers_agree():
    assert minae.cuda.is_available() == backend.cuda_available()
    assert (minae.cuda.device_count() > 0) == minae.cuda.is_available()
    if not minae.cuda.is_available():
        with pytest.raises(RuntimeError, match=r'pip install "minae\[cuda\]"|no (CUDA device|GPU)'):
            minae.device("cuda")


# ------------------------------------------------------------ arrays, dtypes ---
def test_array_module_and_device_of_arrays(device):
    a = minae.zeros(2, device=device).data
    xp = backend.get_array_module(a)
    assert backend.is_array(a) and backend.array_device(a) == device
    assert (xp is np) == (device == "cpu")
    assert backend.get_array_module(3.0) is np and not backend.is_array([1.0])
    h = backend.to_numpy(a)
    assert isinstance(h, np.ndarray) and backend.to_device(h, backend.device(device)).shape == (2,)


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, np.float32),
        (minae.float32, np.float32),
        (minae.float64, np.float64),
        (np.float64, np.float64),
        ("float64", np.float64),
        ("int64", np.int64),
        (bool, np.bool_),
    ],
)
def test_as_dtype(spec, expected):
    assert backend.as_dtype(spec) == np.dtype(expected)


def test_as_array_rules():
    assert backend.as_array([1.0, 2.0]).dtype == np.float32
    assert backend.as_array([1, 2]).dtype == np.int64
    assert backend.as_array(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert backend.as_array(np.float64(1.5)).dtype == np.float64
    assert backend.as_array([1, 2], dtype="float64").dtype == np.float64
    assert isinstance(backend.as_weak_scalar(np.float64(2.0)), float)


def test_rng_state_round_trip():
    minae.manual_seed(5)
    state = backend.get_rng_state()
    first = minae.randn(4).tolist()
    backend.set_rng_state(state)
    assert minae.randn(4).tolist() == first


# ----------------------------------------------- the CUDA paths (issue 13) ---
# Each case runs on the real devices (CUDA skipped without a GPU) and, where the logic allows, on
# the CPU against tests/fake_cupy.py: a NumPy-backed CuPy that refuses implicit host conversion.
import json  # noqa: E402

import fake_cupy  # noqa: E402


@pytest.fixture
def fake_gpu(monkeypatch):
    """The backend sees fake_cupy as CuPy, with two GPUs."""
    monkeypatch.setattr(backend, "_cupy", fake_cupy)
    fake_cupy.synchronized.clear()
    minae.manual_seed(0)  # drop any real GPU generators
    yield fake_cupy
    minae.manual_seed(0)  # drop the fake ones


def test_the_fake_is_as_strict_as_cupy(fake_gpu):
    a = fake_gpu.asarray([1.0, 2.0])
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError):
        a + np.ones(2)
    with pytest.raises(TypeError):
        a + [1.0, 2.0]
    with pytest.raises(TypeError, match="float32 and float64"):
        fake_gpu.random.RandomState(0).random_sample((2,), dtype=np.float16)
    assert backend.cupy_module() is fake_gpu and backend.cuda_device_count() == 2


def test_index_to_moves_a_gpu_index_to_the_host_without_np_asarray(fake_gpu):
    idx = fake_gpu.asarray([2, 0])
    moved = backend.index_to((idx, slice(None)), np)
    assert isinstance(moved[0], np.ndarray) and moved[0].tolist() == [2, 0] and moved[1] == slice(None)
    on_gpu = backend.index_to(np.array([1]), fake_gpu)
    assert isinstance(on_gpu, fake_gpu.ndarray) and on_gpu.get().tolist() == [1]
    assert backend.index_to([0, 1], np).tolist() == [0, 1]
    gpu1 = backend.Device("cuda", 1)  # the indexed array's GPU, not the current one (0)
    for key in (np.array([1]), [1], fake_gpu.asarray([1])):
        moved = backend.index_to((key, 0), fake_gpu, gpu1)[0]
        assert isinstance(moved, fake_gpu.ndarray) and moved.device.id == 1 and moved.get().tolist() == [1]
    assert backend.index_to(idx, np, backend.CPU).tolist() == [2, 0]


def test_index_to_across_devices(device):
    x = minae.arange(5, device=device).data
    i = minae.tensor([4, 1], device="cpu" if device != "cpu" else device).data
    with backend.on(backend.device(device)):  # raw arrays: CuPy indexes on the current GPU
        assert backend.to_numpy(x[backend.index_to(i, backend.get_array_module(x))]).tolist() == [4, 1]
    j = minae.tensor([3], device=device).data
    h = np.arange(5)
    assert h[backend.index_to(j, np)].tolist() == [3]


def test_lists_of_gpu_arrays_reach_the_host(fake_gpu):
    parts = [fake_gpu.asarray(1.5), fake_gpu.asarray(2.5)]
    assert backend.to_numpy(parts).tolist() == [1.5, 2.5]
    arr = backend.as_array(parts, dev=backend.CPU)
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float32 and arr.tolist() == [1.5, 2.5]
    on_gpu = backend.as_array([[fake_gpu.asarray(1.0)], [2.0]], dev=backend.Device("cuda", 1))
    assert isinstance(on_gpu, fake_gpu.ndarray) and on_gpu.device.id == 1 and on_gpu.get().tolist() == [[1.0], [2.0]]


def test_as_array_of_a_list_of_device_arrays(device):
    parts = [minae.tensor(1.5, device=device).data, minae.tensor(2.5, device=device).data]
    assert backend.to_numpy(backend.as_array(parts, dev=backend.device(device))).tolist() == [1.5, 2.5]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "int64"])
def test_gpu_draws_any_dtype_from_float32_or_float64(fake_gpu, dtype):
    gpu = backend.Device("cuda", 1)
    for out in (
        backend.random_uniform((3, 2), np.dtype(dtype), gpu),
        backend.random_normal((3, 2), np.dtype(dtype), gpu),
    ):
        assert isinstance(out, fake_gpu.ndarray) and out.dtype == np.dtype(dtype) and out.device.id == 1


@pytest.mark.parametrize("dtype", [minae.float64, minae.float32, "float16"])
def test_random_draws_in_any_float_dtype(device, dtype):
    minae.set_default_dtype(dtype)
    u, n = minae.rand(64, device=device), minae.randn(64, device=device)
    assert u.dtype == n.dtype == np.dtype(dtype) and u.device == n.device == device
    h = u.numpy()
    assert ((h >= 0) & (h <= 1)).all() and np.isfinite(n.numpy()).all()


def _draws(dev):
    return [backend.to_numpy(backend.random_normal((3,), np.dtype("float32"), dev)).tolist() for _ in range(3)] + [
        backend.to_numpy(backend.random_uniform((2,), np.dtype("float64"), dev)).tolist(),
        backend.to_numpy(backend.random_permutation(5, dev)).tolist(),
        backend.to_numpy(backend.random_integers(0, 9, (4,), dev)).tolist(),
    ]


def test_gpu_generator_state_survives_a_checkpoint(fake_gpu):
    gpu = backend.Device("cuda", 0)
    minae.manual_seed(3)
    _draws(gpu)
    state = json.loads(json.dumps(backend.get_rng_state()))  # as a checkpoint stores it
    after = _draws(gpu)
    minae.manual_seed(99)  # a fresh process would start elsewhere
    backend.set_rng_state(state)
    assert _draws(gpu) == after
    assert all(g.method == fake_gpu.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10 for g in backend._rng.gpus.values())
    # successive draws, and the two GPUs, are not the same numbers
    assert after[0] != after[1] and _draws(backend.Device("cuda", 1))[:3] != after[:3]


def test_old_checkpoint_rng_state_without_gpu_entry_loads(fake_gpu):
    minae.manual_seed(4)
    state = backend.get_rng_state()
    del state["gpu"]
    backend.set_rng_state(state)
    assert backend.get_rng_state()["gpu"] == {"key": 4, "draws": 0}


def test_rng_state_resumes_exactly_on_every_device(device):
    dev = backend.device(device)
    minae.manual_seed(7)
    _draws(dev)
    state = json.loads(json.dumps(backend.get_rng_state()))
    after = _draws(dev)
    minae.manual_seed(1)
    _draws(dev)
    backend.set_rng_state(state)
    assert _draws(dev) == after


def test_cuda_synchronize_waits_for_the_whole_device(fake_gpu):
    backend.synchronize(backend.Device("cuda", 1))
    assert fake_gpu.synchronized == [("device", 1)]
    backend.synchronize(backend.CPU)
    assert fake_gpu.synchronized == [("device", 1)]


def test_synchronize_runs_on_every_device(device):
    x = minae.randn(256, 256, device=device)
    y = x @ x
    backend.synchronize(backend.device(device))
    if device != "cpu":
        minae.cuda.synchronize(device)
    assert y.shape == (256, 256)


def test_public_names_replace_private_reads():
    assert backend.cpu_generator() is backend._rng.cpu
    assert backend.cupy_module() is backend._cupy
    assert not hasattr(backend, "is_scalar")
    for path in ("cli.py", "data/loader.py", "data/toy.py"):
        text = (PACKAGE / path).read_text()
        assert "backend._" not in text, path


# ------------------------------------------- the stand-in follows CuPy (issue 20) ---
def test_the_fake_follows_cupys_rules(fake_gpu):
    """Each of tests/fake_cupy.py's rules, as CuPy states it (the module's docstring cites the sources)."""
    cp = fake_gpu
    a = cp.asarray([1.0, 2.0, 3.0])
    with cp.cuda.Device(1):  # rule 1: results on the current GPU, not the operand's; other GPUs' arrays refused
        b = cp.asarray([1.0, 2.0, 3.0])
        assert (b * 2).device.id == 1 and cp.exp(b).device.id == 1 and b.sum().device.id == 1
        with pytest.raises(ValueError, match="Peer access"):
            a * 2
        view = a[1:]  # a view launches no kernel: it stays on a's GPU
        assert view.device.id == 0 and a.reshape(3, 1).device.id == 0
        assert a.copy().device.id == 1  # copy() goes to the current GPU
    with pytest.raises(ValueError, match="Peer access"):
        b + a
    with pytest.raises(TypeError, match="Unsupported type"):  # rule 2: host arrays, lists, CPU tensors refused
        a + np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.multiply(a, [1.0, 2.0, 3.0])

    class HostTensor:  # any object with __array__, as a CPU tensor of another library
        def __array__(self, dtype=None, copy=None):
            return np.ones(3)

    with pytest.raises(TypeError, match="Unsupported type"):
        a * HostTensor()
    with pytest.raises(TypeError, match="Unsupported type"):
        cp.asarray(HostTensor())
    with pytest.raises(TypeError, match="Implicit conversion"):  # rule 3
        np.asarray(a)
    assert float(a[0]) == 1.0 and a[1].item() == 2.0 and a.get().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(TypeError):
        range(cp.asarray(3))  # no __index__
    with pytest.raises(ValueError, match="more than one element"):  # rule 4
        bool(a > 0)
    assert bool(a[0] > 0)
    assert type(a.sum()) is cp.ndarray and a.sum().ndim == 0 and type(cp.max(a)) is cp.ndarray  # rule 5
    assert a[cp.asarray([4, -4])].tolist() == [2.0, 3.0]  # rule 6: integer arrays wrap …
    assert a[np.array([3])].tolist() == [1.0] and a[[5]].tolist() == [3.0]  # … NumPy arrays and lists too
    with pytest.raises(IndexError):
        a[3]  # … a plain integer does not
    m = cp.zeros((2, 3))
    m[:, [4]] = 1.0
    assert m.get().tolist() == [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
    with pytest.raises(ValueError, match="non-scalar"):  # rule 7: through basic indices, a fill of one value
        m[0] = np.ones(3)
    m[0] = np.float64(2.0)
    m[[1]] = np.array([[3, 4, 5]])  # through advanced indices, host data is copied in at m's dtype
    assert m.get().tolist() == [[2.0, 2.0, 2.0], [3.0, 4.0, 5.0]]
    assert type(np.exp(a)) is cp.ndarray and type(np.sum(a)) is cp.ndarray  # rule 8: NumPy dispatches to CuPy
    assert (2.0 - a).tolist() == [1.0, 0.0, -1.0] and (a @ a).item() == 14.0
    with pytest.raises(TypeError, match="Unsupported type"):
        np.add(a, np.ones(3))
    cp.cuda.Device(5)  # rule 9: any id makes a Device; entering one that does not exist fails
    with pytest.raises(cp.cuda.runtime.CUDARuntimeError):
        with cp.cuda.Device(5):
            pass
    gen = cp.random.RandomState(0)
    assert sorted(gen.permutation(5).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError):  # rule 10: np.int64(5) is an array to permute, and has no len()
        gen.permutation(np.int64(5))
    with pytest.raises(ValueError, match="dtype"):  # rule 11
        cp.asarray(["a"])


def test_randperm_takes_any_integer(device):
    p = minae.randperm(np.int64(5), device=device)
    assert p.device == device and p.dtype == minae.int64 and sorted(p.tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError):
        minae.randperm(5.0, device=device)


def test_random_draws_scaled_on_their_gpu(fake_gpu):
    """The draws and their scaling (low/high, mean/std) run on the GPU they are for, not the current one."""
    gpu1 = backend.Device("cuda", 1)
    u = backend.random_uniform((100,), np.dtype("float32"), gpu1, low=2.0, high=3.0)
    n = backend.random_normal((100,), np.dtype("float32"), gpu1, mean=5.0, std=0.1)
    assert u.device.id == n.device.id == 1
    assert 2.0 <= u.get().min() and u.get().max() <= 3.0 and abs(n.get().mean() - 5.0) < 0.1


def test_on_device_of_makes_the_first_gpu_array_current(fake_gpu):
    gpu1 = backend.Device("cuda", 1)
    x = backend.as_array([1.0, 2.0], dev=gpu1)
    with backend.on_device_of((2.0, np.ones(2), x)):
        assert fake_gpu.cuda.runtime.getDevice() == 1
    assert fake_gpu.cuda.runtime.getDevice() == 0
    for none in ((np.ones(2), 3.0), None, ()):
        with backend.on_device_of(none):
            assert fake_gpu.cuda.runtime.getDevice() == 0


def test_the_fake_follows_cupys_later_rules(fake_gpu):
    """Rules 12–14 of tests/fake_cupy.py and the corrections to 1–2 (the module's docstring cites CuPy)."""
    import pickle

    cp = fake_gpu
    a = cp.ones(3, dtype=np.float32)  # a NumPy scalar type is a dtype, not an operand
    assert (a * 2.0).dtype == np.float32 and (a * 2).dtype == np.float32  # rule 12: weak Python scalars agree
    assert (cp.ones(3, dtype=np.int64) * 2.5).dtype == np.float64 and (a * cp.ones((), "float64")).dtype == np.float64
    with pytest.raises(TypeError, match="CuPy 13"):  # float64 on CuPy 14 (NEP 50), float32 on CuPy 13
        a * np.float64(2.0)
    with pytest.raises(TypeError, match="CuPy 13"):  # float32 on CuPy 14, float64 on CuPy 13
        a * 1e300
    with pytest.raises(TypeError, match="CuPy 13"):  # OverflowError on CuPy 14, int16 on CuPy 13
        cp.ones(3, dtype=np.int8) + 300
    gen = cp.random.RandomState(0)  # rule 13: a generator is its creation device's
    with cp.cuda.Device(1):
        with pytest.raises(cp.cuda.runtime.CUDARuntimeError, match="cuRAND"):
            gen.random_sample((2,))
        b = cp.asarray([1.0, 2.0])
        assert cp.may_share_memory(a, b) is False  # compares pointers, no kernel: from any device
        assert cp.may_share_memory(a, a[1:]) is True
        assert pickle.loads(pickle.dumps(a)).device.id == 1  # rule 14: unpickled onto the current device
    v = a[0]  # rule 15: a 0-d view, written through
    v[...] = 7.0
    assert v.ndim == 0 and a[0].item() == 7.0
    assert (a == None).tolist() == [False] * 3 and (a != object()).tolist() == [True] * 3  # noqa: E711

    class Deferring:
        __array_ufunc__ = None

        def __radd__(self, other):
            return "deferred"

    assert a + Deferring() == "deferred"
    c = cp.asarray([1.0, 2.0, 3.0])
    assert c.take(cp.asarray([4, -1])).tolist() == [2.0, 3.0]  # rule 17: take wraps, and has no mode
    with pytest.raises(TypeError, match="mode"):
        cp.take(c, cp.asarray([0]), mode="raise")
    cp.put(c, cp.asarray([3]), cp.asarray([5.0]))  # put wraps by default
    assert c.tolist() == [5.0, 2.0, 3.0]
    cp.host_reads.clear()  # rule 16: each device-to-host read is recorded
    a.get(), float(a[0]), a[0].item(), bool(a[0] > 0)
    assert cp.host_reads == [0, 0, 0, 0]
    with cp.cuda.Device(1):
        cp.asarray([1.0, 2.0])[cp.asarray([True, False])]  # a mask's count of True is read back
    assert cp.host_reads == [0, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="no defined value"):  # rule 18: −1.0 → uint32 is undefined
        cp.asarray([-1.0, 2.0]).astype(np.uint32)
    with pytest.raises(ValueError, match="no defined value"):
        cp.asarray([np.inf]).astype(np.int64)
    assert cp.asarray([1.9, -2.5]).astype(np.int64).tolist() == [1, -2]
    d = cp.zeros(3)  # rule 19: a repeated index stores one of its values, here the first (NumPy: the last)
    d[cp.asarray([0, 0, 1])] = cp.asarray([1.0, 2.0, 3.0])
    assert d.tolist() == [1.0, 3.0, 0.0]
    import threading

    seen = []  # rule 21: the current GPU is per thread, and a new thread starts on GPU 0
    with cp.cuda.Device(1):
        worker = threading.Thread(target=lambda: seen.append((cp.cuda.runtime.getDevice(), cp.zeros(1).device.id)))
        worker.start()
        worker.join()
        assert seen == [(0, 0)] and cp.zeros(1).device.id == 1
    f = cp.ones((2, 3)).T  # rule 20: elementwise results are C-contiguous
    assert f.flags.f_contiguous and (f + f).flags.c_contiguous and not (f + f).flags.f_contiguous


def test_a_training_step_reads_nothing_back_from_the_gpu(fake_gpu):
    """Each host read waits for the GPU's queue (fake_cupy rule 16): a step of forward, backward, gradient
    clipping and every optimizer's update makes none."""
    import minae.nn.functional as F
    from minae import nn
    from minae.models import VAE

    net = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 20)).to("cuda:1")
    x = minae.rand(8, 20, device="cuda:1")
    for opt in (minae.optim.SGD(net.parameters(), lr=0.1, momentum=0.9), minae.optim.Adam(net.parameters())):
        for _ in range(2):  # the second step runs with the optimizer's state made
            fake_gpu.host_reads.clear()
            opt.zero_grad()
            F.mse_loss(net(x), x).backward()
            minae.optim.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            assert fake_gpu.host_reads == []
    vae = VAE().to("cuda:1")
    opt = minae.optim.Adam(vae.parameters())
    fake_gpu.host_reads.clear()
    vae.loss(minae.rand(4, 784, device="cuda:1"))["loss"].backward()
    opt.step()
    assert fake_gpu.host_reads == []
