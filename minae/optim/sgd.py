"""Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's ``torch.optim.SGD``)."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer

__all__ = ["SGD", "sgd_momentum_step"]


class SGD(Optimizer):
    r"""Gradient descent, optionally with momentum (PyTorch's rule and defaults).

    With learning rate γ, momentum μ, dampening τ and weight decay λ, each step does,
    for every parameter θ with a gradient ∇f(θ):

        g ← ∇f(θ)                      (g ← −∇f(θ) when ``maximize``)
        g ← g + λ θ                     (if λ ≠ 0: the gradient of the penalty ½λ‖θ‖²)
        b ← g  at the first step,  b ← μ b + (1 − τ) g  afterwards      (if μ ≠ 0)
        g ← g + μ b  (``nesterov``)   or   g ← b                          (if μ ≠ 0)
        θ ← θ − γ g

    PyTorch's form of momentum: b accumulates gradients and γ scales the step
    (not ``v ← μ v + γ g; θ ← θ − v``, which differs once γ changes). ``maximize``
    negates the gradient before the weight decay, as PyTorch's implementation does,
    so the decay still shrinks θ. ``state[p]["momentum_buffer"]`` holds b.

    The rule with momentum alone (τ = 0, no Nesterov) is ``sgd_momentum_step``, a
    plain function on arrays; the options beyond it (dampening, Nesterov) are PyTorch's.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *, maximize=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def update(self, w, g, state, group):
        lr, momentum, dampening = float(group["lr"]), float(group["momentum"]), float(group["dampening"])
        xp = backend.get_array_module(w)
        g = self._grad(w, g, float(group["weight_decay"]), group["maximize"])
        tmp = self._scratch(w)  # one reused buffer for the products (see bench/overhead.py's MLP step)
        if momentum == 0:
            w -= xp.multiply(g, lr, out=tmp)  # θ ← θ − γ g
            return
        old = state["momentum_buffer"].data if "momentum_buffer" in state else None
        if dampening == 0 and not group["nesterov"]:
            b = sgd_momentum_step(w, g, old, lr, momentum, tmp)  # the lecture's rule
        else:
            b = _momentum_with_options(w, g, old, lr, momentum, dampening, group["nesterov"], tmp)
        if b is not old:
            state["momentum_buffer"] = Tensor(b)


def sgd_momentum_step(w, g, b, lr, momentum, tmp=None):
    """One step of SGD with momentum on arrays (PyTorch's rule), θ = w changed in place; returns the new b.

    b ← g at the first step (``b`` is None), b ← μ b + g afterwards; then θ ← θ − γ b. The optimizer keeps
    the returned b (``state["momentum_buffer"]``) and hands it back at the next step; ``g`` is the
    parameter's ``.grad``, which the caller may reuse and overwrite after the step. ``tmp``, when given, is a
    scratch array of w's shape for the products.
    """
    xp = backend.get_array_module(w)
    # BEGIN SOLUTION task 2.5
    if b is None:
        b = g.copy()  # a buffer of its own: g is the .grad array, which zero_grad() and backward reuse
    else:
        b *= momentum
        b += g
    w -= xp.multiply(b, lr, out=tmp)
    return b
    # END SOLUTION


def _momentum_with_options(w, g, b, lr, momentum, dampening, nesterov, tmp):
    """PyTorch's options beyond the lecture, on top of ``sgd_momentum_step`` (not part of the homework).

    Dampening τ: after the first step the buffer takes in (1 − τ) g instead of g. Nesterov's look-ahead (τ = 0):
    the step is γ (g + μ b) instead of γ b, so γ (g + (μ − 1) b) more than ``sgd_momentum_step`` took.
    """
    if b is not None and dampening != 0:
        g = g * (1.0 - dampening)
    b = sgd_momentum_step(w, g, b, lr, momentum, tmp)
    if nesterov:
        w -= lr * (g + (momentum - 1.0) * b)
    return b
