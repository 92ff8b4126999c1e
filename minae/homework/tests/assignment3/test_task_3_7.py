"""Task 3.7: ‖∂h/∂y‖²_F by autodiff, one backward pass per code unit, its graph kept (double backprop)."""

import minae
import minae.nn as nn
import minae.nn.functional as F
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, default_dtype, gradcheck, helper, named, rng
from minae.models import ContractiveAutoencoder

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the Jacobian penalty by double backprop: one backward per code unit gives that row of every sample's "
    "Jacobian, and the graph is kept so that the penalty trains the encoder"
)

N, D, H, K, LAM = 4, 5, 3, 2, 0.1


def layer(linear):
    return linear.weight.numpy().astype(np.float64), linear.bias.numpy().astype(np.float64)


def penalty_by_differences(layers, y, eps=1e-6):
    """‖∂h/∂y‖²_F per sample, each ∂h_j/∂y_i by central differences of the encoder's forward pass in NumPy."""

    def encode(x):
        for w, b, f in layers:
            x = f(x @ w.T + b)
        return x

    columns = [(encode(y + eps * e) - encode(y - eps * e)) / (2 * eps) for e in np.eye(y.shape[1])]
    return sum((c**2).sum(axis=1) for c in columns)


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def images(seed):
    return rng(seed).uniform(0, 1, (N, D))


def test_the_penalty_of_a_one_layer_encoder():
    model, y = ContractiveAutoencoder(D, H, lam=LAM, generic=True).double(), images(0)
    w, b = layer(model.encoder[0])
    want = penalty_by_differences([(w, b, sigmoid)], y)
    ys = minae.tensor(y, dtype=minae.float64)
    assert_close(model.jacobian_norm(ys), want, "‖∂h/∂y‖²_F by autodiff, one-layer sigmoid encoder", rtol=1e-6)
    assert_close(model.regulariser(model.encode(ys), ys), LAM * want, "R = λ ‖∂h/∂y‖²_F, generic=True", rtol=1e-6)


def test_the_penalty_of_a_two_layer_encoder():
    with default_dtype(minae.float64):
        encoder = nn.Sequential(nn.Linear(D, H), nn.Sigmoid(), nn.Linear(H, K), nn.Tanh())
    y = images(1)
    (w1, b1), (w2, b2) = layer(encoder[0]), layer(encoder[2])
    want = penalty_by_differences([(w1, b1, sigmoid), (w2, b2, np.tanh)], y)
    got = F.jacobian_penalty(encoder, minae.tensor(y, dtype=minae.float64), reduction="none")
    assert_close(got, want, "‖∂h/∂y‖²_F of a two-layer encoder (no closed form here)", rtol=1e-6)
    mean = F.jacobian_penalty(encoder, minae.tensor(y, dtype=minae.float64))
    assert_close(mean, want.mean(), "jacobian_penalty(…, reduction='mean')", rtol=1e-6)


def test_the_penalty_is_trained_by_double_backprop():
    # the penalty is a function of the encoder's W and b through the backward pass itself: create_graph=True
    with default_dtype(minae.float64):
        encoder = nn.Sequential(nn.Linear(D, H), nn.Tanh())
    y = minae.tensor(images(2), dtype=minae.float64)
    gen = rng(3)
    w = minae.tensor(gen.normal(0, 0.8, (H, D)), dtype=minae.float64, requires_grad=True)
    b = minae.tensor(gen.normal(0, 0.5, H), dtype=minae.float64, requires_grad=True)
    penalty = helper("jacobian_penalty_in_params")
    out = penalty(encoder, y, w, b)
    message = (
        "the Jacobian penalty records no graph to the encoder's parameters: keep the backward's graph (double backprop)"
    )
    assert_equal(out.requires_grad, True, message)
    if not out.requires_grad:
        return
    gradcheck(
        named(lambda w, b: penalty(encoder, y, w, b), "‖∂h/∂y‖²_F as a function of the encoder's W and b"), [w, b]
    )


def test_an_input_that_requires_grad_keeps_its_gradient_path():
    with default_dtype(minae.float64):
        encoder = nn.Sequential(nn.Linear(D, H), nn.Sigmoid())
    y = minae.tensor(images(4), dtype=minae.float64, requires_grad=True)
    gradcheck(named(lambda y: F.jacobian_penalty(encoder, y, reduction="none"), "‖∂h/∂y‖²_F as a function of y"), [y])
