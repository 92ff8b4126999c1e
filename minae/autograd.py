"""Reverse-mode automatic differentiation: Tensor, Function and backward.

The whole engine in three ideas:

1. A ``Tensor`` wraps one array (NumPy or CuPy). When an op runs on tensors that
   require grad, the op object (a ``Function``) remembers its inputs and becomes
   the result's ``grad_fn``: the graph is built as the forward pass runs.
2. ``Function.forward`` computes on raw arrays. ``Function.backward`` turns the
   gradient of the output, ∂L/∂y, into gradients of the inputs, ∂L/∂x = ∂L/∂y · ∂y/∂x,
   and is written with minae's own ops, which accept raw arrays as well as tensors.
   Backward normally hands it raw arrays (fast, no graph); with
   ``create_graph=True`` it hands it tensors, so the gradient is itself a node of a
   new graph and can be differentiated again (double backprop).
3. ``backward`` visits functions from the output down, newest generation first
   (a heap, no recursion), so each function runs once, after all the gradients
   flowing into its output have been summed.
"""

from __future__ import annotations

import heapq
import itertools
import os
import traceback
import weakref

from . import backend
from .backend import Device, array_device, as_array, as_dtype, as_weak_scalar, is_array, to_device, to_numpy

np_ndarray, np_generic = backend.np.ndarray, backend.np.generic


class GradMode:
    """Global switches: is the graph being recorded; is anomaly detection on."""

    enabled = True
    anomaly = False


class _GradModeContext:
    """Context manager and decorator that sets GradMode.enabled inside it."""

    _mode = True

    def __enter__(self):
        self._prev = GradMode.enabled
        GradMode.enabled = self._mode

    def __exit__(self, *exc):
        GradMode.enabled = self._prev

    def __call__(self, func):
        mode = self._mode

        def wrapper(*args, **kwargs):
            prev = GradMode.enabled
            GradMode.enabled = mode
            try:
                return func(*args, **kwargs)
            finally:
                GradMode.enabled = prev

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        wrapper.__wrapped__ = func
        return wrapper


class no_grad(_GradModeContext):
    """Run without recording the graph (evaluation, parameter updates): ``with minae.no_grad(): ...``

    Also usable as a decorator: ``@minae.no_grad()``.
    """

    _mode = False


class enable_grad(_GradModeContext):
    """Record the graph again inside a ``no_grad`` region."""

    _mode = True


class set_grad_enabled(_GradModeContext):
    """Switch recording on or off: as a plain call (like PyTorch), a context manager or a decorator."""

    def __init__(self, mode: bool):
        self._mode = bool(mode)
        self._prev = GradMode.enabled
        GradMode.enabled = self._mode  # a plain call takes effect at once; __exit__ restores

    def __enter__(self):
        pass

    def __call__(self, func):
        GradMode.enabled = self._prev  # as a decorator it changes only the calls, not the present
        return super().__call__(func)


def is_grad_enabled() -> bool:
    return GradMode.enabled


class detect_anomaly:
    """Raise at the first op whose forward or backward produces NaN or inf.

    The error names the op and the line of user code that created it.
    """

    def __enter__(self):
        self._prev = GradMode.anomaly
        GradMode.anomaly = True
        return self

    def __exit__(self, *exc):
        GradMode.anomaly = self._prev


class AnomalyError(RuntimeError):
    pass


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_frame(stack) -> str:
    """The innermost frame outside the minae package: where the user wrote the op."""
    for frame in reversed(stack):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    frame = stack[-1]
    return f'File "{frame.filename}", line {frame.lineno}'


def _nonfinite(array) -> bool:
    if not hasattr(array, "dtype") or array.dtype.kind not in "fc":  # arrays and NumPy scalars (0-d results)
        return False
    return not bool(backend.get_array_module(array).isfinite(array).all())


# ------------------------------------------------------------------ Tensor ---
class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False)`` wraps an array; prefer ``minae.tensor(...)``,
    which also takes lists and ``dtype=``/``device=``.

    Attributes: ``data`` (the raw NumPy/CuPy array), ``grad`` (a Tensor of the same
    shape after backward, or None), ``requires_grad``, ``grad_fn`` (the Function
    that made it, None for a leaf).
    """

    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_retains_grad", "__weakref__")
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
        """A NumPy array with the values (a copy when the tensor lives on a GPU)."""
        if self.requires_grad and GradMode.enabled and self.grad_fn is not None:
            pass  # unlike PyTorch we allow it: the array is only read
        return to_numpy(self.data)

    def tolist(self):
        return to_numpy(self.data).tolist()

    def detach(self) -> "Tensor":
        """The same values, cut from the graph (shares memory)."""
        return Tensor(self.data)

    def clone(self) -> "Tensor":
        from .ops import clone

        return clone(self)

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
        from .ops import to_copy

        dev = None if device is None else backend.device(device)
        dt = None if dtype is None else as_dtype(dtype)
        if (dev is None or dev == self.device) and (dt is None or dt == self.dtype):
            return self
        return to_copy(self, dev, dt)

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
        g = _as_grad_array(gradient, self, create_graph)
        run_backward([self], [g], retain_graph or create_graph, create_graph, accumulate=True)

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
        return _ops.abs(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad and GradMode.enabled:
            raise RuntimeError("in-place assignment to a tensor that requires grad; do it under minae.no_grad()")
        self.data[_ops._index_arrays(index, backend.get_array_module(self.data))] = (
            value.data if isinstance(value, Tensor) else value
        )

    # comparisons and logic give boolean tensors outside the graph
    def __eq__(self, other):
        return _ops.compare("equal", self, other)

    def __ne__(self, other):
        return _ops.compare("not_equal", self, other)

    def __lt__(self, other):
        return _ops.compare("less", self, other)

    def __le__(self, other):
        return _ops.compare("less_equal", self, other)

    def __gt__(self, other):
        return _ops.compare("greater", self, other)

    def __ge__(self, other):
        return _ops.compare("greater_equal", self, other)

    def __and__(self, other):
        return _ops.compare("logical_and", self, other)

    def __or__(self, other):
        return _ops.compare("logical_or", self, other)

    def __xor__(self, other):
        return _ops.compare("logical_xor", self, other)

    def __invert__(self):
        return _ops.Elementwise("logical_not")(self)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def sin(self):
        return _ops.sin(self)

    def cos(self):
        return _ops.cos(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def softplus(self):
        return _ops.softplus(self)

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


# ---------------------------------------------------------------- Function ---
class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` in ops.

    Subclasses write::

        def forward(self, x):            # raw arrays in, one raw array out
            ...
        def backward(self, gy):          # ∂L/∂y in, one ∂L/∂x per input out
            x, = self.inputs_()          # arrays, or tensors under create_graph
            ...

    and may set ``keeps_output = True`` to read the forward result with ``self.output_()``.
    Inputs that are not tensors (Python numbers, raw arrays) are constants.
    Called with no tensor among its inputs, a Function just computes its forward:
    that is what lets ``backward`` code call ops on raw arrays.
    """

    __slots__ = ("inputs", "needs_grad", "generation", "output", "output_data", "created_at", "__weakref__")
    keeps_output = False
    differentiable = True

    def __call__(self, *args):
        for a in args:
            if isinstance(a, Tensor):
                break
        else:  # no tensor at all: raw arrays in, raw array out (how backward code calls ops)
            return self.forward(*args)
        arrays = []
        needs_grad = []
        first = None
        numpy_scalars = False
        for a in args:
            if isinstance(a, Tensor):
                needs_grad.append(a.requires_grad)
                a = a.data
            else:
                needs_grad.append(False)
                if isinstance(a, np_generic):  # np.float64(2) would upcast float32 arrays; a Python number does not
                    a = a.item()
                    numpy_scalars = True
                if not is_array(a):  # a Python number, a shape, an index: a constant
                    arrays.append(a)
                    continue
            if first is None:
                first = a
            elif type(a) is not type(first) or (type(a) is not np_ndarray and a.device != first.device):
                _device_error(self, args)
            arrays.append(a)
        if numpy_scalars:  # saved as the numbers the forward saw, so the gradient keeps the dtype too
            args = tuple(a.item() if isinstance(a, np_generic) else a for a in args)
        try:
            y = self.forward(*arrays)
        except ValueError as e:
            raise ValueError(f"{self.name()}: {_describe_inputs(args)}: {e}") from None
        if not is_array(y):  # NumPy ufuncs turn 0-d arrays into scalars
            y = backend.np.asarray(y)
        if GradMode.anomaly and _nonfinite(y):
            where = _user_frame(traceback.extract_stack()[:-1])
            raise AnomalyError(f"{self.name()} produced NaN or inf in its forward pass, at\n{where}")
        out = Tensor.__new__(Tensor)
        out.data = y
        out.grad = None
        out._retains_grad = False
        if GradMode.enabled and self.differentiable and True in needs_grad:
            self.inputs = args
            self.needs_grad = tuple(needs_grad)
            gen = 0
            for a in args:
                if isinstance(a, Tensor) and a.grad_fn is not None and a.grad_fn.generation >= gen:
                    gen = a.grad_fn.generation + 1
            self.generation = gen
            self.output = weakref.ref(out)
            self.output_data = y if self.keeps_output else None
            self.created_at = traceback.extract_stack()[:-2] if GradMode.anomaly else None
            out.requires_grad = True
            out.grad_fn = self
        else:
            out.requires_grad = False
            out.grad_fn = None
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, gy):
        raise NotImplementedError

    # Under create_graph the graph of the gradient must reach the real inputs, so
    # backward sees tensors; otherwise it sees their arrays and builds nothing.
    def inputs_(self):
        if GradMode.enabled:
            return self.inputs
        return [a.data if isinstance(a, Tensor) else a for a in self.inputs]

    def output_(self):
        if GradMode.enabled:
            out = self.output()
            if out is not None:
                return out
            return Tensor(self.output_data)
        return self.output_data

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def __repr__(self):
        return f"<{self.name()}Backward>"

    def next_functions(self):
        """The functions that made this one's inputs (for drawing the graph)."""
        if getattr(self, "inputs", None) is None:
            return ()
        return tuple(a.grad_fn for a in self.inputs if isinstance(a, Tensor))


def _describe_inputs(args) -> str:
    parts = []
    for a in args:
        if isinstance(a, Tensor):
            parts.append(f"shape {tuple(a.shape)}")
        elif is_array(a):
            parts.append(f"array of shape {tuple(a.shape)}")
        else:
            parts.append(repr(a))
    return "inputs " + ", ".join(parts)


def _device_error(func, args):
    where = []
    for a in args:
        if isinstance(a, Tensor):
            where.append(f"tensor of shape {tuple(a.shape)} on {a.device}")
        elif is_array(a):
            where.append(f"raw array of shape {tuple(a.shape)} on {array_device(a)}")
    raise RuntimeError(
        f"{func.name()}: expected all inputs on the same device, got "
        + " and ".join(where)
        + "; move them with .to(device)"
    )


# ---------------------------------------------------------------- backward ---
_tiebreak = itertools.count()


def _add(acc, g):
    """Sum gradients from several paths (out of place: an array may be shared)."""
    return g if acc is None else acc + g


def run_backward(roots, root_grads, retain_graph, create_graph, accumulate=True, capture=None):
    """Propagate gradients from ``roots`` to the leaves.

    accumulate: add into the ``.grad`` of leaves (``Tensor.backward``).
    capture: dict id(tensor) -> None for the tensors whose gradient ``minae.grad``
    returns; filled in place with their gradients.
    """
    prev_mode = GradMode.enabled
    GradMode.enabled = create_graph
    try:
        pending = {}  # Function -> summed gradient of its output
        heap = []

        def send(t, g):
            if g.dtype != t.data.dtype:  # a float64 constant promoted this path: t's gradient keeps t's dtype
                g = _ops.cast(g, t.data.dtype) if isinstance(g, Tensor) else g.astype(t.data.dtype)
            if capture is not None and id(t) in capture:
                capture[id(t)] = _add(capture[id(t)], g)
            f = t.grad_fn
            if f is None:
                if accumulate and t.requires_grad:
                    _accumulate_grad(t, g, create_graph)
                return
            if t._retains_grad and accumulate:
                _accumulate_grad(t, g, create_graph)
            # BEGIN SOLUTION task 1.5
            # HINT: add g to f's gradient in pending; the first time f is seen, also push it on the heap so that the newest generation pops first (heapq pops the smallest; _tiebreak orders equals)
            if f in pending:
                pending[f] = pending[f] + g
            else:
                pending[f] = g
                heapq.heappush(heap, (-f.generation, next(_tiebreak), f))
            # END SOLUTION

        for t, g in zip(roots, root_grads):
            send(t, g)
        # minae.grad wants only some gradients: skip every branch that cannot reach them
        wanted = None if accumulate or capture is None else _leading_to(roots, capture)

        while heap:
            # BEGIN SOLUTION task 1.5
            # HINT: take the function of the newest generation off the heap, and its summed output gradient out of pending
            f = heapq.heappop(heap)[2]
            gy = pending.pop(f)
            # END SOLUTION
            if f.inputs is None:
                raise RuntimeError(
                    f"trying to backward through {f.name()} a second time: its saved values were freed "
                    "after the first backward. Pass retain_graph=True to the first backward() to keep them."
                )
            if wanted is None:
                gxs = f.backward(gy)
            else:
                needs_grad = f.needs_grad
                f.needs_grad = tuple(
                    need and (id(x) in capture or x.grad_fn in wanted) for x, need in zip(f.inputs, needs_grad)
                )
                try:
                    gxs = f.backward(gy)
                finally:
                    f.needs_grad = needs_grad
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if GradMode.anomaly:
                for gx in gxs:
                    if gx is not None and _nonfinite(gx.data if isinstance(gx, Tensor) else gx):
                        where = _user_frame(f.created_at) if f.created_at else "(created outside detect_anomaly)"
                        raise AnomalyError(
                            f"{f.name()} produced NaN or inf in its backward pass; it was created at\n{where}"
                        )
            for x, gx, need in zip(f.inputs, gxs, f.needs_grad):
                if need and gx is not None and (wanted is None or id(x) in capture or x.grad_fn in wanted):
                    send(x, gx)
            if not retain_graph:
                f.inputs = None
                f.output_data = None
    finally:
        GradMode.enabled = prev_mode


def _leading_to(roots, capture) -> set:
    """The functions of the graph below ``roots`` through which some captured tensor can be reached."""
    order, seen, stack = [], set(), [t.grad_fn for t in roots if t.grad_fn is not None]
    while stack:  # every function below the roots, without recursion
        f = stack.pop()
        if f in seen or f.inputs is None:
            continue
        seen.add(f)
        order.append(f)
        stack.extend(x.grad_fn for x in f.inputs if isinstance(x, Tensor) and x.grad_fn is not None)
    wanted = set()
    # inputs are always of a lower generation than the function they feed, so one ascending pass suffices
    for f in sorted(order, key=lambda f: f.generation):
        for x in f.inputs:
            if isinstance(x, Tensor) and (id(x) in capture or x.grad_fn in wanted):
                wanted.add(f)
                break
    return wanted


def _accumulate_grad(t, g, create_graph):
    if not isinstance(g, Tensor):
        g = Tensor(g)
    if g.shape != t.shape:
        raise RuntimeError(f"internal error: gradient of shape {g.shape} for a tensor of shape {t.shape}")
    if t.grad is None:
        # a buffer of its own: the incoming gradient may be shared with another path (a + b sends
        # the same one to both) or be a read-only broadcast view, and later backward calls add in place
        t.grad = _ops.clone(g) if create_graph else Tensor(g.data.copy())
    elif create_graph:
        t.grad = t.grad + g
    else:
        t.grad.data += g.data


def _as_grad_array(g, like: Tensor, create_graph: bool):
    if g is None:
        return backend.get_array_module(like.data).ones_like(like.data)
    if isinstance(g, Tensor):
        if g.shape != like.shape:
            raise RuntimeError(f"gradient has shape {g.shape}, but the output it belongs to has shape {like.shape}")
        return g if create_graph else g.data
    arr = as_array(g, like.dtype, like.device)
    if arr.shape != like.shape:
        raise RuntimeError(f"gradient has shape {arr.shape}, but the output it belongs to has shape {like.shape}")
    return Tensor(arr) if create_graph else arr


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple of tensors.

    Computes Σ_k grad_outputs[k] · ∂outputs[k]/∂inputs[i] for each input without
    touching any ``.grad``. With ``create_graph=True`` the results are part of a
    graph and can be differentiated again.
    """
    single_out = isinstance(outputs, Tensor)
    outputs = [outputs] if single_out else list(outputs)
    single_in = isinstance(inputs, Tensor)
    inputs = [inputs] if single_in else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    roots, grads = [], []
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise RuntimeError("grad: an output does not require grad (it does not depend on any input)")
        if g is None and y.data.size != 1:
            raise RuntimeError(f"grad: grad_outputs is needed for a non-scalar output of shape {y.shape}")
        roots.append(y)
        grads.append(_as_grad_array(g, y, create_graph))
    capture = {id(x): None for x in inputs}
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(roots, grads, retain, create_graph, accumulate=False, capture=capture)
    result = []
    for i, x in enumerate(inputs):
        g = capture[id(x)]
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {x.shape}) was not used to compute the outputs; pass allow_unused=True"
                )
            result.append(None)
        else:
            result.append(g if isinstance(g, Tensor) else Tensor(g))
    return tuple(result)


def as_tensor_like(value, like: Tensor) -> Tensor:
    """A constant tensor on ``like``'s device with its dtype (for numbers and raw arrays)."""
    if isinstance(value, Tensor):
        return value
    return Tensor(as_array(as_weak_scalar(value), like.dtype, like.device))


def move_array(array, dev):
    return to_device(array, dev)


from . import ops as _ops  # noqa: E402  (ops needs Tensor and Function defined above)
