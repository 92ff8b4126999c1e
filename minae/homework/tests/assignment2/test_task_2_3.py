"""Task 2.3: KL(N(μ, v) ‖ N(0, I)) = ½ Σ_i (v_i − log v_i − 1 + μ_i²), per sample."""

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, gradcheck, named, rng


def reference(mu, logvar):
    return 0.5 * (np.exp(logvar) - logvar - 1 + mu**2).sum(axis=-1)


def data(seed, n=4, d=3):
    gen = rng(seed)
    return gen.standard_normal((n, d)), gen.uniform(-2, 2, (n, d))


def t(values, requires_grad=False):
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_kl_from_logvar():
    mu, lv = data(0)
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv), reduction="none"), reference(mu, lv), "KL per sample (logvar)")
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv)), reference(mu, lv).mean(), "KL, batch mean (logvar)")
    assert_close(F.gaussian_kl(t(mu), logvar=t(lv), reduction="sum"), reference(mu, lv).sum(), "KL, summed (logvar)")


def test_kl_from_variance():
    mu, lv = data(1)
    got = F.gaussian_kl(t(mu), var=t(np.exp(lv)), reduction="none")
    assert_close(got, reference(mu, lv), "KL per sample (var)")


def test_kl_of_the_prior_is_zero_and_variance_can_be_shared():
    zero = F.gaussian_kl(t(np.zeros((2, 3))), logvar=t(np.zeros((2, 3))), reduction="none")
    assert_close(zero, np.zeros(2), "KL(N(0, I) ‖ N(0, I))")
    mu, lv = data(2)
    shared = F.gaussian_kl(t(mu), logvar=t(lv[0]), reduction="none")  # one log-variance (d,) for the batch
    assert_close(shared, reference(mu, np.broadcast_to(lv[0], mu.shape)), "KL with a shared logvar of shape (d,)")


def test_kl_backward():
    mu, lv = data(3)
    kl = named(lambda m, s: F.gaussian_kl(m, logvar=s, reduction="none"), "gaussian_kl(mu, logvar)")
    gradcheck(kl, [t(mu, True), t(lv, True)])
    kl_var = named(lambda m, v: F.gaussian_kl(m, var=v, reduction="none"), "gaussian_kl(mu, var)")
    gradcheck(kl_var, [t(mu, True), t(np.exp(lv), True)])


def test_kl_large_logvar_float32():
    mu = minae.zeros(1, 4)
    lv = minae.tensor([[-60.0, -20.0, 20.0, 60.0]], requires_grad=True)
    kl = F.gaussian_kl(mu, logvar=lv, reduction="sum")
    expected = reference(np.zeros((1, 4)), np.array([[-60.0, -20.0, 20.0, 60.0]])).sum()
    assert_close(kl, expected, "KL for |log v| up to 60 in float32", rtol=1e-5)
    kl.backward()
    assert_close(lv.grad, 0.5 * (np.exp([[-60.0, -20.0, 20.0, 60.0]]) - 1), "∂KL/∂log v in float32", rtol=1e-5)
