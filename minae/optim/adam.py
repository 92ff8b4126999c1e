"""Adam and AdamW (PyTorch's ``torch.optim.Adam`` and ``torch.optim.AdamW``)."""

from __future__ import annotations

import math

from .. import backend
from ..tensor import Tensor
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

    def update(self, w, g, state, group):
        lr, (beta1, beta2), eps = float(group["lr"]), (float(b) for b in group["betas"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        xp = backend.get_array_module(w)
        if not state:
            state["step"] = 0
            state["exp_avg"] = Tensor(xp.zeros_like(w))
            state["exp_avg_sq"] = Tensor(xp.zeros_like(w))
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # also when amsgrad is switched on later
            state["max_exp_avg_sq"] = Tensor(xp.zeros_like(w))
        state["step"] += 1
        t = state["step"]
        if group["decoupled_weight_decay"]:
            if weight_decay:
                w *= 1.0 - lr * weight_decay
            weight_decay = 0.0
        g = self._grad(w, g, weight_decay, group["maximize"])
        m, v = state["exp_avg"].data, state["exp_avg_sq"].data
        v_max = state["max_exp_avg_sq"].data if group["amsgrad"] else None
        # fast path: the same rule on cache-sized pieces, so that each piece's twelve passes run while it is in
        # the cache (tests/test_optim.py checks it against one call on the whole arrays)
        for w_, g_, m_, v_, v_max_ in backend.blocks(w, g, m, v, v_max):
            adam_step(w_, g_, m_, v_, t, lr, beta1, beta2, eps, self._scratch(w_), v_max=v_max_)


def adam_step(w, g, m, v, t, lr, beta1, beta2, eps, tmp, v_max=None):
    """One Adam step t on arrays, in place: the moments m and v updated, then θ = w (the rule of ``Adam``).

    ``tmp`` is a scratch array of w's shape for the products (allocating them costs as much as computing).
    ``v_max`` (v̂, AMSGrad's running maximum of v, PyTorch's option) is None unless ``amsgrad``.
    """
    xp = backend.get_array_module(w)
    # BEGIN SOLUTION task 2.6
    m *= beta1  # m ← β₁ m + (1 − β₁) g
    m += xp.multiply(g, 1.0 - beta1, out=tmp)
    v *= beta2  # v ← β₂ v + (1 − β₂) g²
    xp.multiply(g, 1.0 - beta2, out=tmp)
    v += xp.multiply(tmp, g, out=tmp)
    # END SOLUTION
    if v_max is not None:  # AMSGrad: v̂ ← max(v̂, v) takes v's place in the step (not part of the homework)
        v = xp.maximum(v_max, v, out=v_max)
    # BEGIN SOLUTION task 2.6
    # θ ← θ − γ/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε), the corrections moved into the two scalars:
    c2 = math.sqrt(1.0 - beta2**t)  # θ ← θ − γ c₂/(1 − β₁ᵗ) · m / (√v + ε c₂), one pass fewer
    denom = xp.sqrt(v, out=tmp)
    denom += eps * c2
    step = xp.divide(m, denom, out=tmp)
    step *= lr * c2 / (1.0 - beta1**t)
    w -= step
    # END SOLUTION


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
