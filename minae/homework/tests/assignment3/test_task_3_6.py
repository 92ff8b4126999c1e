"""Task 3.6: inference, ž = argmin_z E(y, z) by gradient descent on z, checked against F_∞ = min_z E(y, z)."""

import math

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, rng
from minae.models import LatentEBM

W1, W2, N_Z = 1.4, 0.6, 12


def points(n, seed):
    """Points near the ellipse (radius scaled by 0.7 … 1.3), where E has one clear valley in z."""
    gen = rng(seed)
    angle, scale = gen.uniform(0, 2 * math.pi, n), gen.uniform(0.7, 1.3, n)
    return np.stack([scale * W1 * np.cos(angle), scale * W2 * np.sin(angle)], -1)


def energy(y, z):
    return (y[:, :1] - W1 * np.cos(z)) ** 2 + (y[:, 1:] - W2 * np.sin(z)) ** 2


def grid_start(y):
    """The starting point: the best of the model's n_z grid latents z_k = 2πk/n_z."""
    grid = (np.arange(N_Z, dtype=np.float32) * np.float32(2 * math.pi / N_Z)).astype(np.float64)  # the model's
    return grid[energy(y, grid[None, :]).argmin(-1)]


def slope(y, z):
    """∂E/∂z of E = (y₁ − w₁ cos z)² + (y₂ − w₂ sin z)²."""
    return 2 * (y[:, 0] - W1 * np.cos(z)) * W1 * np.sin(z) - 2 * (y[:, 1] - W2 * np.sin(z)) * W2 * np.cos(z)


def f_infinity(y):
    """F_∞(y) = min_z E(y, z) on a grid of 200000 latents (to ~1e-9 for these points)."""
    z = np.linspace(0, 2 * math.pi, 200000, endpoint=False)
    return np.array([energy(y[i : i + 1], z[None, :]).min() for i in range(len(y))])


def model():
    return LatentEBM(w1=W1, w2=W2, n_z=N_Z).double()


def test_one_step_of_descent_on_z():
    y = points(6, 0)
    z0 = grid_start(y)
    got = model().argmin_z(minae.tensor(y, dtype=minae.float64), refine_steps=1, lr=0.05)
    assert_close(got, z0 - 0.05 * slope(y, z0), "one step z ← z − η ∂E/∂z from the best grid latent (η = 0.05)", rtol=1e-9)


def test_two_steps_follow_the_gradient_at_the_new_z():
    y = points(5, 1)
    z = grid_start(y)
    for _ in range(2):
        z = z - 0.1 * slope(y, z)
    got = model().argmin_z(minae.tensor(y, dtype=minae.float64), refine_steps=2, lr=0.1)
    assert_close(got, z, "two steps of descent, the second from the new z (η = 0.1)", rtol=1e-9)


def test_descent_reaches_the_zero_temperature_free_energy():
    y = points(8, 2)
    m, ys = model(), minae.tensor(y, dtype=minae.float64)
    with minae.no_grad():  # inference needs ∂E/∂z even where the caller records no graph
        z = m.argmin_z(ys, refine_steps=300, lr=0.1)
    assert_equal(tuple(z.shape), (8,), "ž has one latent per sample: expected shape {expected}, got {actual}")
    z_check = z.numpy()
    assert_close(energy(y, z_check[:, None])[:, 0], f_infinity(y), "E(y, ž) = F_∞(y) = min_z E(y, z)", rtol=0, atol=1e-6)
    assert_close(slope(y, z_check), np.zeros(8), "∂E/∂z at ž (a minimum: zero)", rtol=0, atol=1e-4)

