"""The Tensor: an n-dimensional array that can record the operations applied to it.

This module is the PyTorch-style surface: properties (``shape``, ``dtype``,
``device``), conversions, operators and methods, each a thin door into an op
of ``ops.py``. What happens when an op runs on tensors, and how gradients flow
back, is the engine's business: ``autograd.py``.

In-place writes are tracked as in PyTorch: each piece of memory has one
``Version`` counter, shared by every tensor that views it (slices, reshapes,
transposes, ``detach()``, ``Parameter(t)``), that every write through any of them
bumps (``t[...] = v``, ``t += v``, ``copy_``/``fill_``/``zero_``, ``nn.init``,
``load_state_dict``, the optimizers); a function that saved a tensor for its
backward checks that the count is still the one it saw. Writes through ``.data``
are not tracked.
"""

from __future__ import annotations

import copy
import itertools

from . import backend, diagnostics
from .backend import Device, array_device, as_array, as_dtype, get_array_module, is_array, to_numpy
from .grad_mode import GradMode, no_grad


class Version:
    """How many times one piece of memory was written in place (PyTorch's version counter).

    Every tensor that views the memory holds the same Version, and every write through any
    of them adds one: a Function notes ``value`` for each tensor it saved and raises before
    its backward if it moved. A tensor gets its Version when its memory is first viewed or
    written (until then its count is 0): most results are neither, and this spares every op
    an allocation.
    """

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


# Fast path (skip on a first reading): one more Version, counting the writes into all memory. A
# function notes its value at the forward; a backward compares it and reads its saved tensors'
# counts only when it moved: the common backward, with no write anywhere in between, pays one
# comparison instead of one per saved tensor. (A module-level instance: reading its slot costs a
# fraction of reading a class attribute.)
ANY_MEMORY = Version()


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
        "_grad": "∂L/∂self after backward (a Tensor of the same shape), or None (read and set through the ``grad`` "
        "property, which checks what is set).",
        "_requires_grad": "Whether ops on this tensor are recorded for backward (read and set through the "
        "``requires_grad`` property, which checks what is set; the engine reads the slot).",
        "grad_fn": "The Function that made this tensor (None for a leaf).",
        "_retains_grad": "Keep .grad on this non-leaf tensor (retain_grad()).",
        "_version": "The Version counter of this tensor's memory, shared with every view of it (None while the "
        "memory was neither viewed nor written: count 0).",
        "_view": "(base, the view op, base's version count when this view's grad_fn was set) when this tensor "
        "views another's memory, else None: an in-place op through the view is recorded on the base too.",
        "_earlier_grad_fns": "[(last version count served, grad_fn), …]: the grad_fns this tensor had before "
        "in-place writes replaced them (None if never), so that functions recorded before a write send their "
        "gradient to the function that made the value they saw (autograd.maker).",
        "_hooks": "{id: hook} of register_hook, or None if none was ever registered.",
        "__weakref__": None,
    }
    __array_priority__ = 1000  # so that ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        source = data if isinstance(data, Tensor) else None  # Tensor(t) views t's memory, unless copied
        if source is not None:
            data = data.data
        given = data
        if not is_array(data) or dtype is not None or device is not None:
            data = as_array(data, dtype, None if device is None else backend.device(device))
        if data.dtype.kind not in "biuf":  # strings, objects, dates: NumPy holds them, no op of minae takes them
            raise TypeError(f"a tensor holds numbers or booleans, got an array of dtype {data.dtype}")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self._grad = None
        self._requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._retains_grad = False
        self._version = source._counter() if source is not None and data is given else None
        self._view = None
        self._earlier_grad_fns = None
        self._hooks = None

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
            extras.append(f"grad_fn=<{self.grad_fn.name()}Backward>")
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
        """The same values, cut from the graph (shares memory, and its version counter)."""
        out = Tensor(self.data)
        out._version = self._counter()
        return out

    def _counter(self) -> Version:
        """The Version of this tensor's memory, made now if it was neither viewed nor written yet."""
        if self._version is None:
            self._version = Version()
        return self._version

    def _bump_version(self) -> None:
        """Record an in-place write into this tensor's memory: a backward that saved the old values raises."""
        self._counter().value += 1
        ANY_MEMORY.value += 1

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
    @property
    def grad(self):
        """∂L/∂self after backward (a Tensor of self's shape, dtype and device), or None. Assigned by hand, it is
        checked as PyTorch checks it: an optimizer step would broadcast a (1,) gradient over a (2,) weight."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f".grad must be a Tensor or None, not a {type(value).__name__}")
            if value is self:
                raise RuntimeError(".grad cannot be the tensor itself (a backward would add into its values)")
            if (value.shape, value.dtype, value.device) != (self.shape, self.dtype, self.device):
                raise RuntimeError(
                    f".grad must have the tensor's shape {tuple(self.shape)}, dtype {self.dtype} and device "
                    f"{self.device}; got shape {tuple(value.shape)}, dtype {value.dtype} on {value.device}"
                )
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded for backward. Set it as ``requires_grad_()`` does, with its
        checks: a non-leaf cannot stop requiring grad (what is computed from it would silently lose its gradient)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        requires_grad = bool(requires_grad)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require grad, got dtype {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad can only be switched off on a leaf tensor; use .detach()")
        self._requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def register_hook(self, hook) -> "RemovableHandle":
        """Call ``hook(grad)`` with ∂L/∂self each time a backward computes it (once per backward, with the sum over
        every path); a tensor it returns replaces the gradient (in ``.grad``, and below in the graph). Returns a
        handle whose ``.remove()`` takes the hook off. As in PyTorch, for leaves and non-leaves alike."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        key = next(_hook_ids)
        self._hooks[key] = hook
        return RemovableHandle(self._hooks, key)

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place: it becomes a leaf that does not require grad."""
        if self._view is not None and self.requires_grad:
            raise RuntimeError(
                "detach_() on a view of another tensor's memory that is part of the graph: use detach() instead"
            )
        if self.grad_fn is not None:
            # the functions that took self already keep their edge to its grad_fn (autograd.maker), as PyTorch's
            # keep theirs; counted as a write, so that one that saved self's values raises at its backward
            _replace_grad_fn(self, Tensor(self.data), self._counter().value)
            self._bump_version()
        self._requires_grad = False
        return self

    def _accumulate_grad(self, g, create_graph: bool, owned: bool = False) -> None:
        """``.grad += g`` for a leaf (or a tensor that retains its gradient), called by the engine's backward."""
        data = g.data if isinstance(g, Tensor) else g  # an array in an ordinary backward, a tensor under create_graph
        if data.shape != self.data.shape:
            raise RuntimeError(f"internal error: gradient of shape {data.shape} for a tensor of shape {self.shape}")
        grad = self._grad
        if grad is not None:
            if grad.shape != self.shape or grad.dtype != self.dtype:  # (the grad setter checks; .data may change)
                raise RuntimeError(
                    f".grad has shape {tuple(grad.shape)} and dtype {grad.dtype} (.data changed since?), but the "
                    f"gradient of this tensor has shape {tuple(self.shape)} and dtype {self.dtype}"
                )
        if create_graph:
            g = g if isinstance(g, Tensor) else Tensor(g)
            self._grad = _ops.clone(g) if grad is None else grad + g
        elif grad is None:
            # a buffer of its own (later backward calls add in place), unless the backward made g for self alone:
            # else it may be shared with another path (a + b sends the same one to both) or a read-only view
            self._grad = Tensor(data if owned else data.copy())
        elif not getattr(grad.data.flags, "writeable", True):  # an expand() view assigned by hand
            self._grad = Tensor(grad.data + data)
        else:
            grad.data += data
            grad._bump_version()

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate ∂self/∂x into ``x.grad`` for every leaf x that requires grad.

        ``gradient`` is ∂L/∂self (needed unless self has one element); the graph is
        freed afterwards unless ``retain_graph``; ``create_graph`` makes the
        gradients differentiable.
        """
        refresh_if_stale(self)
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

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

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

        Bumps the version of t's memory: a backward that saved t's old values raises instead
        of using the new ones. With grad on and a tensor that requires grad involved, the write
        is recorded (PyTorch's copy-slices): ∂L/∂value = ∂L/∂t[index], and t's other elements
        keep their old gradient path. Integer indices are checked against the shape on the CPU;
        on CUDA an out-of-range index array is not checked (CuPy wraps it around) unless
        ``minae.detect_anomaly()`` is on. An index array that repeats a position stores the last
        of its values on the CPU, and an undefined one of them on CUDA (CuPy's rule).
        """
        key = _ops.index_key(index, self.data)
        value = _drop_leading_ones(value, self.data, key)
        try:
            if GradMode.enabled and (self.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
                self._write(lambda old: _ops.SetItem(key)(old, value), reads_old=False, others=(value,))
                return
            _check_view_write(self)
            data = value.data if isinstance(value, Tensor) else value
            if not isinstance(data, (int, float, bool)):  # CuPy takes no host arrays or lists here
                data = as_array(data, self.data.dtype, self.device)
            with backend.on(self.device):  # CuPy writes on the current GPU, which need not be self's
                self.data[key] = data
        except ValueError:
            slot, shape = tuple(self.data[key].shape), tuple(getattr(value, "shape", backend.np.shape(value)))
            if _broadcasts(shape, slot):
                raise
            raise ValueError(
                f"t[{index!r}] = value: a value of shape {shape} does not fit the selected elements, of shape {slot}"
            ) from None
        self._bump_version()

    # --- in-place operators and methods: the result written into this tensor's memory
    def _write(self, fn, reads_old=True, others=()):
        """``self ← fn(self)`` in self's memory, bumping its version (every in-place op comes here).

        With grad on and a tensor that requires grad involved, the write is recorded as PyTorch does:
        ``fn`` runs on a stand-in for the old value (with self's old grad_fn; a copy of its values when
        ``reads_old``, because the op's backward may read them), and self takes the result's grad_fn
        (a rebase). When self views another tensor's memory, that tensor is rebased too, up to the
        base. Functions that saved the old value raise at their backward: its version moved.
        """
        with backend.on_device_of((self.data,)):  # CuPy computes and copies on the current GPU, not on self's
            return self._write_here(fn, reads_old, others)

    def _write_here(self, fn, reads_old, others):
        refresh_if_stale(self)  # the write is recorded on top of self's grad_fn: it must have its base's writes
        _check_view_write(self)
        if not (GradMode.enabled and (self.requires_grad or any(_requires_grad(o) for o in others))):
            with no_grad():
                y = fn(self)
            _store(self, y)
            return self
        for t in _view_chain(self):
            if t.grad_fn is None and t.requires_grad:
                what = "a leaf tensor" if t is self else "a view of a leaf tensor"
                raise RuntimeError(
                    f"{what} that requires grad is being written in place while grad is on: its gradient would "
                    "lose its meaning. Write it under `with minae.no_grad():` (as an optimizer step does), or "
                    "write into a .clone()."
                )
        old = Tensor(self.data.copy() if reads_old else self.data)
        old._requires_grad, old.grad_fn = self._requires_grad, self.grad_fn
        y = fn(old)
        if y.dtype != self.dtype and y.dtype.kind == "f" and self.dtype.kind == "f":
            y = _ops.cast(y, self.dtype)
        _store(self, y)
        _replace_grad_fn(self, y, self._version.value - 1)  # the old one served counts up to the one before the write
        _rebase_bases(self)
        return self

    def __iadd__(self, other):
        return self._write(lambda old: old + other, reads_old=False, others=(other,))

    def __isub__(self, other):
        return self._write(lambda old: old - other, reads_old=False, others=(other,))

    def __imul__(self, other):
        return self._write(lambda old: old * other, others=(other,))

    def __itruediv__(self, other):
        return self._write(lambda old: old / other, others=(other,))

    def __ipow__(self, other):
        return self._write(lambda old: old**other, others=(other,))

    def __ifloordiv__(self, other):
        return self._write(lambda old: old // other, others=(other,))

    def __imod__(self, other):
        return self._write(lambda old: old % other, others=(other,))

    def floor_divide(self, other):
        return _ops.floor_divide(self, other)

    def remainder(self, other):
        return _ops.remainder(self, other)

    def floor_divide_(self, other):
        return self.__ifloordiv__(other)

    def remainder_(self, other):
        return self.__imod__(other)

    def __imatmul__(self, other):
        return self._write(lambda old: old @ other, others=(other,))

    def add_(self, other, alpha=1):
        """``self += alpha · other`` in place."""
        return self.__iadd__(other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        """``self -= alpha · other`` in place."""
        return self.__isub__(other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return self.__imul__(other)

    def div_(self, other):
        return self.__itruediv__(other)

    def pow_(self, exponent):
        return self.__ipow__(exponent)

    def clamp_(self, min=None, max=None):
        return self._write(lambda old: _ops.clamp(old, min, max), others=(min, max))

    def copy_(self, src):
        """Copy ``src``'s values (broadcast to self's shape, moved to self's device and dtype) into self."""
        if not isinstance(src, Tensor):
            src = Tensor(as_array(src, self.dtype, self.device))
        if not _broadcasts(tuple(src.shape), tuple(self.shape)):
            raise RuntimeError(
                f"copy_: a source of shape {tuple(src.shape)} does not broadcast to {tuple(self.shape)}, the shape of "
                "the tensor written into"
            )
        return self._write(
            lambda old: _ops.cast(_ops.broadcast_to(src.to(self.device), self.shape), self.dtype),
            reads_old=False,
            others=(src,),
        )

    def fill_(self, value):
        """Every element set to ``value`` (a number)."""
        if not GradMode.enabled or not self.requires_grad:
            _check_view_write(self)
            self.data.fill(value)
            self._bump_version()
            return self
        return self._write(lambda old: _ops.SetItem(Ellipsis)(old, value), reads_old=False)

    def zero_(self):
        return self.fill_(0)

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
        return _ops.TanhOp()(self)

    def sigmoid(self):
        return _ops.SigmoidOp()(self)

    def relu(self):
        return _ops.ReLUOp()(self)

    def softplus(self):
        return _ops.SoftplusOp()(self)

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
        return _ops.view(self, *shape)

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


_hook_ids = itertools.count()


class RemovableHandle:
    """What ``register_hook`` returns: ``remove()`` takes the hook off (a second call does nothing)."""

    __slots__ = ("hooks", "key")

    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self) -> None:
        self.hooks.pop(self.key, None)


def _broadcasts(shape, to) -> bool:
    """Whether an array of ``shape`` broadcasts to ``to`` (NumPy's rule, without growing ``to``)."""
    try:
        return backend.np.broadcast_shapes(shape, to) == to
    except ValueError:
        return False


def _drop_leading_ones(value, data, key):
    """value without the leading size-1 dimensions it has beyond the slot data[key] (PyTorch drops them: out[i] =
    model(x[i:i+1]) writes a (1, d) result into a row of d). A tensor keeps its graph (a reshape)."""
    shape = getattr(value, "shape", ())
    if not shape or shape[0] != 1:
        return value
    extra = len(shape) - data[key].ndim
    if extra <= 0 or any(n != 1 for n in shape[:extra]):
        return value
    return value.reshape(tuple(shape[extra:]))


def _requires_grad(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _store(t, y):
    """Write y's values into t's memory, and count the write."""
    if tuple(y.shape) != tuple(t.shape):
        raise RuntimeError(
            f"in-place: the result has shape {tuple(y.shape)}, the tensor written into has shape {tuple(t.shape)} "
            "(an in-place op cannot change a tensor's shape)"
        )
    xp = get_array_module(t.data)
    if not xp.can_cast(y.dtype, t.dtype, "same_kind"):
        raise TypeError(f"in-place: a result of dtype {y.dtype} cannot be written into a tensor of dtype {t.dtype}")
    if not t.data.flags.writeable:
        raise RuntimeError(
            f"in-place: this tensor of shape {tuple(t.shape)} views memory it cannot write (an expand()/"
            "broadcast_to() view repeats elements); write into a .clone()"
        )
    xp.copyto(t.data, y.data, casting="same_kind")
    t._bump_version()


def _check_view_write(t):
    """Raise for a write with grad on through a view taken under no_grad of a tensor that requires grad (PyTorch
    raises too): the view has no gradient path to its base, so whether the write should reach the base's gradient
    is ambiguous, and recording it either way would silently give one reading's gradient."""
    if not GradMode.enabled:
        return
    while t._view is not None:
        if t._view[0].requires_grad and not t.requires_grad:
            raise RuntimeError(
                "in-place: this tensor views one that requires grad, but was taken under no_grad (it has no "
                "gradient path to it), and is written with grad on. Take the view with grad on, or write under "
                "`with minae.no_grad():`."
            )
        t = t._view[0]


def _view_chain(t):
    """t, the tensor whose memory t views, the one that one views, … up to the base."""
    chain = [t]
    while t._view is not None:
        t = t._view[0]
        chain.append(t)
    return chain


def _rebase_bases(t):
    """After a recorded write through the view t: each tensor t views takes a grad_fn that puts t's new values
    into its own (the view op's ``into_base``: PyTorch's copy-slices), so gradients through it see the write."""
    while t._view is not None:
        base, view_op, _ = t._view
        if not hasattr(view_op, "into_base"):
            raise RuntimeError(f"in-place: a write through the result of {view_op.name()} cannot be recorded")
        t._view = (base, view_op, t._version.value)  # t's grad_fn has the write: no refresh_view for it
        old = Tensor(base.data)  # into_base reads no values of the old base, only its gradient path
        old._requires_grad, old.grad_fn = base._requires_grad, base.grad_fn
        new = view_op.into_base(old, t)
        _replace_grad_fn(base, new, base._version.value - 1)  # one write: the count before it
        t = base


def _replace_grad_fn(t, new, last_count) -> None:
    """t takes new's grad_fn (an in-place write changed its value); the old one is kept with ``last_count``, the
    last version count of t's memory that it served, for the functions recorded until then (autograd.maker)."""
    if t._earlier_grad_fns is None:
        t._earlier_grad_fns = []
    t._earlier_grad_fns.append((last_count, t.grad_fn))
    t.grad_fn, t._requires_grad = new.grad_fn, new._requires_grad


def refresh_if_stale(t) -> None:
    """Give t a grad_fn that has every write into its memory: refresh_view when t views memory written since its
    grad_fn was set. Whatever reads a grad_fn calls it first (an op's inputs, inline in Function.__call__;
    backward()'s and grad()'s outputs; an in-place write through t)."""
    if t._view is not None and t._view[2] != t._version.value:
        refresh_view(t)


def refresh_view(t) -> None:
    """t views memory written since t's grad_fn was set (through its base or another view): take t's grad_fn
    afresh from its base, whose grad_fn has the write (PyTorch regenerates a view's grad_fn the same way)."""
    base, view_op, _ = t._view
    if base._view is not None and base._view[2] != base._version.value:
        refresh_view(base)
    if GradMode.enabled and base.requires_grad:
        fresh = copy.copy(view_op)(base)
        _replace_grad_fn(t, fresh, t._view[2])  # no function took t since that count: each would have refreshed it
    t._view = (base, view_op, t._version.value)


def as_grad_array(g, like, create_graph: bool):
    """The starting gradient ∂L/∂like: ones for a scalar, else ``g`` checked against like's shape."""
    if g is None:
        with backend.on_device_of((like.data,)):  # CuPy allocates on the current GPU, which need not be like's
            return get_array_module(like.data).ones_like(like.data)
    arr = g.data if isinstance(g, Tensor) else as_array(g, like.dtype, like.device)
    if arr.shape != like.shape:
        raise diagnostics.gradient_shape_error(arr.shape, like.shape)
    if create_graph:
        return g if isinstance(g, Tensor) else Tensor(arr)
    return arr


from . import autograd as _autograd  # noqa: E402  (the engine and the ops need Tensor defined above)
from . import ops as _ops  # noqa: E402
