"""Task 4.4: a K-sample estimate F̃_K(y) of the free energy, with K independent draws z_k per image.

A stand-in sampler replaces task 4.1's reparameterisation (so this task stands alone); the test
records every z it draws and every batch the decoder sees, and recomputes F̃_K from them in NumPy.
"""

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, helper, kl_from_densities, rng
from minae.models import VAE

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the K-sample estimate of F̃: C averaged over K independent draws of z per image, plus β times the exact KL"
)

N, D, H, Z, BETA = 4, 6, 5, 2, 0.7


def bce_of_decoder(model, z, y):
    with minae.no_grad():
        logits = model.decoder(minae.tensor(z, dtype=minae.float32)).numpy().astype(np.float64)
    return (np.logaddexp(0, logits) - logits * y).sum(axis=1)


def setup(seed, train=True):
    minae.manual_seed(seed)
    model = VAE(D, H, Z, beta=BETA)
    model.train(train)
    y = rng(seed).uniform(0, 1, (N, D))
    with minae.no_grad():
        mu, logvar = (as_numpy(t) for t in model._encode(minae.tensor(y, dtype=minae.float32)))
    kl = kl_from_densities(mu, logvar).sum(axis=1)
    return model, y, mu, kl


def test_k_draws_per_image_averaged():
    model, y, mu, kl = setup(0)
    # a decoder 25 times steeper, so that C differs by nats between draws: the mean of C and a log-mean-exp
    # of −C (the importance-weighted bound, a different estimate) then differ by more than 1%, not by 10⁻⁵
    for layer in (model.decoder[0], model.decoder[2]):
        layer.weight.data = minae.tensor(layer.weight.numpy() * 5.0).data
    sampler = helper("standin_sampler")(model)  # z = μ + σ(log v) ⊙ ε: a stand-in, not task 4.1's answer
    K = 5
    got = model.free_energy(minae.tensor(y, dtype=minae.float32), samples=K)
    calls = len(sampler.calls)
    assert_equal(calls > 0, True, "free_energy must draw z with self.reparameterise(μ, log v): it was not called")
    if calls == 0:
        return
    mus = np.concatenate([as_numpy(c[0]).reshape(-1, Z) for c in sampler.calls])
    zs = np.concatenate([as_numpy(z).reshape(-1, Z) for z in sampler.outputs])
    owner = np.abs(mus[:, None, :] - mu[None, :, :]).sum(-1).argmin(1)  # the image each drawn row belongs to
    counts = [int((owner == i).sum()) for i in range(N)]
    assert_equal(
        counts,
        [K] * N,
        "free_energy(y, samples=5) must draw 5 independent latents per image (one sampler row each): drew {actual}",
    )
    if counts != [K] * N:
        return
    distinct = all(len({tuple(np.round(r, 9)) for r in zs[owner == i]}) == K for i in range(N))
    assert_equal(distinct, True, "the K draws of one image must be independent: some image got the same z twice")
    costs = bce_of_decoder(model, zs, y[owner])
    want = np.array([costs[owner == i].mean() for i in range(N)]) + BETA * kl
    what = (
        "F̃_K per image: each image's cost averaged over its own K draws (a plain mean of C), plus β times the exact KL"
    )
    assert_close(got, want, what, rtol=1e-4, own=True)


def test_one_draw_is_the_training_loss():
    model, y, mu, kl = setup(1)
    sampler = helper("standin_sampler")(model)
    got = model.free_energy(minae.tensor(y, dtype=minae.float32), samples=1)
    if len(sampler.outputs) != 1:
        assert_equal(len(sampler.outputs), 1, "free_energy(y, samples=1) should draw once: {actual} draws")
        return
    z = as_numpy(sampler.outputs[0]).reshape(-1, Z)
    assert_close(got, bce_of_decoder(model, z, y) + BETA * kl, "F̃_1 = C(y, Dec(z)) + β·KL", rtol=1e-4, own=True)


def test_in_eval_every_draw_is_the_mean():
    model, y, mu, kl = setup(2, train=False)
    got = model.free_energy(minae.tensor(y, dtype=minae.float32), samples=3)
    assert_close(got, bce_of_decoder(model, mu, y) + BETA * kl, "F̃_K in eval mode (every z_k = μ)", rtol=1e-4)


def test_the_estimate_is_trained():
    model, y, mu, kl = setup(3)
    helper("standin_sampler")(model)
    model.free_energy(minae.tensor(y, dtype=minae.float32), samples=4).mean().backward()
    for name, p in model.named_parameters():
        usable = p.grad is not None and bool(np.isfinite(p.grad.numpy()).all() and np.abs(p.grad.numpy()).max() > 0)
        assert_equal(usable, True, f"F̃_K gives the parameter {name} no usable gradient")
