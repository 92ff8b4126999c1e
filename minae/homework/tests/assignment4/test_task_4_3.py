"""Task 4.3: decoding from the prior (sample) and between two codes (interpolate)."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, assert_shape, assert_within, helper, rng
from minae.models import VAE

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the generative process: latents drawn from the prior and decoded; interpolation along the line between "
    "two mean codes"
)

D, H, Z = 6, 5, 3


def test_sample_draws_from_the_prior():
    minae.manual_seed(0)
    model = VAE(D, H, Z)
    capture = helper("capture_decode")(model)  # records every latent batch handed to model.decode
    images = model.sample(5000)
    seen = capture.seen
    assert_equal(len(seen), 1, "sample(n) should decode one batch of n latents, decoded {actual} batches")
    if len(seen) != 1:
        return
    z = seen[0]
    assert_shape(z, (5000, Z), "the latents that sample(5000) decodes")
    assert_equal(str(z.dtype), "float32", "the latents should have the parameters' dtype float32, got {actual}")
    zs = z.numpy().astype(np.float64)
    assert_close(zs.mean(axis=0), np.zeros(Z), "the mean of the prior's samples", rtol=0, atol=0.06)
    assert_close(zs.std(axis=0), np.ones(Z), "the standard deviation of the prior's samples", rtol=0.04)
    # N(0, I) puts 4.55% of each coordinate beyond ±2 (a uniform draw of unit variance puts none there)
    assert_within((np.abs(zs) > 2).mean(), 0.0455, 0.008, "the share of the prior's samples beyond ±2 (N(0, 1): 4.55%)")
    assert_shape(images, (5000, D), "sample(5000)")


def test_sample_draws_from_the_prior_in_eval_mode():
    # a trained model generates in eval mode: sample() draws z ~ N(0, I) itself, whatever the mode (the encoder's
    # sampler, reparameterise, gives the mean code in eval, so sampling through it decodes one latent n times)
    minae.manual_seed(3)
    model = VAE(D, H, Z)
    model.eval()
    capture = helper("capture_decode")(model)
    model.sample(5000)
    seen = capture.seen
    assert_equal(len(seen), 1, "sample(n) should decode one batch of n latents, decoded {actual} batches")
    if len(seen) != 1:
        return
    zs = seen[0].numpy().astype(np.float64)
    what = "in eval mode (how a trained model generates), the standard deviation of the prior's samples z ~ N(0, I)"
    assert_close(zs.std(axis=0), np.ones(Z), what, rtol=0.04)
    assert_close(zs.mean(axis=0), np.zeros(Z), "in eval mode, the mean of the prior's samples", rtol=0, atol=0.06)


def test_sample_gives_images():
    minae.manual_seed(1)
    images = VAE(D, H, Z).sample(7)
    assert_shape(images, (7, D), "sample(7)")
    a = images.numpy()
    inside = bool(((a > 0) & (a < 1)).all())
    assert_equal(inside, True, "sampled pixels must lie in (0, 1): they are σ of the decoder's logits")
    assert_equal(images.requires_grad, False, "sample() builds no graph: its result must not require grad")


def test_interpolate():
    minae.manual_seed(2)
    model = VAE(D, H, Z)
    gen = rng(2)
    y_a = minae.tensor(gen.uniform(0, 1, D), dtype=minae.float32)
    y_b = minae.tensor(gen.uniform(0, 1, D), dtype=minae.float32)
    with minae.no_grad():
        mu_a = model._encode(y_a.reshape(1, -1))[0].numpy().astype(np.float64)[0]
        mu_b = model._encode(y_b.reshape(1, -1))[0].numpy().astype(np.float64)[0]
    capture = helper("capture_decode")(model)
    images = model.interpolate(y_a, y_b, steps=5)
    seen = capture.seen
    assert_shape(images, (5, D), "interpolate(y_a, y_b, steps=5)")
    message = (
        "interpolate(y_a, y_b, steps=5) decoded no latent codes: it must decode codes on the straight line from "
        "μ(y_a) to μ(y_b) (a mix of the two images themselves is not an image the model makes)"
    )
    assert_equal(len(seen) > 0, True, message)
    if not seen:
        return
    z = np.concatenate([s.numpy() for s in seen]).astype(np.float64)
    assert_shape(z, (5, Z), "the codes interpolate(y_a, y_b, steps=5) decoded")
    # checked by their numbers: both ends are the mean codes, and the steps between neighbours are all equal
    assert_close(z[0], mu_a, "the first decoded code (μ(y_a), the mean code of y_a)", rtol=1e-4, atol=1e-6)
    assert_close(z[-1], mu_b, "the last decoded code (μ(y_b), the mean code of y_b)", rtol=1e-4, atol=1e-6)
    gaps = np.diff(z, axis=0)
    even = np.broadcast_to(gaps.mean(axis=0), gaps.shape)
    assert_close(
        gaps, even, "the steps between neighbouring codes (evenly spaced on a straight line)", atol=1e-6, own=True
    )
