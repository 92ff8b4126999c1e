"""Task 3.3: the autoencoder's energy F(y) = C(y, ỹ) + R(h) and its loss, against NumPy;
the denoising autoencoder's in training."""

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, assert_shape, gradcheck, helper, named, rng
from minae.models import Autoencoder, DenoisingAutoencoder, reconstruction_cost

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the autoencoder's loss F(y) = C(y, ỹ) + R(h): a denoising one in training encodes one corruption ŷ of y "
    "and compares with the clean y"
)

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
    assert_close(
        terms["reconstruction"],
        mse(y, y_tilde),
        "the 'reconstruction' term with a penalty (C alone: R is the 'penalty' term, the two add up to 'loss')",
        rtol=1e-4,
    )


def test_autoencoder_loss_bce():
    model, y = Autoencoder(D, H, output_activation="sigmoid", cost="bce"), images(3, low=0.0)
    got = model.loss(minae.tensor(y, dtype=minae.float32), reduction="mean")
    h, y_tilde = forward(model, y)
    assert_close(got["loss"], bce(y, y_tilde).mean(), "the cross-entropy autoencoder's loss", rtol=1e-4)


def test_autoencoder_loss_backward():
    model = Autoencoder(D, H, sparsity=0.05).double()
    y = minae.tensor(images(4), dtype=minae.float64, requires_grad=True)
    gradcheck(named(lambda y: model.loss(y)["loss"], "Autoencoder.loss(y)"), [y])


def _which_loss(got, candidates):
    """The name of the candidate loss the student's values match, or a sentence saying none does."""
    for name, values in candidates.items():
        if values.shape == got.shape and np.allclose(got, values, rtol=1e-4, atol=1e-6):
            return name
    return "none of C(y, Dec(Enc(ŷ))), C(y, Dec(Enc(y))), C(ŷ, Dec(Enc(ŷ)))"


def _check_denoising(model, y, y_hat, cost, reduction="none"):
    """Train-mode checks of a DAE whose corruption is replaced by ŷ = ``y_hat`` (known to the test)."""
    model.train()
    record = helper("fixed_corruption")(model, y_hat - y)  # ŷ = y + (ŷ − y): the corruption is known to this test
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction=reduction)
    # the words follow the student's own count (the grader shows the student's run's message: a message chosen
    # by the reference's count would tell a loss that corrupts twice that it never corrupts)
    message = (
        "the denoising autoencoder's loss never corrupts its input: the encoder must see self.corrupt(y), "
        "called once per loss ({actual} calls)"
        if not record.calls
        else "the denoising autoencoder's loss corrupts more than once: one ŷ = self.corrupt(y) per loss, which the "
        "encoder sees, while the cost compares with the clean y ({actual} calls)"
    )
    assert_equal(len(record.calls), 1, message)
    average = (lambda c: c) if reduction == "none" else (lambda c: np.asarray(c.mean()))
    right = average(cost(y, forward(model, y_hat)[1]))
    candidates = {
        "C(y, Dec(Enc(ŷ)))": right,
        "C(y, Dec(Enc(y))): the input was never corrupted": average(cost(y, forward(model, y)[1])),
        "C(ŷ, Dec(Enc(ŷ))): the target is the corrupted input, not the clean y": average(
            cost(y_hat, forward(model, y_hat)[1])
        ),
    }
    diagnosis = _which_loss(as_numpy(terms["reconstruction"]), candidates)
    assert_equal(
        diagnosis,
        "C(y, Dec(Enc(ŷ)))",
        "the denoising autoencoder's training loss is {actual}; it must be {expected}: the encoder sees the "
        "corrupted ŷ, and the cost compares the reconstruction with the clean y",
    )
    assert_close(terms["loss"], right, "the DAE's training loss F(y) = C(y, Dec(Enc(ŷ)))", rtol=1e-4)
    model.eval()
    clean = model.loss(minae.tensor(y, dtype=minae.float32), reduction=reduction)
    want = average(cost(y, forward(model, y)[1]))
    assert_close(clean["loss"], want, "the DAE's loss in eval mode (no corruption)", rtol=1e-4)


def test_denoising_loss_in_training():
    # the denoising autoencoder: the encoder sees the corrupted ŷ, the cost compares Dec(Enc(ŷ)) with the clean y
    y = images(5)
    y_hat = y + rng(6).normal(0, 0.3, (N, D))
    _check_denoising(DenoisingAutoencoder(D, H, corruption="gaussian", level=0.3), y, y_hat, mse)


def test_denoising_loss_in_training_masked_batch_mean():
    y = images(7)
    y_hat = y * (rng(8).uniform(0, 1, (N, D)) > 0.4) / 0.6  # a fixed mask, as masking noise draws one
    _check_denoising(DenoisingAutoencoder(D, H, corruption="masking", level=0.4), y, y_hat, mse, reduction="mean")


def test_denoising_loss_in_training_cross_entropy():
    y = images(9, low=0.0)
    hit = rng(10).uniform(0, 1, (N, D))
    y_hat = np.where(hit < 0.15, 0.0, np.where(hit < 0.3, 1.0, y))  # salt and pepper on a fifth of the pixels
    model = DenoisingAutoencoder(D, H, corruption="salt_and_pepper", level=0.3, output_activation="sigmoid", cost="bce")
    _check_denoising(model, y, y_hat, bce)


def _check_sparse_denoising(model, y, y_hat, cost):
    """A sparse DAE in training: R(h) is on the code of this forward pass, h = Enc(ŷ), not on Enc(y)."""
    model.train()
    helper("fixed_corruption")(model, y_hat - y)
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction="none")
    h_hat, y_tilde = forward(model, y_hat)
    lam = model.sparsity
    assert_equal(
        "penalty" in terms, True, "a sparse denoising autoencoder's loss has a 'penalty' term R(h) in training"
    )
    if "penalty" not in terms:
        return
    candidates = {
        "R(Enc(ŷ))": lam * np.abs(h_hat).sum(axis=1),
        "R(Enc(y)): the penalty is on the clean y's code, not on the h the decoder received": lam
        * np.abs(forward(model, y)[0]).sum(axis=1),
    }
    diagnosis = _which_loss(as_numpy(terms["penalty"]), candidates)
    if diagnosis.startswith("none of"):
        diagnosis = "none of R(Enc(ŷ)), R(Enc(y))"
    assert_equal(
        diagnosis,
        "R(Enc(ŷ))",
        "the sparse denoising autoencoder's penalty is {actual}; it must be {expected}: F(y) = C(y, ỹ) + R(h) "
        "holds one code, the h of this forward pass, and in training that is the code of the corrupted ŷ",
    )
    assert_close(
        terms["loss"],
        cost(y, y_tilde) + lam * np.abs(h_hat).sum(axis=1),
        "the sparse DAE's training energy F(y) = C(y, Dec(h)) + λ‖h‖₁ with h = Enc(ŷ)",
        rtol=1e-4,
    )


def test_sparse_denoising_penalty_on_the_corrupted_code():
    y = images(11)
    y_hat = y + rng(12).normal(0, 0.4, (N, D))
    model = DenoisingAutoencoder(D, H, corruption="gaussian", level=0.4, sparsity=0.2)
    _check_sparse_denoising(model, y, y_hat, mse)


def test_sparse_denoising_penalty_on_the_corrupted_code_masked():
    y = images(13, low=0.0)
    y_hat = y * (rng(14).uniform(0, 1, (N, D)) > 0.5) / 0.5
    model = DenoisingAutoencoder(D, H, corruption="masking", level=0.5, sparsity=0.3, activation="sigmoid")
    _check_sparse_denoising(model, y, y_hat, mse)
