"""Task 3.2: the ellipse model, g(z) = [w₁ cos z, w₂ sin z] and E(y, z) = ‖y − g(z)‖²."""

import math

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_shape, gradcheck, named, rng
from minae.models import LatentEBM

W1, W2 = 1.3, 0.7


def model(n_z=8):
    return LatentEBM(w1=W1, w2=W2, n_z=n_z)


def points(n, seed):
    return rng(seed).uniform(-2, 2, (n, 2))


def test_decode():
    m = model()
    z = np.linspace(0, 2 * math.pi, 5)
    got = m.decode(minae.tensor(z, dtype=minae.float32))
    assert_shape(got, (5, 2), "decode(z) for z of shape (5,)")
    assert_close(
        got, np.stack([W1 * np.cos(z), W2 * np.sin(z)], -1), "g(z) = [w₁ cos z, w₂ sin z]", rtol=1e-5, atol=1e-6
    )
    z2 = rng(0).uniform(0, 6, (2, 3))
    got2 = m.decode(minae.tensor(z2, dtype=minae.float32))
    assert_shape(got2, (2, 3, 2), "decode(z) for z of shape (2, 3)")


def test_energy_one_latent_per_sample():
    m, y = model(), points(4, 1)
    z = rng(2).uniform(0, 6, 4)
    got = m.energy(minae.tensor(y, dtype=minae.float32), minae.tensor(z, dtype=minae.float32))
    expected = (y[:, 0] - W1 * np.cos(z)) ** 2 + (y[:, 1] - W2 * np.sin(z)) ** 2
    assert_close(got, expected, "E(y, z) for y (4, 2) and z (4,)", rtol=1e-5, atol=1e-6)


def test_energy_several_latents_per_sample():
    m, y = model(), points(3, 3)
    z = rng(4).uniform(0, 6, (3, 5))
    got = m.energy(minae.tensor(y, dtype=minae.float32), minae.tensor(z, dtype=minae.float32))
    expected = (y[:, :1] - W1 * np.cos(z)) ** 2 + (y[:, 1:] - W2 * np.sin(z)) ** 2
    assert_close(got, expected, "E(y, z) for y (3, 2) and z (3, 5)", rtol=1e-5, atol=1e-6)


def test_energies_on_the_grid():
    m, y = model(n_z=6), points(3, 5)
    grid = np.arange(6) * 2 * math.pi / 6
    expected = (y[:, :1] - W1 * np.cos(grid)) ** 2 + (y[:, 1:] - W2 * np.sin(grid)) ** 2
    assert_close(
        m.energies(minae.tensor(y, dtype=minae.float32)),
        expected,
        "energies(y) on the grid z_k = 2πk/6",
        rtol=1e-5,
        atol=1e-6,
    )


def test_energy_gradients():
    m, y = model(), points(4, 6)
    z = rng(7).uniform(0, 6, 4)
    m.energy(minae.tensor(y, dtype=minae.float32), minae.tensor(z, dtype=minae.float32)).sum().backward()
    dw1 = (-2 * (y[:, 0] - W1 * np.cos(z)) * np.cos(z)).sum()
    dw2 = (-2 * (y[:, 1] - W2 * np.sin(z)) * np.sin(z)).sum()
    assert_close(m.w1.grad, dw1, "∂ΣE/∂w₁", rtol=1e-4, atol=1e-5)
    assert_close(m.w2.grad, dw2, "∂ΣE/∂w₂", rtol=1e-4, atol=1e-5)
    m64, y64 = model().double(), minae.tensor(y, dtype=minae.float64)
    zs = minae.tensor(z, dtype=minae.float64, requires_grad=True)
    gradcheck(named(lambda z: m64.energy(y64, z), "E(y, z) as a function of z"), [zs])
