"""Finite-difference gradient checks, first and second order.

For a function f of tensors, pick a fixed random weighting v of its outputs and
compare, for every element x_i of every input that requires grad,

    analytic  ∂L/∂x_i   from backward, where L = Σ v · f(x)
    numeric   [L(x + ε e_i) − L(x − ε e_i)] / 2ε      (central differences)

in float64. A random v tests every output at once: a wrong Jacobian entry
would have to be cancelled exactly by another for the check to pass.
"""

from __future__ import annotations

from . import backend
from .autograd import grad
from .backend import np
from .tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and the numeric gradient disagree."""


def _as_tuple(x):
    if isinstance(x, (tuple, list)):
        return tuple(x)
    return (x,)  # one Tensor (or a wrong output, which _outputs then names)


def _prepare(inputs):
    """float64 leaf copies of the inputs that require grad; the others pass unchanged."""
    prepared, checked = [], []
    for i, x in enumerate(_as_tuple(inputs)):
        if isinstance(x, Tensor) and x.requires_grad:
            if x.dtype.kind != "f":
                raise TypeError(f"gradcheck: input {i} requires grad but has dtype {x.dtype}")
            with backend.on(x.device):  # CuPy's astype runs on the current GPU, which need not be x's
                x = Tensor(x.data.astype(backend.float64), requires_grad=True)
            checked.append(i)
        prepared.append(x)
    if not checked:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    return prepared, checked


def _outputs(fn, xs):
    out = fn(*xs)
    outs = _as_tuple(out)
    for k, y in enumerate(outs):
        if y is not None and not isinstance(y, Tensor):
            raise TypeError(f"gradcheck: output {k} of {_name(fn)} is a {type(y).__name__}, not a Tensor")
    return outs


def _zeros_like(t):
    with backend.on(t.device):  # CuPy allocates on the current GPU, which need not be t's
        return Tensor(backend.get_array_module(t.data).zeros_like(t.data))


def _name(fn):
    return getattr(fn, "__name__", type(fn).__name__)


def _weighted_sum(outs, weights) -> float:
    total = 0.0
    for y, v in zip(outs, weights):
        if y is not None:
            total += float((backend.to_numpy(y.data).astype(np.float64) * v).sum())
    return total


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check fn's backward against central finite differences, in float64.

    fn: takes the inputs, returns a Tensor or a tuple of Tensors.
    inputs: a Tensor or a sequence; those with requires_grad=True are checked
    (as float64 copies), the others are passed unchanged.
    Returns True; otherwise raises GradcheckError naming the input, the worst
    element's index and both values (or returns False if raise_exception=False).
    """
    xs, checked = _prepare(inputs)
    outs = _outputs(fn, xs)
    rng = np.random.default_rng(seed)
    weights = [None if y is None else rng.standard_normal(y.shape) for y in outs]

    roots = [(y, v) for y, v in zip(outs, weights) if y is not None and y.requires_grad]
    analytic = [None] * len(checked)
    if roots:
        gs = grad(
            [y for y, _ in roots],
            [xs[i] for i in checked],
            grad_outputs=[Tensor(backend.to_device(v.astype(y.dtype), y.device)) for y, v in roots],
            allow_unused=True,
        )
        analytic = [None if g is None else backend.to_numpy(g.data) for g in gs]

    for slot, i in enumerate(checked):
        x = xs[i]
        host = backend.to_numpy(x.data).copy()
        numeric = np.zeros(host.shape)
        # graph recording stays on: fn may itself differentiate (gradgradcheck)
        for idx in np.ndindex(*host.shape):
            orig = host[idx]
            host[idx] = orig + eps
            # copied on the host: CuPy's copy() would put it on the current GPU, which need not be x's
            x.data = backend.to_device(host.copy(), x.device)
            plus = _weighted_sum(_outputs(fn, xs), weights)
            host[idx] = orig - eps
            x.data = backend.to_device(host.copy(), x.device)
            minus = _weighted_sum(_outputs(fn, xs), weights)
            host[idx] = orig
            numeric[idx] = (plus - minus) / (2 * eps)
        x.data = backend.to_device(host, x.device)
        a = np.zeros(host.shape) if analytic[slot] is None else analytic[slot].astype(np.float64)
        if a.shape != numeric.shape:
            raise GradcheckError(f"gradcheck: the gradient of input {i} has shape {a.shape}, expected {numeric.shape}")
        err = np.abs(a - numeric) - (atol + rtol * np.abs(numeric))
        finite = np.isfinite(a) & np.isfinite(numeric)  # NaN compares False: it must fail, not pass
        if err.size and (not finite.all() or err.max() > 0):
            bad = np.unravel_index(np.argmax(np.where(finite, err, np.inf)), err.shape)
            if not raise_exception:
                return False
            raise GradcheckError(
                f"gradcheck failed for {_name(fn)}: input {i} (shape {tuple(host.shape)}), element "
                f"{tuple(int(b) for b in bad)}: "
                f"backward gives {a[bad]:.6g}, finite differences give {numeric[bad]:.6g} "
                f"(difference {abs(a[bad] - numeric[bad]):.3g}, allowed {atol + rtol * abs(numeric[bad]):.3g})"
            )
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Check second derivatives: gradcheck applied to x ↦ ∂(Σ v·fn(x))/∂x built with create_graph=True."""
    xs, checked = _prepare(inputs)
    rng = np.random.default_rng(seed + 1)
    probe = _outputs(fn, xs)
    weights = [None if y is None else rng.standard_normal(y.shape) for y in probe]

    def first_derivative(*args):
        outs = _outputs(fn, args)
        roots = [(y, v) for y, v in zip(outs, weights) if y is not None and y.requires_grad]
        targets = [args[i] for i in checked]
        if not roots:
            return tuple(_zeros_like(t) for t in targets)
        gs = grad(
            [y for y, _ in roots],
            targets,
            grad_outputs=[Tensor(backend.to_device(v.astype(y.dtype), y.device)) for y, v in roots],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(_zeros_like(t) if g is None else g for g, t in zip(gs, targets))

    first_derivative.__name__ = f"grad of {_name(fn)}"
    return gradcheck(first_derivative, xs, eps, atol, rtol, raise_exception, seed)
