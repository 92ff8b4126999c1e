"""The lecture's models: gradients (float64 gradcheck on tiny instances), energies against NumPy,
the samplers and corruptions statistically, training on real data, and input errors."""

import math

import numpy as np
import pytest

import minae
from minae import backend
from minae.data import mnist_arrays, toy
from minae.models import (
    VAE,
    Autoencoder,
    ConditionalLatentEBM,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    LatentEBM,
    TargetProp,
    gaussian_noise,
    masking_noise,
    salt_and_pepper,
)

D, H, Z = 6, 4, 2  # the tiny models: in_features, hidden units, latent size


# ------------------------------------------------------------------ helpers ---
def param_gradcheck(model, loss_of, **kw):
    """gradcheck of ``loss_of(model)`` with respect to every parameter of ``model``, in float64.

    gradcheck hands ``fn`` float64 leaf copies of the parameters; ``fn`` files them in the
    modules' registries in place of the Parameters, so the model's own forward uses them.
    """
    model.double()
    slots = [(mod, name) for _, mod in model.named_modules() for name, p in mod._parameters.items() if p is not None]
    originals = [mod._parameters[name] for mod, name in slots]

    def loss_of_parameters(*params):
        for (mod, name), p in zip(slots, params):
            mod._parameters[name] = p
        try:
            return loss_of(model)
        finally:
            for (mod, name), p in zip(slots, originals):
                mod._parameters[name] = p

    inputs = [minae.tensor(p.numpy().copy(), requires_grad=True) for p in originals]
    return minae.gradcheck(loss_of_parameters, inputs, **kw)


def data01(n=5, d=D, seed=0):
    """A float64 batch with pixels in (0, 1)."""
    rng = np.random.default_rng(seed)
    return minae.tensor(rng.uniform(0.05, 0.95, size=(n, d)))


def datapm1(n=5, d=D, seed=0):
    rng = np.random.default_rng(seed)
    return minae.tensor(rng.uniform(-0.9, 0.9, size=(n, d)))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACT = {"tanh": np.tanh, "sigmoid": sigmoid, "relu": lambda x: np.maximum(x, 0), "identity": lambda x: x}


def linear_np(layer, x):
    return x @ layer.weight.numpy().T + layer.bias.numpy()


def ae_np(model, y, act="tanh", out="tanh"):
    """h and ỹ of a one-layer autoencoder, in NumPy."""
    h = ACT[act](linear_np(model.encoder[0], y))
    return h, ACT[out](linear_np(model.decoder[0], h))


@pytest.fixture(scope="module")
def digits():
    """256 training and 256 test digits of the bundled MNIST subset, pixels in [0, 1] and in [−1, 1]."""
    (x01, _), (t01, _) = mnist_arrays("bundled", scale="01")
    rng = np.random.default_rng(0)
    i, j = rng.choice(len(x01), 256, replace=False), rng.choice(len(t01), 256, replace=False)
    return {"01": (x01[i], t01[j]), "pm1": (2 * x01[i] - 1, 2 * t01[j] - 1)}


# ------------------------------------------------------------ gradchecks ---
AUTOENCODERS = {
    "ae-under": lambda: Autoencoder(D, H),
    "ae-over": lambda: Autoencoder(D, 2 * D),
    "ae-bce": lambda: Autoencoder(D, H, output_activation="sigmoid", cost="bce"),
    "ae-sparse": lambda: Autoencoder(D, H, sparsity=0.1),
    "dae-gaussian": lambda: DenoisingAutoencoder(D, 2 * D, corruption="gaussian", level=0.3),
    "dae-masking": lambda: DenoisingAutoencoder(D, 2 * D, corruption="masking", level=0.5),
    "dae-salt-and-pepper": lambda: DenoisingAutoencoder(D, 2 * D, corruption="salt_and_pepper", level=0.3),
    "cae-sigmoid": lambda: ContractiveAutoencoder(D, H, lam=0.5, activation="sigmoid"),
    "cae-tanh": lambda: ContractiveAutoencoder(D, H, lam=0.5, activation="tanh"),
    "cae-generic": lambda: ContractiveAutoencoder(D, H, lam=0.5, activation="tanh", generic=True),
    "ae-tied": lambda: Autoencoder(D, H, tied=True),
    "cae-tied": lambda: ContractiveAutoencoder(D, H, lam=0.5, tied=True),
    "vae": lambda: VAE(D, H, Z, beta=0.7),
}


@pytest.mark.parametrize("kind", sorted(AUTOENCODERS))
def test_autoencoder_loss_gradcheck(kind):
    model = AUTOENCODERS[kind]()
    y = data01() if kind.startswith(("cae", "vae", "ae-bce")) else datapm1()

    def loss(m):
        minae.manual_seed(7)  # the same corruption / sampler noise on every evaluation
        return m.loss(y)["loss"]

    assert model.training  # corruption and sampling are part of what is checked
    assert param_gradcheck(model, loss)


def test_tied_decoder_uses_the_encoder_weight_transposed():
    model = Autoencoder(D, H, tied=True).double()
    assert "decoder.0.weight" not in model.state_dict()  # one weight, registered once
    assert len(list(model.parameters())) == 3  # W_h, b_h, b_y
    y = datapm1().numpy()
    h = np.tanh(linear_np(model.encoder[0], y))
    expected = np.tanh(h @ model.encoder[0].weight.numpy() + model.decoder[0].bias.numpy())
    np.testing.assert_allclose(model(minae.tensor(y)).numpy(), expected, rtol=1e-12)
    model.loss(minae.tensor(y))["loss"].backward()
    assert model.encoder[0].weight.grad is not None  # both the encoder and the decoder path reach W_h


def test_latent_ebm_gradcheck():
    y = minae.tensor(toy.ellipse(5, seed=1))
    for beta in (None, 0.5, 3.0):
        model = LatentEBM(1.3, 0.8, n_z=12)
        assert param_gradcheck(model, lambda m, beta=beta: m.free_energy(y, beta))
    model = LatentEBM(1.3, 0.8)
    z = minae.tensor(np.linspace(0, 6, 5))
    assert param_gradcheck(model, lambda m: m.energy(y, z))


def test_conditional_ebm_gradcheck():
    x, y = (minae.tensor(a) for a in toy.horn(5, seed=2))
    model = ConditionalLatentEBM(hidden=3, n_z=8)
    assert param_gradcheck(model, lambda m: m.loss((x, y), beta=2.0)["loss"])


def test_targetprop_gradcheck_with_the_target_held_fixed():
    """ž comes from a descent that is not differentiated: with ž fixed, L = C(y, Dec(ž)) + D(ž, Enc(y))."""
    model = TargetProp(D, H, Z, steps=5, z_lr=0.1).double()
    y = datapm1()
    z_check, z_tilde = model.infer(y)
    model.infer = lambda y, **kw: (z_check, z_tilde)  # the descent's result, as a constant
    assert param_gradcheck(model, lambda m: m.loss(y)["loss"])


def test_targetprop_updates_split_between_decoder_and_encoder():
    """θ_Dec follows ∇C(y, Dec(ž)) only, θ_Enc follows ∇D(ž, z̃) only, as in the lecture."""
    model = TargetProp(D, H, Z, steps=5, z_lr=0.1).double()
    y = datapm1()
    z_check, _ = model.infer(y)
    model.loss(y)["loss"].backward()
    dec = [p.grad.numpy() for p in model.decoder.parameters()]
    enc = [p.grad.numpy() for p in model.encoder.parameters()]
    model.zero_grad()
    model.cost(y, z_check).mean().backward()
    for g, p in zip(dec, model.decoder.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert all(p.grad is None for p in model.encoder.parameters())
    model.zero_grad()
    model.distance(z_check, model.encoder(y)).mean().backward()
    for g, p in zip(enc, model.encoder.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_targetprop_energy_gradcheck():
    model = TargetProp(D, H, Z).double()
    y = datapm1()
    z_tilde = minae.tensor(np.random.default_rng(3).normal(size=(5, Z)))
    z = minae.tensor(z_tilde.numpy() + 0.3, requires_grad=True)
    assert minae.gradcheck(lambda z: model.energy(y, z, z_tilde), [z])
    assert param_gradcheck(model, lambda m: m.energy(y, z.detach(), z_tilde))


def test_targetprop_descent_lowers_the_energy_and_leaves_no_gradients():
    model = TargetProp(D, H, Z, steps=30, z_lr=0.05).double()
    y = datapm1()
    z_check, z_tilde, path = model.infer(y, trajectory=True)
    assert len(path) == 31 and not z_check.requires_grad
    np.testing.assert_allclose(path[0].numpy(), model.encoder(y).numpy())
    energies = [model.energy(y, z, z_tilde).sum().item() for z in path]
    assert energies[-1] < energies[0]
    assert all(b <= a + 1e-12 for a, b in zip(energies, energies[1:]))  # small steps: monotone
    assert all(p.grad is None for p in model.parameters())  # the descent touched no .grad
    with minae.no_grad():  # evaluation switches recording off; the descent must still work
        z2, _ = model.infer(y)
    np.testing.assert_allclose(z2.numpy(), z_check.numpy())


# --------------------------------------------------- energies against NumPy ---
def test_autoencoder_energy_is_squared_error():
    model = Autoencoder(D, H).double()
    y = datapm1(7)
    _, y_tilde = ae_np(model, y.numpy())
    F = ((y.numpy() - y_tilde) ** 2).sum(1)
    np.testing.assert_allclose(model.energy(y).numpy(), F, rtol=1e-12)
    np.testing.assert_allclose(model(y).numpy(), y_tilde, rtol=1e-12)
    terms = model.loss(y)
    np.testing.assert_allclose(terms["loss"].item(), F.mean(), rtol=1e-12)
    np.testing.assert_allclose(terms["reconstruction"].item(), F.mean(), rtol=1e-12)


def test_autoencoder_over_complete_and_sparsity():
    model = Autoencoder(D, 3 * D, sparsity=0.25).double()
    assert model.encode(datapm1()).shape == (5, 3 * D)
    y = datapm1(7)
    h, y_tilde = ae_np(model, y.numpy())
    C, R = ((y.numpy() - y_tilde) ** 2).sum(1), 0.25 * np.abs(h).sum(1)
    terms = model.loss(y)
    np.testing.assert_allclose(terms["reconstruction"].item(), C.mean(), rtol=1e-12)
    np.testing.assert_allclose(terms["penalty"].item(), R.mean(), rtol=1e-12)
    np.testing.assert_allclose(terms["loss"].item(), (C + R).mean(), rtol=1e-12)


def test_autoencoder_bce_cost():
    model = Autoencoder(D, H, output_activation="sigmoid", cost="bce").double()
    y = data01(7)
    yn = y.numpy()
    _, yt = ae_np(model, yn, out="sigmoid")
    C = -(yn * np.log(yt) + (1 - yn) * np.log(1 - yt)).sum(1)
    np.testing.assert_allclose(model.energy(y).numpy(), C, rtol=1e-10)


def test_autoencoder_bce_needs_probabilities():
    with pytest.raises(ValueError, match="sigmoid"):
        Autoencoder(D, H, output_activation="tanh", cost="bce")
    with pytest.raises(ValueError, match="cost"):
        Autoencoder(D, H, cost="hinge")


def vae_np(model, y):
    """μ, log v and the decoder's logits at z = μ, in NumPy."""
    h = np.maximum(linear_np(model.encoder[0], y), 0)
    out = linear_np(model.encoder[2], h)
    mu, logvar = out[:, : model.latent_dim], out[:, model.latent_dim :]
    logits = linear_np(model.decoder[2], np.maximum(linear_np(model.decoder[0], mu), 0))
    return mu, logvar, logits


def test_vae_free_energy_is_bce_plus_beta_kl():
    model = VAE(D, H, Z, beta=0.3).double().eval()  # eval: z = μ, so NumPy can follow
    y = data01(7)
    yn = y.numpy()
    mu, logvar, logits = vae_np(model, yn)
    yt = sigmoid(logits)
    C = -(yn * np.log(yt) + (1 - yn) * np.log(1 - yt)).sum(1)
    v = np.exp(logvar)
    KL = 0.5 * (v - np.log(v) - 1 + mu**2).sum(1)
    np.testing.assert_allclose(model.energy(y).numpy(), C + 0.3 * KL, rtol=1e-10)
    terms = model.loss(y)
    np.testing.assert_allclose(terms["reconstruction"].item(), C.mean(), rtol=1e-10)
    np.testing.assert_allclose(terms["kl"].item(), KL.mean(), rtol=1e-10)
    np.testing.assert_allclose(terms["loss"].item(), (C + 0.3 * KL).mean(), rtol=1e-10)
    got_mu, got_v = model.encode(y)
    np.testing.assert_allclose(got_mu.numpy(), mu, rtol=1e-12)
    np.testing.assert_allclose(got_v.numpy(), v, rtol=1e-12)
    y_tilde, m, lv = model(y)
    np.testing.assert_allclose(y_tilde.numpy(), yt, rtol=1e-10)
    np.testing.assert_allclose(lv.numpy(), logvar, rtol=1e-12)


def test_vae_training_loss_uses_the_sampled_code():
    """In training, C is measured at z = μ + √v ε, with the same ε as a fresh draw after the same seed."""
    model = VAE(D, H, Z, beta=1.0).double()
    y = data01(7)
    mu, logvar, _ = vae_np(model, y.numpy())
    minae.manual_seed(11)
    eps = backend.to_numpy(backend.random_normal(mu.shape, mu.dtype, backend.device("cpu")))
    z = mu + np.exp(0.5 * logvar) * eps
    logits = linear_np(model.decoder[2], np.maximum(linear_np(model.decoder[0], z), 0))
    yn, yt = y.numpy(), sigmoid(logits)
    C = -(yn * np.log(yt) + (1 - yn) * np.log(1 - yt)).sum(1)
    minae.manual_seed(11)
    np.testing.assert_allclose(model.loss(y)["reconstruction"].item(), C.mean(), rtol=1e-10)


def test_vae_reparameterisation_scales_noise_by_the_standard_deviation():
    """z = μ + √v ε with √v = exp(½ log v): the sample std of z is exp(½ log v), not v."""
    model = VAE(D, H, 3)
    n = 40000
    mu_row = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    logvar_row = np.log(np.array([[4.0, 0.25, 1.0]], dtype=np.float32))
    mu = minae.tensor(np.repeat(mu_row, n, 0))
    logvar = minae.tensor(np.repeat(logvar_row, n, 0))
    z = model.reparameterise(mu, logvar).numpy().astype(np.float64)
    std = z.std(0)
    np.testing.assert_allclose(std, [2.0, 0.5, 1.0], rtol=0.03)  # v would give 4, 0.25
    np.testing.assert_allclose(z.mean(0), mu_row[0], atol=0.05)
    model.eval()
    np.testing.assert_array_equal(model.reparameterise(mu, logvar).numpy(), mu.numpy())


def test_vae_reparameterisation_gradients_reach_mu_and_logvar():
    model = VAE(D, H, Z)
    mu = minae.tensor(np.zeros((4, Z)), requires_grad=True)
    logvar = minae.tensor(np.zeros((4, Z)), requires_grad=True)

    def z(mu, logvar):
        minae.manual_seed(3)
        return model.reparameterise(mu, logvar)

    assert minae.gradcheck(z, [mu, logvar])


def test_vae_eval_is_deterministic():
    model = VAE(D, H, Z).double().eval()
    y = data01()
    a, b = model.loss(y)["loss"].item(), model.loss(y)["loss"].item()
    assert a == b
    model.train()
    minae.manual_seed(1)
    c = model.loss(y)["loss"].item()
    minae.manual_seed(2)
    assert c != model.loss(y)["loss"].item()


def test_vae_sample_reconstruct_interpolate():
    model = VAE(D, H, Z)
    s = model.sample(9)
    assert s.shape == (9, D) and s.dtype == minae.float32 and not s.requires_grad
    assert 0 < s.numpy().min() and s.numpy().max() < 1
    y = data01(4).to(minae.float32)
    r = model.reconstruct(y)
    assert r.shape == (4, D) and not r.requires_grad and 0 < r.numpy().min() and r.numpy().max() < 1
    model.eval()
    np.testing.assert_allclose(r.numpy(), model(y)[0].numpy(), rtol=1e-6)  # Dec(μ), whatever the mode
    model.train()
    path = model.interpolate(y[0], y[1], steps=7)
    assert path.shape == (7, D)
    mu, _ = model.encode(y[:2])
    np.testing.assert_allclose(path[0].numpy(), model.decode(mu[0:1]).numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(path[-1].numpy(), model.decode(mu[1:2]).numpy()[0], rtol=1e-5)
    assert model.training  # the pictures' helpers leave the mode alone


GRID = 2 * np.pi * np.arange(48) / 48


def ebm_energies_np(y, w1, w2, grid=GRID):
    return (y[:, None, 0] - w1 * np.cos(grid)) ** 2 + (y[:, None, 1] - w2 * np.sin(grid)) ** 2


def softmin_np(E, beta):
    m = E.min(1, keepdims=True)
    return m[:, 0] - np.log(np.exp(-beta * (E - m)).mean(1)) / beta


def test_latent_ebm_energy_and_free_energies():
    model = LatentEBM(2.2, 1.3).double()
    np.testing.assert_allclose(model.z_grid.numpy(), GRID, rtol=1e-6)  # the grid is made in float32
    grid_z = model.z_grid.numpy()
    y = toy.ellipse(10, seed=4) * 1.2
    yt = minae.tensor(y)
    z = np.random.default_rng(0).uniform(0, 2 * np.pi, 10)
    w1, w2 = model.w1.item(), model.w2.item()  # 2.2 and 1.3, as rounded to float32 before .double()
    E = (y[:, 0] - w1 * np.cos(z)) ** 2 + (y[:, 1] - w2 * np.sin(z)) ** 2
    np.testing.assert_allclose(model.energy(yt, minae.tensor(z)).numpy(), E, rtol=1e-12)
    grid = ebm_energies_np(y, w1, w2, grid_z)
    np.testing.assert_allclose(model.energies(yt).numpy(), grid, rtol=1e-12)
    f_inf = grid.min(1)
    np.testing.assert_allclose(model.free_energy(yt).numpy(), f_inf, rtol=1e-12)
    np.testing.assert_allclose(model.free_energy(yt, math.inf).numpy(), f_inf, rtol=1e-12)
    np.testing.assert_allclose(model.argmin_z(yt).numpy(), grid_z[grid.argmin(1)])
    for beta in (0.1, 1.0, 10.0):
        np.testing.assert_allclose(model.free_energy(yt, beta).numpy(), softmin_np(grid, beta), rtol=1e-10)
    # the limits: β → ∞ gives F_∞ (F_∞ ≤ F_β ≤ F_∞ + log(n_z)/β), β → 0 the mean energy
    f_big = model.free_energy(yt, 1e4).numpy()
    assert np.all(f_big >= f_inf - 1e-12) and np.all(f_big <= f_inf + math.log(48) / 1e4 + 1e-9)
    np.testing.assert_allclose(model.free_energy(yt, 1e-7).numpy(), grid.mean(1), rtol=1e-5)
    np.testing.assert_allclose(model.free_energy(yt, 0.0).numpy(), grid.mean(1), rtol=1e-12)
    fs = [model.free_energy(yt, b).numpy() for b in (0.01, 0.1, 1.0, 10.0, 100.0)]
    assert all(np.all(b <= a + 1e-12) for a, b in zip(fs, fs[1:]))  # F_β decreases with β
    np.testing.assert_allclose(model.loss(yt)["loss"].item(), f_inf.mean(), rtol=1e-12)
    np.testing.assert_allclose(model.loss(yt, beta=1.0)["loss"].item(), softmin_np(grid, 1.0).mean(), rtol=1e-10)


def test_latent_ebm_refined_argmin():
    model = LatentEBM(2.0, 1.5).double()
    y = minae.tensor(toy.ellipse(8, seed=5))
    z0 = model.argmin_z(y)
    with minae.no_grad():  # refinement must work inside a caller's no_grad too
        z1 = model.argmin_z(y, refine_steps=20, lr=0.05)
    e0, e1 = model.energy(y, z0).numpy(), model.energy(y, z1).numpy()
    assert np.all(e1 <= e0 + 1e-12) and np.any(e1 < e0 - 1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_latent_ebm_learns_the_ellipse():
    """Minimising the mean F_∞ over the course's ellipse data recovers the radii (w₁, w₂) ≈ (2, 1.5)."""
    y = minae.tensor(toy.ellipse(24, seed=0).astype(np.float32))
    model = LatentEBM(1.0, 1.0)
    opt = minae.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(200):
        loss = model.loss(y)["loss"]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(y)["loss"].item() < 0.1 * first
    assert abs(model.w1.item() - 2.0) < 0.1 and abs(model.w2.item() - 1.5) < 0.1


def test_conditional_ebm_energy():
    model = ConditionalLatentEBM(hidden=5, n_z=48).double()
    x, y = toy.horn(6, seed=3)
    rho, g = model.rho(minae.tensor(x.reshape(-1, 1))).numpy(), model.z_grid.numpy()
    E = (y[:, None, 0] - rho[:, None, 0] * np.cos(g)) ** 2 + (y[:, None, 1] - rho[:, None, 1] * np.sin(g)) ** 2
    got = model.energies(minae.tensor(x), minae.tensor(y)).numpy()
    np.testing.assert_allclose(got, E, rtol=1e-12)
    np.testing.assert_allclose(model.free_energy(minae.tensor(x), minae.tensor(y)).numpy(), E.min(1), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(6,\).*\(5,\)|5.*6"):
        model.energies(minae.tensor(x[:5]), minae.tensor(y))


# -------------------------------------------------------------- corruptions ---
def test_gaussian_noise_statistics():
    y = minae.zeros(400, 100) + 0.25
    noisy = gaussian_noise(y, 0.3).numpy() - 0.25
    assert abs(noisy.mean()) < 0.01 and abs(noisy.std() - 0.3) < 0.01
    assert noisy.dtype == np.float32


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_masking_noise_is_the_course_dropout(p):
    y = minae.rand(400, 100) * 0.5 + 0.25
    out = masking_noise(y, p).numpy()
    zero = out == 0
    assert abs(zero.mean() - p) < 0.01
    np.testing.assert_allclose(out[~zero], y.numpy()[~zero] / (1 - p), rtol=1e-6)  # p = 0.5: kept pixels doubled
    with pytest.raises(ValueError, match="p"):
        masking_noise(y, 1.0)


def test_salt_and_pepper_statistics():
    rng = np.random.default_rng(0)
    y_np = rng.uniform(0.2, 0.8, size=(400, 100)).astype(np.float32)
    y_np[0, 0], y_np[0, 1] = 0.0, 1.0  # the batch's extremes: the default low and high
    y = minae.tensor(y_np)
    out = salt_and_pepper(y, 0.3).numpy()
    changed = out != y_np
    assert abs(changed.mean() - 0.3) < 0.01
    assert set(np.unique(out[changed])) <= {0.0, 1.0}
    assert abs((out[changed] == 1.0).mean() - 0.5) < 0.02  # half salt, half pepper
    assert out.dtype == np.float32
    out = salt_and_pepper(y, 0.3, low=-1.0, high=2.0).numpy()
    assert set(np.unique(out[out != y_np])) == {-1.0, 2.0}


@pytest.mark.parametrize("corruption,level", [("gaussian", 0.5), ("masking", 0.5), ("salt_and_pepper", 0.3)])
def test_dae_corrupts_only_in_training_and_reconstructs_the_clean_input(corruption, level):
    model = DenoisingAutoencoder(D, 2 * D, corruption=corruption, level=level).double()
    y = datapm1(50)
    yn = y.numpy()
    minae.manual_seed(5)
    noisy = model.corrupt(y).numpy()
    assert np.mean(noisy != yn) > 0.2
    _, y_tilde = ae_np(model, noisy)
    minae.manual_seed(5)
    np.testing.assert_allclose(model.loss(y)["loss"].item(), ((yn - y_tilde) ** 2).sum(1).mean(), rtol=1e-10)
    model.eval()
    np.testing.assert_array_equal(model.corrupt(y).numpy(), yn)
    _, clean = ae_np(model, yn)
    np.testing.assert_allclose(model.energy(y).numpy(), ((yn - clean) ** 2).sum(1), rtol=1e-10)


def test_dae_rejects_bad_settings():
    with pytest.raises(ValueError, match="corruption"):
        DenoisingAutoencoder(D, H, corruption="blur")
    with pytest.raises(ValueError, match="p"):
        DenoisingAutoencoder(D, H, corruption="masking", level=1.5)


# ------------------------------------------------------------ contractive ---
def fd_jacobian_norm(encoder, y, eps=1e-6):
    """Σ_ij (∂h_j/∂y_i)² per sample by central differences of the encoder."""
    yn = y.numpy()
    total = np.zeros(len(yn))
    with minae.no_grad():
        for i in range(yn.shape[1]):
            step = np.zeros_like(yn)
            step[:, i] = eps
            d = (encoder(minae.tensor(yn + step)).numpy() - encoder(minae.tensor(yn - step)).numpy()) / (2 * eps)
            total += (d**2).sum(1)
    return total


@pytest.mark.parametrize(
    "activation,generic", [("sigmoid", False), ("tanh", False), ("tanh", True), ("sigmoid", True), ("relu", True)]
)
def test_cae_penalty_is_the_encoder_jacobian_norm(activation, generic):
    model = ContractiveAutoencoder(D, H, lam=0.3, activation=activation, generic=generic).double()
    y = data01(5)
    expected = fd_jacobian_norm(model.encoder, y)
    np.testing.assert_allclose(model.jacobian_norm(y).numpy(), expected, rtol=1e-6)
    terms = model.loss(y)
    np.testing.assert_allclose(terms["penalty"].item(), 0.3 * expected.mean(), rtol=1e-6)
    np.testing.assert_allclose(terms["loss"].item(), terms["reconstruction"].item() + 0.3 * expected.mean(), rtol=1e-9)


def test_cae_analytic_needs_sigmoid_or_tanh():
    with pytest.raises(ValueError, match="relu"):
        ContractiveAutoencoder(D, H, activation="relu")


# ------------------------------------------------------- training on digits ---
TRAINABLE = {
    "ae": (lambda: Autoencoder(784, 16), "pm1", 1e-2),
    "ae-bce": (lambda: Autoencoder(784, 16, output_activation="sigmoid", cost="bce"), "01", 1e-2),
    "dae": (lambda: DenoisingAutoencoder(784, 32, corruption="masking", level=0.5), "pm1", 1e-2),
    "cae": (lambda: ContractiveAutoencoder(784, 16, lam=1e-3), "01", 1e-2),
    "cae-generic": (lambda: ContractiveAutoencoder(784, 4, lam=1e-3, activation="tanh", generic=True), "01", 1e-2),
    "vae": (lambda: VAE(784, 32, 4), "01", 3e-3),
    "targetprop": (lambda: TargetProp(784, 16, 4, steps=5, z_lr=0.1), "pm1", 1e-2),
}


@pytest.mark.parametrize("kind", sorted(TRAINABLE))
def test_model_trains_on_bundled_digits(kind, digits):
    make, scale, lr = TRAINABLE[kind]
    model = make()
    train, test = (minae.tensor(a) for a in digits[scale])
    opt = minae.optim.Adam(model.parameters(), lr=lr)

    def test_loss():
        model.eval()
        with minae.no_grad():
            value = model.loss(test)["loss"].item()
        model.train()
        return value

    before = test_loss()
    for step in range(12):
        batch = train[(step % 4) * 64 : (step % 4 + 1) * 64]
        loss = model.loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = test_loss()
    assert math.isfinite(after) and after < 0.9 * before, (before, after)


# ------------------------------------------------------------------ errors ---
ALL_MODELS = {
    "ae": lambda: Autoencoder(D, H),
    "dae": lambda: DenoisingAutoencoder(D, H),
    "cae": lambda: ContractiveAutoencoder(D, H),
    "vae": lambda: VAE(D, H, Z),
    "targetprop": lambda: TargetProp(D, H, Z, steps=2),
}


@pytest.mark.parametrize("kind", sorted(ALL_MODELS))
def test_wrong_input_is_named(kind):
    model = ALL_MODELS[kind]()
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 6\), got \(3, 5\)") as info:
        model.loss(minae.rand(3, 5))
    assert type(model).__name__ in str(info.value)
    with pytest.raises(ValueError, match=r"\(N, 6\).*\(6,\)"):
        model.loss(minae.rand(6))
    with pytest.raises(ValueError, match=r"\(N, 6\).*\(2, 3, 6\)"):
        model.loss(minae.rand(2, 3, 6))
    with pytest.raises(TypeError, match="int64"):
        model.loss(minae.ones(3, 6, dtype=minae.int64))
    with pytest.raises(TypeError, match="float64.*float32"):
        model.loss(minae.rand(3, 6, dtype=minae.float64))
    with pytest.raises(TypeError, match="Tensor"):
        model.loss(np.ones((3, 6), dtype=np.float32))


def test_wrong_input_is_named_ebm():
    model = LatentEBM()
    with pytest.raises(ValueError, match=r"LatentEBM: expected input of shape \(N, 2\), got \(4, 3\)"):
        model.loss(minae.rand(4, 3))
    model = ConditionalLatentEBM(hidden=3)
    with pytest.raises(ValueError, match=r"\(N, 2\), got \(4, 3\)"):
        model.loss((minae.rand(4), minae.rand(4, 3)))


def test_vae_interpolate_names_a_wrong_image_size():
    model = VAE(D, H, Z)
    with pytest.raises(ValueError, match=r"\(N, 6\).*\(1, 5\)"):
        model.interpolate(minae.rand(5), minae.rand(5))


def test_wrong_device_is_named(device):
    if device == "cpu":
        pytest.skip("a device mismatch needs a GPU")
    model = VAE(D, H, Z).to(device)
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        model.loss(minae.rand(3, D))
    assert model.loss(minae.rand(3, D, device=device))["loss"].device == model.encoder[0].weight.device


@pytest.mark.parametrize("kind", sorted(ALL_MODELS))
def test_models_run_on_device(kind, device):
    model = ALL_MODELS[kind]().to(device)
    y = minae.rand(3, D, device=device)
    terms = model.loss(y)
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    assert str(terms["loss"].device).startswith(device)


# ----------------------------------------------- the CUDA paths (issue 13) ---
def _default_device_elsewhere(monkeypatch):
    """From here on the default device is a GPU that does not exist: any tensor made without naming a
    device fails, so a CPU model that still runs keeps its tensors on its own device."""
    monkeypatch.setattr(backend, "_default_device", backend.Device("cuda", 7))


def test_targetprop_latent_stays_on_the_models_device_cpu(monkeypatch):
    model = TargetProp(D, H, Z, steps=2)
    y = minae.rand(3, D)
    _default_device_elsewhere(monkeypatch)
    z_check, z_tilde = model.infer(y)
    assert z_check.device == z_tilde.device == "cpu"


def test_ebm_refined_latent_stays_on_the_models_device_cpu(monkeypatch):
    model = LatentEBM(n_z=8)
    y = minae.tensor([[1.0, 0.0], [0.0, 1.0]])
    _default_device_elsewhere(monkeypatch)
    assert model.argmin_z(y, refine_steps=2).device == "cpu"


def test_refined_latents_stay_on_device(device):
    tp = TargetProp(D, H, Z, steps=3).to(device)
    y = minae.rand(3, D, device=device)
    z_check, z_tilde, path = tp.infer(y, trajectory=True)
    assert all(t.device == device for t in [z_check, z_tilde, *path])
    terms = tp.loss(y)
    terms["loss"].backward()
    assert all(p.grad is not None and p.grad.device == device for p in tp.parameters())
    ebm = LatentEBM(n_z=8).to(device)
    z = ebm.argmin_z(minae.rand(4, 2, device=device), refine_steps=3)
    assert z.device == device and z.shape == (4,) and not z.requires_grad


def test_refined_latents_agree_across_devices(device):
    tp = TargetProp(D, H, Z, steps=3)
    y = minae.rand(3, D)
    expected = tp.infer(y)[0].numpy()
    got = tp.to(device).infer(y.to(device))[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_salt_and_pepper_on_device(device):
    y = minae.rand(64, 64, device=device)
    noisy = salt_and_pepper(y, 0.3)
    assert noisy.device == device and noisy.dtype == y.dtype
    a, h = noisy.numpy(), y.numpy()
    changed = a != h
    assert 0.2 < changed.mean() < 0.4
    assert set(np.unique(a[changed])) <= {h.min(), h.max()}
    fixed = salt_and_pepper(y, 1.0, low=-1.0, high=2.0).numpy()
    assert set(np.unique(fixed)) == {-1.0, 2.0}
    dae = DenoisingAutoencoder(D, H, corruption="salt_and_pepper", level=0.25).to(device)
    dae.loss(minae.rand(4, D, device=device))["loss"].backward()
    assert all(p.grad.device == device for p in dae.parameters())


def test_vae_bubble_distance_is_the_nearest_bubble_in_radii():
    minae.manual_seed(0)
    model = VAE(6, 5, 3)
    y = minae.tensor(np.random.default_rng(0).uniform(0, 1, (8, 6)), dtype=minae.float32)
    z = minae.tensor(np.random.default_rng(1).normal(0, 2, (5, 3)), dtype=minae.float32)
    with minae.no_grad():
        mu, logvar = (t.numpy().astype(np.float64) for t in model._encode(y))
    in_radii = (z.numpy()[:, None] - mu[None]) / np.exp(0.5 * logvar)[None]
    want = np.sqrt((in_radii**2).sum(-1)).min(1)
    np.testing.assert_allclose(model.bubble_distance(z, y).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(
        model.bubble_distance(minae.tensor(mu[:2], dtype=minae.float32), y).numpy(), 0, atol=1e-6
    )
    with pytest.raises(ValueError, match=r"z of shape \(N, 3\)"):
        model.bubble_distance(minae.randn(5, 4), y)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_cae_sensitivity_is_the_jacobian_along_a_unit_direction(activation):
    minae.manual_seed(0)
    gen = np.random.default_rng(0)
    y = gen.uniform(0, 1, (4, 5))
    for u in (gen.normal(0, 3, 5), gen.normal(0, 3, (4, 5))):
        got = {}
        for generic in (False, True):
            minae.manual_seed(0)
            model = ContractiveAutoencoder(5, 3, activation=activation, generic=generic).double()
            got[generic] = model.sensitivity(minae.tensor(y), minae.tensor(u)).numpy()
        w, b = model.encoder[0].weight.numpy(), model.encoder[0].bias.numpy()
        f = {"sigmoid": lambda a: 1 / (1 + np.exp(-a)), "tanh": np.tanh}[activation]
        unit, eps = u / np.linalg.norm(u, axis=-1, keepdims=True), 1e-6
        fd = np.linalg.norm((f((y + eps * unit) @ w.T + b) - f((y - eps * unit) @ w.T + b)) / (2 * eps), axis=1)
        np.testing.assert_allclose(got[False], fd, rtol=1e-6)
        np.testing.assert_allclose(got[True], fd, rtol=1e-6)
    with pytest.raises(ValueError, match=r"u must be a tensor of shape \(5,\) or \(4, 5\)"):
        model.sensitivity(minae.tensor(y), minae.tensor(np.ones(3)))
