"""The variational autoencoder (β-VAE).

    encoder        (μ, log v) = Enc(y)
    sampler        z ~ N(μ, v), differentiable in μ and log v   (the reparameterisation trick)
    # BEGIN FORMULA task 4.1
                   z = μ + √v ⊙ ε,  ε ~ N(0, I)
                   √v = exp(½ log v): the noise is scaled by the standard deviation
    # END FORMULA
    decoder        ỹ = Dec(z)
    free energy    F̃(y) = C(y, ỹ) + β D_KL(N(μ, v) ‖ N(0, I))
    # BEGIN FORMULA task 2.3
                   D_KL = ½ Σ_i (v_i − log v_i − 1 + μ_i²)
    # END FORMULA
                   with β = 1 (and z sampled) F̃ is the negative ELBO, an upper bound on the
                   free energy −log p(y) = −log ∫ p(y | z) p(z) dz, tight when N(μ, v) is the
                   true posterior p(z | y)

C is the binary cross-entropy summed over the pixels (pixels in [0, 1]). The
decoder's last layer gives logits; C is computed from them with the stable
log-sum-exp form, and ỹ = σ(logits).
"""

from __future__ import annotations

import minae

from .. import nn
from ..nn import functional as F
from ._checks import check_input


class VAE(nn.Module):
    """β-VAE; the default is the course's: 784 → 400 (ReLU) → 2·20 (μ, log v); 20 → 400 (ReLU) → 784 (sigmoid).

    y: (N, in_features) with pixels in [0, 1]. In training z is sampled; in eval z = μ.
    """

    def __init__(self, in_features: int = 784, hidden: int = 400, latent_dim: int = 20, beta: float = 1.0):
        super().__init__()
        self.in_features, self.hidden, self.latent_dim, self.beta = in_features, hidden, latent_dim, beta
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, in_features))

    def config(self) -> dict:
        return {
            "in_features": self.in_features,
            "hidden": self.hidden,
            "latent_dim": self.latent_dim,
            "beta": self.beta,
        }

    def encode(self, y):
        """(μ, v): the mean and the variance of the code's Gaussian, each (N, latent_dim)."""
        mu, logvar = self._encode(y)
        return mu, logvar.exp()

    def _encode(self, y):
        out = self.encoder(check_input(self, y, (self.in_features,)))
        d = self.latent_dim
        return out[:, :d], out[:, d:]

    def reparameterise(self, mu, logvar):
        """A sample z of N(μ, v) in training, through which gradients reach μ and log v; z = μ in eval.

        # BEGIN FORMULA task 4.1
        z = μ + √v ⊙ ε with ε ~ N(0, I), √v = exp(½ log v).
        # END FORMULA
        """
        if not self.training:
            return mu
        # BEGIN SOLUTION task 4.1
        eps = minae.randn_like(mu)
        return mu + (0.5 * logvar).exp() * eps
        # END SOLUTION

    def decode(self, z):
        """ỹ = Dec(z) = σ(logits): (N, in_features), pixels in (0, 1)."""
        return self.decoder(z).sigmoid()

    def forward(self, y):
        """(ỹ, μ, log v)."""
        mu, logvar = self._encode(y)
        return self.decode(self.reparameterise(mu, logvar)), mu, logvar

    def loss(self, y, reduction: str = "mean") -> dict:
        """{"loss": F̃ = C + β·KL, "reconstruction": C, "kl": KL}, averaged over the batch."""
        # BEGIN SOLUTION task 4.2
        mu, logvar = self._encode(y)
        logits = self.decoder(self.reparameterise(mu, logvar))
        cost = F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(-1)
        kl = F.gaussian_kl(mu, logvar=logvar, reduction="none")
        terms = {"loss": cost + self.beta * kl, "reconstruction": cost, "kl": kl}
        # END SOLUTION
        if reduction == "none":
            return terms
        return {k: v.mean() for k, v in terms.items()}

    def energy(self, y):
        """F̃(y) per sample (N,), with z = μ when the model is in eval mode."""
        return self.loss(y, reduction="none")["loss"]

    def free_energy(self, y, samples: int = 1):
        """F̃(y) estimated with K = ``samples`` independent draws of z per image, per sample (N,):

            # BEGIN FORMULA task 4.4
            F̃_K(y) = (1/K) Σ_k C(y, Dec(z_k)) + β·KL,   z_k = reparameterise(μ, log v), k = 1 … K
            # END FORMULA

        Only C is averaged over the draws: the KL term is a closed form of (μ, v). With K = 1 it is
        ``loss(y, reduction="none")["loss"]``; in eval mode every z_k = μ. A larger K lowers the
        estimate's variance, not its mean. Differentiable in the parameters, like the loss.
        """
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"VAE.free_energy: samples must be a whole number ≥ 1, got {samples!r}")
        y = check_input(self, y, (self.in_features,))
        mu, logvar = self._encode(y)
        # BEGIN SOLUTION task 4.4
        n = mu.shape[0]
        z = self.reparameterise(minae.cat([mu] * samples), minae.cat([logvar] * samples))  # draw k: rows kN … kN+N−1
        logits = self.decoder(z)
        cost = F.binary_cross_entropy_with_logits(logits, minae.cat([y] * samples), reduction="none").sum(-1)
        kl = F.gaussian_kl(mu, logvar=logvar, reduction="none")
        return cost.reshape(samples, n).mean(0) + self.beta * kl
        # END SOLUTION

    @minae.no_grad()
    def kl_per_dimension(self, y):
        """The KL term split by latent dimension and averaged over the batch: (latent_dim,).

        Its entries sum to the mean KL of ``loss``. A dimension whose KL is ≈ 0 has μ_i ≈ 0 and
        v_i ≈ 1 for every image: the encoder does not use it (its bubble is the prior itself).
        """
        mu, logvar = self._encode(y)
        # BEGIN SOLUTION task 4.5
        return ((logvar.exp() - logvar - 1 + mu * mu) * 0.5).mean(0)
        # END SOLUTION

    @minae.no_grad()
    def bubble_radii(self, y):
        """The radii of the lecture's bubbles (Fig. 8): the standard deviation of each code, (N, latent_dim)."""
        _, logvar = self._encode(y)
        # BEGIN SOLUTION task 4.5
        return (logvar * 0.5).exp()
        # END SOLUTION

    @minae.no_grad()
    def bubble_distance(self, z, y):
        """How far each code z_k lies from the bubbles of the images y, counted in radii: (K,).

            # BEGIN FORMULA task 4.5
            d(z_k) = min over n of ‖(z_k − μ_n) ⊘ √v_n‖,   (μ_n, log v_n) = Enc(y_n)
            # END FORMULA

        The lecture's bubble of y_n is the region of codes its Gaussian N(μ_n, v_n) covers (Fig. 8),
        one radius √v_{n,i} per dimension. The nearest bubble is the one with the smallest distance
        in its own radii, not the one with the nearest centre: a small bubble close by can be further
        away, in radii, than a large one. A code more than about three radii from every training
        image's bubble (d > 3) is a hole of the code space: the decoder never saw it in training.
        z: (K, latent_dim); y: (N, in_features).
        """
        z = check_input(self, z, (self.latent_dim,), name="z")
        mu, logvar = self._encode(y)
        # BEGIN SOLUTION task 4.5
        in_radii = (z.unsqueeze(1) - mu.unsqueeze(0)) * (logvar * -0.5).exp().unsqueeze(0)  # (K, N, d)
        return (in_radii * in_radii).sum(-1).min(dim=-1).values.sqrt()
        # END SOLUTION

    @minae.no_grad()
    def sample(self, n: int):
        """n images decoded from the prior z ~ N(0, I): (n, in_features)."""
        param = next(iter(self.parameters()))
        # BEGIN SOLUTION task 4.3
        z = minae.randn(n, self.latent_dim, dtype=param.dtype, device=param.device)
        return self.decode(z)
        # END SOLUTION

    @minae.no_grad()
    def reconstruct(self, y):
        """ỹ = Dec(μ(y)): the reconstruction from the mean code."""
        mu, _ = self._encode(y)
        return self.decode(mu)

    @minae.no_grad()
    def interpolate(self, y_a, y_b, steps: int = 10):
        """Decode ``steps`` codes on the straight line from μ(y_a) to μ(y_b), ends included: (steps, in_features).

        # BEGIN FORMULA task 4.3
        z = (1 − t) μ(y_a) + t μ(y_b) for t = 0 … 1.
        # END FORMULA
        """
        # BEGIN SOLUTION task 4.3
        mu_a, _ = self._encode(y_a.reshape(1, -1))
        mu_b, _ = self._encode(y_b.reshape(1, -1))
        param = next(iter(self.parameters()))
        t = minae.linspace(0, 1, steps, dtype=param.dtype, device=param.device).reshape(-1, 1)
        return self.decode((1 - t) * mu_a + t * mu_b)
        # END SOLUTION
