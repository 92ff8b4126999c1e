"""Task 4.1: the reparameterisation z = μ + √v ⊙ ε: its distribution and its gradients."""

import math

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal
from minae.models import VAE

MU = [1.0, -2.0, 0.5]
LOGVAR = [0.0, math.log(4.0), math.log(0.25)]  # standard deviations 1, 2, 0.5
N = 20000


def codes(requires_grad=False):
    mu = minae.tensor(np.tile(MU, (N, 1)), dtype=minae.float32, requires_grad=requires_grad)
    logvar = minae.tensor(np.tile(LOGVAR, (N, 1)), dtype=minae.float32, requires_grad=requires_grad)
    return mu, logvar


def test_samples_have_the_right_mean_and_standard_deviation():
    minae.manual_seed(0)
    model = VAE(6, 5, 3)
    model.train()
    mu, logvar = codes()
    z = model.reparameterise(mu, logvar)
    got = [tuple(z.shape), str(z.dtype)]
    assert_equal(got, [(N, 3), "float32"], "z must have μ's shape (N, 3) and dtype float32, got {actual}")
    zs = z.numpy().astype(np.float64)
    assert_close(zs.mean(axis=0), MU, "the mean of z over 20000 samples (μ)", rtol=0, atol=0.05)
    assert_close(zs.std(axis=0), [1.0, 2.0, 0.5], "the standard deviation of z (√v = exp(½ log v))", rtol=0.03)


def test_samples_are_random_in_training_and_the_mean_in_eval():
    minae.manual_seed(1)
    model = VAE(6, 5, 3)
    mu, logvar = codes()
    a, b = model.reparameterise(mu, logvar).numpy(), model.reparameterise(mu, logvar).numpy()
    message = "two calls of reparameterise in training mode gave the same z: ε must be drawn anew"
    assert_equal(bool(np.array_equal(a, b)), False, message)
    model.eval()
    assert_close(model.reparameterise(mu, logvar), np.tile(MU, (N, 1)), "z in eval mode (μ)")


def test_gradients_reach_mu_and_logvar():
    minae.manual_seed(2)
    model = VAE(6, 5, 3)
    mu, logvar = codes(requires_grad=True)
    z = model.reparameterise(mu, logvar)
    message = "z does not depend on μ and log v in the graph: the gradients cannot reach the encoder"
    assert_equal(z.requires_grad, True, message)
    if not z.requires_grad:
        return
    zs = z.numpy().astype(np.float64)
    # the gradient below is judged against this z (own=True), so z must be a real draw: ½ (z − μ) is 0 for
    # z = μ + 0·log v, whose gradient 0 would pass the relation with no ε at all
    assert_close(zs.std(axis=0), [1.0, 2.0, 0.5], "the standard deviation of the z differentiated", rtol=0.03)
    z.sum().backward()
    # ∂z/∂μ = 1 and ∂z/∂log v = ½ exp(½ log v) ε = ½ (z − μ)
    assert_close(mu.grad, np.ones((N, 3)), "∂Σz/∂μ")
    half = 0.5 * (zs - np.tile(MU, (N, 1)))
    assert_close(logvar.grad, half, "∂Σz/∂log v = ½ (z − μ)", rtol=1e-4, atol=1e-5, own=True)
