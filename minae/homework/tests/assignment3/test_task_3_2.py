"""Task 3.2: the ellipse model, g(z) = [w₁ cos z, w₂ sin z] and E(y, z) = ‖y − g(z)‖², and inference:
ž = argmin_z E(y, z) by gradient descent on z, checked against F_∞ = min_z E(y, z)."""

import math

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, assert_shape, gradcheck, named, rng
from minae.models import ConditionalLatentEBM, LatentEBM

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the ellipse model's energy E(y, z) = ‖y − g(z)‖², and inference ž by gradient descent on z (not on the weights)"
)

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


def test_the_conditional_horn():
    # E(x, y, z) = ‖y − ρ(x) ⊙ [cos z, sin z]‖² on the grid z_k = 2πk/n_z, ρ(x) from the model's own network
    m = ConditionalLatentEBM(hidden=4, n_z=5).double()
    gen = rng(8)
    x, y = gen.uniform(0, 1, 3), gen.uniform(-2, 2, (3, 2))
    with minae.no_grad():
        rho = m.rho(minae.tensor(x.reshape(-1, 1), dtype=minae.float64)).numpy().astype(np.float64)
    grid = (np.arange(5, dtype=np.float32) * np.float32(2 * math.pi / 5)).astype(np.float64)
    expected = (y[:, :1] - rho[:, :1] * np.cos(grid)) ** 2 + (y[:, 1:] - rho[:, 1:] * np.sin(grid)) ** 2
    got = m.energies(minae.tensor(x, dtype=minae.float64), minae.tensor(y, dtype=minae.float64))
    assert_close(got, expected, "the horn's E(x, y, z_k) = ‖y − ρ(x) ⊙ [cos z_k, sin z_k]‖² on the grid", rtol=1e-9)


# ------------------------------------------------------------------ inference ---
IW1, IW2, N_Z = 1.4, 0.6, 12  # the inference tests' ellipse


def near_ellipse(n, seed):
    """Points near the ellipse (radius scaled by 0.7 … 1.3), where E has one clear valley in z."""
    gen = rng(seed)
    angle, scale = gen.uniform(0, 2 * math.pi, n), gen.uniform(0.7, 1.3, n)
    return np.stack([scale * IW1 * np.cos(angle), scale * IW2 * np.sin(angle)], -1)


def ellipse_energy(y, z):
    return (y[:, :1] - IW1 * np.cos(z)) ** 2 + (y[:, 1:] - IW2 * np.sin(z)) ** 2


def grid_start(y):
    """The starting point: the best of the model's n_z grid latents z_k = 2πk/n_z."""
    grid = (np.arange(N_Z, dtype=np.float32) * np.float32(2 * math.pi / N_Z)).astype(np.float64)  # the model's
    return grid[ellipse_energy(y, grid[None, :]).argmin(-1)]


def slope(y, z):
    """∂E/∂z of E = (y₁ − w₁ cos z)² + (y₂ − w₂ sin z)²."""
    return 2 * (y[:, 0] - IW1 * np.cos(z)) * IW1 * np.sin(z) - 2 * (y[:, 1] - IW2 * np.sin(z)) * IW2 * np.cos(z)


def f_infinity(y):
    """F_∞(y) = min_z E(y, z) on a grid of 200000 latents (to ~1e-9 for these points)."""
    z = np.linspace(0, 2 * math.pi, 200000, endpoint=False)
    return np.array([ellipse_energy(y[i : i + 1], z[None, :]).min() for i in range(len(y))])


def inference_model():
    return LatentEBM(w1=IW1, w2=IW2, n_z=N_Z).double()


def test_one_step_of_descent_on_z():
    y = near_ellipse(6, 0)
    z0 = grid_start(y)
    got = inference_model().argmin_z(minae.tensor(y, dtype=minae.float64), refine_steps=1, lr=0.05)
    assert_close(
        got, z0 - 0.05 * slope(y, z0), "one step z ← z − η ∂E/∂z from the best grid latent (η = 0.05)", rtol=1e-9
    )


def test_two_steps_follow_the_gradient_at_the_new_z():
    y = near_ellipse(5, 1)
    z = grid_start(y)
    for _ in range(2):
        z = z - 0.1 * slope(y, z)
    got = inference_model().argmin_z(minae.tensor(y, dtype=minae.float64), refine_steps=2, lr=0.1)
    assert_close(got, z, "two steps of descent, the second from the new z (η = 0.1)", rtol=1e-9)


def test_descent_reaches_the_zero_temperature_free_energy():
    y = near_ellipse(8, 2)
    m, ys = inference_model(), minae.tensor(y, dtype=minae.float64)
    with minae.no_grad():  # inference needs ∂E/∂z even where the caller records no graph
        z = m.argmin_z(ys, refine_steps=300, lr=0.1)
    assert_equal(tuple(z.shape), (8,), "ž has one latent per sample: expected shape {expected}, got {actual}")
    z_check = z.numpy()
    assert_close(
        ellipse_energy(y, z_check[:, None])[:, 0], f_infinity(y), "E(y, ž) = F_∞(y) = min_z E(y, z)", rtol=0, atol=1e-6
    )
    assert_close(slope(y, z_check), np.zeros(8), "∂E/∂z at ž (a minimum: zero)", rtol=0, atol=1e-4)
