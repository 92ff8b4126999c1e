"""The Tensor: an n-dimensional array that can record the operations applied to it.

This module is the PyTorch-style surface: properties (``shape``, ``dtype``,
``device``), conversions, operators and methods, each a thin door into an op
of ``ops.py``. What happens when an op runs on tensors, and how gradients flow
back, is the engine's business: ``autograd.py``.

In-place writes are tracked as in PyTorch: every tensor has a version, a small
counter shared with its ``detach()`` views, that ``t[...] = v`` and the
optimizers' updates bump; an op that saved a tensor for its backward checks
that the version is still the one it saw.
"""

from __future__ import annotations

from . import backend, diagnostics
from .backend import Device, array_device, as_array, as_dtype, is_array, to_numpy
from .grad_mode import GradMode

# In-place writes to any tensor so far. A backward compares it with the count at its forward and
# reads its inputs' versions only when it moved: the common backward pays one comparison.
IN_PLACE_WRITES = [0]


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False)`` wraps an array; prefer ``minae.tensor(...)``,
    which also takes lists and ``dtype=``/``device=``.

    Attributes: ``data`` (the raw NumPy/CuPy array), ``grad`` (a Tensor of the same
    shape after backward, or None), ``requires_grad``, ``grad_fn`` (the Function
    that made it, None for a leaf).
    """

    __slots__ = {
        "data": "The raw NumPy/CuPy array. Writes through it (``t.data[...] = v``, ``t.data += g``) are NOT "
        "tracked, as in PyTorch: a backward that needs the old values silently uses the new ones. Write "
        "through the tensor (``t[...] = v`` under ``no_grad``) to have such mistakes caught.",
        "grad": "∂L/∂self after backward (a Tensor of the same shape), or None.",
        "requires_grad": "Whether ops on this tensor are recorded for backward.",
        "grad_fn": "The Function that made this tensor (None for a leaf).",
        "_retains_grad": "Keep .grad on this non-leaf tensor (retain_grad()).",
        "_version": "[how many in-place writes so far], a list shared with detach() views; None means [0].",
        "__weakref__": None,
    }
    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        if isinstance(data, Tensor):
            data = data.data
        if not is_array(data) or dtype is not None or device is not None:
            data = as_array(data, dtype, None if device is None else backend.device(device))
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._retains_grad = False
        self._version = None

    # --- what it is
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> Device:
        return array_device(self.data)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def size(self, dim=None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = repr(to_numpy(self.data)).replace("array(", "tensor(", 1).replace("\n", "\n ")
        if body.endswith(")"):
            body = body[:-1]
        if ", dtype=" in body:
            body = body[: body.index(", dtype=")]
        extras = []
        if self.device.type != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype != backend.float32 and not (self.dtype.kind in "iu" and self.dtype == backend.int64):
            if self.dtype.kind != "b":
                extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{type(self.grad_fn).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return body + "".join(", " + e for e in extras) + ")"

    # --- leaving the graph
    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def numpy(self):
        """A NumPy array with the values (a copy when the tensor lives on a GPU).

        Unlike PyTorch, allowed on a tensor that requires grad: the array is only read.
        """
        return to_numpy(self.data)

    def tolist(self):
        return to_numpy(self.data).tolist()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory, and the record of in-place writes)."""
        out = Tensor(self.data)
        if self._version is None:
            self._version = [0]
        out._version = self._version
        return out

    @property
    def _version_value(self) -> int:
        return 0 if self._version is None else self._version[0]

    def _bump_version(self) -> None:
        """Record an in-place write (``t[...] = v``, an optimizer step): a backward that saved the old values raises."""
        if self._version is None:
            self._version = [0]
        self._version[0] += 1
        IN_PLACE_WRITES[0] += 1

    def clone(self) -> "Tensor":
        return _ops.clone(self)

    def __array__(self, dtype=None, copy=None):
        """NumPy (and matplotlib) see the values: np.asarray(t) is a host array."""
        array = to_numpy(self.data)
        return array if dtype is None else array.astype(dtype, copy=False)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data.item())

    def __index__(self):
        if self.data.dtype.kind not in "iu" or self.data.size != 1:
            raise TypeError("only integer tensors of one element can be used as an index")
        return int(self.data.item())

    __hash__ = object.__hash__  # == is elementwise, identity is the hash (tensors as dict keys)

    # --- devices and dtypes
    def to(self, *args, dtype=None, device=None) -> "Tensor":
        """``t.to("cuda")``, ``t.to(minae.float64)``, ``t.to("cpu", minae.float64)``.

        Returns ``self`` when nothing changes; otherwise a new tensor that stays in
        the graph (gradients flow back to the original device and dtype).
        """
        for a in args:
            if isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0].strip().lower() in ("cpu", "cuda")):
                device = a
            elif isinstance(a, Tensor):  # t.to(other): other's device and dtype
                device, dtype = a.device, a.dtype
            else:
                dtype = a
        dev = None if device is None else backend.device(device)
        dt = None if dtype is None else as_dtype(dtype)
        if (dev is None or dev == self.device) and (dt is None or dt == self.dtype):
            return self
        return _ops.to_copy(self, dev, dt)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, index: int = 0) -> "Tensor":
        return self.to(f"cuda:{index}")

    def float(self) -> "Tensor":
        return self.to(dtype=backend.float32)

    def double(self) -> "Tensor":
        return self.to(dtype=backend.float64)

    def type(self, dtype) -> "Tensor":
        return self.to(dtype=dtype)

    # --- autograd
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use .detach()")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def _accumulate_grad(self, g, create_graph: bool, owned: bool = False) -> None:
        """``.grad += g`` for a leaf (or a tensor that retains its gradient), called by the engine's backward."""
        if not isinstance(g, Tensor):
            g = Tensor(g)
        if g.shape != self.shape:
            raise RuntimeError(f"internal error: gradient of shape {g.shape} for a tensor of shape {self.shape}")
        if self.grad is None:
            # a buffer of its own (later backward calls add in place), unless the backward made g for self alone:
            # else it may be shared with another path (a + b sends the same one to both) or a read-only view
            self.grad = _ops.clone(g) if create_graph else Tensor(g.data if owned else g.data.copy())
        elif create_graph:
            self.grad = self.grad + g
        else:
            self.grad.data += g.data

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate ∂self/∂x into ``x.grad`` for every leaf x that requires grad.

        ``gradient`` is ∂L/∂self (needed unless self has one element); the graph is
        freed afterwards unless ``retain_graph``; ``create_graph`` makes the
        gradients differentiable.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: none of its inputs has "
                "requires_grad=True (or it was computed under no_grad)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() needs `gradient` for a non-scalar output of shape {self.shape}; "
                    "call .sum() or .mean() first, or pass gradient=a tensor of that shape"
                )
        g = as_grad_array(gradient, self, create_graph)
        _autograd.run_backward([self], [g], retain_graph or create_graph, create_graph, accumulate=True)

    # --- operators and methods: thin doors into ops.py
    def __add__(self, other):
        return _ops.Add()(self, other)

    def __radd__(self, other):
        return _ops.Add()(other, self)

    def __sub__(self, other):
        return _ops.Sub()(self, other)

    def __rsub__(self, other):
        return _ops.Sub()(other, self)

    def __mul__(self, other):
        return _ops.Mul()(self, other)

    def __rmul__(self, other):
        return _ops.Mul()(other, self)

    def __truediv__(self, other):
        return _ops.Div()(self, other)

    def __rtruediv__(self, other):
        return _ops.Div()(other, self)

    def __pow__(self, other):
        return _ops.Pow()(self, other)

    def __rpow__(self, other):
        return _ops.Pow()(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.Neg()(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.Abs()(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value):
        """``t[index] = value`` in place, with ``value`` moved to t's device and dtype first.

        Bumps t's version: a backward that saved t's old values raises instead of
        using the new ones. Integer indices are checked against the shape on the CPU;
        on CUDA an out-of-range index array is not checked (CuPy wraps it around) unless
        ``minae.detect_anomaly()`` is on. An index array that repeats a position stores
        the last of its values on the CPU, and an undefined one of them on CUDA (CuPy's rule).
        """
        if self.requires_grad and GradMode.enabled:
            raise RuntimeError("in-place assignment to a tensor that requires grad; do it under minae.no_grad()")
        if isinstance(value, Tensor):
            value = value.data
        if not isinstance(value, (int, float, bool)):  # CuPy takes no host arrays or lists here
            value = as_array(value, self.data.dtype, self.device)
        with backend.on(self.device):  # CuPy writes on the current GPU, which need not be self's
            self.data[_ops.index_key(index, self.data)] = value
        self._bump_version()

    # comparisons and logic give boolean tensors outside the graph
    def __eq__(self, other):
        return _ops.equal(self, other)

    def __ne__(self, other):
        return _ops.not_equal(self, other)

    def __lt__(self, other):
        return _ops.less(self, other)

    def __le__(self, other):
        return _ops.less_equal(self, other)

    def __gt__(self, other):
        return _ops.greater(self, other)

    def __ge__(self, other):
        return _ops.greater_equal(self, other)

    def __and__(self, other):
        return _ops.logical_and(self, other)

    def __or__(self, other):
        return _ops.logical_or(self, other)

    def __xor__(self, other):
        return _ops.logical_xor(self, other)

    def __invert__(self):
        return _ops.logical_not(self)

    def exp(self):
        return _ops.Exp()(self)

    def log(self):
        return _ops.Log()(self)

    def sqrt(self):
        return _ops.Sqrt()(self)

    def abs(self):
        return _ops.Abs()(self)

    def sin(self):
        return _ops.Sin()(self)

    def cos(self):
        return _ops.Cos()(self)

    def tanh(self):
        return _ops.Tanh()(self)

    def sigmoid(self):
        return _ops.Sigmoid()(self)

    def relu(self):
        return _ops.ReLU()(self)

    def softplus(self):
        return _ops.Softplus()(self)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    clip = clamp

    def sign(self):
        return _ops.sign(self)

    def sum(self, dim=None, keepdim=False):
        return _ops.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return _ops.mean(self, dim, keepdim)

    def var(self, dim=None, keepdim=False, unbiased=True, correction=None):
        return _ops.var(self, dim, keepdim, unbiased, correction)

    def max(self, dim=None, keepdim=False):
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _ops.min(self, dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        return _ops.logsumexp(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops.argmin(self, dim, keepdim)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    @property
    def T(self):
        return _ops.transpose(self)

    @property
    def mT(self):
        return _ops.transpose(self, -2, -1)

    def unsqueeze(self, dim):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def expand(self, *sizes):
        return _ops.expand(self, *sizes)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def expand_as(self, other):
        return _ops.broadcast_to(self, other.shape)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))


def as_grad_array(g, like, create_graph: bool):
    """The starting gradient ∂L/∂like: ones for a scalar, else ``g`` checked against like's shape."""
    if g is None:
        with backend.on(like.device):  # CuPy allocates on the current GPU, which need not be like's
            return backend.get_array_module(like.data).ones_like(like.data)
    arr = g.data if isinstance(g, Tensor) else as_array(g, like.dtype, like.device)
    if arr.shape != like.shape:
        raise diagnostics.gradient_shape_error(arr.shape, like.shape)
    if create_graph:
        return g if isinstance(g, Tensor) else Tensor(arr)
    return arr


from . import autograd as _autograd  # noqa: E402  (the engine and the ops need Tensor defined above)
from . import ops as _ops  # noqa: E402
