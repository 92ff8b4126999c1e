"""Task 2.3: KL(N(μ, v) ‖ N(0, I)) per sample, the closed form you derive from the two densities.

Here the values are checked against the definition, KL(q ‖ p) = E_q[log q(z) − log p(z)], estimated by
sampling z ~ q (so the tolerance is a few standard errors); your teacher's grader checks them exactly.
"""

import math

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, gradcheck, named, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the Gaussian KL(N(μ, v) ‖ N(0, 1)) = E_q[log q(z) − log p(z)], derived from the densities, summed over "
    "the latent dimensions"
)


def data(seed, n=4, d=3):
    gen = rng(seed)
    return gen.standard_normal((n, d)), gen.uniform(-2, 2, (n, d))


def t(values, requires_grad=False):
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def log_normal(z, mean, var):
    """log N(z; mean, var) summed over the last dimension."""
    return (-0.5 * (math.log(2 * math.pi) + np.log(var) + (z - mean) ** 2 / var)).sum(axis=-1)


def kl_by_sampling(mu, logvar, seed, samples=200_000):
    """E_q[log q(z) − log p(z)] for each row, by sampling z ~ q = N(μ, v); and its standard error."""
    gen = rng(seed)
    v = np.exp(logvar)
    z = gen.normal(mu[:, None, :], np.sqrt(v)[:, None, :], (mu.shape[0], samples, mu.shape[1]))  # z ~ N(μ, v)
    terms = log_normal(z, mu[:, None, :], v[:, None, :]) - log_normal(z, 0.0, 1.0)
    return terms.mean(axis=1), terms.std(axis=1) / math.sqrt(samples)


def test_kl_from_the_densities():
    mu, lv = data(0)
    estimate, error = kl_by_sampling(mu, lv, 100)
    got = F.gaussian_kl(t(mu), logvar=t(lv), reduction="none")
    assert_close(got, estimate, "KL per sample (logvar), against E_q[log q − log p] sampled", rtol=0,
                 atol=float(6 * error.max()))  # fmt: skip


def test_kl_of_the_prior_is_zero():
    zero = F.gaussian_kl(t(np.zeros((2, 3))), logvar=t(np.zeros((2, 3))), reduction="none")
    assert_close(zero, np.zeros(2), "KL(N(0, I) ‖ N(0, I))")


def test_kl_from_variance_and_reductions():
    mu, lv = data(1)
    per_sample = F.gaussian_kl(t(mu), logvar=t(lv), reduction="none").numpy()
    got = F.gaussian_kl(t(mu), var=t(np.exp(lv)), reduction="none")
    assert_close(got, per_sample, "KL per sample from var, against the same from logvar", own=True)
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv)), per_sample.mean(), "KL, batch mean", own=True)
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv), reduction="sum"), per_sample.sum(), "KL, summed", own=True)
    shared = F.gaussian_kl(t(mu), logvar=t(lv[0]), reduction="none")  # one log-variance (d,) for the batch
    full = F.gaussian_kl(t(mu), logvar=t(np.broadcast_to(lv[0], mu.shape).copy()), reduction="none").numpy()
    assert_close(shared, full, "KL with a shared logvar of shape (d,)", own=True)


def test_kl_backward():
    mu, lv = data(3)
    kl = named(lambda m, s: F.gaussian_kl(m, logvar=s, reduction="none"), "gaussian_kl(mu, logvar)")
    gradcheck(kl, [t(mu, True), t(lv, True)])
    kl_var = named(lambda m, v: F.gaussian_kl(m, var=v, reduction="none"), "gaussian_kl(mu, var)")
    gradcheck(kl_var, [t(mu, True), t(np.exp(lv), True)])


# BEGIN GRADER ONLY
def reference(mu, logvar):
    return 0.5 * (np.exp(logvar) - logvar - 1 + mu**2).sum(axis=-1)


def test_kl_exact():
    mu, lv = data(4)
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv), reduction="none"), reference(mu, lv), "KL per sample (logvar)")
    got = F.gaussian_kl(t(mu), var=t(np.exp(lv)), reduction="none")
    assert_close(got, reference(mu, lv), "KL per sample (var)")


def test_kl_large_logvar_float32():
    mu = minae.zeros(1, 4)
    lv = minae.tensor([[-60.0, -20.0, 20.0, 60.0]], requires_grad=True)
    kl = F.gaussian_kl(mu, logvar=lv, reduction="sum")
    expected = reference(np.zeros((1, 4)), np.array([[-60.0, -20.0, 20.0, 60.0]])).sum()
    assert_close(kl, expected, "KL for |log v| up to 60 in float32", rtol=1e-5)
    kl.backward()
    assert_close(lv.grad, 0.5 * (np.exp([[-60.0, -20.0, 20.0, 60.0]]) - 1), "∂KL/∂log v in float32", rtol=1e-5)


# END GRADER ONLY
