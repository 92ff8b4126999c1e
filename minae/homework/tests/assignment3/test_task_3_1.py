"""Task 3.1: the free energy F_β = −(1/β) log( (1/n) Σ_z e^(−β E(z)) ), with its two limits."""

import decimal
import math

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, gradcheck, named, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the softmin free energy F_β = −(1/β) log((1/n) Σ_z e^(−βE)) over dim, finite for any β and energy, with "
    "its two limits β = ∞ and β = 0"
)


def reference(energies, beta, axis=-1):
    """F_β straight from its definition, −(1/β) log((1/n) Σ e^(−βE)), in 40-digit decimal arithmetic.

    No rearrangement for stability: the decimals hold e^(−βE) for any β and energy used here.
    """
    e = np.moveaxis(np.asarray(energies, np.float64), axis, -1)
    with decimal.localcontext() as ctx:
        ctx.prec, ctx.Emin, ctx.Emax = 40, -(10**9), 10**9
        b = decimal.Decimal(repr(float(beta)))
        out = np.empty(e.shape[:-1])
        for idx in np.ndindex(*out.shape):
            row = [decimal.Decimal(repr(float(x))) for x in e[idx]]
            mean = sum((-b * x).exp() for x in row) / len(row)
            out[idx] = float(-mean.ln() / b)
    return out


def energies(shape, seed, high=5.0):
    return rng(seed).uniform(0, high, shape)


def t(values, requires_grad=False):
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_free_energy_finite_beta():
    e = energies((4, 6), 0)
    for beta in (0.3, 1.0, 10.0):
        assert_close(F.softmin_free_energy(t(e), beta), reference(e, beta), f"F_β for β = {beta}", rtol=1e-9)


# The two limits are checked against F_β of the definition at a huge and at a tiny β (40 digits): how F_β
# behaves there is the derivation HOMEWORK.md asks for, so the tests do not write the limits down.
HUGE, TINY = 1e8, 1e-12  # F_β is within log(n)/β of its β = ∞ limit, and within β·max E² of its β = 0 one


def test_free_energy_limits():
    e = energies((4, 6), 1)
    far = reference(e, HUGE)
    assert_close(F.softmin_free_energy(t(e), math.inf), far, "F_∞: F_β as β → ∞ (β = inf)", atol=1e-6)
    assert_close(F.softmin_free_energy(t(e), 0), reference(e, TINY), "F_0: F_β as β → 0 (β = 0)", atol=1e-9)


def test_free_energy_large_beta_and_energies():
    e = energies((3, 5), 2, high=1000.0)
    got = F.softmin_free_energy(minae.tensor(e, dtype=minae.float32), 1e4)
    assert_close(got, reference(e, 1e4), "F_β for β = 10⁴ and energies up to 1000, float32", rtol=1e-5)


def test_free_energy_dim_and_reduction():
    e = energies((5, 3, 4), 3)
    got = F.softmin_free_energy(t(e), 2.0, dim=1)
    assert_close(got, reference(e, 2.0, axis=1), "F_β over dim=1 of a (5, 3, 4) tensor", rtol=1e-9)
    # the two limits reduce the same dim as every finite β: the latents' axis need not be the last one
    got = F.softmin_free_energy(t(e), math.inf, dim=1)
    far = reference(e, HUGE, axis=1)
    assert_close(got, far, "F_∞ over dim=1 of a (5, 3, 4) tensor (the limit reduces dim, too)", atol=1e-6)
    got = F.softmin_free_energy(t(e), 0, dim=1)
    near = reference(e, TINY, axis=1)
    assert_close(got, near, "F_0 over dim=1 of a (5, 3, 4) tensor (the limit reduces dim, too)", atol=1e-9)
    mean = F.softmin_free_energy(t(e), 2.0, dim=0, reduction="mean")
    assert_close(mean, reference(e, 2.0, axis=0).mean(), "F_β over dim=0, reduction='mean'", rtol=1e-9)


def test_free_energy_decreases_with_beta():
    e = t(energies((2, 8), 4))
    values = [F.softmin_free_energy(e, beta).numpy() for beta in (0, 0.1, 1, 10, math.inf)]
    for (b0, f0), (b1, f1) in zip(zip((0, 0.1, 1, 10), values), zip((0.1, 1, 10, "inf"), values[1:])):
        grows = bool((f1 > f0 + 1e-12).any())
        assert_equal(grows, False, f"F_β must not grow with β: F at β = {b1} is {f1}, above F at β = {b0}, {f0}")


def test_free_energy_backward():
    e = t(energies((3, 5), 5), True)
    gradcheck(named(lambda e: F.softmin_free_energy(e, 1.0), "softmin_free_energy(E, β = 1)"), [e])
    gradcheck(named(lambda e: F.softmin_free_energy(e, math.inf), "softmin_free_energy(E, β = inf)"), [e])


def test_free_energy_energies_far_from_zero():
    # every e^(−βE) here is below the smallest float64 (e^(−800) ≈ 10^(−348)): F_β itself is an ordinary number
    e = 800.0 + energies((3, 5), 6, high=100.0)
    got = F.softmin_free_energy(t(e), 1.0)
    assert_close(got, reference(e, 1.0), "F_β for β = 1 and energies of 800 to 900 (e^(−βE) underflows)", rtol=1e-9)


def test_free_energy_gradient_at_large_beta():
    # F_β(E + c) = F_β(E) + c, so the gradient of each row sums to 1; it must stay finite however large β is
    e = t(energies((3, 6), 7), True)
    (g,) = minae.grad(F.softmin_free_energy(e, 1e3).sum(), e)
    g = g.numpy()
    assert_equal(bool(np.isfinite(g).all()), True, "∂F_β/∂E for β = 10³ must be finite (e^(−βE) underflows)")
    assert_close(g.sum(axis=-1), np.ones(3), "∂F_β/∂E for β = 10³: each row sums to 1 (F_β(E + c) = F_β(E) + c)")
