"""Task 2.4: the contractive penalty ‖∂h/∂y‖²_F of h = f(W y + b) in closed form, per sample."""

import minae
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, gradcheck, named, rng


def encoder(seed, n=4, d_y=5, d_h=3):
    gen = rng(seed)
    return gen.standard_normal((n, d_y)), gen.standard_normal((d_h, d_y)), gen.standard_normal(d_h)


def jacobian_norms(y, w, b, activation):
    """‖J‖²_F per sample from the explicit Jacobian J = diag(f'(a)) W, a = W y + b."""
    a = y @ w.T + b
    slope = 1 / (1 + np.exp(-a)) * (1 - 1 / (1 + np.exp(-a))) if activation == "sigmoid" else 1 - np.tanh(a) ** 2
    return np.array([((slope[n][:, None] * w) ** 2).sum() for n in range(len(y))])


def code(y, w, b, activation):
    a = y @ w.T + b
    return 1 / (1 + np.exp(-a)) if activation == "sigmoid" else np.tanh(a)


def t(values, requires_grad=False):
    return minae.tensor(values, dtype=minae.float64, requires_grad=requires_grad)


def test_contractive_penalty_sigmoid():
    y, w, b = encoder(0)
    got = F.contractive_penalty(t(code(y, w, b, "sigmoid")), t(w), "sigmoid", reduction="none")
    assert_close(got, jacobian_norms(y, w, b, "sigmoid"), "contractive penalty per sample, sigmoid encoder")


def test_contractive_penalty_tanh_and_reductions():
    y, w, b = encoder(1)
    h, expected = t(code(y, w, b, "tanh")), jacobian_norms(y, w, b, "tanh")
    assert_close(F.contractive_penalty(h, t(w), "tanh", reduction="none"), expected, "contractive penalty, tanh")
    assert_close(F.contractive_penalty(h, t(w), "tanh"), expected.mean(), "contractive penalty, batch mean")
    assert_close(F.contractive_penalty(h, t(w), "tanh", reduction="sum"), expected.sum(), "contractive penalty, sum")


def test_contractive_penalty_backward():
    y, w, b = encoder(2)
    h = t(code(y, w, b, "sigmoid"), True)
    penalty = named(lambda h, w: F.contractive_penalty(h, w, "sigmoid", reduction="none"), "contractive_penalty(h, W)")
    gradcheck(penalty, [h, t(w, True)])


def test_contractive_penalty_through_the_encoder():
    # as a CAE trains it: W enters directly and through h = σ(W y + b)
    y, w, b = encoder(3)
    ys = t(y)

    def penalty(w, b):
        return F.contractive_penalty(minae.sigmoid(ys @ w.T + b), w, "sigmoid", reduction="none")

    gradcheck(named(penalty, "contractive_penalty(σ(W y + b), W)"), [t(w, True), t(b, True)])
