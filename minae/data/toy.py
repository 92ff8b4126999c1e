"""Toy data sets in two dimensions, drawn as the NYU Deep Learning course (LeCun & Canziani) draws them.

All functions return NumPy float64 arrays on the host (wrap them with ``minae.tensor`` or a
``DataLoader``; like ``torch.tensor``, ``minae.tensor`` keeps float64 data float64, so pass
``dtype=minae.float32`` for the models' default dtype). ``seed`` makes a
draw reproducible on its own; ``seed=None`` draws from minae's global CPU generator, so
``minae.manual_seed(s)`` makes a whole program reproducible. A ``numpy.random.Generator`` may
also be passed as ``seed``.
"""

from __future__ import annotations

import numbers

from .. import backend
from ..backend import np

__all__ = ["ellipse", "horn", "manifold_2d"]


def _generator(seed):
    """A NumPy Generator: fresh from ``seed``, or minae's global CPU generator for None."""
    if seed is None:
        return backend.cpu_generator()
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.Generator(np.random.PCG64(int(seed)))
    raise ValueError(f"seed must be None, a non-negative integer or a numpy.random.Generator, got {seed!r}")


def _check_n(n) -> int:
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer (the number of points), got {n!r}")
    return int(n)


def ellipse(n: int = 24, rho=(2.0, 1.5), noise: float = 1 / 20, seed=None):
    """Points on a noisy ellipse, the energy-based models' running example.

        θ ~ U(0, 2π),   ε ~ N(0, noise² I₂),
        y = [ρ₁ cos θ, ρ₂ sin θ] + ε

    with the radii ρ = (ρ₁, ρ₂) = (2, 1.5) and noise = 1/20 by default.
    Returns y: float64 array of shape (n, 2).
    """
    n = _check_n(n)
    gen = _generator(seed)
    rho1, rho2 = (float(r) for r in rho)
    theta = gen.uniform(0.0, 2 * np.pi, size=n)
    eps = gen.normal(0.0, 1.0, size=(n, 2)) * float(noise)
    return np.stack([rho1 * np.cos(theta), rho2 * np.sin(theta)], axis=1) + eps


def horn(n: int = 1000, alpha: float = 1.5, beta: float = 2.0, noise: float = 1 / 20, seed=None):
    """The conditional "horn": an ellipse whose radii grow and swap with an input x.

        x ~ U(0, 1),   θ ~ U(0, 2π),   ε ~ N(0, noise² I₂),
        ρ(x) = [αx + β(1 − x), βx + α(1 − x)] · exp(2x),
        y = ρ(x) ∘ [cos θ, sin θ] + ε

    so at x = 0 the section is the ellipse with radii (β, α), at x = 1 the ellipse with radii
    (α, β) scaled by e². Defaults α = 1.5, β = 2, noise = 1/20.
    Returns (x, y): float64 arrays of shapes (n,) and (n, 2).
    """
    n = _check_n(n)
    gen = _generator(seed)
    x = gen.uniform(0.0, 1.0, size=n)
    theta = gen.uniform(0.0, 2 * np.pi, size=n)
    eps = gen.normal(0.0, 1.0, size=(n, 2)) * float(noise)
    rho = np.stack([alpha * x + beta * (1 - x), beta * x + alpha * (1 - x)], axis=1) * np.exp(2 * x)[:, None]
    return x, rho * np.stack([np.cos(theta), np.sin(theta)], axis=1) + eps


def manifold_2d(n: int = 500, curve: str = "sine", noise: float = 0.0, seed=None):
    """Points on (or near) a one-dimensional curve in the plane, for denoising and contractive AEs.

    With t ~ U(·) along the curve and ε ~ N(0, noise² I₂):

    - ``"sine"``:   t ~ U(−1, 1),  y = [t, ½ sin(πt)] + ε
    - ``"arc"``:    t ~ U(0, π),   y = [cos t, sin t] + ε            (the upper half of the unit circle)
    - ``"spiral"``: t ~ U(0, 1),   y = r [cos 3πt, sin 3πt] + ε,  r = 0.2 + 0.8 t   (one and a half turns)

    The curve is the data manifold: an autoencoder trained on these points should map a nearby
    point back onto the curve. Returns y: float64 array of shape (n, 2).
    """
    n = _check_n(n)
    gen = _generator(seed)
    if curve == "sine":
        t = gen.uniform(-1.0, 1.0, size=n)
        y = np.stack([t, 0.5 * np.sin(np.pi * t)], axis=1)
    elif curve == "arc":
        t = gen.uniform(0.0, np.pi, size=n)
        y = np.stack([np.cos(t), np.sin(t)], axis=1)
    elif curve == "spiral":
        t = gen.uniform(0.0, 1.0, size=n)
        r = 0.2 + 0.8 * t
        y = np.stack([r * np.cos(3 * np.pi * t), r * np.sin(3 * np.pi * t)], axis=1)
    else:
        raise ValueError(f"manifold_2d: curve must be 'sine', 'arc' or 'spiral', got {curve!r}")
    if noise:
        y = y + gen.normal(0.0, float(noise), size=(n, 2))
    return y
