"""Task 2.2: binary cross-entropy from logits, ℓ(x, t) = −[t log σ(x) + (1 − t) log(1 − σ(x))], fused.

The values here are checked against that definition where float64 can evaluate it (moderate logits), the
backward against finite differences. Your teacher's grader also checks logits up to ±100, where the
definition itself overflows and only a stable form stays exact.
"""

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, gradcheck, gradgradcheck, named, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "binary cross-entropy with logits in a stable form: the same loss, rewritten so that no e^x of a large x "
    "is taken, with the short derivative σ(x) − t as its backward"
)


def bce(x, y):
    return F.binary_cross_entropy_with_logits(x, y, reduction="none")


def by_definition(x, y):
    """−[y log σ(x) + (1 − y) log(1 − σ(x))] in float64, as written (fine for |x| up to about 30)."""
    s = 1 / (1 + np.exp(-np.asarray(x, np.float64)))
    return -(y * np.log(s) + (1 - y) * np.log(1 - s))


def data(shape, seed, scale=3.0):
    gen = rng(seed)
    return gen.normal(0, scale, shape), gen.uniform(0, 1, shape)


def test_bce_with_logits_forward():
    x, y = data((4, 5), 0)
    got = bce(minae.tensor(x, dtype=minae.float64), minae.tensor(y, dtype=minae.float64))
    assert_close(got, by_definition(x, y), "BCE with logits, float64", rtol=1e-9, atol=1e-12)
    got32 = bce(minae.tensor(x, dtype=minae.float32), minae.tensor(y, dtype=minae.float32))
    assert_equal(str(got32.dtype), "float32", "BCE with logits of float32 inputs gave dtype {actual}")
    assert_close(got32, by_definition(x.astype(np.float32), y.astype(np.float32)), "BCE with logits, float32",
                 rtol=1e-5, atol=1e-6)  # fmt: skip


def test_bce_with_logits_backward():
    x, y = data((3, 4), 1)
    xs = minae.tensor(x, dtype=minae.float64, requires_grad=True)
    ys = minae.tensor(y, dtype=minae.float64, requires_grad=True)
    gradcheck(named(bce, "bce_with_logits(x, y)"), [xs, ys])


def test_bce_with_logits_double_backward():
    x, y = data((2, 3), 2)
    ys = minae.tensor(y, dtype=minae.float64)
    xs = minae.tensor(x, dtype=minae.float64, requires_grad=True)
    gradgradcheck(named(lambda x: bce(x, ys), "bce_with_logits(x, y)"), [xs])
    # the gradient that backward records for a second derivative (create_graph=True) is the same ∂ℓ/∂x as the
    # plain one: its second derivative alone cannot tell (a term constant in x has none)
    (recorded,) = minae.grad(bce(xs, ys).sum(), xs, create_graph=True)
    (plain,) = minae.grad(bce(xs, ys).sum(), xs)
    what = "∂ℓ/∂x recorded with create_graph=True (the backward's graph-building branch), against the plain one"
    assert_close(recorded, plain.numpy(), what, rtol=1e-12, atol=1e-15)


# BEGIN GRADER ONLY
def stable(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.logaddexp(0.0, x) - x * y


def sigma(x):
    return 0.5 * (1 + np.tanh(0.5 * np.asarray(x, np.float64)))


def large_logits(x, dtype, sign):
    """ℓ at logits far from 0, where e^x (or σ(x) rounded to 0 or 1) breaks the definition, for three targets."""
    for target in (0.0, 1.0, 0.3):
        y = np.full_like(x, target)
        got = bce(minae.tensor(x, dtype=dtype), minae.tensor(y, dtype=dtype))
        what = (
            f"BCE with logits for large {sign} x, {dtype}, target {target} (e^x of a large x overflows and σ(x) "
            "rounds to 0 or 1 there: a stable form, through |x|)"
        )
        assert_close(got, stable(x, y), what, rtol=1e-5, atol=1e-6)


def test_bce_with_logits_large_logits():
    large_logits(np.array([0.0, 5.0, 30.0, 60.0, 100.0]), minae.float32, "positive")


def test_bce_with_logits_large_negative_logits():
    large_logits(np.array([-100.0, -60.0, -30.0, -5.0, 0.0]), minae.float32, "negative")


def test_bce_with_logits_large_logits_float64():
    large_logits(np.array([-800.0, -40.0, 40.0, 800.0]), minae.float64, "positive and negative")


def test_bce_with_logits_gradient_for_large_logits():
    x = np.array([-100.0, -30.0, -5.0, 0.0, 5.0, 30.0, 100.0], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 1.0, 0.0], dtype=np.float32)
    xs = minae.tensor(x, requires_grad=True)
    bce(xs, minae.tensor(y)).backward(minae.ones(7))
    assert_close(xs.grad, sigma(x) - y, "∂ℓ/∂x for large |x|, float32", rtol=1e-5, atol=1e-7)


def test_bce_with_logits_tiny_losses_keep_their_digits():
    # for t = 0 and x ≪ 0, ℓ = log(1 + e^x) is tiny: 1 + e rounds it away (x ≫ 0 with t = 1 is left out, where
    # a log-sum-exp form minus x·t loses the same digits to cancellation instead, a much smaller matter)
    x = np.array([-80.0, -60.0, -40.0])
    t = np.zeros_like(x)
    for dtype, rtol in ((minae.float64, 1e-12), (minae.float32, 1e-5)):
        got = bce(minae.tensor(x, dtype=dtype), minae.tensor(t, dtype=dtype))
        what = f"BCE with logits where the loss is tiny (t = 0, x ≪ 0), {dtype}: log(1 + e) of a tiny e loses it"
        assert_close(got, np.log1p(np.exp(x)), what, rtol=rtol, atol=0)


# END GRADER ONLY
