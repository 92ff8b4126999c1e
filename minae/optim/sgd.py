"""Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's ``torch.optim.SGD``)."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer


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
        if momentum != 0:
            # BEGIN SOLUTION task 2.5
            if "momentum_buffer" in state:
                b = state["momentum_buffer"].data
                b *= momentum  # b ← μ b + (1 − τ) g
                b += xp.multiply(g, 1.0 - dampening, out=tmp)
            else:
                b = g.copy()  # b ← g at the first step (a copy: g may be the parameter's .grad)
                state["momentum_buffer"] = Tensor(b)
            g = xp.add(g, xp.multiply(b, momentum, out=tmp), out=tmp) if group["nesterov"] else b
            # END SOLUTION
        w -= xp.multiply(g, lr, out=tmp)  # θ ← θ − γ g
