"""Task 3.5: the contractive autoencoder's penalty λ ‖∂h/∂y‖²_F in closed form, against the Jacobian's
definition (central differences), trained through h; and the code's sensitivity along a direction, ‖(∂h/∂y) û‖,
against central differences of h along û (what the penalty trades against the reconstruction, Fig. 4)."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, default_dtype, gradcheck, helper, named, rng
from minae.models import ContractiveAutoencoder

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the contractive autoencoder: the Jacobian's factorisation J = diag(f′) W gives the penalty and the "
    "code's sensitivity, and the penalty is trained through h"
)

N, D, H, LAM = 4, 5, 3, 0.1


def jacobian_norms(model, y, eps=1e-6):
    """‖∂h/∂y‖²_F per sample, each ∂h_j/∂y_i by central differences of h = f(W y + b): the Jacobian's definition."""
    w = model.encoder[0].weight.numpy().astype(np.float64)
    b = model.encoder[0].bias.numpy().astype(np.float64)
    f = {"sigmoid": lambda a: 1 / (1 + np.exp(-a)), "tanh": np.tanh}[model.activation]
    columns = [(f((y + eps * e) @ w.T + b) - f((y - eps * e) @ w.T + b)) / (2 * eps) for e in np.eye(y.shape[1])]
    return sum((c**2).sum(axis=1) for c in columns)


def images(seed):
    return rng(seed).uniform(0, 1, (N, D))


def test_penalty_sigmoid():
    model, y = ContractiveAutoencoder(D, H, lam=LAM), images(0)
    ys = minae.tensor(y, dtype=minae.float32)
    expected = jacobian_norms(model, y)
    assert_close(model.jacobian_norm(ys), expected, "jacobian_norm(y), sigmoid encoder", rtol=1e-4)
    assert_close(model.regulariser(model.encode(ys), ys), LAM * expected, "regulariser: λ ‖∂h/∂y‖²_F", rtol=1e-4)


def test_penalty_tanh():
    model, y = ContractiveAutoencoder(D, H, lam=LAM, activation="tanh"), images(1)
    ys = minae.tensor(y, dtype=minae.float32)
    expected = jacobian_norms(model, y)
    assert_close(model.jacobian_norm(ys), expected, "jacobian_norm(y), tanh encoder", rtol=1e-4)
    assert_close(model.regulariser(model.encode(ys), ys), LAM * expected, "regulariser, tanh encoder", rtol=1e-4)


def test_penalty_is_trained():
    # the penalty is part of the loss, and its gradient reaches the encoder's weights
    model, y = ContractiveAutoencoder(D, H, lam=LAM), minae.tensor(images(3), dtype=minae.float32)
    penalty = model.regulariser(model.encode(y), y).sum()
    assert_equal(penalty.requires_grad, True, "the contractive penalty does not depend on the encoder's parameters")
    if not penalty.requires_grad:
        return
    (gw,) = minae.grad(penalty, [model.encoder[0].weight])
    usable = bool(np.isfinite(gw.numpy()).all() and np.abs(gw.numpy()).max() > 0)
    assert_equal(usable, True, "the contractive penalty's gradient for the encoder's weight is zero or not finite")


def _gradcheck_in_w_and_b(activation, seed):
    # R depends on W directly and on W and b through h = f(W y + b): both paths are trained (never a detached h)
    with default_dtype(minae.float64):
        model = ContractiveAutoencoder(D, H, lam=LAM, activation=activation)
    y = minae.tensor(images(seed), dtype=minae.float64)
    gen = rng(seed + 1)
    w = minae.tensor(gen.normal(0, 0.8, (H, D)), dtype=minae.float64, requires_grad=True)
    b = minae.tensor(gen.normal(0, 0.5, H), dtype=minae.float64, requires_grad=True)
    penalty = helper("penalty_in_encoder_params")

    def regulariser(w, b):
        return penalty(model, y, w, b)

    name = f"the contractive penalty R(W, b) of a {activation} encoder, whose gradient flows through h = f(Wy + b) too"
    gradcheck(named(regulariser, name), [w, b])


def test_penalty_gradients_in_w_and_b():
    _gradcheck_in_w_and_b("sigmoid", 4)


def test_penalty_gradients_in_w_and_b_tanh():
    _gradcheck_in_w_and_b("tanh", 6)


def test_jacobian_norm_gradients_in_w_and_b():
    # ‖∂h/∂y‖²_F is differentiable in W and b like the penalty (generic=True gets it by double backprop): the
    # closed form from a detached h loses its dependence on b, and part of W's
    with default_dtype(minae.float64):
        model = ContractiveAutoencoder(D, H, lam=LAM)
    y = minae.tensor(images(8), dtype=minae.float64)
    gen = rng(9)
    w = minae.tensor(gen.normal(0, 0.8, (H, D)), dtype=minae.float64, requires_grad=True)
    b = minae.tensor(gen.normal(0, 0.5, H), dtype=minae.float64, requires_grad=True)
    norm = helper("jacobian_norm_in_encoder_params")

    def jacobian_norm(w, b):
        return norm(model, y, w, b)

    gradcheck(named(jacobian_norm, "jacobian_norm(y) as a function of W and b, through h = f(Wy + b) too"), [w, b])


def moved_along(model, y, u, eps=1e-6):
    """‖∂h/∂y · û‖ per sample by central differences of h = f(W y + b) along û = u / ‖u‖: its definition."""
    w = model.encoder[0].weight.numpy().astype(np.float64)
    b = model.encoder[0].bias.numpy().astype(np.float64)
    f = {"sigmoid": lambda a: 1 / (1 + np.exp(-a)), "tanh": np.tanh}[model.activation]
    unit = u / np.linalg.norm(u, axis=-1, keepdims=True)
    step = (f((y + eps * unit) @ w.T + b) - f((y - eps * unit) @ w.T + b)) / (2 * eps)
    return np.linalg.norm(step, axis=1)


def _check_sensitivity(activation, seed, per_sample):
    with default_dtype(minae.float64):
        model = ContractiveAutoencoder(D, H, lam=LAM, activation=activation)
    gen = rng(seed)
    last = model.encoder[0]
    last.weight.data = minae.tensor(gen.normal(0, 1.5, (H, D)), dtype=minae.float64).data  # units far apart
    y = images(seed)
    u = gen.normal(0, 3.0, (N, D) if per_sample else (D,))  # not of unit length: û = u / ‖u‖
    got = model.sensitivity(minae.tensor(y, dtype=minae.float64), minae.tensor(u, dtype=minae.float64))
    which = "one direction per sample" if per_sample else "one direction for every sample"
    assert_close(
        got,
        moved_along(model, y, u),
        f"sensitivity(y, u), {activation} encoder, {which}: how far h moves per unit step of y along û = u/‖u‖, "
        "‖(∂h/∂y) û‖ (central differences of h along û)",
        rtol=1e-5,
    )


def test_sensitivity_sigmoid():
    _check_sensitivity("sigmoid", 8, per_sample=True)


def test_sensitivity_tanh():
    _check_sensitivity("tanh", 9, per_sample=False)


def test_sensitivity_tanh_per_sample():
    _check_sensitivity("tanh", 10, per_sample=True)
