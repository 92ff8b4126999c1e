"""Adam and AdamW (PyTorch's ``torch.optim.Adam`` and ``torch.optim.AdamW``)."""

from __future__ import annotations

import math

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer


class Adam(Optimizer):
    r"""Adam: steps scaled by running estimates of the gradient's first and second moments.

    With learning rate γ, betas (β₁, β₂), ε and weight decay λ, step t = 1, 2, … does,
    for every parameter θ with a gradient:

        g ← ∇f(θ)                       (g ← −∇f(θ) when ``maximize``)
        g ← g + λ θ                      (if λ ≠ 0; with ``decoupled_weight_decay``
                                          instead θ ← θ (1 − γλ), as in AdamW)
        m ← β₁ m + (1 − β₁) g            (first moment, m₀ = 0)
        v ← β₂ v + (1 − β₂) g²           (second moment, v₀ = 0)
        v̂ ← max(v̂, v)                    (only with ``amsgrad``; v̂₀ = 0; then v̂ replaces v below)
        θ ← θ − γ/(1 − β₁ᵗ) · m / ( √v / √(1 − β₂ᵗ) + ε )

    The two factors 1/(1 − βᵗ) undo the bias of starting the averages at zero.
    ``state[p]`` holds ``step`` (t, an int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and
    with ``amsgrad`` ``max_exp_avg_sq`` (v̂).
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        amsgrad=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            beta1, beta2 = (float(b) for b in group["betas"])
            eps = float(group["eps"])
            weight_decay = float(group["weight_decay"])
            amsgrad = group["amsgrad"]
            maximize = group["maximize"]
            decoupled = group["decoupled_weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                xp = backend.get_array_module(w)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = Tensor(xp.zeros_like(w))
                    state["exp_avg_sq"] = Tensor(xp.zeros_like(w))
                    if amsgrad:
                        state["max_exp_avg_sq"] = Tensor(xp.zeros_like(w))
                state["step"] += 1
                t = state["step"]
                if decoupled:
                    if weight_decay != 0:
                        w *= 1.0 - lr * weight_decay
                    g = self._grad(w, p.grad.data, 0.0, maximize)
                else:
                    g = self._grad(w, p.grad.data, weight_decay, maximize)
                # BEGIN SOLUTION task 2.6
                # HINT: update m and v (state["exp_avg"], state["exp_avg_sq"]) in place; with amsgrad use v̂ = max(v̂, v); then θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
                m = state["exp_avg"].data
                v = state["exp_avg_sq"].data
                tmp = self._scratch(w, 1)
                # m ← β₁ m + (1 − β₁) g
                m *= beta1
                xp.multiply(g, 1.0 - beta1, out=tmp)
                m += tmp
                # v ← β₂ v + (1 − β₂) g²
                v *= beta2
                xp.multiply(g, 1.0 - beta2, out=tmp)
                tmp *= g
                v += tmp
                if amsgrad:
                    v_max = state.get("max_exp_avg_sq")
                    if v_max is None:  # amsgrad switched on after some steps
                        v_max = state["max_exp_avg_sq"] = Tensor(xp.zeros_like(w))
                    v = xp.maximum(v_max.data, v, out=v_max.data)
                # denominator √v / √(1 − β₂ᵗ) + ε, then θ ← θ − γ/(1 − β₁ᵗ) · m / denominator
                xp.sqrt(v, out=tmp)
                tmp /= math.sqrt(1.0 - beta2**t)
                tmp += eps
                xp.divide(m, tmp, out=tmp)
                tmp *= lr / (1.0 - beta1**t)
                w -= tmp
                # END SOLUTION
                p._bump_version()  # a graph that saved p's old values must not use them (autograd checks)
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter): the decay shrinks θ directly.

    Each step first does θ ← θ (1 − γλ) and then Adam's update without the L2 term
    (see ``Adam``): the decay is not divided by √v, so every weight decays at the
    same rate. The default λ is 0.01, as in PyTorch.
    """

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *, maximize=False
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize, decoupled_weight_decay=True)
