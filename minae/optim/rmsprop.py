"""RMSprop (PyTorch's ``torch.optim.RMSprop``)."""

from __future__ import annotations

from .. import backend
from ..autograd import Tensor
from .optimizer import Optimizer


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

    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr = float(group["lr"])
            alpha = float(group["alpha"])
            eps = float(group["eps"])
            weight_decay = float(group["weight_decay"])
            momentum = float(group["momentum"])
            centered = group["centered"]
            maximize = group["maximize"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                xp = backend.get_array_module(w)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = Tensor(xp.zeros_like(w))
                    if momentum > 0:
                        state["momentum_buffer"] = Tensor(xp.zeros_like(w))
                    if centered:
                        state["grad_avg"] = Tensor(xp.zeros_like(w))
                elif (momentum > 0 and "momentum_buffer" not in state) or (centered and "grad_avg" not in state):
                    # the option was switched on after some steps: its buffer starts at zero now
                    for name, wanted in (("momentum_buffer", momentum > 0), ("grad_avg", centered)):
                        if wanted and name not in state:
                            state[name] = Tensor(xp.zeros_like(w))
                state["step"] += 1
                g = self._grad(w, p.grad.data, weight_decay, maximize)
                v = state["square_avg"].data
                tmp = self._scratch(w, 1)
                # v ← α v + (1 − α) g²
                v *= alpha
                xp.multiply(g, 1.0 - alpha, out=tmp)
                tmp *= g
                v += tmp
                if centered:
                    # ḡ ← α ḡ + (1 − α) g;  √(v − ḡ²) + ε
                    g_avg = state["grad_avg"].data
                    g_avg *= alpha
                    xp.multiply(g, 1.0 - alpha, out=tmp)
                    g_avg += tmp
                    xp.multiply(g_avg, g_avg, out=tmp)
                    xp.subtract(v, tmp, out=tmp)
                    xp.sqrt(tmp, out=tmp)
                else:
                    xp.sqrt(v, out=tmp)
                tmp += eps
                xp.divide(g, tmp, out=tmp)
                if momentum > 0:
                    b = state["momentum_buffer"].data
                    b *= momentum
                    b += tmp
                    xp.multiply(b, lr, out=tmp)
                else:
                    tmp *= lr
                w -= tmp
                p._bump_version()  # a graph that saved p's old values must not use them (autograd checks)
        return loss
