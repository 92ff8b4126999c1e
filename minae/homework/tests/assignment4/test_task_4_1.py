"""Task 4.1: the reparameterisation trick (z ~ N(μ, v), differentiable in μ and log v): distribution, gradients."""

import math

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, assert_within
from minae.models import VAE

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the reparameterisation trick: z is a sample of N(μ, v) written as a differentiable function of μ and log"
    " v, the randomness in a standard normal ε"
)

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
    zs = as_numpy(z).astype(np.float64)
    assert_close(zs.mean(axis=0), MU, "the mean of z over 20000 samples (μ)", rtol=0, atol=0.05)
    assert_close(zs.std(axis=0), [1.0, 2.0, 0.5], "the standard deviation of z (√v, not v)", rtol=0.03)
    # a mean and a standard deviation do not make a Gaussian: N(μ, v) puts 4.55% of its samples more than 2√v from μ
    # (a uniform ε of unit variance puts none there, a Laplace one 5.9%)
    beyond = (np.abs(zs - MU) > 2 * np.array([1.0, 2.0, 0.5])).mean()
    what = "the share of z more than two standard deviations from μ (ε ~ N(0, 1): 4.55%)"
    assert_within(beyond, 0.0455, 0.006, what)


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
    model = VAE(6, 5, 3)
    mu, logvar = codes(requires_grad=True)
    minae.manual_seed(2)
    z = model.reparameterise(mu, logvar)
    message = "z does not depend on μ and log v in the graph: the gradients cannot reach the encoder"
    assert_equal(z.requires_grad, True, message)
    if not z.requires_grad:
        return
    zs = z.numpy().astype(np.float64)
    # the gradient below is judged against this z (own=True), so z must be a real draw: z = μ + 0·log v would
    # pass that relation with no ε at all
    assert_close(zs.std(axis=0), [1.0, 2.0, 0.5], "the standard deviation of the z differentiated", rtol=0.03)
    z.sum().backward()
    assert_close(mu.grad, np.ones((N, 3)), "∂Σz/∂μ")
    # ∂z/∂log v by central differences of your own z, drawn with the same ε (the same seed) on both sides
    step, base = 1e-2, np.tile(LOGVAR, (N, 1))
    sides = []
    for sign in (1, -1):
        minae.manual_seed(2)
        with minae.no_grad():
            shifted = minae.tensor(base + sign * step, dtype=minae.float32)
            sides.append(model.reparameterise(minae.tensor(np.tile(MU, (N, 1)), dtype=minae.float32), shifted))
    slope = (as_numpy(sides[0]) - as_numpy(sides[1])) / (2 * step)
    what = "∂Σz/∂log v against central differences of z with the same ε"
    assert_close(logvar.grad, slope, what, rtol=1e-2, atol=2e-3, own=True)
