"""Task 4.2: the VAE's free energy F̃(y) = C(y, ỹ) + β·KL, against NumPy: in eval mode (z = μ) and in training,
where the decoder must see a sampled z (a stand-in sampler replaces task 4.1's, so this task stands alone)."""

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, assert_shape, helper, kl_from_densities, rng
from minae.models import VAE

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the VAE's free energy F̃ = C(y, Dec(z)) + β·KL per sample, with z sampled in training (the mean in eval)"
)

N, D, H, Z, BETA = 4, 6, 5, 2, 0.5


def model_and_data(seed):
    minae.manual_seed(seed)
    model = VAE(D, H, Z, beta=BETA)
    model.eval()  # z = μ: no noise, so the loss can be compared exactly
    y = rng(seed).uniform(0, 1, (N, D))
    return model, y


def bce_of_decoder(model, z, y):
    """C(y, Dec(z)) per sample: the cross-entropy of σ(logits) with y, from the decoder's own logits at z."""
    with minae.no_grad():
        logits = model.decoder(minae.tensor(z, dtype=minae.float32)).numpy().astype(np.float64)
    return (np.logaddexp(0, logits) - logits * y).sum(axis=1)


def reference(model, y):
    """C, KL and C + β·KL per sample, from the model's own encoder and decoder outputs."""
    with minae.no_grad():
        out = model.encoder(minae.tensor(y, dtype=minae.float32)).numpy().astype(np.float64)
        mu, logvar = out[:, :Z], out[:, Z:]
    cost = bce_of_decoder(model, mu, y)
    kl = kl_from_densities(mu, logvar).sum(axis=1)
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


def _check_training_loss(seed, beta, reduction):
    # in training the decoder sees z drawn by self.reparameterise(μ, log v), and C compares its output with y
    minae.manual_seed(seed)
    model = VAE(D, H, Z, beta=beta)
    model.train()
    y = rng(seed).uniform(0, 1, (N, D))
    with minae.no_grad():
        mu, logvar = (as_numpy(t) for t in model._encode(minae.tensor(y, dtype=minae.float32)))
    sampler = helper("standin_sampler")(model)  # z = μ + σ(log v) ⊙ ε: a stand-in, not task 4.1's answer
    decoder = helper("capture_decoder")(model)
    terms = model.loss(minae.tensor(y, dtype=minae.float32), reduction=reduction)
    calls = len(sampler.calls)
    message = (
        "VAE.loss must sample z with self.reparameterise(μ, log v) in training: {actual} calls "
        "(a loss that decodes μ never samples)"
    )
    assert_equal(calls, 1, message)
    if calls != 1:
        return
    got_mu, got_second = sampler.calls[0]
    assert_close(
        got_mu, mu, "the first argument of reparameterise: μ, the encoder's first output", rtol=1e-5, atol=1e-6
    )
    what = "the second argument of reparameterise: log v, the encoder's second output (not v = exp(log v))"
    assert_close(got_second, logvar, what, rtol=1e-5, atol=1e-6)
    z = as_numpy(sampler.outputs[0])
    seen = [as_numpy(s) for s in decoder.seen]
    assert_equal(len(seen), 1, "the loss should run the decoder once, on the sampled z: it ran {actual} times")
    if len(seen) != 1:
        return
    assert_close(
        seen[0], z, "what the decoder receives in training: the sampled z, not μ", rtol=1e-6, atol=1e-7, own=True
    )
    cost = bce_of_decoder(model, z, y)
    kl = kl_from_densities(mu, logvar).sum(axis=1)
    if reduction == "mean":
        cost, kl = np.asarray(cost.mean()), np.asarray(kl.mean())
    assert_close(terms["reconstruction"], cost, "C(y, Dec(z)) at the sampled z, compared with y", rtol=1e-4, own=True)
    assert_close(terms["loss"], cost + beta * kl, "F̃ = C(y, Dec(z)) + β·KL in training", rtol=1e-4, own=True)


def test_the_training_loss_samples_z():
    _check_training_loss(3, BETA, "none")


def test_the_training_loss_samples_z_batch_mean():
    _check_training_loss(5, 2.0, "mean")


def test_the_reconstruction_depends_on_log_v_in_training():
    # ∂C/∂log v ≠ 0: through the sampled z, the reconstruction trains the variance head of the encoder
    minae.manual_seed(4)
    model = VAE(D, H, Z, beta=BETA)
    model.train()
    helper("standin_sampler")(model)
    y = minae.tensor(rng(4).uniform(0, 1, (N, D)), dtype=minae.float32)
    cost = model.loss(y)["reconstruction"]
    head = model.encoder[2].bias  # its last Z entries give log v
    depends = bool(cost.requires_grad)
    if depends:
        (g,) = minae.grad(cost, [head], allow_unused=True)
        depends = g is not None and bool(np.abs(g.numpy()[Z:]).max() > 0)
    message = "∂C/∂log v is zero in training: the reconstruction must be computed at z sampled from (μ, log v)"
    assert_equal(depends, True, message)


def test_the_kl_term_trains_mu_and_log_v():
    # the KL pulls each code's Gaussian towards the prior: its gradient reaches both heads of the encoder, μ's and
    # log v's; checked against central differences of the KL from the densities (a KL on μ.detach() or on
    # log v.detach() gives one head nothing)
    model, y = model_and_data(6)
    kl = model.loss(minae.tensor(y, dtype=minae.float32))["kl"]
    head = model.encoder[2].bias  # its first Z entries shift μ, its last Z entries shift log v
    g = None
    if kl.requires_grad:
        (g,) = minae.grad(kl, [head], allow_unused=True)
    got = np.zeros(2 * Z) if g is None else g.numpy().astype(np.float64)
    with minae.no_grad():
        out = model.encoder(minae.tensor(y, dtype=minae.float32)).numpy().astype(np.float64)
    h = 1e-5
    want = np.empty(2 * Z)
    for j in range(2 * Z):  # ∂(mean KL)/∂b_j: b_j shifts column j of the encoder's output for every sample
        up, down = out.copy(), out.copy()
        up[:, j] += h
        down[:, j] -= h
        kl_up = kl_from_densities(up[:, :Z], up[:, Z:]).sum(axis=1).mean()
        kl_down = kl_from_densities(down[:, :Z], down[:, Z:]).sum(axis=1).mean()
        want[j] = (kl_up - kl_down) / (2 * h)
    what = "∂KL/∂μ, through the encoder's μ head (the KL must pull μ towards 0: no detach)"
    assert_close(got[:Z], want[:Z], what, rtol=1e-3, atol=1e-5)
    what = "∂KL/∂log v, through the encoder's log v head (the KL must pull v towards 1: no detach)"
    assert_close(got[Z:], want[Z:], what, rtol=1e-3, atol=1e-5)
