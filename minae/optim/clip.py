"""Gradient clipping (PyTorch's ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``)."""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _params(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


def _grads(parameters):
    return [p.grad.data for p in _params(parameters) if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    r"""Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm treats the gradients as one long vector,
    ‖g‖_p = (Σ_params ‖g_i‖_p^p)^{1/p} (the largest |g| for p = inf), and every
    gradient is multiplied in place by min(1, max_norm / (‖g‖_p + 1e-6)).
    Returns the total norm before clipping, as a 0-d tensor on the gradients' device
    (a zero on the parameters' device when none has a gradient).
    Parameters without a gradient are skipped.
    """
    parameters = _params(parameters)
    grads = _grads(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not grads:  # a zero on the parameters' device, where the caller will use it
        dev = parameters[0].device if parameters else backend.default_device()
        with backend.on(dev):
            return Tensor(dev.xp.zeros((), backend.get_default_dtype()))
    with backend.on_device_of(grads):  # raw arrays: CuPy computes on the current GPU, which must be theirs
        return _clip_by_norm(grads, max_norm, norm_type, error_if_nonfinite)


def _clip_by_norm(grads, max_norm, norm_type, error_if_nonfinite):
    """clip_grad_norm_ on the raw gradients (of one device, the current one)."""
    xp = backend.get_array_module(grads[0])
    if norm_type == math.inf:
        norms = [xp.abs(g).max() if g.size else xp.zeros((), g.dtype) for g in grads]
        total = xp.stack(norms).max()
    elif norm_type == 2.0:
        # vdot is one BLAS pass with no temporary
        total = xp.sqrt(xp.stack([xp.vdot(g.ravel(), g.ravel()) for g in grads]).sum())
    else:
        sums = [(xp.abs(g) ** norm_type).sum() for g in grads]
        total = xp.stack(sums).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({float(total)}), so it cannot be "
            "clipped; pass error_if_nonfinite=False to skip this check"
        )
    coef = max_norm / (total + 1e-6)
    if xp is backend.np:
        if coef < 1.0:  # on the host the test is free; on a GPU multiplying by min(coef, 1) avoids a sync
            for g in grads:
                g *= coef.astype(g.dtype)
    else:
        coef = xp.minimum(coef, 1.0)
        for g in grads:
            g *= coef.astype(g.dtype)
    return Tensor(xp.asarray(total))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into [−clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        with backend.on_device_of((g,)):  # CuPy computes on the current GPU, which need not be g's
            backend.get_array_module(g).clip(g, -clip_value, clip_value, out=g)
