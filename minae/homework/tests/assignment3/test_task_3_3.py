"""Task 3.3: the autoencoder's energy F(y) = C(y, ỹ) + R(h) and its loss, against NumPy."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, assert_shape, gradcheck, named, rng
from minae.models import Autoencoder, reconstruction_cost

N, D, H = 5, 6, 3


def layer(linear):
    return linear.weight.numpy().astype(np.float64), linear.bias.numpy().astype(np.float64)


def forward(model, y):
    """h and ỹ of a one-layer encoder and decoder, in NumPy, from the model's own weights."""
    act = {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "identity": lambda a: a}
    (w_h, b_h), (w_y, b_y) = layer(model.encoder[0]), layer(model.decoder[0])
    h = act[model.activation](y @ w_h.T + b_h)
    return h, act[model.output_activation](h @ w_y.T + b_y)


def mse(y, y_tilde):
    return ((y - y_tilde) ** 2).sum(axis=1)


def bce(y, y_tilde):
    return -(y * np.log(y_tilde) + (1 - y) * np.log(1 - y_tilde)).sum(axis=1)


def images(seed, low=-1.0):
    return rng(seed).uniform(low, 1, (N, D))


def test_reconstruction_cost():
    gen = rng(0)
    y, y_tilde = gen.uniform(0, 1, (N, D)), gen.uniform(0.05, 0.95, (N, D))
    ys, yts = minae.tensor(y, dtype=minae.float64), minae.tensor(y_tilde, dtype=minae.float64)
    assert_close(reconstruction_cost(ys, yts, "mse"), mse(y, y_tilde), "C = ‖y − ỹ‖² per sample", rtol=1e-9)
    assert_close(reconstruction_cost(ys, yts, "bce"), bce(y, y_tilde), "C = binary cross-entropy per sample", rtol=1e-9)


def test_autoencoder_loss_mse():
    model, y = Autoencoder(D, H), images(1)
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction="none")
    h, y_tilde = forward(model, y)
    assert_shape(terms["loss"], (N,), "loss(y, reduction='none')['loss']")
    assert_close(terms["reconstruction"], mse(y, y_tilde), "the reconstruction term C per sample", rtol=1e-4)
    assert_close(terms["loss"], mse(y, y_tilde), "F(y) = C(y, ỹ) with no penalty", rtol=1e-4)
    assert_close(
        model.loss(minae.tensor(y, dtype=minae.float32))["loss"],
        mse(y, y_tilde).mean(),
        "the loss, batch mean",
        rtol=1e-4,
    )


def test_autoencoder_loss_with_sparsity():
    model, y = Autoencoder(D, H, sparsity=0.1), images(2)
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction="none")
    h, y_tilde = forward(model, y)
    assert_equal(
        sorted(terms),
        sorted(set(terms) | {"penalty"}),
        "with sparsity the loss has a 'penalty' term, got only {actual}",
    )
    if "penalty" not in terms:
        return
    assert_close(terms["penalty"], 0.1 * np.abs(h).sum(axis=1), "R(h) = λ ‖h‖₁ per sample", rtol=1e-4, atol=1e-6)
    assert_close(terms["loss"], mse(y, y_tilde) + 0.1 * np.abs(h).sum(axis=1), "F(y) = C + R", rtol=1e-4)


def test_autoencoder_loss_bce():
    model, y = Autoencoder(D, H, output_activation="sigmoid", cost="bce"), images(3, low=0.0)
    got = model.loss(minae.tensor(y, dtype=minae.float32), reduction="mean")
    h, y_tilde = forward(model, y)
    assert_close(got["loss"], bce(y, y_tilde).mean(), "the cross-entropy autoencoder's loss", rtol=1e-4)


def test_autoencoder_loss_backward():
    model = Autoencoder(D, H, sparsity=0.05).double()
    y = minae.tensor(images(4), dtype=minae.float64, requires_grad=True)
    gradcheck(named(lambda y: model.loss(y)["loss"], "Autoencoder.loss(y)"), [y])
