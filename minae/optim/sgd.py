"""Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's ``torch.optim.SGD``)."""

from __future__ import annotations

from .. import backend
from ..autograd import Tensor
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

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            momentum = float(group["momentum"])
            dampening = float(group["dampening"])
            weight_decay = float(group["weight_decay"])
            nesterov = group["nesterov"]
            maximize = group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                xp = backend.get_array_module(w)
                g = self._grad(w, p.grad.data, weight_decay, maximize)
                tmp = self._scratch(w, 1)
                if momentum != 0:
                    # BEGIN SOLUTION task 2.5
                    # HINT: b ← a copy of g at the first step, kept as Tensor(b) in self.state[p]["momentum_buffer"]; later b ← μ b + (1 − τ) g in place; then g ← g + μ b (nesterov) or g ← b
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        b = g.copy()
                        state["momentum_buffer"] = Tensor(b)
                    else:
                        b = buf.data
                        b *= momentum
                        if dampening != 0:
                            xp.multiply(g, 1.0 - dampening, out=tmp)
                            b += tmp
                        else:
                            b += g
                    if nesterov:
                        xp.multiply(b, momentum, out=tmp)
                        tmp += g
                        g = tmp
                    else:
                        g = b
                    # END SOLUTION
                xp.multiply(g, lr, out=tmp)
                w -= tmp
                p._bump_version()  # a graph that saved p's old values must not use them (autograd checks)
        return loss
