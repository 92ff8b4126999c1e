"""Activations, losses and penalties as functions (``import minae.nn.functional as F``).

Notation of the lecture: y the input (an observation), h = f(W y + b) the code,
ỹ the reconstruction, μ and v the mean and variance of the code's Gaussian, z a
latent, E an energy, β an inverse temperature. Shapes put the batch first: N.

Every loss takes ``reduction``, with PyTorch's meaning where PyTorch has the same
function: ``"none"`` keeps one value per element (or per sample), ``"sum"`` adds
them, ``"mean"`` averages them. The penalties (``l1_penalty``, ``gaussian_kl``,
``contractive_penalty``, ``jacobian_penalty``) are sums over a sample's code
units, so for them ``"none"`` gives one value per sample, shape (N,), and
``"mean"`` the average over the batch.

All are compositions of minae's differentiable ops, so they can be
differentiated twice (a penalty on a gradient, like ``jacobian_penalty``).
"""

from __future__ import annotations

import math
import numbers

from .. import backend
from .. import ops as _ops
from ..autograd import grad as _grad
from ..backend import get_array_module, np
from ..grad_mode import GradMode
from ..tensor import Tensor

__all__ = [
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "softplus",
    "logsigmoid",
    "dropout",
    "log_softmax",
    "softmax",
    "mse_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_penalty",
    "gaussian_kl",
    "contractive_penalty",
    "jacobian_penalty",
    "softmin_free_energy",
]

_REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ helpers ---
def _check_tensor(fn, name, x, floating=True):
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {name} must be a minae Tensor, got {type(x).__name__}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be a floating-point tensor, got dtype {x.dtype}")


def _check_reduction(fn, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(fn, input, target, target_name="target"):
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(
            f"{fn}: input has shape {tuple(input.shape)} but {target_name} has shape {tuple(target.shape)}; "
            "they must be equal"
        )


def _check_broadcast(fn, name, t, shape, other="input"):
    try:
        out = np.broadcast_shapes(tuple(t.shape), tuple(shape))
    except ValueError:
        out = None
    if out != tuple(shape):
        raise ValueError(
            f"{fn}: {name} of shape {tuple(t.shape)} does not broadcast to the {other}'s shape {tuple(shape)}"
        )


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _per_sample(t):
    """Σ over every dimension but the first (the batch): (N, …) -> (N,)."""
    if t.ndim <= 1:
        return t
    return _ops.sum(t, tuple(range(1, t.ndim)))


# --------------------------------------------------------------- layers ---
def linear(input, weight, bias=None):
    """The affine map y Wᵀ + b.

    input (…, in_features), weight (out_features, in_features), bias
    (out_features,) or None  ->  (…, out_features).
    """
    _check_tensor("linear", "input", input)
    _check_tensor("linear", "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must have shape (out_features, in_features), got {tuple(weight.shape)}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {tuple(input.shape)} does not fit weight of shape {tuple(weight.shape)}: "
            f"the input's last dimension must be in_features = {weight.shape[1]}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return _ops.linear(input, weight, bias)


def relu(input):
    """max(x, 0) elementwise."""
    return _ops.relu(input)


def sigmoid(input):
    """σ(x) = 1 / (1 + e^(−x)) elementwise; finite for any x."""
    return _ops.sigmoid(input)


def tanh(input):
    """tanh(x) elementwise."""
    return _ops.tanh(input)


def leaky_relu(input, negative_slope: float = 0.01):
    """x for x > 0, negative_slope · x otherwise."""
    return _ops.leaky_relu(input, negative_slope)


def softplus(input, beta: float = 1.0, threshold: float = 20.0):
    """(1/β) log(1 + e^(βx)), a smooth ReLU, computed as max(βx, 0) + log(1 + e^(−|βx|)) over β.

    That form is exact and finite for every x, so ``threshold`` (where PyTorch
    switches to the identity, a difference below e^(−threshold)) is accepted
    for compatibility and not needed.
    """
    if beta == 1:
        return _ops.softplus(input)
    return _ops.softplus(input * beta) * (1.0 / beta)


def logsigmoid(input):
    """log σ(x) = −softplus(−x) = min(x, 0) − log(1 + e^(−|x|)); its gradient is σ(−x) = 1 − σ(x).

    The log of a computed σ(x) is not the same: σ(x) underflows to 0 below x ≈ −104 in float32 (log 0 = −inf),
    and rounds to 1 above x ≈ 17 (log 1 = 0, every digit of the true −e^(−x) lost). This form is finite and
    exact to a few ulp for every x.
    """
    _check_tensor("logsigmoid", "input", input)
    return -_ops.softplus(-input)


def dropout(input, p: float = 0.5, training: bool = True):
    """Inverted dropout: each element is kept with probability 1 − p and scaled by 1/(1 − p), else zeroed.

    The expected value of every element is unchanged, so evaluation
    (``training=False``) is the identity. The mask is drawn on the input's
    device, in its dtype, from minae's generator.
    """
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    with backend.on(input.device):  # raw arrays: CuPy computes on the current GPU, which must be input's
        keep = backend.random_uniform(input.shape, input.dtype, input.device) >= p
        mask = keep.astype(input.dtype)
        mask *= 1.0 / (1.0 - p)
    return input * Tensor(mask)  # a tensor, not a raw array: the graph keeps it without a copy


def log_softmax(input, dim: int = -1):
    """log softmax(x)_i = x_i − log Σ_k e^(x_k) along ``dim``, without overflow."""
    return input - _ops.logsumexp(input, dim, keepdim=True)


def softmax(input, dim: int = -1):
    """softmax(x)_i = e^(x_i) / Σ_k e^(x_k) along ``dim``, as exp(log_softmax): no overflow."""
    return _ops.exp(log_softmax(input, dim))


# ----------------------------------------------------------------- losses ---
def mse_loss(input, target, reduction: str = "mean"):
    """Squared error (ỹ − y)², elementwise; ``reduction="sum"`` gives the lecture's C = ‖y − ỹ‖².

    input ỹ and target y: the same shape (PyTorch broadcasts with a warning; this
    raises, as a different shape is almost always a bug).
    """
    _check_tensor("mse_loss", "input", input)
    _check_tensor("mse_loss", "target", target)
    _check_reduction("mse_loss", reduction)
    _check_same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction)


def _check_unit_interval(fn, name, x, hint=""):
    """Reject values outside [0, 1], reading them back only where that is cheap.

    On NumPy a min and a max cost two passes, small beside the loss. On a GPU they would
    be a device-to-host sync on every call, so there the check runs only under
    ``minae.detect_anomaly()``.
    """
    a = x.data
    if not a.size or (get_array_module(a) is not np and not GradMode.anomaly):
        return
    with backend.on_device_of((a,)):  # CuPy reduces on the current GPU, which need not be a's
        lo, hi = float(a.min()), float(a.max())
    if not (0.0 <= lo and hi <= 1.0):  # written so that NaN fails too
        raise ValueError(f"{fn}: {name} must hold probabilities in [0, 1], got values from {lo:.4g} to {hi:.4g}{hint}")


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """−[y log ỹ + (1 − y) log(1 − ỹ)] elementwise, for probabilities ỹ in [0, 1].

    input ỹ (probabilities, e.g. a sigmoid's output) and target y in [0, 1]: the same
    shape; weight: broadcastable to it (a rescaling of each element). Each log is
    clamped at −100 as in PyTorch, so ỹ = 0 or 1 gives a finite loss (and a zero
    gradient where the clamp holds). One fused op with its own backward
    (∂ℓ/∂ỹ = (ỹ − y) / (ỹ (1 − ỹ))). For logits use
    ``binary_cross_entropy_with_logits``: it is exact where this one clamps.
    Values of ỹ or y outside [0, 1] raise a ValueError, as in PyTorch; on a GPU this
    check needs a device sync, so it runs there only under ``minae.detect_anomaly()``.
    """
    fn = "binary_cross_entropy"
    _check_tensor(fn, "input", input)
    _check_tensor(fn, "target", target)
    _check_reduction(fn, reduction)
    _check_same_shape(fn, input, target)
    if target.dtype != input.dtype:  # as PyTorch: a float64 or integer target would change the loss's dtype
        raise TypeError(f"{fn}: input has dtype {input.dtype} but target has dtype {target.dtype}; they must be equal")
    _check_unit_interval(fn, "input", input, " (for logits, use binary_cross_entropy_with_logits)")
    _check_unit_interval(fn, "target", target)
    loss = _ops.binary_cross_entropy(input, target)
    if weight is not None:
        _check_broadcast(fn, "weight", weight, input.shape)
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean", pos_weight=None):
    """Binary cross-entropy of σ(x) against y, from the logits x, without ever forming σ(x):

        ℓ = −[y log σ(x) + (1 − y) log(1 − σ(x))]

    # BEGIN FORMULA task 2.2
    = max(x, 0) − x·y + log(1 + e^(−|x|)),
    exact and finite for any x (the last term is softplus(x) − max(x, 0)).
    With ``pos_weight`` p (broadcast over the last dimension, one per class) the
    positive term is weighted: ℓ = (1 − y)·softplus(x) + p·y·softplus(−x) (each term ≥ 0: no cancellation).
    # END FORMULA
    With ``pos_weight`` p (one per class, broadcast over the last dimension) the positive term is weighted.
    input x and target y: the same shape; weight: broadcastable to it.
    """
    fn = "binary_cross_entropy_with_logits"
    _check_tensor(fn, "input", input)
    _check_tensor(fn, "target", target)
    _check_reduction(fn, reduction)
    _check_same_shape(fn, input, target)
    if pos_weight is None:
        loss = _ops.binary_cross_entropy_with_logits(input, target)
    else:
        _check_broadcast(fn, "pos_weight", pos_weight, input.shape)
        loss = (1 - target) * _ops.softplus(input) + pos_weight * target * _ops.softplus(-input)
    if weight is not None:
        _check_broadcast(fn, "weight", weight, input.shape)
        loss = loss * weight
    return _reduce(loss, reduction)


def cross_entropy(input, target, reduction: str = "mean"):
    """−log softmax(x)_c for logits x and class label c (PyTorch's cross_entropy).

    input: logits (N, C); target: int64 labels (N,) in 0 … C−1, or class
    probabilities (N, C) (then ℓ = −Σ_c y_c log softmax(x)_c). A label out of
    range raises an IndexError; on a GPU, where looking would wait for the device,
    it does so only under ``minae.detect_anomaly()`` and otherwise makes that
    sample's loss NaN (which ``fit`` stops on).
    "none" gives shape (N,); "mean" averages over the batch.
    """
    fn = "cross_entropy"
    _check_tensor(fn, "input", input)
    _check_tensor(fn, "target", target, floating=False)
    _check_reduction(fn, reduction)
    if input.ndim != 2:
        raise ValueError(f"{fn}: input must be logits of shape (N, C), got shape {tuple(input.shape)}")
    n, c = input.shape
    logp = log_softmax(input, dim=1)
    if target.dtype.kind in "iu":
        if tuple(target.shape) != (n,):
            raise ValueError(
                f"{fn}: labels must have shape ({n},) for input of shape {(n, c)}, got {tuple(target.shape)}"
            )
        labels = target.data
        xp = get_array_module(labels)
        with backend.on(target.device):  # raw arrays: CuPy computes on the current GPU, which must be the labels'
            if n and (xp is np or GradMode.anomaly):
                lo, hi = int(labels.min()), int(labels.max())
                if lo < 0 or hi >= c:
                    bad = lo if lo < 0 else hi
                    raise IndexError(f"{fn}: label {bad} is out of range for {c} classes (0 … {c - 1})")
                loss = -logp[xp.arange(n), labels]
            else:  # on a GPU the check would wait for the device: a bad label gives a NaN loss instead
                bad = (labels < 0) | (labels >= c)
                loss = _ops.where(bad, math.nan, -logp[xp.arange(n), xp.clip(labels, 0, max(c - 1, 0))])
    elif target.dtype.kind == "f" and tuple(target.shape) == (n, c):
        loss = -_ops.sum(target * logp, dim=1)
    else:
        raise TypeError(
            f"{fn}: target must be integer class labels (int64) of shape ({n},) or class probabilities of shape "
            f"{(n, c)}, got dtype {target.dtype} and shape {tuple(target.shape)}"
        )
    return _reduce(loss, reduction)


# -------------------------------------------------------------- penalties ---
def l1_penalty(h, reduction: str = "mean"):
    """R(h) = Σ_j |h_j| per sample: the sparsity penalty on a code.

    h: (N, …) -> "none": (N,), summed over everything but the batch dimension;
    "mean": the batch average; "sum": the total.
    """
    _check_tensor("l1_penalty", "h", h)
    _check_reduction("l1_penalty", reduction)
    return _reduce(_per_sample(_ops.abs(h)), reduction)


def gaussian_kl(mu, logvar=None, var=None, reduction: str = "mean"):
    """KL(N(μ, v) ‖ N(0, I)) of a diagonal Gaussian from the standard one, summed over the latent dimension.

    # BEGIN FORMULA task 2.3
    KL = ½ Σ_i (v_i − log v_i − 1 + μ_i²).
    # END FORMULA

    Give exactly one of ``logvar`` (log v, what a VAE's encoder usually outputs)
    or ``var`` (v > 0). With logvar the terms are e^(log v) − log v, computed
    directly: finite, with a finite gradient, for |log v| up to 80 in float32.
    mu: (N, d); logvar or var: broadcastable to it (e.g. (d,), one variance
    shared by the batch) -> "none": (N,); "mean": the batch average; "sum": the total.
    """
    fn = "gaussian_kl"
    if (logvar is None) == (var is None):
        raise ValueError(f"{fn}: give exactly one of logvar and var")
    _check_tensor(fn, "mu", mu)
    _check_reduction(fn, reduction)
    name, s = ("logvar", logvar) if logvar is not None else ("var", var)
    _check_tensor(fn, name, s)
    try:
        np.broadcast_shapes(tuple(mu.shape), tuple(s.shape))
    except ValueError:
        raise ValueError(
            f"{fn}: mu of shape {tuple(mu.shape)} and {name} of shape {tuple(s.shape)} do not broadcast"
        ) from None
    # BEGIN SOLUTION task 2.3
    if logvar is not None:
        terms = _ops.exp(logvar) - logvar - 1 + mu * mu
    else:
        terms = var - _ops.log(var) - 1 + mu * mu
    return _reduce(_per_sample(terms) * 0.5, reduction)
    # END SOLUTION


def contractive_penalty(h, weight, activation: str = "sigmoid", reduction: str = "mean"):
    """‖∂h/∂y‖²_F of the one-layer encoder h = f(W y + b), in closed form, per sample.

    f' is read off h (sigmoid: f' = h(1 − h); tanh: f' = 1 − h²).
    # BEGIN FORMULA task 2.4
    ∂h_j/∂y_i = f'(a_j) W_ji with a = W y + b, so
        sigmoid: Σ_j (h_j(1 − h_j))² Σ_i W_ji²
        tanh:    Σ_j (1 − h_j²)² Σ_i W_ji²
    # END FORMULA
    h: (N, d_h) codes (or any (…, d_h)); weight W: (d_h, d_y) -> "none": (N,).
    Differentiable in W directly and in W, b (and y) through h.
    """
    fn = "contractive_penalty"
    _check_tensor(fn, "h", h)
    _check_tensor(fn, "weight", weight)
    _check_reduction(fn, reduction)
    if weight.ndim != 2 or h.ndim == 0 or h.shape[-1] != weight.shape[0]:
        raise ValueError(
            f"{fn}: h of shape {tuple(h.shape)} does not fit weight of shape {tuple(weight.shape)}: "
            "expected h (N, d_h) and weight (d_h, d_y)"
        )
    if activation == "sigmoid":
        slope = h * (1 - h)
    elif activation == "tanh":
        slope = 1 - h * h
    else:
        raise ValueError(f"{fn}: activation must be 'sigmoid' or 'tanh', got {activation!r}")
    # BEGIN SOLUTION task 2.4
    row_norms = _ops.sum(weight * weight, dim=1)  # Σ_i W_ji², shape (d_h,)
    return _reduce(_ops.sum(slope * slope * row_norms, dim=-1), reduction)
    # END SOLUTION


def jacobian_penalty(encoder, y, reduction: str = "mean", create_graph: bool = True):
    """‖∂h/∂y‖²_F = Σ_j Σ_i (∂h_j/∂y_i)² per sample, for any differentiable encoder h = Enc(y), exactly.

    One backward pass per code unit j: the gradient of Σ_n h_nj with respect to
    y gives row j of every sample's Jacobian at once, because the encoder treats
    the samples of the batch independently (no batch statistics; Dropout in
    training mode would make the encoder random). With ``create_graph=True``
    the result is differentiable in the encoder's parameters (double backprop),
    so it can be added to a loss and trained on.
    y: (N, …) -> h: (N, …) -> "none": (N,); "mean": the batch average.
    """
    fn = "jacobian_penalty"
    _check_tensor(fn, "y", y)
    _check_reduction(fn, reduction)
    if y.ndim == 0:
        raise ValueError(f"{fn}: y must be a batch of shape (N, …), got a 0-d tensor")
    x = y if y.requires_grad else y.detach().requires_grad_()
    h = encoder(x)
    if not isinstance(h, Tensor) or h.ndim == 0 or h.shape[0] != y.shape[0]:
        shape = tuple(h.shape) if isinstance(h, Tensor) else type(h).__name__
        raise ValueError(f"{fn}: the encoder must map a batch y of shape {tuple(y.shape)} to codes (N, …), got {shape}")
    total = None
    if h.requires_grad:
        xp = get_array_module(h.data)
        for unit in np.ndindex(*h.shape[1:]):
            with backend.on(h.device):  # CuPy allocates and writes on the current GPU, which need not be h's
                select = xp.zeros_like(h.data)
                select[(slice(None),) + unit] = 1  # grad_outputs picking h_j in every sample
            # BEGIN SOLUTION task 3.7
            (g,) = _grad(
                h, x, grad_outputs=Tensor(select), retain_graph=True, create_graph=create_graph, allow_unused=True
            )
            if g is None:
                continue
            sq = _per_sample(g * g)
            total = sq if total is None else total + sq
            # END SOLUTION
    if total is None:  # the code does not depend on y
        with backend.on(y.device):
            total = Tensor(get_array_module(y.data).zeros(y.shape[0], dtype=y.dtype))
    return _reduce(total, reduction)


def softmin_free_energy(energies, beta, dim: int = -1, reduction: str = "none"):
    """F_β = −(1/β) log( (1/n) Σ_z e^(−β E(z)) ) over the n values of ``dim``: the lecture's softmin_β.

    # BEGIN FORMULA task 3.1
    Computed as −(1/β)(logsumexp(−β E) − log n), finite for any β and energy.
    # END FORMULA
    β = ∞ gives the zero-temperature limit F_∞ = min_z E(z); β = 0 the other
    limit, the mean energy. F_β lies between the two and decreases with β.
    energies: (…, n, …) -> "none": the shape with ``dim`` removed;
    "mean"/"sum" over what remains.
    """
    fn = "softmin_free_energy"
    _check_tensor(fn, "energies", energies)
    _check_reduction(fn, reduction)
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not beta >= 0:
        raise ValueError(f"{fn}: beta must be a number ≥ 0 (or float('inf')), got {beta!r}")
    beta = float(beta)
    if not -energies.ndim <= dim < energies.ndim:
        raise IndexError(f"{fn}: dim {dim} is out of range for energies of shape {tuple(energies.shape)}")
    # BEGIN SOLUTION task 3.1
    if math.isinf(beta):
        free = _ops.min(energies, dim).values
    elif beta == 0.0:
        free = _ops.mean(energies, dim)
    else:
        free = (_ops.logsumexp(energies * -beta, dim) - math.log(energies.shape[dim])) * (-1.0 / beta)
    # END SOLUTION
    return _reduce(free, reduction)
