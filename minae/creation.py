"""Making tensors: from data, filled with a constant, ranges and random numbers.

Names and arguments follow PyTorch: sizes as separate integers or one tuple,
``dtype=`` (float32 unless said otherwise), ``device=`` (the default device
unless said otherwise) and ``requires_grad=``.
"""

from __future__ import annotations

import numbers

from . import backend
from .tensor import Tensor


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"sizes must be non-negative integers, got {tuple(size)}")
    return tuple(int(n) for n in size)


def _make(array, requires_grad) -> Tensor:
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A new tensor holding a copy of ``data`` (nested lists, numbers, arrays or a tensor).

    Python floats become float32 unless ``dtype`` says otherwise; integers int64.
    A tensor or a GPU array keeps its device unless ``device`` is given (as in
    PyTorch); host data (lists, numbers, NumPy arrays) goes to the default device.
    """
    keep = isinstance(data, Tensor) or (backend.is_array(data) and backend.array_device(data).type != "cpu")
    if isinstance(data, Tensor):
        data = data.data
    if backend.is_array(data):
        src_dev = backend.array_device(data)
        dev = src_dev if device is None and keep else backend.device(device)
        array = backend.to_device(data, dev)
        with backend.on(dev):  # CuPy's astype (a copy) runs on the current GPU, which need not be dev
            array = array.astype(backend.as_dtype(dtype) if dtype is not None else array.dtype, copy=src_dev == dev)
    else:
        array = backend.as_array(data, dtype, backend.device(device))
    return _make(array, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, without a copy where none is needed (PyTorch's ``as_tensor``): a tensor of that dtype
    and device is returned itself, an array of them is shared (writes through either show in both); anything
    else is copied as ``tensor`` does (lists of Python floats become float32). A tensor that is converted stays in
    the graph, as ``Tensor.to`` does."""
    if isinstance(data, Tensor):
        return data.to(*(x for x in (device, dtype) if x is not None))
    if backend.is_array(data):
        same_dtype = dtype is None or backend.as_dtype(dtype) == data.dtype
        same_device = device is None or backend.device(device) == backend.array_device(data)
        if same_dtype and same_device and data.dtype.kind in "biuf":
            return Tensor(data)
        if device is None:
            device = backend.array_device(data)
    return tensor(data, dtype=dtype, device=device)


def broadcast_shapes(*shapes) -> tuple:
    """The shape that tensors of ``shapes`` broadcast to (NumPy's and PyTorch's rule: align the trailing
    dimensions; each pair equal, or one of them 1). Raises a ValueError naming the shapes if there is none."""
    shapes = [(s,) if isinstance(s, numbers.Integral) else tuple(s) for s in shapes]
    try:
        return tuple(backend.np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError(f"the shapes {', '.join(map(str, shapes))} do not broadcast to one shape") from None


def from_numpy(array) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array (its dtype kept)."""
    return Tensor(backend.np.asarray(array))


def _filled(value, size, dtype, device, requires_grad):
    dev = backend.device(device)
    dt = backend.as_dtype(dtype)
    with backend.on(dev):
        return _make(dev.xp.full(size, value, dtype=dt), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(0, _size(size), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(1, _size(size), dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``size`` holding ``fill_value``; without ``dtype``, the value's kind gives it, as in PyTorch (a
    bool: bool, an integer: int64, a float: the default float dtype)."""
    if dtype is None:
        if isinstance(fill_value, (bool, backend.np.bool_)):
            dtype = backend.bool_
        elif isinstance(fill_value, numbers.Integral):
            dtype = backend.int64
    return _filled(fill_value, _size((size,)), dtype, device, requires_grad)


def _like(t, dtype, device):
    return (t.dtype if dtype is None else dtype), (t.device if device is None else device)


def zeros_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return _filled(0, t.shape, dt, dev, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return _filled(1, t.shape, dt, dev, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return _filled(fill_value, t.shape, dt, dev, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """start, start + step, … up to but excluding end (int64 for integer arguments)."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = backend.int64 if ints else backend.get_default_dtype()
    dev = backend.device(device)
    with backend.on(dev):
        return _make(dev.xp.arange(start, end, step, dtype=backend.as_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from start to end, both included."""
    dev = backend.device(device)
    with backend.on(dev):
        return _make(dev.xp.linspace(start, end, steps, dtype=backend.as_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    dev = backend.device(device)
    with backend.on(dev):
        return _make(dev.xp.eye(n, m, dtype=backend.as_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Samples of U(0, 1) from minae's generator (see manual_seed)."""
    dev = backend.device(device)
    return _make(backend.random_uniform(_size(size), backend.as_dtype(dtype), dev), requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Samples of N(0, 1) from minae's generator (see manual_seed)."""
    dev = backend.device(device)
    return _make(backend.random_normal(_size(size), backend.as_dtype(dtype), dev), requires_grad)


def rand_like(t, dtype=None, device=None) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return rand(*t.shape, dtype=dt, device=dev)


def randn_like(t, dtype=None, device=None) -> Tensor:
    dt, dev = _like(t, dtype, device)
    return randn(*t.shape, dtype=dt, device=dev)


def randint(low, high=None, size=(), device=None) -> Tensor:
    """Integers in [low, high) (int64)."""
    if high is None:
        low, high = 0, low
    return Tensor(backend.random_integers(low, high, _size((size,)), backend.device(device)))


def randperm(n, device=None) -> Tensor:
    """A random permutation of 0 … n−1 (int64)."""
    return Tensor(backend.random_permutation(n, backend.device(device)))


def manual_seed(seed: int) -> None:
    """Seed the random generators of every device: the same seed gives the same numbers."""
    backend.manual_seed(seed)
