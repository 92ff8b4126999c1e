"""A stand-in for CuPy, NumPy underneath, to run minae's CUDA paths on a machine without a GPU.

It follows CuPy's documented rules, and where CuPy leaves a choice it takes the strict one. Each
rule is cited beside the code that keeps it; the sources (CuPy's main branch) are

- [guide/basic]  docs/source/user_guide/basic.rst, "Current Device" and "Data Transfer";
- [guide/diff]   docs/source/user_guide/difference.rst, "Differences between CuPy and NumPy";
- [core]         cupy/_core/core.pyx (the ndarray); [kernel] cupy/_core/_kernel.pyx (kernel launches);
- [scalar]       cupy/_core/_scalar.pyx; [indexing] cupy/_core/_routines_indexing.pyx;
- [device]       cupy/cuda/device.pyx; [random] cupy/random/_generator.py.

The rules, in short:

1. Arrays are allocated, and every kernel runs, on the *current device* (``with cuda.Device(i)``),
   not on an operand's device [guide/basic "Current Device"]. A kernel reading an array of another
   device needs peer access, which this stand-in never has: ValueError [kernel ``_check_peer_access``;
   guide/basic: "If P2P is unavailable, such an attempt will fail with ValueError"]. Views (reshape,
   transpose, basic slicing) launch no kernel: they stay on their array's device, from any current one.
2. Kernel operands are CuPy arrays or Python/NumPy scalars; anything else, NumPy arrays, lists and
   objects with ``__array__`` (a CPU tensor) included, is TypeError "Unsupported type"
   [scalar ``CScalar``; guide/diff "Universal Functions only work with CuPy array or scalar"].
   Stricter than CuPy: ``asarray``/``array`` and assignments refuse objects with ``__array__`` too (CuPy
   reads them through ``numpy.array``, [core ``_array_default``]): a CPU tensor must be moved explicitly.
3. No implicit device-to-host copy: ``np.asarray(a)`` raises TypeError [core ``__array__``]; ``.get()``,
   ``asnumpy``, ``.item()``, ``.tolist()``, ``float()``/``int()`` are the explicit ways [core].
   There is no ``__index__`` (``range(a)`` and ``operator.index(a)`` raise).
4. ``bool(a)`` raises ValueError for more than one element [core ``__nonzero__``].
5. Reductions return 0-d arrays, never NumPy scalars [guide/diff "Zero-dimensional array"].
6. Integer-*array* indices out of range wrap around; basic integer indices raise IndexError
   [guide/diff "Out-of-bounds indices"; core ``__getitem__``/``__setitem__`` notes; indexing
   ``_view_getitem``]. NumPy arrays and lists as indices are accepted (copied to the device) [indexing
   ``_prepare_slice_list``]. Repeated indices in an assignment store an undefined value [core
   ``__setitem__``] (this stand-in stores NumPy's, the last).
7. Assigning host data (a NumPy array, a list) through basic indices is a ``fill``: one value only, else
   ValueError [indexing ``_scatter_op``: "Refuse assignment from CPU arrays, see gh-2079"; core ``fill``];
   through advanced indices (integer arrays, masks) it is copied in at the array's dtype [indexing
   ``_scatter_op_single``, ``_scatter_op_mask_single``: ``core.array(value, dtype=a.dtype)``].
8. NumPy's ufuncs and functions on CuPy arrays dispatch to CuPy [core ``__array_ufunc__``,
   ``__array_function__``]; with a NumPy array among the operands they raise (rule 2).
9. ``cuda.Device(i)`` takes any integer; entering (or using) it with no such GPU raises
   CUDARuntimeError [device ``__init__``/``__enter__``: ``runtime.setDevice``].
10. ``RandomState.permutation(a)`` makes a range only for a Python ``int``; anything else (``np.int64``)
    is an array to permute [random ``permutation``]. The samplers draw float32/float64 only, and a
    generator's state cannot be read, only re-seeded.
11. Dtypes: NumPy's promotion rules (CuPy follows NumPy 2's); no object or string arrays
    [guide/diff "Data types"].
12. A kernel's result dtype must be the same on CuPy 13 (value-based scalars) and CuPy 14 (NEP 50), both of
    which minae supports; where they differ it raises TypeError (see ``_same_dtype_in_cupy_13_and_14``).
13. A ``random.RandomState`` belongs to the device current at its creation: seeding or drawing with another
    device current raises [random ``__init__``, ``get_random_state``].
14. Pickling saves the host copy; unpickling allocates on the device current then [core ``__reduce__``].
15. Basic indexing always makes a view, ``a[0]`` of a 1-d array a 0-d one [core ``__getitem__``; guide/diff
    "Zero-dimensional array"]; binary operators defer to an operand by ``__array_ufunc__ = None`` or a higher
    ``__array_priority__``, and ``==`` with an object of object's ``__eq__`` is all False [core
    ``_should_use_rop``, ``__richcmp__``].
16. Every device-to-host read (``get``, ``asnumpy``, ``item``, ``tolist``, ``float``/``int``/``bool``) waits
    for the device's queued work [core ``get``: the copy synchronizes its stream], and so does every result
    whose size depends on the data (a boolean-mask index [indexing ``_getitem_mask_single``: "Get number of
    True in the mask"], ``nonzero``, ``unique`` …): ``host_reads`` records each, so that a test can hold a
    hot loop to none.
17. ``take`` wraps out-of-range indices and takes no ``mode`` [indexing ``_take_kernel``:
    ``indices % index_range``]; ``put`` wraps unless given another mode [cupy/_indexing/insert.py ``put``].
18. A float cast to an integer dtype is undefined for NaN, ±inf and values out of the dtype's range (CuPy
    and NumPy differ): ``astype`` raises ValueError for them here [guide/diff "Cast behavior from float to
    integer"].
19. ``a[idx] = v`` with a repeated index stores an undefined one of the values: this stand-in stores the
    first (NumPy the last) [core ``__setitem__``; guide/diff "Duplicate values in indices"].

20. An elementwise kernel's result is C-contiguous whatever its operands' layout (NumPy keeps Fortran order)
    [guide/diff "Contiguity / Strides"].

21. The current device is per host thread; a new thread starts on GPU 0 [guide/basic "Current Device";
    CUDA's ``cudaSetDevice``].

Not modelled: streams (all work is synchronous), memory pools, custom kernels.
"""

import threading
import types
import warnings

import numpy as np

N_GPUS = 2


class _CurrentDevice:
    """Rule 21: the current GPU is the calling thread's own (``runtime.setDevice`` is per host thread), and a
    new thread starts on GPU 0 [guide/basic "Current Device"; CUDA runtime ``cudaSetDevice``]. Read and set
    as ``_current[0]``."""

    def __init__(self):
        self._local = threading.local()

    def __getitem__(self, _):
        return getattr(self._local, "id", 0)

    def __setitem__(self, _, i):
        self._local.id = i


_current = _CurrentDevice()  # the current GPU, as cupy.cuda.Device sets it
synchronized = []  # ("device", i) or ("null stream", i), in call order
peer_access = False  # rule 1: a kernel meeting another GPU's array raises
host_reads = []  # rule 16: the device of each device-to-host read, in call order


class CUDARuntimeError(RuntimeError):
    pass


def _check_id(i):
    if not 0 <= i < N_GPUS:  # rule 9: runtime.setDevice(i) fails
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")


class _Device:
    """cupy.cuda.Device: a context that makes GPU ``i`` current; equal to another of the same id."""

    def __init__(self, device=None):
        self.id = _current[0] if device is None else int(device)
        self._saved = []

    def __enter__(self):
        _check_id(self.id)
        self._saved.append(_current[0])
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._saved.pop()

    def use(self):
        _check_id(self.id)
        _current[0] = self.id

    def synchronize(self):
        _check_id(self.id)
        synchronized.append(("device", self.id))

    def __int__(self):
        return self.id

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


# ----------------------------------------------------------------- operands ---
def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _on_current(arrays):
    """Rule 1: a kernel runs on the current device and reads only its arrays."""
    cur = _current[0]
    for a in arrays:
        if a._dev != cur and not peer_access:
            raise ValueError(
                f"The device where the array resides ({a._dev}) is different from the current device ({cur}). "
                "Peer access is unavailable between these devices."
            )


def _operand(x, seen):
    """Rule 2: a kernel's operand is a CuPy array or a Python/NumPy scalar."""
    if isinstance(x, ndarray):
        seen.append(x)
        return x._a
    if type(x) in (bool, int, float, complex) or isinstance(x, np.generic):
        return x
    raise _unsupported(x)


def _argument(x, seen):
    """A routine's argument: arrays inside lists/tuples (stack, concatenate) unwrapped; rule 2 for the rest."""
    if isinstance(x, ndarray):
        seen.append(x)
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_argument(v, seen) for v in x)
    if isinstance(x, np.ndarray) or (
        hasattr(x, "__array__") and not isinstance(x, (type, np.generic))  # dtype=np.float32, arange(np.int64(5))
    ):
        raise _unsupported(x)
    return x


def _wrap(r):
    """A NumPy result as made on the current device: arrays, and scalars as 0-d arrays (rule 5)."""
    if isinstance(r, np.ndarray):
        return ndarray(r, _current[0])
    if isinstance(r, np.generic):
        return ndarray(np.asarray(r), _current[0])
    if isinstance(r, (tuple, list)):
        return type(r)(_wrap(v) for v in r)
    return r


def _wrap_view(r, seen):
    """A view keeps its array's device (no kernel ran); anything else was computed by a kernel (rule 1)."""
    if isinstance(r, np.ndarray):
        for a in seen:
            if np.may_share_memory(r, a._a):
                return ndarray(r, a._dev)
    if isinstance(r, (tuple, list)) and r and all(isinstance(v, np.ndarray) for v in r):
        return type(r)(_wrap_view(v, seen) for v in r)
    _on_current(seen)
    return _wrap(r)


# routines that may return views of their input, launching no kernel (rule 1)
_VIEWS = {
    "reshape", "view", "transpose", "swapaxes", "moveaxis", "squeeze", "expand_dims", "ravel", "broadcast_to",
    "broadcast_arrays", "diagonal", "split", "array_split", "atleast_1d", "atleast_2d", "atleast_3d", "real",
    "imag", "rollaxis", "flip", "fliplr", "flipud",
}  # fmt: skip


def _routine(name, fn):
    """cupy.<name>: NumPy's routine with CuPy's operand rules (rule 2) and placement (rule 1)."""

    def call(*args, **kwargs):
        if name == "take":  # rule 17: indices wrap, always; there is no mode [_routines_indexing ``_take_kernel``]
            if "mode" in kwargs or len(args) > 4:
                raise TypeError("take() got an unexpected keyword argument 'mode'")
            kwargs["mode"] = "wrap"
        elif name == "put" and len(args) < 4:
            kwargs.setdefault("mode", "wrap")  # rule 17: wrap unless told [cupy/_indexing/insert.py ``put``]
        seen = []
        out = kwargs.get("out")
        raw = args + tuple(kwargs.get(k) for k in ("a_min", "a_max", "min", "max") if k in kwargs)
        args = _argument(args, seen)
        kwargs = {k: _argument(v, seen) for k, v in kwargs.items()}
        if name.endswith("_like"):  # allocation on the current device; the prototype's memory is not read
            return _wrap(fn(*args, **kwargs))
        if name in _VIEWS:
            return _wrap_view(fn(*args, **kwargs), seen)
        if name in ("nonzero", "argwhere", "flatnonzero", "unique", "compress", "extract"):
            host_reads.append(_current[0])  # rule 16: the result's size is read back first
        if name == "may_share_memory":  # compares pointer bounds, no kernel, any devices [cupy/_misc/memory_ranges.py]
            return bool(fn(*args, **kwargs))
        if name in ("clip", "where") and out is None:  # ufuncs in CuPy (_clip, _where_ufunc): rule 12
            given = [a for a in raw[1:] if a is not None]
            _same_dtype_in_cupy_13_and_14(np.maximum, [raw[0]] + given[:1] if name == "clip" else given[:2])
            _same_dtype_in_cupy_13_and_14(np.minimum, [raw[0]] + given[1:2] if name == "clip" else [])
        _on_current(seen)
        r = fn(*args, **kwargs)
        return out if isinstance(out, ndarray) else _wrap(r)

    call.__name__ = name
    return call


class ufunc:
    """cupy.ufunc: operands are CuPy arrays or scalars only (rule 2), run on the current device (rule 1)."""

    def __init__(self, np_ufunc):
        self._u = np_ufunc
        self.__name__ = np_ufunc.__name__
        self.nin, self.nout, self.nargs = np_ufunc.nin, np_ufunc.nout, np_ufunc.nargs

    def _run(self, fn, args, kwargs):
        seen = []
        if fn is self._u and not {"out", "dtype", "signature"} & kwargs.keys():
            _same_dtype_in_cupy_13_and_14(self._u, args)
        args = [_operand(a, seen) for a in args]
        out = kwargs.get("out")
        if isinstance(out, tuple):
            out = out[0] if len(out) == 1 else out
        if out is not None:
            kwargs["out"] = _operand(out, seen) if isinstance(out, ndarray) else _operand(out, [])
        _on_current(seen)
        r = fn(*args, **kwargs)
        if fn is self._u and isinstance(r, np.ndarray) and r.ndim > 1:
            r = np.ascontiguousarray(r)  # rule 20: C order, whatever the operands' [guide/diff "Contiguity"]
        return out if isinstance(out, ndarray) else _wrap(r)

    def __call__(self, *args, **kwargs):
        return self._run(self._u, args, kwargs)

    def reduce(self, *args, **kwargs):
        return self._run(self._u.reduce, args, kwargs)

    def accumulate(self, *args, **kwargs):
        return self._run(self._u.accumulate, args, kwargs)

    def outer(self, *args, **kwargs):
        return self._run(self._u.outer, args, kwargs)

    def at(self, a, indices, b=None):
        """Unbuffered ``a[indices] op= b``; integer-array indices wrap (rule 6)."""
        seen = [a]
        key = _index_key(a, indices, seen)[0]
        extra = () if b is None else (_operand(b, seen),)
        _on_current(seen)
        self._u.at(a._a, key, *extra)

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"


def _kind_score(dt):
    return {"b": 0, "i": 1, "u": 1, "f": 2, "c": 2}.get(dt.kind, -1)


def _legacy_scalar_type(x):
    """CuPy 13's ``_min_scalar_type``: NumPy's smallest type for the value, a signed one for a non-negative
    integer that fits it."""
    t = np.min_scalar_type(x)
    if t.kind == "u":
        signed = np.dtype(t.char.lower())
        if x <= np.iinfo(signed).max:
            return signed
    return t


def _same_dtype_in_cupy_13_and_14(u, args):
    """Rule 12: a kernel whose result dtype differs between CuPy 13 and CuPy 14 raises TypeError.

    CuPy 14 follows NEP 50, as NumPy 2 does: a Python scalar is weak (takes the array's dtype; an integer out
    of its range raises OverflowError), a NumPy scalar is strong (``float32 array * np.float64(2)`` is
    float64) [scalar ``numpy_dtype_from_pyscalar``, ``CScalar`` "weak_t"]. CuPy 13 chose by value: where no
    scalar is of a higher kind (bool < int < float) than the arrays, each scalar, Python's or NumPy's, counts
    as its smallest type (``float32 array * np.float64(2)`` is float32, ``float32 array * 1e300`` float64,
    ``int8 array + 300`` int16) [v13.6.0 cupy/_core/_kernel.pyx ``_check_should_use_min_scalar``,
    ``_min_scalar_type``]. minae supports both (setup.cfg: cupy-cuda12x>=13), so its dtypes must not depend
    on which one runs. 0-d CuPy arrays are arrays to both."""
    arrays = [a.dtype for a in args if isinstance(a, ndarray)]
    scalars = [a for a in args if not isinstance(a, ndarray)]
    if not arrays or not scalars:
        return
    if not all(type(s) in (bool, int, float, complex) or isinstance(s, np.generic) for s in scalars):
        return  # rule 2 raises for it
    max_array = max(_kind_score(d) for d in arrays)
    max_scalar = max(_kind_score(np.min_scalar_type(s)) for s in scalars)
    if max_array < max_scalar:
        return  # both read the scalars at their full types (Python int int64, float float64), NEP 50 agrees
    legacy = [a.dtype if isinstance(a, ndarray) else _legacy_scalar_type(a) for a in args]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = u(*[np.zeros(1, dtype=d) for d in legacy])
        try:
            new = u(*[np.zeros(1, dtype=a.dtype) if isinstance(a, ndarray) else a for a in args])
        except OverflowError as e:
            raise TypeError(f"{u.__name__}: {e} under CuPy 14 (NEP 50), while CuPy 13 widens the result") from e
    old = old if isinstance(old, tuple) else (old,)
    new = new if isinstance(new, tuple) else (new,)
    if [o.dtype for o in old] != [n.dtype for n in new]:
        given = ", ".join(str(a.dtype) if isinstance(a, ndarray) else f"{type(a).__name__}({a!r})" for a in args)
        raise TypeError(
            f"{u.__name__}({given}) gives {new[0].dtype} on CuPy 14 (NEP 50) but {old[0].dtype} on CuPy 13 "
            "(value-based scalars): pass a Python scalar inside the array's range, or cast explicitly"
        )


def _defined_float_to_int(a, dtype):
    """Rule 18: a float cast to an integer dtype is undefined (C++) for NaN, ±inf and values outside the
    dtype's range, negative ones into an unsigned dtype included: CuPy and NumPy give different numbers
    [guide/diff "Cast behavior from float to integer"]. This stand-in raises instead of choosing one."""
    if a.dtype.kind == "f" and dtype.kind in "iu" and a.size:
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(a) | (a <= info.min - 1.0) | (a >= info.max + 1.0)
        if bad.any():
            raise ValueError(
                f"casting {a.dtype} to {dtype}: {a[bad].ravel()[0].item()!r} has no defined value "
                "(CuPy and NumPy differ)"
            )


def _first_of_repeated(arr, key, value):
    """Rule 19: ``a[idx] = v`` with a repeated index stores an undefined one of its values [core
    ``__setitem__``; guide/diff "Duplicate values in indices"]; NumPy stores the last, so this stand-in stores
    the first (for one integer-array index): code that depends on either shows."""
    if not (isinstance(key, np.ndarray) and key.dtype.kind in "iu" and key.ndim == 1 and arr.ndim):
        return False
    wrapped = key % arr.shape[0]
    if np.unique(wrapped).size == wrapped.size:
        return False
    v = np.broadcast_to(np.asarray(value, dtype=arr.dtype), arr[wrapped].shape)
    arr[wrapped[::-1]] = v[::-1]
    return True


# ----------------------------------------------------------------- indexing ---
def _index_key(arr, key, seen):
    """A NumPy key equal to CuPy's reading of ``key`` (rule 6), and whether it is advanced (a kernel runs)."""
    parts = list(key) if isinstance(key, tuple) else [key]
    converted, advanced = [], False
    for p in parts:
        if p is None or p is Ellipsis or isinstance(p, slice):
            converted.append(p)
        elif isinstance(p, ndarray):
            seen.append(p)
            converted.append(p._a)
            advanced = True
        elif isinstance(p, (bool, np.bool_)) or not np.isscalar(p):
            # lists and NumPy arrays: copied to the device [indexing _prepare_slice_list]
            a = np.asarray(p)
            if isinstance(p, list) and a.size == 0:
                a = a.astype(np.int32)  # an empty list means no indices, not an empty mask
            if a.dtype.kind not in "biu":
                raise IndexError(f"arrays used as indices must be of integer or boolean type (actual: {a.dtype.type})")
            converted.append(a)
            advanced = True
        else:  # a basic integer index: out of range raises (NumPy does the same)
            converted.append(p)
    if advanced:  # integer arrays wrap around their axis (rule 6)
        n_axes = sum(1 if not isinstance(p, np.ndarray) or p.dtype.kind != "b" else p.ndim for p in converted)
        n_axes -= sum(p is None or p is Ellipsis for p in converted)
        axis = 0
        for i, p in enumerate(converted):
            if p is Ellipsis:
                axis += arr.ndim - n_axes
            elif p is None:
                continue
            elif isinstance(p, np.ndarray) and p.dtype.kind == "b":
                axis += p.ndim
            else:
                if isinstance(p, np.ndarray) and axis < arr.ndim and arr.shape[axis] > 0:
                    converted[i] = p % arr.shape[axis]
                axis += 1
    return (tuple(converted) if isinstance(key, tuple) else converted[0]), advanced


# -------------------------------------------------------------------- array ---
class ndarray:
    """cupy.ndarray: a NumPy array ``_a`` that lives on GPU ``_dev``."""

    __slots__ = ("_a", "_dev")
    __array_priority__ = 100  # [core]: an operand of higher priority gets the reflected operator

    def __init__(self, a, dev):
        if a.dtype.kind in "OSUV":  # rule 11
            raise ValueError(f"Unsupported dtype {a.dtype}")
        self._a, self._dev = a, dev

    # --- properties (no kernel) ---
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    device = property(lambda self: _Device(self._dev))
    T = property(lambda self: ndarray(self._a.T, self._dev))
    mT = property(lambda self: ndarray(self._a.mT, self._dev))

    @property
    def base(self):
        return None if self._a.base is None else ndarray(np.asarray(self._a.base), self._dev)

    def __getattr__(self, name):
        """ndarray methods (sum, reshape, max …): NumPy's, under the routine rules."""
        if name.startswith("__") or name in ("tofile", "dump", "dumps", "tobytes", "ctypes", "__array_interface__"):
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap_view(attr, [self]) if isinstance(attr, np.ndarray) else attr
        method = _routine(name, lambda _self, *a, **k: getattr(_self, name)(*a, **k))
        return lambda *args, **kwargs: method(self, *args, **kwargs)

    # --- explicit transfers and conversions (rule 3) ---
    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array "
            "explicitly."
        )

    def get(self, stream=None, order="C", out=None):
        host_reads.append(self._dev)  # rule 16
        if out is not None:
            out[...] = self._a
            return out
        return self._a.copy(order=order)

    def set(self, arr):
        if not isinstance(arr, np.ndarray) or arr.shape != self.shape:
            raise ValueError("set: a NumPy array of the same shape is required")
        self._a[...] = arr

    def item(self):
        host_reads.append(self._dev)  # rule 16
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._a.item()

    def tolist(self):
        host_reads.append(self._dev)  # rule 16
        return self._a.tolist()

    def __int__(self):
        host_reads.append(self._dev)  # rule 16
        return int(self._a)

    def __float__(self):
        host_reads.append(self._dev)  # rule 16
        return float(self._a)

    def __complex__(self):
        host_reads.append(self._dev)  # rule 16
        return complex(self._a)

    def __bool__(self):  # rule 4
        if self.size == 0:
            msg = "The truth value of an empty array is ambiguous. Returning False"
            warnings.warn(msg, DeprecationWarning, stacklevel=2)
            return False
        if self.size == 1:
            host_reads.append(self._dev)  # rule 16
            return bool(self._a)
        raise ValueError("The truth value of an array with more than one element is ambiguous. Use a.any() or a.all()")

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __format__(self, spec):
        return format(self._a, spec)

    __hash__ = None

    # --- copies ---
    def copy(self, order="C"):
        """A copy on the current device, from any device [core ``copy``]."""
        return ndarray(self._a.copy(order=order), _current[0])

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        with _Device(self._dev):  # [core __deepcopy__]: copied on the array's own device
            return self.copy()

    def __reduce__(self):
        """Rule 14: pickled as its host copy; unpickled onto the device current then [core ``__reduce__``:
        ``array, (self.get(),)``], not the one it was saved from."""
        return array, (self.get(),)

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        _on_current([self])
        _defined_float_to_int(self._a, np.dtype(dtype))
        return ndarray(self._a.astype(dtype, order=order), _current[0])

    # --- indexing ---
    def __getitem__(self, key):
        seen = [self]
        key, advanced = _index_key(self, key, seen)
        if not advanced:  # a view on this array's device (no kernel)
            view = self._a[key]
            if not isinstance(view, np.ndarray):  # rule 15: a[0] of a 1-d array is a 0-d view, not a copy
                view = self._a[(key if isinstance(key, tuple) else (key,)) + (Ellipsis,)]
            return ndarray(view, self._dev)
        _on_current(seen)
        parts = key if isinstance(key, tuple) else (key,)
        if any(isinstance(p, np.ndarray) and p.dtype == bool and p.ndim for p in parts):
            host_reads.append(_current[0])  # rule 16: the mask's count of True sets the shape [indexing, line ~105]
        return ndarray(np.array(self._a[key]), _current[0])

    def __setitem__(self, key, value):
        seen = [self]
        key, advanced = _index_key(self, key, seen)
        if isinstance(value, ndarray):
            seen.append(value)
            value = value._a
        elif not isinstance(value, (np.ndarray, np.generic)) and hasattr(value, "__array__"):
            raise TypeError(f"Unsupported type {type(value)}")  # strict: a CPU tensor is not data (rule 2)
        elif advanced:  # rule 7: copied in as core.array(value, dtype=a.dtype)
            value = np.array(value, dtype=self.dtype)
        else:  # rule 7: a fill, of one value only
            value = np.asarray(value, dtype=self.dtype)
            if value.shape != ():
                raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        _on_current(seen)
        if not (advanced and _first_of_repeated(self._a, key, value)):
            self._a[key] = value

    # --- NumPy interoperation (rule 8) ---
    def __array_ufunc__(self, ufunc_, method, *inputs, **kwargs):
        mine = globals().get(ufunc_.__name__) or _lookup(ufunc_.__name__)
        if not isinstance(mine, ufunc):
            return NotImplemented
        if "out" in kwargs and isinstance(kwargs["out"], tuple):
            kwargs["out"] = kwargs["out"][0]
        for x in inputs + ((kwargs["out"],) if "out" in kwargs else ()):
            if not (isinstance(x, (ndarray, np.ndarray, np.generic)) or type(x) in (bool, int, float, complex)):
                return NotImplemented
        if any(isinstance(x, np.ndarray) for x in inputs):
            raise TypeError(f"Unsupported type {np.ndarray}")  # no implicit host-to-device copy
        return getattr(mine, "__call__" if method == "__call__" else method)(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        if not all(issubclass(t, (ndarray, np.ndarray)) for t in types_):
            return NotImplemented
        mine = _lookup(func.__name__)
        if mine is None or mine is func:
            return NotImplemented
        return mine(*args, **kwargs)


_MISSING = object()


def _should_use_rop(x, y):
    """[core ``_should_use_rop``] (NEP 13 with CuPy's fallback): defer to ``y`` when it sets ``__array_ufunc__ =
    None``; an operand with any other ``__array_ufunc__`` (NumPy arrays and scalars) goes through NumPy's ufunc
    (rule 8); one without, by ``__array_priority__`` (a minae Tensor's 1000 beats CuPy's 100)."""
    y_ufunc = getattr(y, "__array_ufunc__", _MISSING)
    if y_ufunc is not _MISSING:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)


def _binary(name, reflected=False):
    u = ufunc(getattr(np, name))

    def method(self, other):
        if not isinstance(other, ndarray) and _should_use_rop(self, other):
            return NotImplemented
        if name in ("equal", "not_equal") and (other is None or type(other).__eq__ is object.__eq__):
            # [core __richcmp__]: an object with object's __eq__ equals no element (no kernel, no TypeError)
            return _lookup("ones" if name == "not_equal" else "zeros")(self.shape, dtype=bool)
        return u(other, self) if reflected else u(self, other)

    return method


def _inplace(name):
    u = ufunc(getattr(np, name))

    def method(self, other):
        u(self, other, out=self)
        return self

    return method


for _name, _np_name in [
    ("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
    ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
    ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"),
    ("rshift", "right_shift"),
]:  # fmt: skip
    setattr(ndarray, f"__{_name}__", _binary(_np_name))
    setattr(ndarray, f"__r{_name}__", _binary(_np_name, reflected=True))
    setattr(ndarray, f"__i{_name}__", _inplace(_np_name))
for _name, _np_name in [("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                        ("eq", "equal"), ("ne", "not_equal")]:  # fmt: skip
    setattr(ndarray, f"__{_name}__", _binary(_np_name))
for _name, _np_name in [("neg", "negative"), ("pos", "positive"), ("abs", "absolute"), ("invert", "invert")]:
    setattr(ndarray, f"__{_name}__", (lambda u: lambda self: u(self))(ufunc(getattr(np, _np_name))))


# ------------------------------------------------------------------ module ---
def asarray(obj, dtype=None, order=None):
    """To the current device [guide/basic "Data Transfer"]: an array of the current device is returned as it is,
    one of another device copied; NumPy arrays, scalars and nested lists (of CuPy arrays too) copied in."""
    if isinstance(obj, ndarray):
        if obj._dev != _current[0]:
            obj = ndarray(obj._a.copy(), _current[0])
        return obj if dtype is None else obj.astype(dtype, copy=False)
    return ndarray(np.array(_host(obj), dtype=dtype), _current[0])


def array(obj, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(obj, ndarray):
        out = ndarray(np.array(obj._a, dtype=dtype, ndmin=ndmin), _current[0])
        return out if copy or obj._dev != _current[0] or out.shape != obj.shape else obj
    return ndarray(np.array(_host(obj), dtype=dtype, ndmin=ndmin), _current[0])


def _host(obj):
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, (list, tuple)):
        return [_host(o) for o in obj]
    if not isinstance(obj, (np.ndarray, np.generic)) and hasattr(obj, "__array__"):
        raise TypeError(f"Unsupported type {type(obj)}")  # rule 2, strict: a CPU tensor is not data
    return obj


def asnumpy(a, stream=None, order="C", out=None):
    return a.get(order=order, out=out) if isinstance(a, ndarray) else np.asarray(a, order=order)


def get_array_module(*args):
    return _module if any(isinstance(a, ndarray) for a in args) else np


_cache = {}


def _lookup(name):
    """cupy.<name>: NumPy's ufuncs as ufuncs, its routines under CuPy's rules, types and constants as they are."""
    if name in _cache:
        return _cache[name]
    attr = getattr(np, name, None)
    if isinstance(attr, np.ufunc):
        attr = ufunc(attr)
    elif callable(attr) and not isinstance(attr, type):
        attr = _routine(name, attr)
    _cache[name] = attr
    return attr


def __getattr__(name):
    attr = _lookup(name)
    if attr is None:
        raise AttributeError(f"module 'cupy' (stand-in) has no attribute {name!r}")
    return attr


class _NullStream:
    def synchronize(self):
        synchronized.append(("null stream", _current[0]))


class RandomState:
    """CuPy's legacy generator as far as minae uses it: re-seedable, unreadable, float32/float64 draws,
    on the current device."""

    def __init__(self, seed=None, method=100):
        self.method = method
        self._dev = _current[0]  # rule 13: curand.createGenerator binds the generator to the current device
        self.seed(seed)

    def _check_device(self):
        """Rule 13: a generator is created on the current device [random ``RandomState.__init__``:
        ``curand.createGenerator``] and draws into arrays allocated on the current device; CuPy keeps one per
        device for that reason [random ``get_random_state``: "for the current device"]. Seeding or drawing
        with another device current is refused here."""
        if _current[0] != self._dev:
            raise CUDARuntimeError(f"cuRAND generator of device {self._dev} used while device {_current[0]} is current")

    def seed(self, seed=None):
        self._check_device()
        if seed is not None and not 0 <= seed < 2**64:
            raise ValueError("Seed must be an integer between 0 and 2**64 - 1")
        self._gen = np.random.Generator(np.random.PCG64(seed))

    def _float(self, dtype):
        self._check_device()
        dtype = np.dtype(dtype)
        if dtype.char not in "fd":
            raise TypeError("cupy.random only supports float32 and float64")
        return dtype

    def random_sample(self, size=None, dtype=float):
        return _wrap(self._gen.random(size, dtype=self._float(dtype)))

    def standard_normal(self, size=None, dtype=float):
        return _wrap(self._gen.standard_normal(size, dtype=self._float(dtype)))

    def randint(self, low, high=None, size=None, dtype=int):
        self._check_device()
        return _wrap(self._gen.integers(low, high, size=size, dtype=dtype))

    def permutation(self, a):
        self._check_device()
        if isinstance(a, int):  # rule 10: only a Python int is a range's length
            return _wrap(self._gen.permutation(a))
        return a[self.permutation(len(a))]


def _set_device(i):
    _check_id(i)
    _current[0] = i


cuda = types.SimpleNamespace(
    Device=_Device,
    Stream=types.SimpleNamespace(null=_NullStream()),
    runtime=types.SimpleNamespace(
        getDeviceCount=lambda: N_GPUS,
        getDevice=lambda: _current[0],
        setDevice=_set_device,
        CUDARuntimeError=CUDARuntimeError,
    ),
    curand=types.SimpleNamespace(CURAND_RNG_PSEUDO_DEFAULT=100, CURAND_RNG_PSEUDO_PHILOX4_32_10=161),
)
random = types.SimpleNamespace(RandomState=RandomState)
__version__ = "0.0-fake"

import sys  # noqa: E402

_module = sys.modules[__name__]
