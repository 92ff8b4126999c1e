"""Target propagation: an encoder proposes the latent, gradient descent on z refines it.

    z̃ = Enc(y)                                   the initial guess
    E(y, z) = C(y, Dec(z)) + R(z) + D(z, z̃)      with C = ‖y − Dec(z)‖², R = λ_R ‖z‖², D = λ_D ‖z − z̃‖²
    ž = argmin_z E(y, z), found by descending E from z = z̃
    θ_Dec ← θ_Dec − η ∇_θDec C(y, Dec(ž))
    θ_Enc ← θ_Enc − η ∇_θEnc D(ž, z̃)

ž is a fixed target for both updates (no gradient flows through the descent),
so the two updates are one optimizer step on C(y, Dec(ž)) + D(ž, Enc(y)):
the decoder's parameters only appear in the first term, the encoder's in the second.
"""

from __future__ import annotations

import minae

from .. import nn
from ._checks import check_input


class TargetProp(nn.Module):
    """Encoder y → z̃, decoder z → ỹ, and the latent descent between them.

    Default: 784 → hidden (tanh) → latent_dim for the encoder, latent_dim → hidden (tanh) → 784
    (tanh) for the decoder, pixels in [−1, 1]. y: (N, in_features).
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 256,
        latent_dim: int = 8,
        reg: float = 1e-3,
        dist: float = 1.0,
        steps: int = 20,
        z_lr: float = 0.01,
    ):
        super().__init__()
        self.in_features, self.hidden, self.latent_dim = in_features, hidden, latent_dim
        self.reg, self.dist, self.steps, self.z_lr = reg, dist, steps, z_lr
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, latent_dim))
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, in_features), nn.Tanh()
        )

    def config(self) -> dict:
        keys = ("in_features", "hidden", "latent_dim", "reg", "dist", "steps", "z_lr")
        return {k: getattr(self, k) for k in keys}

    def cost(self, y, z):
        """C(y, Dec(z)) = ‖y − Dec(z)‖² per sample."""
        return ((y - self.decoder(z)) ** 2).sum(-1)

    def distance(self, z, z_tilde):
        """D(z, z̃) = λ_D ‖z − z̃‖² per sample."""
        return self.dist * ((z - z_tilde) ** 2).sum(-1)

    def energy(self, y, z, z_tilde):
        """E(y, z) = C(y, Dec(z)) + R(z) + D(z, z̃) per sample, shape (N,)."""
        return self.cost(y, z) + self.reg * (z**2).sum(-1) + self.distance(z, z_tilde)

    def infer(self, y, steps=None, lr=None, trajectory=False):
        """ž by gradient descent on E from z̃ = Enc(y); returns (ž, z̃) or (ž, z̃, [z₀, z₁, …])."""
        y = check_input(self, y, (self.in_features,))
        steps = self.steps if steps is None else steps
        lr = self.z_lr if lr is None else lr
        with minae.no_grad():
            z_tilde = self.encoder(y)
        z = minae.tensor(z_tilde.data, device=z_tilde.device, requires_grad=True)
        path = [z_tilde]
        # the descent needs ∂E/∂z even where the caller switched recording off (evaluation, pictures)
        with minae.enable_grad():
            for _ in range(steps):
                # E is a sum of per-sample energies, so ∂ΣE/∂z_n = ∂E_n/∂z_n for every sample at once
                # BEGIN SOLUTION task 3.6
                (gz,) = minae.grad(self.energy(y, z, z_tilde).sum(), z)
                z = minae.tensor((z.detach() - lr * gz).data, device=z.device, requires_grad=True)
                # END SOLUTION
                if trajectory:
                    path.append(z.detach())
        z_check = z.detach()
        return (z_check, z_tilde, path) if trajectory else (z_check, z_tilde)

    def forward(self, y):
        """The reconstruction from the refined latent, Dec(ž)."""
        z_check, _ = self.infer(y)
        return self.decoder(z_check)

    def loss(self, y) -> dict:
        """{"loss": C(y, Dec(ž)) + D(ž, Enc(y)), "reconstruction": C, "distance": D}, batch means."""
        z_check, _ = self.infer(y)
        # BEGIN SOLUTION task 3.6
        cost = self.cost(y, z_check).mean()
        distance = self.distance(z_check, self.encoder(y)).mean()
        # END SOLUTION
        return {"loss": cost + distance, "reconstruction": cost, "distance": distance}
