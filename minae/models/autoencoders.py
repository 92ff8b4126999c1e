"""Autoencoders: plain (under- and over-complete), denoising and contractive.

    encoder   h = f(W_h y + b_h)
    decoder   ỹ = g(W_y h + b_y)
    energy    F(y) = C(y, ỹ) + R(h)
    loss      L = (1/m) Σ_j F(y⁽ʲ⁾)

C is the squared error ‖y − ỹ‖² (real-valued pixels) or the binary cross-entropy
−Σ_i [y_i log ỹ_i + (1 − y_i) log(1 − ỹ_i)] (pixels in [0, 1]), summed over the
pixels of each sample.
"""

from __future__ import annotations

import minae

from .. import backend, nn
from ..nn import functional as F
from ..tensor import Tensor
from ._checks import check_input

_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "identity": nn.Identity}


def _activation(name: str):
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(_ACTIVATIONS)}") from None


def reconstruction_cost(y, y_tilde, cost: str):
    """C(y, ỹ) per sample, shape (N,): "mse" ‖y − ỹ‖², or "bce" the binary cross-entropy."""
    # BEGIN SOLUTION task 3.3
    if cost == "mse":
        return F.mse_loss(y_tilde, y, reduction="none").sum(-1)
    if cost == "bce":
        return F.binary_cross_entropy(y_tilde, y, reduction="none").sum(-1)
    # END SOLUTION
    raise ValueError(f"unknown reconstruction cost {cost!r}; choose 'mse' or 'bce'")


class TiedLinear(nn.Module):
    """The decoder's affine map with the encoder's weight, transposed: W_y = W_hᵀ, so a = W_hᵀ h + b_y.

    With tied weights (Rifai et al. 2011) the decoder cannot make up for an encoder that
    shrinks W_h by growing its own weights, so a contractive penalty cannot be dodged by
    rescaling. The encoder's weight stays registered in the encoder only.
    """

    def __init__(self, encoder_linear):
        super().__init__()
        object.__setattr__(self, "tied_to", encoder_linear)  # not a submodule: no second copy in state_dict
        self.bias = nn.Parameter(minae.zeros(encoder_linear.in_features, dtype=encoder_linear.weight.dtype))

    def forward(self, h):
        return F.linear(h, self.tied_to.weight.T, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.tied_to.out_features}, out_features={self.tied_to.in_features}, "
            "weight=encoder's, transposed"
        )


class Autoencoder(nn.Module):
    """h = f(W_h y + b_h), ỹ = g(W_y h + b_y), F(y) = C(y, ỹ) + λ_R ‖h‖₁.

    Under-complete when hidden < in_features, over-complete when hidden > in_features.
    The default is the course's: 784 → 30 (tanh) → 784 (tanh), pixels in [−1, 1], MSE.
    ``tied=True`` shares the weight: W_y = W_hᵀ. y: (N, in_features).
    """

    def __init__(
        self,
        in_features: int = 784,
        hidden: int = 30,
        activation: str = "tanh",
        output_activation: str = "tanh",
        cost: str = "mse",
        sparsity: float = 0.0,
        tied: bool = False,
    ):
        super().__init__()
        if cost not in ("mse", "bce"):
            raise ValueError(f"unknown reconstruction cost {cost!r}; choose 'mse' or 'bce'")
        if cost == "bce" and output_activation != "sigmoid":
            # the cross-entropy reads ỹ as probabilities: only a sigmoid decoder gives them
            raise ValueError(f"the 'bce' cost needs output_activation='sigmoid', got {output_activation!r}")
        self.in_features, self.hidden = in_features, hidden
        self.activation, self.output_activation = activation, output_activation
        self.cost, self.sparsity, self.tied = cost, sparsity, tied
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), _activation(activation))
        affine = TiedLinear(self.encoder[0]) if tied else nn.Linear(hidden, in_features)
        self.decoder = nn.Sequential(affine, _activation(output_activation))

    def config(self) -> dict:
        keys = ("in_features", "hidden", "activation", "output_activation", "cost", "sparsity", "tied")
        return {k: getattr(self, k) for k in keys}

    def encode(self, y):
        """h = f(W_h y + b_h): (N, hidden)."""
        return self.encoder(check_input(self, y, (self.in_features,)))

    def decode(self, h):
        """ỹ = g(W_y h + b_y): (N, in_features)."""
        return self.decoder(h)

    def forward(self, y):
        """The reconstruction ỹ = Dec(Enc(y))."""
        return self.decode(self.encode(y))

    def regulariser(self, h, y):
        """R(h): an L1 sparsity penalty λ_R ‖h‖₁ (zero unless ``sparsity`` > 0); per sample.

        h is the code of this forward pass (for a denoising autoencoder in training, Enc(ŷ)).
        """
        if self.sparsity:
            return self.sparsity * F.l1_penalty(h, reduction="none")
        return None

    def energy(self, y):
        """F(y) = C(y, ỹ) + R(h) per sample, shape (N,)."""
        return self.loss(y, reduction="none")["loss"]

    def loss(self, y, reduction: str = "mean") -> dict:
        """{"loss": L, "reconstruction": C, "penalty": R}, averaged over the batch."""
        y = check_input(self, y, (self.in_features,))  # before the corruption touches it
        # BEGIN SOLUTION task 3.3
        h = self.encode(self.corrupt(y))
        cost = self.reconstruction_cost(y, h)
        penalty = self.regulariser(h, y)
        total = cost if penalty is None else cost + penalty
        terms = {"loss": total, "reconstruction": cost}
        if penalty is not None:
            terms["penalty"] = penalty
        if reduction == "none":
            return terms
        return {k: v.mean() for k, v in terms.items()}
        # END SOLUTION

    def reconstruction_cost(self, y, h):
        """C(y, Dec(h)) per sample, shape (N,).

        A sigmoid decoder with the BCE cost works from the decoder's logits a = W_y h + b_y:
        C = Σ_i [max(a_i, 0) − a_i y_i + log(1 + e^(−|a_i|))], the same value as the BCE of
        ỹ = σ(a), without the clamped logs (stable, and one fused op).
        """
        if self.cost == "bce" and self.output_activation == "sigmoid":
            logits = self.decoder[0](h)
            return F.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(-1)
        return reconstruction_cost(y, self.decode(h), self.cost)

    def corrupt(self, y):
        """The input the encoder sees: y itself (the denoising AE overrides this)."""
        return y


# --------------------------------------------------------------- corruptions ---
def gaussian_noise(y, sigma: float):
    """ŷ = y + ε, ε ~ N(0, σ²) per pixel (additive isotropic Gaussian noise)."""
    # BEGIN SOLUTION task 3.4
    return y + minae.randn_like(y) * sigma
    # END SOLUTION


def masking_noise(y, p: float):
    """ŷ = y ⊙ m / (1 − p), m_i ~ Bernoulli(1 − p): dropout on the pixels, as the course notebook.

    Vincent et al.'s masking noise zeroes a fraction p of the pixels; the course
    applies nn.Dropout(p) to the image, which also scales the kept pixels by 1/(1 − p).
    """
    if not 0 <= p < 1:
        raise ValueError(f"masking noise: p must be in [0, 1), got {p}")
    # BEGIN SOLUTION task 3.4
    return F.dropout(y, p, training=True)
    # END SOLUTION


def salt_and_pepper(y, p: float, low: float | None = None, high: float | None = None):
    """A fraction p of the pixels, chosen at random, set to the minimum or the maximum (½ each).

    low/high default to the batch's minimum and maximum pixel value.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"salt-and-pepper noise: p must be in [0, 1], got {p}")
    xp = backend.get_array_module(y.data)
    with backend.on(y.device):  # raw arrays: CuPy computes on the current GPU, which must be y's
        # BEGIN SOLUTION task 3.4
        # the batch's extremes stay 0-d device arrays: float() would wait for the GPU on every batch
        low = y.data.min() if low is None else low
        high = y.data.max() if high is None else high
        u = backend.random_uniform(y.shape, y.dtype, y.device)
        hit = u < p
        salt = u < p / 2  # among the hit pixels, half go high
        noisy = xp.where(hit, xp.where(salt, high, low), y.data).astype(y.dtype, copy=False)
        return minae.Tensor(noisy)
        # END SOLUTION


CORRUPTIONS = {"gaussian": gaussian_noise, "masking": masking_noise, "salt_and_pepper": salt_and_pepper}


class DenoisingAutoencoder(Autoencoder):
    """Reconstruct the clean y from a corrupted ŷ: F(y) = C(y, Dec(h)) + R(h) with h = Enc(ŷ) in training.

    The lecture's energy F(y) = C(y, ỹ) + R(h) holds one code, the h of this forward pass: in training
    that is the code of the corrupted ŷ, so a sparsity penalty (``sparsity`` > 0) is R(Enc(ŷ)), the code
    the decoder actually received; the cost compares its ỹ with the clean y.

    corruption: "gaussian" (level = σ), "masking" (level = p, the course's dropout mask)
    or "salt_and_pepper" (level = fraction of pixels). The default is the course's:
    784 → 500 (tanh) → 784 (tanh), masking 0.5: an under-complete code (500 < 784 pixels), though far
    wider than the plain autoencoder's 30 units. Corruption only in training.
    """

    def __init__(self, in_features=784, hidden=500, corruption="masking", level=0.5, **kwargs):
        super().__init__(in_features, hidden, **kwargs)
        if corruption not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {corruption!r}; choose from {sorted(CORRUPTIONS)}")
        # fail here, not at the first training batch
        valid = {"gaussian": (level >= 0, "σ ≥ 0"), "masking": (0 <= level < 1, "p in [0, 1)")}
        ok, what = valid.get(corruption, (0 <= level <= 1, "p in [0, 1]"))
        if not ok:
            raise ValueError(f"{corruption} noise needs a level {what}, got {level}")
        self.corruption, self.level = corruption, level

    def config(self) -> dict:
        return {**super().config(), "corruption": self.corruption, "level": self.level}

    def corrupt(self, y):
        if not self.training:
            return y
        return CORRUPTIONS[self.corruption](y, self.level)


class ContractiveAutoencoder(Autoencoder):
    """F(y) = C(y, ỹ) + λ ‖∂h/∂y‖²_F: codes that barely move when y moves.

    For the one-layer sigmoid or tanh encoder the penalty is analytic
    # BEGIN FORMULA task 2.4
    (sigmoid: Σ_j (h_j(1 − h_j))² Σ_i W_ji²)
    # END FORMULA
    (``F.contractive_penalty``); ``generic=True`` computes it with
    autodiff instead (double backprop), for any encoder.
    """

    def __init__(self, in_features=784, hidden=30, lam=1e-4, activation="sigmoid", generic=False, **kwargs):
        kwargs.setdefault("output_activation", "sigmoid")
        kwargs.setdefault("cost", "bce")
        super().__init__(in_features, hidden, activation=activation, **kwargs)
        self.lam, self.generic = lam, generic
        if not generic and activation not in ("sigmoid", "tanh"):
            raise ValueError(f"the analytic contractive penalty needs a sigmoid or tanh encoder, got {activation!r}")

    def config(self) -> dict:
        return {**super().config(), "lam": self.lam, "generic": self.generic}

    def jacobian_norm(self, y):
        """‖∂h/∂y‖²_F per sample, shape (N,)."""
        if self.generic:
            return F.jacobian_penalty(self.encoder, y, reduction="none")
        h = self.encode(y)
        # BEGIN SOLUTION task 3.5
        return F.contractive_penalty(h, self.encoder[0].weight, self.activation, reduction="none")
        # END SOLUTION

    def sensitivity(self, y, u):
        """How far the code moves per unit step of the input along the direction u: ‖(∂h/∂y) û‖ per sample, (N,).

        û = u / ‖u‖; u is one direction (in_features,) for every sample, or one per sample (N, in_features).
        This is what the penalty trades against the reconstruction (the lecture's Fig. 4): a trained CAE's
        code is insensitive across the data's manifold and sensitive along it. For the one-layer encoder
        J û is computed from h and W without forming the (hidden × in_features) Jacobian; ``generic=True``
        gets it from autodiff (two backward passes), for any encoder.
        """
        y = check_input(self, y, (self.in_features,))
        if not isinstance(u, Tensor) or u.shape not in ((self.in_features,), tuple(y.shape)):
            shape = tuple(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(
                f"ContractiveAutoencoder.sensitivity: u must be a tensor of shape ({self.in_features},) or "
                f"{tuple(y.shape)}, got {shape}"
            )
        u = u.to(y.dtype) / (u.to(y.dtype) ** 2).sum(-1, keepdim=True).sqrt()
        if self.generic:
            x = y.detach().requires_grad_()
            h = self.encoder(x)
            probe = minae.zeros_like(h).requires_grad_()
            # (∂h/∂y)ᵀ v is linear in v; its derivative in v along û is the Jacobian-vector product J û
            (back,) = minae.grad(h, x, grad_outputs=probe, create_graph=True)
            (moved,) = minae.grad(back, probe, grad_outputs=u.expand(*y.shape))
            return (moved * moved).sum(-1).sqrt()
        h = self.encode(y)
        # BEGIN SOLUTION task 3.5
        slope = h * (1 - h) if self.activation == "sigmoid" else 1 - h * h  # f′(a) from h
        moved = slope * (u @ self.encoder[0].weight.transpose(0, 1))  # J û = f′(a) ⊙ (W û), (N, hidden)
        return (moved * moved).sum(-1).sqrt()
        # END SOLUTION

    def regulariser(self, h, y):
        """R = λ ‖∂h/∂y‖²_F per sample, from the code h = Enc(y) of this very forward pass."""
        if self.generic:
            return self.lam * F.jacobian_penalty(self.encoder, y, reduction="none")
        # BEGIN SOLUTION task 3.5
        return self.lam * F.contractive_penalty(h, self.encoder[0].weight, self.activation, reduction="none")
        # END SOLUTION
