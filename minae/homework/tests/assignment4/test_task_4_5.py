"""Task 4.5: the KL term per latent dimension (which dimensions the encoder uses) and the bubbles' radii √v."""

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, kl_from_densities, rng
from minae.models import VAE

N, D, H, Z = 50, 6, 5, 4


def setup(seed):
    minae.manual_seed(seed)
    model = VAE(D, H, Z)
    y = rng(seed).uniform(0, 1, (N, D))
    with minae.no_grad():
        mu, logvar = (as_numpy(t) for t in model._encode(minae.tensor(y, dtype=minae.float32)))
    return model, minae.tensor(y, dtype=minae.float32), mu, logvar


def test_kl_per_dimension():
    model, y, mu, logvar = setup(0)
    got = model.kl_per_dimension(y)
    want = kl_from_densities(mu, logvar).mean(axis=0)
    assert_close(got, want, "KL_i = ½ mean over the batch of (v_i − log v_i − 1 + μ_i²), one per dimension", rtol=1e-4)
    assert_close(as_numpy(got).sum(), want.sum(), "the dimensions' KL add up to the loss's mean KL", rtol=1e-4)


def test_an_unused_dimension_has_no_kl():
    # a dimension whose code is the prior's for every image (μ_i = 0, log v_i = 0) costs nothing
    model, y, _, _ = setup(1)
    last = model.encoder[2]
    w, b = last.weight.numpy(), last.bias.numpy()
    w[0], b[0], w[Z], b[Z] = 0, 0, 0, 0  # μ_0 = 0 and log v_0 = 0 whatever the image
    last.weight.data = minae.tensor(w).data
    last.bias.data = minae.tensor(b).data
    got = as_numpy(model.kl_per_dimension(y))
    assert_close(got[0], 0.0, "the KL of a dimension the encoder does not use (μ = 0, v = 1)", rtol=0, atol=1e-7)
    assert_equal(bool((got[1:] > 0).all()), True, "the used dimensions' KL must be positive")


def test_bubble_radii():
    model, y, mu, logvar = setup(2)
    got = model.bubble_radii(y)
    # BEGIN GRADER ONLY; in a copy: assert_close(as_numpy(got) ** 2, np.exp(logvar), "the radii squared (v)", rtol=2e-5)
    assert_close(got, np.exp(0.5 * logvar), "the bubbles' radii: the standard deviations √v (not v)", rtol=1e-5)
    # END GRADER ONLY
    assert_equal(got.requires_grad, False, "bubble_radii is a measurement: it must not build a graph")
