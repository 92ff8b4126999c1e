"""The primitive differentiable operations, one short class each.

``forward(self, *arrays)`` computes on raw arrays with ``xp = get_array_module(x)``
(NumPy or CuPy) and returns one array.

The backward rule, the same for every op:

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        ...
        return ga, gb

- ``gy`` is ∂L/∂y, the shape of the forward's result.
- ``needs_grad`` holds one bool per input: compute ∂L/∂x only where it is True,
  return None elsewhere (the data batch needs no gradient: never pay for it).
- ``self.saved()`` is the one way to read what the forward saw: its inputs in
  order (numbers stay numbers), then its result when the class sets
  ``keeps_output = True`` (σ, tanh, exp, relu take their derivative from it).
  In an ordinary backward these are raw arrays, and so is ``gy``: the ops below
  accept arrays and tensors alike and record nothing on arrays. Under
  ``create_graph=True`` they are tensors, so the gradient is itself a graph.
  Masks need no graph: take them from the array, ``_array(x) > 0``. What the
  forward noted on ``self`` besides (an input's shape, ``self.in_shape``) is
  read directly.
- Return one gradient per input, each of its input's shape (``sum_to`` undoes
  broadcasting).
- In-place writes: backward raises if a value it reads was written in place
  since the forward (the version counter of each input's memory is checked).
  ``grad_reads`` names, per input, the inputs its gradient reads (Mul:
  ``((1,), (0,))``): an input no needed gradient reads is not checked, as in
  PyTorch. A class whose backward uses only its inputs' shapes sets
  ``checks_input_versions = False``: writes into its inputs are then no error.

Each lowercase function is the public way in; masks and constants come from
the input's array module.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections import namedtuple

from . import backend
from .autograd import Function
from .backend import as_weak_scalar, get_array_module, index_to
from .grad_mode import GradMode
from .tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul",
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "sin", "cos",
    "clamp", "maximum", "minimum", "where", "sign",
    "sum", "mean", "var", "max", "min", "logsumexp", "argmax", "argmin",
    "reshape", "view", "flatten", "transpose", "permute", "unsqueeze", "squeeze", "expand", "broadcast_to",
    "sum_to", "cat", "stack", "getitem", "to_copy", "clone", "cast", "linear",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
    "logical_and", "logical_or", "logical_xor", "logical_not",
]  # fmt: skip


def _array(x):
    """The array behind a saved value (masks need no graph)."""
    return x.data if isinstance(x, Tensor) else x


def _as_float(x):
    """Float-only functions of bool and integer inputs give the default float dtype, as in PyTorch."""
    if x.dtype.kind in "fc":
        return x
    return x.astype(backend.get_default_dtype())


def _norm_dim(dim, ndim):
    """PyTorch's ``dim`` (int, tuple or None; negative counts from the end) as NumPy's ``axis``.

    Every dim is checked against [−ndim, ndim) (a 0-d tensor takes 0 and −1, meaning its one element) and
    may appear once: taken modulo ndim unchecked, dim 2 of a matrix would silently be dim 0.
    """
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        axes = tuple(_norm_dim(d, ndim) for d in dim)
        if ndim == 0:
            return None if axes else ()
        if len(set(axes)) != len(axes):
            raise ValueError(f"dim {tuple(dim)}: a dimension appears more than once")
        return axes
    lo, hi = (-1, 0) if ndim == 0 else (-ndim, ndim - 1)
    if not lo <= dim <= hi:
        raise IndexError(f"dim {dim} is out of range for a tensor with {ndim} dimension(s) (expected {lo} … {hi})")
    return None if ndim == 0 else dim % ndim


# ------------------------------------------------------- broadcasting helpers ---
class SumTo(Function):
    """Sum the broadcast axes away so that the result has ``shape`` (the adjoint of broadcasting)."""

    __slots__ = ("shape", "in_shape")
    checks_input_versions = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        # BEGIN SOLUTION task 1.2
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape) if lead else y
        # END SOLUTION

    def backward(self, gy, needs_grad):
        return broadcast_to(gy, self.in_shape)


class BroadcastTo(Function):
    __slots__ = ("shape", "in_shape")
    checks_input_versions = False

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.in_shape = x.shape
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy, needs_grad):
        return sum_to(gy, self.in_shape)


def sum_to(x, shape):
    """Reduce ``x`` to ``shape`` by summing the axes that broadcasting stretched."""
    if tuple(x.shape) == tuple(shape):
        return x
    return SumTo(shape)(x)


def broadcast_to(x, shape):
    """``x`` repeated along new or size-1 axes to ``shape`` (NumPy's rules; a view, no copy)."""
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return same_shape_view(x)
    return BroadcastTo(shape)(x)


def same_shape_view(x):
    """What a view op gives where it changes nothing: a raw array as it is (a backward's gradient), a tensor as a
    new tensor viewing all of its memory, as in PyTorch: the tensor itself would let ``requires_grad_``, a hook or
    ``detach_`` on the "view" act on the original (a hook would then scale the gradient of every use of x)."""
    return Reshape(tuple(x.shape))(x) if isinstance(x, Tensor) else x


def expand(x, *sizes):
    """PyTorch's ``expand``: like broadcast_to, with -1 meaning "keep this size"."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(
            f"expand: {len(sizes)} sizes {tuple(sizes)} for a tensor of {x.ndim} dimensions (give at least one per "
            "dimension)"
        )
    if -1 in sizes[:lead]:  # a new leading dimension has no size to keep
        raise ValueError(f"expand: -1 (keep the size) in {tuple(sizes)} at a new leading dimension, which has none")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


# ---------------------------------------------------------------- arithmetic ---
def promoted(a, b):
    """a and b cast where PyTorch's type promotion differs from NumPy 2's, for a binary op (else as they are;
    ``Function.__call__`` calls it for an op with ``promotes`` whose result's dtype is not its first input's).

    PyTorch orders the kinds bool < integer < float and takes the result's kind from all operands, but its dtype
    from the operands of that kind in this order: tensors with dimensions, then 0-d tensors, then Python numbers
    (a float one gives the default float dtype). NumPy lets a 0-d array raise the dtype (float32 n-d with float64
    0-d gives float64; PyTorch float32) and an integer array with a Python float gives float64 (PyTorch: float32).
    """
    ta, tb = type(a), type(b)
    if ta is tb and (ta is not float and ta is not int) and a.dtype == b.dtype:  # the common case: one dtype
        return a, b
    if (ta is float or ta is int) and b.dtype.kind == "f" or (tb is float or tb is int) and a.dtype.kind == "f":
        return a, b  # a float tensor and a Python number: the tensor's dtype, in both
    xp = get_array_module(a if backend.is_array(a) else b)
    kind = {"b": 0, "i": 1, "u": 1, "f": 2}
    ranked = []  # (kind, place: 0 n-d, 1 0-d, 2 Python number, dtype)
    for x in (a, b):
        if backend.is_array(x):
            ranked.append((kind.get(x.dtype.kind, 2), 0 if x.ndim else 1, x.dtype))
        else:
            k = 0 if isinstance(x, bool) else 1 if isinstance(x, int) else 2
            ranked.append((k, 2, backend.get_default_dtype() if k == 2 else xp.dtype(xp.int64 if k else xp.bool_)))
    top = builtins.max(k for k, _, _ in ranked)
    place = builtins.min(p for k, p, _ in ranked if k == top)
    want = xp.result_type(*[d for k, p, d in ranked if k == top and p == place])
    return tuple(x.astype(want) if backend.is_array(x) and x.dtype != want else x for x in (a, b))


class Add(Function):
    __slots__ = ()
    promotes = True
    checks_input_versions = False

    def forward(self, a, b):
        return a + b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        return (sum_to(gy, a.shape) if na else None, sum_to(gy, b.shape) if nb else None)


class Sub(Function):
    __slots__ = ()
    promotes = True
    checks_input_versions = False

    def forward(self, a, b):
        return a - b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        return (sum_to(gy, a.shape) if na else None, sum_to(-gy, b.shape) if nb else None)


class Mul(Function):
    __slots__ = ()
    promotes = True
    # BEGIN FORMULA task 1.1
    # ∂(ab)/∂a = b reads b, ∂(ab)/∂b = a reads a
    # END FORMULA
    grad_reads = ((1,), (0,))  # which saved inputs each input's gradient reads

    def forward(self, a, b):
        return a * b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        # BEGIN SOLUTION task 1.1
        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)
        # END SOLUTION


class Div(Function):
    __slots__ = ()
    promotes = True
    grad_reads = ((1,), (0, 1))  # ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b²

    def forward(self, a, b):
        # true division of integers or booleans gives the default float dtype (PyTorch; NumPy gives float64)
        a, b = (_as_float(x) if backend.is_array(x) else x for x in (a, b))
        return a / b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        ga = gy / b
        # ∂(a/b)/∂b = −a/b²
        return (sum_to(ga, a.shape) if na else None, sum_to(-ga * a / b, b.shape) if nb else None)


class FloorDivide(Function):
    """⌊a / b⌋ (Python's rule: rounded toward −∞). Piecewise constant: PyTorch gives it no derivative, so its
    backward raises rather than return a zero that no finite difference agrees with at the steps."""

    __slots__ = ()
    promotes = True
    checks_input_versions = False

    def forward(self, a, b):
        _check_integer_divisor(a, b, "//")
        return get_array_module(a if backend.is_array(a) else b).floor_divide(a, b)

    def backward(self, gy, needs_grad):
        raise RuntimeError("floor_divide (//) has no derivative (it is piecewise constant), as in PyTorch")


class Remainder(Function):
    """a − b·⌊a / b⌋, with the sign of b (Python's and PyTorch's ``%``): ∂/∂a = 1, ∂/∂b = −⌊a / b⌋."""

    __slots__ = ()
    promotes = True
    grad_reads = ((), (0, 1))

    def forward(self, a, b):
        _check_integer_divisor(a, b, "%")
        return get_array_module(a if backend.is_array(a) else b).remainder(a, b)

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        q = _floor_quotient(a, b) if nb else None
        return (sum_to(gy, a.shape) if na else None, sum_to(-gy * q, b.shape) if nb else None)


def _floor_quotient(a, b):
    """⌊a / b⌋ as a constant (an array): a step function, its own derivative is zero almost everywhere."""
    a, b = (x.data if isinstance(x, Tensor) else x for x in (a, b))
    return get_array_module(a if backend.is_array(a) else b).floor_divide(a, b)


def _check_integer_divisor(a, b, op):
    """Integer division by zero has no value (NumPy returns 0 with a warning; PyTorch raises)."""
    xp = get_array_module(a if backend.is_array(a) else b)
    if xp.result_type(a, b).kind in "iu" and bool(xp.any(xp.asarray(b) == 0)):
        raise ZeroDivisionError(f"integer {op} by zero")


class Neg(Function):
    __slots__ = ()
    checks_input_versions = False

    def forward(self, x):
        return -x

    def backward(self, gy, needs_grad):
        return -gy


class Pow(Function):
    """a ** b: ∂/∂a = b·a^(b−1), ∂/∂b = a^b·log a.

    a^b is computed again for ∂/∂b rather than kept: an exponent that needs a gradient is rare, and not keeping
    the result lets it be written in place (``y = x ** 2; y += 1``, as in PyTorch)."""

    __slots__ = ()
    promotes = True

    def forward(self, a, b):
        return a**b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        ga = gb = None
        if na:
            if isinstance(b, (int, float)) and b == 0:  # a⁰ = 1 for every a: no gradient (not 0·a⁻¹ = NaN at 0)
                ga = sum_to(gy * 0, a.shape)
            else:
                ga = b * a ** (b - 1)
                if not isinstance(b, (int, float)) and (_array(b) == 0).any():
                    ga = where(_array(b) == 0, 0.0, ga)  # the same where b = 0 (as PyTorch)
                ga = sum_to(gy * ga, a.shape)
        if nb:
            gb = sum_to(gy * _times_log_base(a, b), b.shape)
        return ga, gb


def _times_log_base(a, b):
    """∂(a^b)/∂b = a^b · log a, taken as 0 where a = 0 and b ≥ 0 (its limit as a → 0⁺ for b > 0; PyTorch's
    value at b = 0), rather than 0 · (−∞) = NaN."""
    with backend.np.errstate(divide="ignore", invalid="ignore"):  # log 0 = −inf, log of a negative = NaN
        y = a**b
        if isinstance(a, (int, float)):
            if a > 0:
                return y * math.log(a)
            if a < 0:
                return y * math.nan
            return where(_array(b) >= 0, y * 0.0, y * -math.inf)
        term = y * log(a)
    zero = (_array(a) == 0) & (_array(b) >= 0)
    return where(zero, 0.0, term) if zero.any() else term


def _swap_last(x):
    nd = x.ndim
    return transpose(x, nd - 2, nd - 1)


class MatMul(Function):
    """y = a @ b (NumPy's matmul: 1-D, 2-D and batched with broadcasting).

    # BEGIN FORMULA task 1.3
    ∂L/∂a = ∂L/∂y · bᵀ,  ∂L/∂b = aᵀ · ∂L/∂y (summed over broadcast batch axes).
    # END FORMULA
    """

    __slots__ = ()
    # BEGIN FORMULA task 1.3
    # ∂L/∂a = ∂L/∂y bᵀ reads b, ∂L/∂b = aᵀ ∂L/∂y reads a
    # END FORMULA
    grad_reads = ((1,), (0,))  # which saved inputs each input's gradient reads

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs tensors of at least one dimension (use * for scalars)")
        _check_same_dtype("matmul", a, b)
        return a @ b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        na, nb = needs_grad
        a2 = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        gy2 = gy
        if b.ndim == 1:  # put back the axes that 1-D operands dropped: y (…, n) -> (…, n, 1)
            gy2 = reshape(gy2, tuple(gy2.shape) + (1,))
        if a.ndim == 1:  # y (…, m) -> (…, 1, m)
            gy2 = reshape(gy2, tuple(gy2.shape[:-1]) + (1, gy2.shape[-1]))
        # BEGIN SOLUTION task 1.3
        ga = gb = None
        if na:
            ga = reshape(sum_to(gy2 @ _swap_last(b2), a2.shape), a.shape)
        if nb:
            gb = reshape(sum_to(_swap_last(a2) @ gy2, b2.shape), b.shape)
        # END SOLUTION
        return ga, gb


def _check_same_dtype(name, *arrays):
    """A matrix product takes operands of one dtype, as in PyTorch: NumPy would silently promote a float32 layer
    fed float64 data to float64 (twice the memory and time, and an output of the wrong dtype)."""
    arrays = [a for a in arrays if backend.is_array(a)]
    if any(a.dtype != arrays[0].dtype for a in arrays):
        dtypes = " and ".join(str(a.dtype) for a in arrays)
        raise TypeError(
            f"{name}: the operands have dtypes {dtypes}; they must be one dtype (convert the input with "
            ".to(dtype), or the layer with .double()/.float())"
        )


class LinearOp(Function):
    """The affine map of a layer, fused: y = x Wᵀ + b for x (N, in), W (out, in), b (out,) or None.

    # BEGIN FORMULA task 2.1
    ∂L/∂x = ∂L/∂y · W,   ∂L/∂W = (∂L/∂y)ᵀ · x,   ∂L/∂b = Σ_n ∂L/∂y
    # END FORMULA
    One op instead of transpose, matmul and add: less bookkeeping, and W's
    gradient comes out contiguous.
    """

    __slots__ = ()
    grad_reads = ((1,), (0,), ())  # ∂L/∂x reads W, ∂L/∂W reads x, ∂L/∂b neither

    def forward(self, x, w, b):
        _check_same_dtype("linear", x, w, b)
        y = x @ w.T
        if b is not None:
            y += b  # y is fresh: add in place
        return y

    def backward(self, gy, needs_grad):
        x, w, _ = self.saved()
        nx, nw, nb = needs_grad
        # BEGIN SOLUTION task 2.1
        return (gy @ w if nx else None, gy.T @ x if nw else None, sum(gy, 0) if nb else None)
        # END SOLUTION


def linear(x, weight, bias=None):
    """x Wᵀ + b for x (…, in_features); weight (out, in), bias (out,) or None  ->  (…, out_features).

    Other than rows (N, in_features), x is seen as rows through a reshape (a view) and the result reshaped back.
    """
    if x.ndim == 2:
        return LinearOp()(x, weight, bias)
    rows = LinearOp()(reshape(x, (-1, x.shape[-1])), weight, bias)
    return reshape(rows, tuple(x.shape[:-1]) + (weight.shape[0],))


def add(a, b):
    """a + b with broadcasting."""
    return Add()(a, b)


def sub(a, b):
    """a − b with broadcasting."""
    return Sub()(a, b)


def mul(a, b):
    """a · b elementwise with broadcasting."""
    return Mul()(a, b)


def div(a, b):
    """a / b elementwise with broadcasting."""
    return Div()(a, b)


def neg(x):
    return Neg()(x)


def floor_divide(a, b):
    """⌊a / b⌋ elementwise with broadcasting (rounded toward −∞, as Python's ``//``); not differentiable."""
    return FloorDivide()(a, b)


def remainder(a, b):
    """a − b·⌊a / b⌋ elementwise with broadcasting (the sign of b, as Python's ``%``)."""
    return Remainder()(a, b)


def pow(a, b):
    """a ** b elementwise (either may be a number)."""
    return Pow()(a, b)


def matmul(a, b):
    """The matrix product a @ b; shapes (…, n, k) @ (…, k, m) -> (…, n, m)."""
    return MatMul()(a, b)


# ------------------------------------------------------------------ elementwise ---
class Exp(Function):
    __slots__ = ()
    keeps_output = True
    checks_input_versions = False

    def forward(self, x):
        return get_array_module(x).exp(_as_float(x))

    def backward(self, gy, needs_grad):
        _, y = self.saved()
        # BEGIN SOLUTION task 1.1
        return gy * y  # d e^x = e^x
        # END SOLUTION


class Log(Function):
    __slots__ = ()

    def forward(self, x):
        return get_array_module(x).log(_as_float(x))

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        # BEGIN SOLUTION task 1.1
        return gy / x
        # END SOLUTION


class Sqrt(Function):
    __slots__ = ()
    keeps_output = True
    checks_input_versions = False

    def forward(self, x):
        return get_array_module(x).sqrt(_as_float(x))

    def backward(self, gy, needs_grad):
        _, y = self.saved()
        return gy / (2 * y)


class Abs(Function):
    __slots__ = ()

    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        x = _array(x)
        return gy * get_array_module(x).sign(x)  # the subgradient 0 at 0, as PyTorch


class Sin(Function):
    __slots__ = ()

    def forward(self, x):
        return get_array_module(x).sin(_as_float(x))

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return gy * cos(x)


class Cos(Function):
    __slots__ = ()

    def forward(self, x):
        return get_array_module(x).cos(_as_float(x))

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return -gy * sin(x)


class TanhOp(Function):
    __slots__ = ()
    keeps_output = True
    checks_input_versions = False

    def forward(self, x):
        return get_array_module(x).tanh(_as_float(x))

    def backward(self, gy, needs_grad):
        _, y = self.saved()
        return gy * (1 - y * y)  # tanh' = 1 − tanh²


class SigmoidOp(Function):
    """σ(x) = 1 / (1 + e^(−x)), computed from e = e^(−|x|) ≤ 1 (no overflow, no cancellation):
    σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0, that is max([x ≥ 0], e)/(1 + e),
    correct to a few ulp over the whole range (both tails)."""

    __slots__ = ()
    keeps_output = True
    checks_input_versions = False

    def forward(self, x):
        xp = get_array_module(x)
        x = _as_float(x)
        e = xp.exp(-xp.abs(x))
        y = xp.maximum((x >= 0).astype(e.dtype), e)  # not where: NumPy's where on a random mask is ~10× slower
        y /= e + 1
        return y

    def backward(self, gy, needs_grad):
        _, y = self.saved()
        return gy * y * (1 - y)  # σ' = σ(1 − σ)


class ReLUOp(Function):
    """max(x, 0); the derivative (1 where x > 0) read from the kept result: y > 0 exactly where x > 0."""

    __slots__ = ()
    keeps_output = True
    checks_input_versions = False

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy, needs_grad):
        _, y = self.saved()
        return gy * (_array(y) > 0)


class LeakyReLUOp(Function):
    __slots__ = ("slope",)

    def __init__(self, slope):
        self.slope = slope

    def forward(self, x):
        x = _as_float(x)  # (an integer x times a float slope was float64)
        return get_array_module(x).where(x > 0, x, x * self.slope)

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return where(_array(x) > 0, gy, gy * self.slope)


class SoftplusOp(Function):
    """softplus(x) = log(1 + e^x), stable for large |x|:

    # BEGIN FORMULA task 2.2
    log(1 + e^x) = max(x, 0) + log(1 + e^(−|x|)).
    # END FORMULA
    """

    __slots__ = ()

    def forward(self, x):
        x = _as_float(x)
        return bce_with_logits_forward(x, get_array_module(x).zeros_like(x))[1]  # softplus(x) = ℓ(x, t = 0)

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return gy * sigmoid(x)  # softplus' = σ


class BinaryCrossEntropyWithLogits(Function):
    """ℓ(x, t) = −[t log σ(x) + (1 − t) log(1 − σ(x))], elementwise, for logits x and targets t.

    # BEGIN FORMULA task 2.2
    ℓ(x, t) = max(x, 0) − x·t + log(1 + e^(−|x|)),
    ∂ℓ/∂x = σ(x) − t,   ∂ℓ/∂t = −x.
    # END FORMULA
    Fused because the loss and σ share e^(−|x|): the forward keeps it and the
    backward gets σ(x) from it without another exponential.
    """

    __slots__ = ("e",)
    promotes = True  # logits and targets of two dtypes: PyTorch's result dtype (float32 with float64: float64)

    def forward(self, x, t):
        self.e, loss = bce_with_logits_forward(x, t)
        return loss

    def backward(self, gy, needs_grad):
        x, t = self.saved()
        nx, nt = needs_grad
        gx = gt = None
        if nx:
            # BEGIN SOLUTION task 2.2
            if isinstance(x, Tensor):  # building a graph (create_graph): σ(x) from ops
                gx = sum_to(gy * (sigmoid(x) - t), x.shape)
            else:
                gx = bce_with_logits_backward(gy, x, t, self.e)
            # END SOLUTION
        if nt:
            gt = sum_to(-gy * x, t.shape)
        return gx, gt


def bce_with_logits_forward(x, t):
    """e = e^(−|x|) (kept for the backward) and the loss ℓ, on arrays of one shape.

    # BEGIN FORMULA task 2.2
    ℓ = max(x, 0) − x·t + log(1 + e)
    # END FORMULA
    """
    xp = get_array_module(x)
    # BEGIN SOLUTION task 2.2
    e = xp.exp(-xp.abs(x))
    loss = xp.maximum(x, 0)  # max(x, 0) − x·t first: exact for t in {0, 1}, then the small term
    loss -= x * t
    loss += array_log1p(e)
    # END SOLUTION
    return e, loss


def bce_with_logits_backward(gy, x, t, e):
    """∂L/∂x = gy · ∂ℓ/∂x on arrays of one shape, with σ(x) from e = e^(−|x|) and no new exponential.

    # BEGIN FORMULA task 2.2
    gy · (σ(x) − t), with σ(x) = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0,
    that is max([x ≥ 0], e)/(1 + e), since 0 < e ≤ 1.
    # END FORMULA
    """
    xp = get_array_module(x)
    # BEGIN SOLUTION task 2.2
    grad_logits = xp.maximum((x >= 0).astype(e.dtype), e)
    grad_logits /= 1 + e  # σ(x); then in place, as the forward
    grad_logits -= t
    grad_logits *= gy
    return grad_logits
    # END SOLUTION


def array_log1p(e):
    """log(1 + e) for an array e ≥ 0, exact to ~1 ulp also where e is tiny (NumPy's log1p, or its fast form)."""
    xp = get_array_module(e)
    if e.dtype == backend.float32:
        return _log1p_fast(e)
    return xp.log1p(e)


# ---- fast path (skip on a first reading): log1p in float32 -------------------------------------------------
_LOG1P_BLOCK = 16384  # elements of _log1p_fast's scratch buffer on the CPU (64 KiB in float32)


def _log1p_fast(e):
    """log1p(e) as log(u) − (u − 1 − e)/u with u = fl(1 + e): NumPy's float32 log1p is ~6× slower than its log.

    u − 1 − e is the rounding error of 1 + e, exact in floating point, and log(1 + e) = log(u) − δ/u + O(δ²);
    for tiny e, u = 1 and the result is e, as it should be. Within a few ulp of log1p (tests/test_ops.py).

    u becomes the result in place, and the rounding term is taken block by block in a small scratch buffer
    on the CPU: the loss functions that call this (softplus, BCE with logits) hold a few batch-sized arrays
    already, and a second one of e's size here was the largest buffer of a VAE step's peak memory.
    """
    xp = get_array_module(e)
    u = xp.empty(e.shape, e.dtype)  # C order, so that its flat view below is a view
    xp.add(e, 1, out=u)
    flat_u, flat_e = u.reshape(-1), e.reshape(-1)
    # on a GPU one block (a kernel launch per block); ops.py's min and max are the ops, not the builtins
    block = _LOG1P_BLOCK if xp is backend.np and u.size > _LOG1P_BLOCK else u.size or 1
    scratch = xp.empty(block, u.dtype)
    for i in range(0, u.size, block):
        ub, eb = flat_u[i : i + block], flat_e[i : i + block]
        rounding = scratch[: ub.size]
        xp.subtract(ub, 1, out=rounding)
        rounding -= eb
        rounding /= ub
        xp.log(ub, out=ub)
        ub -= rounding
    return u


def binary_cross_entropy_with_logits(x, t):
    """The elementwise BCE of σ(x) against targets t, from the logits x (no reduction; broadcast)."""
    if tuple(x.shape) != tuple(getattr(t, "shape", x.shape)):
        shape = backend.np.broadcast_shapes(tuple(x.shape), tuple(t.shape))
        x, t = broadcast_to(x, shape), broadcast_to(t, shape)
    return BinaryCrossEntropyWithLogits()(x, t)


class Clamp(Function):
    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, x):
        if x.dtype.kind not in "fc" and (isinstance(self.lo, float) or isinstance(self.hi, float)):
            x = _as_float(x)  # an integer tensor clamped to a float bound: the default float (NumPy: float64)
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy, needs_grad):
        x = _array(self.saved()[0])
        # the gradient passes where x is inside [lo, hi], boundaries included (as PyTorch)
        if self.lo is None:
            inside = x <= self.hi
        elif self.hi is None:
            inside = x >= self.lo
        else:
            inside = (x >= self.lo) & (x <= self.hi)
        return gy * inside


def _tie_split(gy, a, b, a_wins, needs_grad):
    """The gradient of max(a, b) or min(a, b): all to the side that won, half each at ties (as PyTorch)."""
    a, b = _array(a), _array(b)
    dt = _array(gy).dtype
    share_a = a_wins.astype(dt) + (a == b).astype(dt) * dt.type(0.5)
    na, nb = needs_grad
    return (
        sum_to(gy * share_a, a.shape) if na else None,  # an input that needs a gradient is an array here
        sum_to(gy * (1 - share_a), b.shape) if nb else None,
    )


class Maximum(Function):
    """max(a, b) elementwise; at ties each side gets half the gradient."""

    __slots__ = ()
    promotes = True  # PyTorch's dtype for mixed operands: maximum(int64, float32) is float32 (NumPy: float64)

    def forward(self, a, b):
        return get_array_module(a if backend.is_array(a) else b).maximum(a, b)

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        return _tie_split(gy, a, b, _array(a) > _array(b), needs_grad)


class Minimum(Function):
    """min(a, b) elementwise; at ties each side gets half the gradient."""

    __slots__ = ()
    promotes = True

    def forward(self, a, b):
        return get_array_module(a if backend.is_array(a) else b).minimum(a, b)

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        return _tie_split(gy, a, b, _array(a) < _array(b), needs_grad)


class Where(Function):
    """cond ? a : b elementwise; the gradient goes to the side that was chosen."""

    __slots__ = ()
    grad_reads = ((), (0,), (0,))  # each side's gradient reads only cond

    def forward(self, cond, a, b):
        xp = get_array_module(cond)
        if backend.is_array(a) or backend.is_array(b):
            a, b = promoted(a, b)  # the two branches' dtype as PyTorch's (not Function.promotes: three inputs)
        elif isinstance(a, float) or isinstance(b, float):  # two Python numbers: a float one, the default float
            return xp.where(cond, a, b).astype(backend.get_default_dtype())
        return xp.where(cond, a, b)

    def backward(self, gy, needs_grad):
        cond, a, b = self.saved()
        c = _array(cond)
        _, na, nb = needs_grad
        ga = sum_to(where(c, gy, 0), a.shape) if na else None
        gb = sum_to(where(c, 0, gy), b.shape) if nb else None
        return None, ga, gb


def exp(x):
    """e^x elementwise."""
    return Exp()(x)


def log(x):
    """Natural logarithm elementwise."""
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def sin(x):
    return Sin()(x)


def cos(x):
    return Cos()(x)


def tanh(x):
    return TanhOp()(x)


def sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x))."""
    return SigmoidOp()(x)


def relu(x):
    """max(x, 0)."""
    return ReLUOp()(x)


def leaky_relu(x, negative_slope=0.01):
    """x for x > 0, negative_slope · x otherwise."""
    return LeakyReLUOp(as_weak_scalar(negative_slope))(x)  # np.float64 would upcast float32


def softplus(x):
    """log(1 + e^x), stable for large |x|."""
    return SoftplusOp()(x)


def clamp(x, min=None, max=None):
    """x limited to [min, max] (either bound may be None; numbers, or tensors that broadcast with x: then
    ∂L/∂min is ∂L/∂y where x < min, ∂L/∂max where the result would exceed max, and x keeps the rest)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):  # bounds in the graph: each gets the gradient where it won
        y = x if min is None else where(_array(x) >= _array(min), x, min)
        return y if max is None else where(_array(y) <= _array(max), y, max)  # max wins where min > max (PyTorch)
    lo, hi = as_weak_scalar(min), as_weak_scalar(max)  # np.float64 bounds would upcast float32
    if isinstance(x, Tensor):  # on a GPU, bounds beyond x's range: CuPy 13's dtype differs (backend.kernel_scalar)
        lo, hi = (None if b is None else backend.kernel_scalar(b, x.data) for b in (lo, hi))
    return Clamp(lo, hi)(x)


def maximum(a, b):
    return Maximum()(a, b)


def minimum(a, b):
    return Minimum()(a, b)


def where(cond, a, b):
    """Elementwise ``a if cond else b`` with broadcasting; ``cond`` is a boolean tensor or array."""
    if isinstance(cond, Tensor) and cond.dtype != backend.bool_:
        raise TypeError(f"where: the condition must be a boolean tensor, got dtype {cond.dtype}")
    return Where()(cond, a, b)


# --------------------------------------------------------- not differentiable ---
class Elementwise(Function):
    """``fn(xp, *arrays)`` with no gradient: comparisons, logic, sign, argmax; the result is a plain tensor."""

    __slots__ = ("fn", "kwargs")
    differentiable = False

    def __init__(self, fn, **kwargs):
        self.fn, self.kwargs = fn, kwargs

    def forward(self, *arrays):
        xp = get_array_module(next((a for a in arrays if backend.is_array(a)), None))
        return self.fn(xp, *arrays, **self.kwargs)


def equal(a, b):
    """a == b elementwise: a boolean tensor outside the graph (so are the comparisons and logic below)."""
    return Elementwise(lambda xp, x, y: x == y)(a, b)


def not_equal(a, b):
    return Elementwise(lambda xp, x, y: x != y)(a, b)


def less(a, b):
    return Elementwise(lambda xp, x, y: x < y)(a, b)


def less_equal(a, b):
    return Elementwise(lambda xp, x, y: x <= y)(a, b)


def greater(a, b):
    return Elementwise(lambda xp, x, y: x > y)(a, b)


def greater_equal(a, b):
    return Elementwise(lambda xp, x, y: x >= y)(a, b)


def logical_and(a, b):
    return Elementwise(lambda xp, x, y: xp.logical_and(x, y))(a, b)


def logical_or(a, b):
    return Elementwise(lambda xp, x, y: xp.logical_or(x, y))(a, b)


def logical_xor(a, b):
    return Elementwise(lambda xp, x, y: xp.logical_xor(x, y))(a, b)


def logical_not(x):
    return Elementwise(lambda xp, x: xp.logical_not(x))(x)


def sign(x):
    """−1, 0 or +1 elementwise (no gradient)."""
    return Elementwise(lambda xp, x: xp.sign(x))(x)


def argmax(x, dim=None, keepdim=False):
    """Index of the largest value (along ``dim``, or of the flattened tensor)."""
    return Elementwise(lambda xp, x, **kw: xp.argmax(x, **kw), axis=_norm_dim(dim, x.ndim), keepdims=keepdim)(x)


def argmin(x, dim=None, keepdim=False):
    return Elementwise(lambda xp, x, **kw: xp.argmin(x, **kw), axis=_norm_dim(dim, x.ndim), keepdims=keepdim)(x)


# ----------------------------------------------------------------- reductions ---
def expand_back(gy, shape, axis, keepdims):
    """∂L/∂y of a reduction over ``axis`` spread back over the input's ``shape``.

    # BEGIN FORMULA task 1.4
    Each input element gets the gradient of the output element it was reduced into (a broadcast, no copy).
    # END FORMULA
    """
    # BEGIN SOLUTION task 1.4
    if not keepdims and axis is not None:
        gy = reshape(gy, _kept_shape(shape, axis))
    return broadcast_to(gy, shape)
    # END SOLUTION


def _kept_shape(shape, axis):
    """``shape`` with the reduced axes kept as size 1 (what keepdim=True gives)."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a] for a in axes)


class Sum(Function):
    """y = Σ_axis x.

    # BEGIN FORMULA task 1.4
    ∂L/∂x = ∂L/∂y spread back over the summed axes.
    # END FORMULA
    """

    __slots__ = ("axis", "keepdims", "in_shape")
    checks_input_versions = False

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.in_shape = x.shape
        # PyTorch sums bool and every integer dtype in int64 (NumPy: uint8 in uint64)
        return x.sum(axis=self.axis, keepdims=self.keepdims, dtype=backend.int64 if x.dtype.kind == "u" else None)

    def backward(self, gy, needs_grad):
        # BEGIN SOLUTION task 1.4
        return expand_back(gy, self.in_shape, self.axis, self.keepdims)
        # END SOLUTION


class Mean(Function):
    """y = (1/N) Σ_axis x.

    # BEGIN FORMULA task 1.4
    ∂L/∂x = ∂L/∂y / N spread back over the averaged axes.
    # END FORMULA
    """

    __slots__ = ("axis", "keepdims", "in_shape")
    checks_input_versions = False

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.in_shape = x.shape
        return _as_float(x).mean(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy, needs_grad):
        # BEGIN SOLUTION task 1.4
        return expand_back(gy, self.in_shape, self.axis, self.keepdims) / _count(self.in_shape, self.axis)
        # END SOLUTION


class Max(Function):
    """The largest element, max(x): ∂L/∂y shared equally among the elements that attain it (PyTorch's rule; a NaN
    attains a NaN maximum)."""

    __slots__ = ()
    keeps_output = True

    def forward(self, x):
        if x.size == 0:
            raise ValueError(f"{self.name().lower()}() of an empty tensor")
        return self.reduce(x)

    @staticmethod
    def reduce(x):
        return x.max()

    def backward(self, gy, needs_grad):
        x, y = (_array(v) for v in self.saved())
        hit = ((x == y) | ((x != x) & (y != y))).astype(_array(gy).dtype)
        hit /= hit.sum()
        return gy * hit


class Min(Max):
    """The smallest element, min(x): ∂L/∂y shared equally among the elements that attain it (as Max's)."""

    __slots__ = ()

    @staticmethod
    def reduce(x):
        return x.min()


class MaxDim(Function):
    """The largest value along ``axis``, max(x, dim): a selection, so ∂L/∂y goes to the element whose index it
    returns (argmax: the first that attains it) and to no other (PyTorch's rule). Reads x, not its output."""

    __slots__ = ("axis", "keepdims")

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        if x.shape[self.axis] == 0:  # (other dims may be empty: then so is the result, as in PyTorch)
            raise ValueError(f"{self.name().lower().removesuffix('dim')}() along dim {self.axis} of size 0")
        return self.reduce(x, self.axis, self.keepdims)

    @staticmethod
    def reduce(x, axis, keepdims):
        return x.max(axis=axis, keepdims=keepdims)

    @staticmethod
    def index(x, axis):
        return x.argmax(axis=axis)

    def backward(self, gy, needs_grad):
        x = _array(self.saved()[0])
        xp, n = get_array_module(x), x.shape[self.axis]
        chosen = xp.expand_dims(self.index(x, self.axis), self.axis)
        positions = xp.arange(n).reshape(tuple(n if i == self.axis else 1 for i in range(x.ndim)))
        hit = (positions == chosen).astype(_array(gy).dtype)  # one-hot along axis
        return expand_back(gy, x.shape, self.axis, self.keepdims) * hit


class MinDim(MaxDim):
    """The smallest value along ``axis``, min(x, dim): its gradient goes to the index it returns (as MaxDim's)."""

    __slots__ = ()

    @staticmethod
    def reduce(x, axis, keepdims):
        return x.min(axis=axis, keepdims=keepdims)

    @staticmethod
    def index(x, axis):
        return x.argmin(axis=axis)


class LogSumExp(Function):
    """y = log Σ exp(x) along an axis, as m + log Σ exp(x − m) with m = max x (no overflow).

    ∂y/∂x = exp(x − y), the softmax.
    """

    __slots__ = ("axis", "keepdims")
    keeps_output = True

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = get_array_module(x)
        x = _as_float(x)
        if x.size == 0:  # log of an empty sum: log 0 = −inf (NumPy's max has no identity to start from)
            return xp.full(x.sum(axis=self.axis, keepdims=self.keepdims).shape, -math.inf, x.dtype)
        m = x.max(axis=self.axis, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # all −inf rows give −inf, not NaN
        y = xp.log(xp.exp(x - m).sum(axis=self.axis, keepdims=True)) + m
        if not self.keepdims:
            y = y.reshape(tuple(n for i, n in enumerate(y.shape) if i not in _axes(self.axis, x.ndim)))
        return y

    def backward(self, gy, needs_grad):
        x, y = self.saved()
        if not self.keepdims and self.axis is not None:
            y = reshape(y, _kept_shape(x.shape, self.axis))
        return expand_back(gy, x.shape, self.axis, self.keepdims) * exp(x - y)


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return axis if isinstance(axis, tuple) else (axis,)


def sum(x, dim=None, keepdim=False):
    """Σ over ``dim`` (all elements when None)."""
    return Sum(_norm_dim(dim, x.ndim), keepdim)(x)


def mean(x, dim=None, keepdim=False):
    """The average over ``dim`` (all elements when None)."""
    return Mean(_norm_dim(dim, x.ndim), keepdim)(x)


def var(x, dim=None, keepdim=False, unbiased=True, correction=None):
    """Σ (x − x̄)² / (N − correction) over ``dim``; correction=1 (Bessel) by default, as PyTorch."""
    if correction is None:
        correction = 1 if unbiased else 0
    axis = _norm_dim(dim, x.ndim)
    d = x - mean(x, dim, keepdim=True)
    n = _count(x.shape, axis) - correction  # (not max(n, 0): max is the op defined below)
    return sum(d * d, dim, keepdim) / (n if n > 0 else 0)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def max(x, dim=None, keepdim=False):
    """The largest element; with ``dim``, (values, indices) along it, as PyTorch (and with its gradients: max()
    shares ∂L/∂y among tied elements, max(x, dim) gives it to the returned index)."""
    axis = _norm_dim(dim, x.ndim)
    if dim is None:
        return Max()(x)
    return MaxResult(Max()(x) if axis is None else MaxDim(axis, keepdim)(x), argmax(x, dim, keepdim))


def min(x, dim=None, keepdim=False):
    """The smallest element; with ``dim``, (values, indices) along it, as PyTorch (gradients as max's)."""
    axis = _norm_dim(dim, x.ndim)
    if dim is None:
        return Min()(x)
    return MaxResult(Min()(x) if axis is None else MinDim(axis, keepdim)(x), argmin(x, dim, keepdim))


def logsumexp(x, dim, keepdim=False):
    """log Σ_dim exp(x), computed without overflow."""
    return LogSumExp(_norm_dim(dim, x.ndim), keepdim)(x)


# -------------------------------------------------------------------- shapes ---
class Reshape(Function):
    __slots__ = ("shape", "in_shape")
    checks_input_versions = False

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy, needs_grad):
        return reshape(gy, self.in_shape)

    def into_base(self, base, v):
        """The base after a write through this view: all of it, v in the base's shape."""
        return Reshape(self.in_shape)(v)


class Transpose(Function):
    __slots__ = ("axes",)
    checks_input_versions = False

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy, needs_grad):
        return Transpose(self._inverse())(gy)

    def into_base(self, base, v):
        """The base after a write through this view: all of it, v with its axes put back."""
        return Transpose(self._inverse())(v)

    def _inverse(self):
        return tuple(sorted(range(len(self.axes)), key=self.axes.__getitem__))


def _shape_arg(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape):
    """The same elements in a new shape (one entry may be −1)."""
    shape = _shape_arg(shape)
    bad = [n for n in shape if n < -1]  # NumPy reads any negative size as −1: reshape(−2, 2) was reshape(−1, 2)
    if bad:
        raise ValueError(f"reshape: invalid size {bad[0]} in shape {shape} (sizes are ≥ 0, or −1 for one inferred)")
    if tuple(x.shape) == shape:
        return same_shape_view(x)
    return Reshape(shape)(x)


def view(x, *shape):
    """PyTorch's view: the same memory in a new shape. Where the elements cannot be read in the new shape
    without a copy (a transpose flattened), reshape copies, and a view that silently copied would neither see
    writes into x nor pass its own on: that raises, as in PyTorch."""
    y = reshape(x, *shape)
    a, b = _array(x), _array(y)
    if b is not a and b.size and not get_array_module(a).may_share_memory(a, b):
        raise RuntimeError(
            f"view{tuple(_shape_arg(shape))}: a tensor of shape {tuple(a.shape)} with these strides (a transpose "
            "or a step slice) cannot be viewed in that shape without a copy; use .reshape(...) (a copy, not a view)"
        )
    return y


def flatten(x, start_dim=0, end_dim=-1):
    """Merge the dimensions start_dim … end_dim into one."""
    s, e = _norm_dim(start_dim, x.ndim), _norm_dim(end_dim, x.ndim)  # (range-checked: 0 and −1 on a 0-d tensor)
    if x.ndim == 0:
        return reshape(x, (1,))
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (of {x.ndim} dimensions)")
    shape = tuple(x.shape[:s]) + (-1,) + tuple(x.shape[e + 1 :])
    if math.prod(x.shape) == 0:
        shape = tuple(x.shape[:s]) + (math.prod(x.shape[s : e + 1]),) + tuple(x.shape[e + 1 :])
    return reshape(x, shape)


def permute(x, *dims):
    """Reorder the dimensions: the result's dim i is the input's dims[i]."""
    dims = tuple(d % x.ndim for d in _shape_arg(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {x.ndim} dimensions")
    return Transpose(dims)(x)


def transpose(x, dim0=None, dim1=None):
    """Swap two dimensions (PyTorch's transpose); with none given, reverse them all (``.T``)."""
    if dim0 is None:
        return Transpose(tuple(reversed(range(x.ndim))))(x)
    axes = list(range(x.ndim))
    d0, d1 = _norm_dim(dim0, x.ndim), _norm_dim(dim1, x.ndim)
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return Transpose(tuple(axes))(x)


def unsqueeze(x, dim):
    """Insert a size-1 dimension at ``dim``."""
    nd = x.ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a result with {nd} dimensions")
    dim %= nd
    return reshape(x, tuple(x.shape[:dim]) + (1,) + tuple(x.shape[dim:]))


def squeeze(x, dim=None):
    """Remove size-1 dimensions (only those of ``dim``, an int or a tuple, when given; others are kept)."""
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    d = _norm_dim(dim, x.ndim)
    if d is None:
        return same_shape_view(x)
    drop = {a for a in (d if isinstance(d, tuple) else (d,)) if x.shape[a] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))


class Cat(Function):
    """Join tensors along an existing axis; the gradient is cut back into the same pieces."""

    __slots__ = ("axis", "sizes")
    checks_input_versions = False

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        first = xs[0].dtype
        if any(x.dtype != first for x in xs):  # PyTorch's promotion over all pieces (cat(int64, float32): float32)
            xp = get_array_module(xs[0])
            want = functools.reduce(lambda d, x: promoted(xp.empty(0, d), xp.empty(0, x.dtype))[0].dtype, xs, first)
            xs = [x.astype(want, copy=False) for x in xs]
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy, needs_grad):
        grads, start = [], 0
        lead = (slice(None),) * self.axis
        for size, need in zip(self.sizes, needs_grad):
            grads.append(getitem(gy, lead + (slice(start, start + size),)) if need else None)
            start += size
        return tuple(grads)


def cat(tensors, dim=0):
    """Concatenate along ``dim``; every other dimension must agree."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    nd = tensors[0].ndim
    axis = _norm_dim(dim, nd)
    for t in tensors[1:]:
        if t.ndim != nd or any(a != b for i, (a, b) in enumerate(zip(t.shape, tensors[0].shape)) if i != axis):
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"cat: shapes {shapes} differ outside dim {dim}")
    return Cat(axis)(*tensors)


def stack(tensors, dim=0):
    """Join equal-shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return cat([unsqueeze(t, dim) for t in tensors], dim)


# ------------------------------------------------------------------- indexing ---
def _has_int_array(index) -> bool:
    """Integer-array indices may repeat an element, so their gradient must be accumulated."""
    items = index if isinstance(index, tuple) else (index,)
    return any(backend.is_array(i) and i.dtype.kind in "iu" for i in items)


def index_key(index, array):
    """An indexing key for ``array``: tensors as arrays, lists and arrays on array's device.

    NumPy raises for an out-of-range index array; CuPy wraps an integer-array index
    around silently (t[[5]] of 3 elements reads t[2]; a plain integer, t[5], raises on
    both). Checking the arrays on a GPU reads them back, a device sync on every call,
    so it is done only under ``minae.detect_anomaly()``.
    """
    xp = get_array_module(array)
    raw = index.data if isinstance(index, Tensor) else _tensors_to_arrays(index)
    key = index_to(raw, xp, backend.array_device(array))  # on array's GPU, not the current one
    if _has_array(key):
        with backend.on_device_of((array,)):  # CuPy copies onto the current GPU, which need not be array's
            key = _own_arrays(key, raw)
    if GradMode.anomaly and xp is not backend.np:
        with backend.on_device_of((array,)):  # CuPy reduces on the current GPU, which need not be array's
            _check_bounds(key, array.shape)
    return key


def _has_array(key) -> bool:
    return any(backend.is_array(k) for k in key) if isinstance(key, tuple) else backend.is_array(key)


def _own_arrays(key, raw):
    """The key with the caller's index arrays (a tensor's, or NumPy's) copied: GetItem and SetItem keep the key
    for their backward, and a write into the caller's index before it moved the gradient silently (x[i] then
    i[0] = 2: the gradient went to x[2])."""
    if isinstance(key, tuple):
        return tuple(_own_arrays(k, r) for k, r in zip(key, raw))
    return key.copy() if backend.is_array(key) and key is raw else key


def _tensors_to_arrays(index):
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _check_bounds(key, shape):
    items = key if isinstance(key, tuple) else (key,)
    if any(i is Ellipsis or i is None or (backend.is_array(i) and i.dtype == backend.bool_) for i in items):
        return  # the position of each integer array is not simply its place in the key
    for dim, i in enumerate(items):
        if backend.is_array(i) and i.dtype.kind in "iu" and i.size:
            n = shape[dim]
            lo, hi = int(i.min()), int(i.max())
            if lo < -n or hi >= n:
                raise IndexError(f"index {hi if hi >= n else lo} is out of bounds for dim {dim} with size {n}")


class GetItem(Function):
    """x[index]: basic slices, boolean masks and integer arrays (repeats accumulate in backward)."""

    __slots__ = ("index", "in_shape")
    checks_input_versions = False

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.in_shape = x.shape
        try:
            y = x[self.index]
            if not backend.is_array(y):  # an element: NumPy gives a copy, x[i, …] a 0-d view (as PyTorch's x[i])
                y = x[(self.index if isinstance(self.index, tuple) else (self.index,)) + (Ellipsis,)]
            return y
        except IndexError as e:
            raise IndexError(f"index {self.index!r} into a tensor of shape {tuple(x.shape)}: {e}") from None

    def backward(self, gy, needs_grad):
        return GetItemGrad(self.index, self.in_shape)(gy)

    def into_base(self, base, v):
        """The base after a write through this view: base with base[index] = v."""
        return SetItem(self.index)(base, v)


class GetItemGrad(Function):
    """The adjoint of GetItem: scatter ∂L/∂y into zeros of the input's shape."""

    __slots__ = ("index", "shape")
    checks_input_versions = False

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _has_int_array(self.index):
            xp.add.at(gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx

    def backward(self, ggx, needs_grad):
        return getitem(ggx, self.index)


class SetItem(Function):
    """y = x with y[index] = v (PyTorch's copy-slices): ∂L/∂x = ∂L/∂y with index zeroed, ∂L/∂v = ∂L/∂y[index]
    summed to v's shape (v broadcast into the slot)."""

    __slots__ = ("index", "v_shape")
    checks_input_versions = False

    def __init__(self, index):
        self.index = index

    def forward(self, x, v):
        self.v_shape = getattr(v, "shape", ())
        # a copy, and an array: in a backward x may be a NumPy scalar (NumPy's ufuncs turn 0-d arrays into
        # scalars, which take no item assignment), as is the gradient of a 0-d tensor
        y = get_array_module(x).array(x)
        y[self.index] = v
        return y

    def backward(self, gy, needs_grad):
        nx, nv = needs_grad
        gx = SetItem(self.index)(gy, 0) if nx else None
        gv = sum_to(getitem(gy, self.index), self.v_shape) if nv else None
        return gx, gv


def getitem(x, index):
    """``x[index]`` with gradients."""
    return GetItem(index_key(index, _array(x)))(x)


# --------------------------------------------------------------- copies, moves ---
class ToCopy(Function):
    """A copy on another device and/or in another dtype; the gradient goes back the same way."""

    __slots__ = ("device", "dtype", "in_device", "in_dtype")
    checks_input_versions = False

    def __init__(self, device=None, dtype=None):
        self.device, self.dtype = device, dtype

    def forward(self, x):
        self.in_device, self.in_dtype = backend.array_device(x), x.dtype
        if self.dtype is not None:
            x = x.astype(self.dtype)
        if self.device is not None:
            x = backend.to_device(x, self.device)
        return x if (self.dtype is not None or self.device is not None) else x.copy()

    def backward(self, gy, needs_grad):
        return ToCopy(self.in_device, self.in_dtype)(gy)


def to_copy(x, device=None, dtype=None):
    y = ToCopy(device, dtype)(x)
    if dtype is not None and dtype.kind != "f":  # integer and boolean tensors have no gradient (as PyTorch)
        return y.detach()
    return y


def clone(x):
    """A copy with its own memory that stays in the graph."""
    return ToCopy()(x)


def cast(x, dtype):
    """``x`` in another dtype (differentiable for floating dtypes)."""
    return to_copy(x, None, backend.as_dtype(dtype))


# ------------------------------------------------------- fused probability losses ---
_LOG_FLOOR = -100.0  # PyTorch's clamp of each log in binary_cross_entropy: ỹ = 0 or 1 costs at most 100


class BinaryCrossEntropy(Function):
    """ℓ(ỹ, t) = −[t · max(log ỹ, −100) + (1 − t) · max(log(1 − ỹ), −100)], elementwise, for ỹ in [0, 1].

    ∂ℓ/∂ỹ = (1 − t)/(1 − ỹ) − t/ỹ = (ỹ − t) / (ỹ (1 − ỹ)),   ∂ℓ/∂t = max(log(1 − ỹ), −100) − max(log ỹ, −100),
    where a log clamped at −100 contributes no gradient (its term is a constant there).
    Fused (as PyTorch's is): a composition of where/log/clamp ops makes ~15 passes over
    the batch and keeps their temporaries for the backward; this makes 8 and keeps 1 − ỹ.
    The clamp only holds where ỹ is 0, 1 or within ~e^(−100) of them; on NumPy the forward
    notes whether it held anywhere (a free look at two minima) so that the common backward
    is the short form above; on a GPU that look would be a device sync, so the backward
    always takes the masked form. The masked form also bounds each side's 1/ỹ and 1/(1 − ỹ)
    by 1/tiny (tiny: the dtype's smallest normal number): ∂ℓ/∂ỹ ≈ −1/ỹ does not fit the dtype
    for a subnormal ỹ (float32 σ(x) for x in [−100, −87.3]), where it was ±inf. PyTorch bounds
    ỹ(1 − ỹ) below by 10⁻¹² instead, which is finite too but changes the gradient for every
    ỹ < 10⁻¹² (float64 σ(−30) · its ∂ℓ/∂ỹ came out 0.094 for 1).
    """

    __slots__ = ("q", "clamped")

    def forward(self, p, t):
        xp = get_array_module(p)
        # every array made with out=: NumPy's ufuncs turn 0-d arrays into scalars, which out= does not take
        q = xp.subtract(1, p, out=xp.empty_like(p))
        with backend.np.errstate(divide="ignore"):  # log 0 = −inf is expected: the clamp below takes it
            log_q = log_one_minus(p, q)
            log_p = xp.log(p, out=xp.empty_like(p))
        xp.maximum(log_q, _LOG_FLOOR, out=log_q)
        xp.maximum(log_p, _LOG_FLOOR, out=log_p)
        self.q = q
        if xp is backend.np:  # (the short form divides by ỹ(1 − ỹ): it needs both sides normal numbers)
            near = builtins.max(_LOG_FLOOR, math.log(xp.finfo(p.dtype).tiny)) if p.dtype.kind == "f" else _LOG_FLOOR
            self.clamped = p.size > 0 and (log_p.min() <= near or log_q.min() <= near)
        else:
            self.clamped = True
        # −[t log p + (1 − t) log q]: two terms of one sign, so no cancellation (log q + t (log p − log q) lost
        # log p where t = 1 and ỹ ≈ 1, as log q ≫ log p there: ỹ = 1 − 10⁻⁷ gave 0)
        log_p *= t
        log_q *= 1 - t
        log_p += log_q
        return xp.negative(log_p, out=log_p)

    def backward(self, gy, needs_grad):
        p, t = self.saved()
        np_, ny = needs_grad
        q = self.q if not isinstance(p, Tensor) else 1 - p
        gp = gt = None
        if np_:
            if not self.clamped and not isinstance(p, Tensor):
                gp = p - t
                gp /= p * q
                gp *= gy
            else:
                # each side's term only where its log was not clamped; the division reads 1 elsewhere, and at
                # least tiny (a subnormal ỹ: 1/ỹ would overflow)
                tiny = float(get_array_module(_array(p)).finfo(_array(p).dtype).tiny)
                p_ok = _array(p) > math.exp(_LOG_FLOOR)
                q_ok = _array(q) > math.exp(_LOG_FLOOR)
                gp = gy * (
                    where(q_ok, (1 - t) / where(q_ok, maximum(q, tiny), 1.0), 0.0)
                    - where(p_ok, t / where(p_ok, maximum(p, tiny), 1.0), 0.0)
                )
        if ny:
            gt = gy * (_clamped_log(q) - _clamped_log(p))
        return gp, gt


def log_one_minus(p, q):
    """log(1 − p) for p in [0, 1], given q = fl(1 − p), exact to ~1 ulp also where p is tiny (log q alone is 0
    once 1 − p rounds to 1: then BCE's −log(1 − ỹ) ≈ ỹ was lost).

    log(1 − p) = log q + log(1 − r/q) ≈ log q − r/q, with r = q − (1 − p) = (q − 1) + p, the rounding error of
    q, computed exactly (q − 1 is exact for q ≥ ½ by Sterbenz's lemma; for q < ½, p ≥ ½ and q is exact, r = 0).
    Dividing by max(q, ½) instead of q is the same where r ≠ 0 and avoids 0/0 at p = 1. Five passes of log's
    speed: NumPy's float32 log1p(−p) is ~6× slower than its log.
    """
    xp = get_array_module(p)
    r = xp.subtract(q, 1, out=xp.empty_like(q))
    r += p
    r /= xp.maximum(q, 0.5)
    log_q = xp.log(q, out=xp.empty_like(q))
    log_q -= r
    return log_q


def _clamped_log(x):
    """max(log x, −100), reading x only where the log is above the floor (so no log 0 and no NaN gradient)."""
    ok = _array(x) > math.exp(_LOG_FLOOR)
    return where(ok, log(where(ok, x, 1.0)), _LOG_FLOOR)


def binary_cross_entropy(p, t):
    """The elementwise BCE of probabilities ỹ = p against targets t, each log clamped at −100 (no reduction)."""
    return BinaryCrossEntropy()(p, t)
