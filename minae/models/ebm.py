"""The lecture's predictive latent-variable energy model (the ellipse).

    E(y, z) = [y₁ − g₁(z)]² + [y₂ − g₂(z)]²,   g(z) = [w₁ cos z, w₂ sin z]

with a one-dimensional latent z on the grid z_k = 2πk / n_z, k = 0 … n_z − 1.
The free energy summarises E over z:

    zero temperature   F_∞(y) = min_z E(y, z),       ž = argmin_z E(y, z)
    temperature 1/β    F_β(y) = −(1/β) log( (1/n_z) Σ_z exp(−β E(y, z)) )

and learning minimises the loss functional L = (1/m) Σ_j F(y⁽ʲ⁾) over w₁, w₂.
"""

from __future__ import annotations

import math

import minae

from .. import nn
from ..nn import functional as F
from ._checks import check_input


class LatentEBM(nn.Module):
    """The ellipse model E(y, z) = [y₁ − w₁ cos z]² + [y₂ − w₂ sin z]² on a grid of n_z latents.

    y: (N, 2). ``energies(y)`` gives E on the grid, (N, n_z); ``free_energy(y, beta)``
    gives F_β (or F_∞ for beta None/inf), (N,).
    """

    def __init__(self, w1: float = 1.0, w2: float = 1.0, n_z: int = 48, beta=None):
        super().__init__()
        if n_z < 1:
            raise ValueError(f"LatentEBM: n_z must be at least 1, got {n_z}")
        self.n_z = n_z
        self.beta = beta  # the training temperature 1/β; None: zero temperature
        self.w1 = nn.Parameter(minae.tensor(float(w1)))
        self.w2 = nn.Parameter(minae.tensor(float(w2)))
        self.register_buffer("z_grid", minae.arange(n_z, dtype=minae.float32) * (2 * math.pi / n_z))

    def config(self) -> dict:
        return {"n_z": self.n_z, "beta": self.beta}

    def decode(self, z):
        """g(z) = [w₁ cos z, w₂ sin z]: a latent of any shape S gives points of shape S + (2,)."""
        # BEGIN SOLUTION task 3.2
        return minae.stack([self.w1 * minae.cos(z), self.w2 * minae.sin(z)], dim=-1)
        # END SOLUTION

    def energy(self, y, z):
        """E(y, z) for y (N, 2) and z broadcastable against (N,) or (N, K): shape (N,) or (N, K)."""
        y = check_input(self, y, feature_shape=(2,))
        # BEGIN SOLUTION task 3.2
        if z.ndim == 2:
            y = y.unsqueeze(1)
        return ((y - self.decode(z)) ** 2).sum(-1)
        # END SOLUTION

    def energies(self, y):
        """E(y, z_k) for every grid latent: (N, n_z)."""
        n = check_input(self, y, feature_shape=(2,)).shape[0]
        return self.energy(y, self.z_grid.unsqueeze(0).expand(n, self.n_z))

    def free_energy(self, y, beta=None):
        """F_β(y) (N,); beta None or inf gives the zero-temperature F_∞ = min over the grid."""
        beta = math.inf if beta is None else beta
        return F.softmin_free_energy(self.energies(y), beta, dim=-1)

    def argmin_z(self, y, refine_steps: int = 0, lr: float = 0.1):
        """ž = argmin_z E(y, z): the best grid point, refined by ``refine_steps`` of gradient descent on z.

        Each step is z ← z − η ∂E(y, z)/∂z (η = ``lr``) for every sample at once; E(y, ž) is then the
        zero-temperature free energy F_∞(y) = min_z E(y, z), to the grid's spacing and better.
        y: (N, 2) -> ž: (N,).
        """
        with minae.no_grad():
            z = self.z_grid[self.energies(y).argmin(-1)]
        if refine_steps:
            z = minae.tensor(z.data, device=z.device, requires_grad=True)
            # the refinement needs ∂E/∂z even inside a caller's no_grad()
            with minae.enable_grad():
                for _ in range(refine_steps):
                    # BEGIN SOLUTION task 3.2
                    # E sums per-sample energies, so ∂ΣE/∂z_n = ∂E_n/∂z_n: one gradient moves every sample
                    (gz,) = minae.grad(self.energy(y, z).sum(), z)
                    z = minae.tensor((z.detach() - lr * gz).data, device=z.device, requires_grad=True)
                    # END SOLUTION
            z = z.detach()
        return z

    def forward(self, y, beta=None):
        return self.free_energy(y, beta)

    def loss(self, y, beta=None) -> dict:
        """The loss functional L = mean over the batch of F_β(y) (β: the argument, else self.beta)."""
        free = self.free_energy(y, self.beta if beta is None else beta).mean()
        return {"loss": free, "free_energy": free}


class ConditionalLatentEBM(nn.Module):
    """The conditional "horn": E(x, y, z) = ‖y − ρ(x) ⊙ [cos z, sin z]‖², ρ(x) from a small network.

    The course's data has ρ(x) = [αx + β(1−x), βx + α(1−x)]·exp(2x); the model learns
    ρ: ℝ → ℝ² (softplus keeps the radii positive). x: (N,) or (N, 1); y: (N, 2).
    """

    def __init__(self, hidden: int = 32, n_z: int = 48):
        super().__init__()
        self.n_z, self.hidden = n_z, hidden
        self.rho = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 2), nn.Softplus())
        self.register_buffer("z_grid", minae.arange(n_z, dtype=minae.float32) * (2 * math.pi / n_z))

    def config(self) -> dict:
        return {"hidden": self.hidden, "n_z": self.n_z}

    def decode(self, x, z):
        """g(x, z) = ρ(x) ⊙ [cos z, sin z] for x (N,) and z (N, K): (N, K, 2)."""
        # BEGIN SOLUTION task 3.2
        rho = self.rho(x.reshape(-1, 1)).unsqueeze(1)
        return rho * minae.stack([minae.cos(z), minae.sin(z)], dim=-1)
        # END SOLUTION

    def energies(self, x, y):
        """E(x, y, z_k) on the grid: (N, n_z)."""
        y = check_input(self, y, feature_shape=(2,))
        n = y.shape[0]
        if x.numel() != n or x.ndim not in (1, 2) or x.shape[0] != n:
            raise ValueError(
                f"ConditionalLatentEBM: expected x of shape ({n},) or ({n}, 1) for y of shape {tuple(y.shape)}, "
                f"got {tuple(x.shape)}"
            )
        z = self.z_grid.unsqueeze(0).expand(n, self.n_z)
        # BEGIN SOLUTION task 3.2
        return ((y.unsqueeze(1) - self.decode(x, z)) ** 2).sum(-1)
        # END SOLUTION

    def free_energy(self, x, y, beta=None):
        beta = math.inf if beta is None else beta
        return F.softmin_free_energy(self.energies(x, y), beta, dim=-1)

    def forward(self, x, y, beta=None):
        return self.free_energy(x, y, beta)

    def loss(self, batch, beta=None) -> dict:
        x, y = batch
        free = self.free_energy(x, y, beta).mean()
        return {"loss": free, "free_energy": free}
