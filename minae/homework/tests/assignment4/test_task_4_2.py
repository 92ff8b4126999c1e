"""Task 4.2: the VAE's free energy F̃(y) = C(y, ỹ) + β·KL, against NumPy (in eval mode, where z = μ)."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, assert_shape, rng
from minae.models import VAE

N, D, H, Z, BETA = 4, 6, 5, 2, 0.5


def model_and_data(seed):
    minae.manual_seed(seed)
    model = VAE(D, H, Z, beta=BETA)
    model.eval()  # z = μ: no noise, so the loss can be compared exactly
    y = rng(seed).uniform(0, 1, (N, D))
    return model, y


def reference(model, y):
    """C, KL and C + β·KL per sample, from the model's own encoder and decoder outputs."""
    with minae.no_grad():
        out = model.encoder(minae.tensor(y, dtype=minae.float32)).numpy().astype(np.float64)
        mu, logvar = out[:, :Z], out[:, Z:]
        logits = model.decoder(minae.tensor(mu, dtype=minae.float32)).numpy().astype(np.float64)
    cost = (np.logaddexp(0, logits) - logits * y).sum(axis=1)
    kl = 0.5 * (np.exp(logvar) - logvar - 1 + mu**2).sum(axis=1)
    return cost, kl, cost + BETA * kl


def test_loss_terms_per_sample():
    model, y = model_and_data(0)
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction="none")
    for key in ("loss", "reconstruction", "kl"):
        message = f"VAE.loss returns the terms 'loss', 'reconstruction' and 'kl'; '{key}' is missing"
        assert_equal(key in terms, True, message)
        if key not in terms:
            return
        assert_shape(terms[key], (N,), f"VAE.loss(y, reduction='none')['{key}']")
    cost, kl, loss = reference(model, y)
    assert_close(terms["reconstruction"], cost, "the reconstruction term C (BCE summed over pixels)", rtol=1e-4)
    assert_close(terms["kl"], kl, "the KL term per sample", rtol=1e-4, atol=1e-6)
    assert_close(terms["loss"], loss, "F̃ = C + β·KL per sample (β = 0.5)", rtol=1e-4)


def test_loss_batch_mean_and_energy():
    model, y = model_and_data(1)
    cost, kl, loss = reference(model, y)
    ys = minae.tensor(y, dtype=minae.float32)
    terms = model.loss(ys)
    assert_close(terms["loss"], loss.mean(), "the loss, averaged over the batch", rtol=1e-4)
    assert_close(terms["kl"], kl.mean(), "the KL term, averaged over the batch", rtol=1e-4, atol=1e-6)
    assert_close(model.energy(ys), loss, "energy(y) = F̃(y) per sample", rtol=1e-4)


def test_loss_trains_encoder_and_decoder():
    model, y = model_and_data(2)
    model.loss(minae.tensor(y, dtype=minae.float32))["loss"].backward()
    for name, p in model.named_parameters():
        usable = p.grad is not None and bool(np.isfinite(p.grad.numpy()).all() and np.abs(p.grad.numpy()).max() > 0)
        assert_equal(usable, True, f"the loss gives the parameter {name} no usable gradient")
