"""RMSprop (PyTorch's ``torch.optim.RMSprop``)."""

from __future__ import annotations

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer
from .sgd import sgd_momentum_step


class RMSprop(Optimizer):
    r"""RMSprop: divide the gradient by a running root mean square of recent gradients.

    With learning rate γ, smoothing α, ε, weight decay λ and momentum μ, each step does,
    for every parameter θ with a gradient:

        g ← ∇f(θ)                       (g ← −∇f(θ) when ``maximize``)
        g ← g + λ θ                      (if λ ≠ 0)
        v ← α v + (1 − α) g²             (v₀ = 0)
        ḡ ← α ḡ + (1 − α) g,   ṽ ← v − ḡ²  (only if ``centered``: a variance estimate; else ṽ = v)
        b ← μ b + g / (√ṽ + ε),  θ ← θ − γ b     (if μ > 0, b₀ = 0)
        θ ← θ − γ g / (√ṽ + ε)                  (if μ = 0)

    ``state[p]`` holds ``step``, ``square_avg`` (v), and ``momentum_buffer`` (b) if
    μ > 0 and ``grad_avg`` (ḡ) if centered.
    """

    def __init__(
        self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, *, maximize=False
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def update(self, w, g, state, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, centered = float(group["momentum"]), group["centered"]
        xp = backend.get_array_module(w)
        if not state:
            state["step"] = 0
            state["square_avg"] = Tensor(xp.zeros_like(w))
        # a buffer whose option was switched on after some steps starts at zero then
        if momentum > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = Tensor(xp.zeros_like(w))
        if centered and "grad_avg" not in state:
            state["grad_avg"] = Tensor(xp.zeros_like(w))
        state["step"] += 1
        g = self._grad(w, g, float(group["weight_decay"]), group["maximize"])
        v = state["square_avg"].data
        v *= alpha  # v ← α v + (1 − α) g²
        v += (1.0 - alpha) * g * g
        if centered:
            g_avg = state["grad_avg"].data
            g_avg *= alpha  # ḡ ← α ḡ + (1 − α) g
            g_avg += (1.0 - alpha) * g
            denom = xp.sqrt(v - g_avg * g_avg)  # √(v − ḡ²) + ε
        else:
            denom = xp.sqrt(v)  # √v + ε
        denom += eps
        if momentum > 0:  # SGD's momentum on the scaled gradient g / denominator (the buffer starts at 0)
            sgd_momentum_step(w, g / denom, state["momentum_buffer"].data, lr, momentum)
        else:
            w -= lr * g / denom  # θ ← θ − γ g / denominator
