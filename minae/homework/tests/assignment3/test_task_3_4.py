"""Task 3.4: the corruptions of the denoising autoencoder, checked statistically on many pixels."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, assert_within, rng
from minae.models import DenoisingAutoencoder, gaussian_noise, masking_noise, salt_and_pepper

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the denoising autoencoder's corruptions: additive Gaussian noise, a dropout mask, salt and pepper, in "
    "training only"
)


def pixels(shape=(200, 100), low=0.2, high=0.8, seed=0):
    return minae.tensor(rng(seed).uniform(low, high, shape), dtype=minae.float32)


def unchanged(y, clean, call):
    # the DAE's cost compares the reconstruction with the clean y: a corruption written into y itself (y += ε,
    # y.data[…] = …) corrupts the target too, and the denoising autoencoder learns to copy
    assert_close(
        y,
        clean,
        f"y after {call}: a corruption returns a new tensor and leaves the clean input as it was (never changed "
        "in place)",
        rtol=0,
        atol=0,
    )


def drawn_per_pixel(hit, p, call):
    # a corruption draws for every pixel of every image: a mask shared by the images of the batch (or one draw per
    # image) makes the share hit per pixel position (per image) 0 or 1 instead of p ± √(p(1 − p)/n)
    n, d = hit.shape
    for axis, count, over in ((0, n, "over the images, per pixel"), (1, d, "over the pixels, per image")):
        spread = float(np.sqrt(p * (1 - p) / count))
        what = (
            f"{call}: the spread of the share of corrupted pixels {over} (one draw per pixel per image, none shared "
            "by the images of the batch)"
        )
        assert_within(hit.mean(axis=axis).std(), spread, 0.5 * spread, what)


def test_gaussian_noise():
    minae.manual_seed(0)
    y = pixels()
    clean = y.numpy().copy()
    noisy = gaussian_noise(y, 0.3)
    unchanged(y, clean, "gaussian_noise(y, 0.3)")
    kept = [str(noisy.dtype), tuple(noisy.shape)]
    assert_equal(kept, ["float32", tuple(y.shape)], "the noisy batch keeps y's shape and dtype: got {actual}")
    eps = noisy.numpy().astype(np.float64) - y.numpy()
    assert_within(eps.mean(), 0.0, 0.01, "the mean of the added noise")
    assert_within(eps.std(), 0.3, 0.01, "the standard deviation of the added noise (σ = 0.3)")


def test_gaussian_noise_is_normal_and_independent():
    # a mean and a standard deviation do not make a normal distribution: a N(0, σ²) moves 4.55% of the pixels by
    # more than 2σ (a uniform noise of the same σ moves none); and every pixel of every image draws its own ε
    minae.manual_seed(3)
    y = pixels(seed=3)
    eps = gaussian_noise(y, 0.3).numpy().astype(np.float64) - y.numpy()
    what = "the share of pixels the noise moves by more than 2σ (a normal ε ~ N(0, σ²) moves 4.55%)"
    assert_within((np.abs(eps) > 2 * 0.3).mean(), 0.0455, 0.008, what)
    n, d = eps.shape  # the spread of the column (row) means is σ/√n (σ/√d) for independent ε, σ for a shared one
    what = "the spread of the noise's mean over the images, per pixel (one ε per pixel per image, none shared)"
    assert_within(eps.mean(axis=0).std(), 0.3 / np.sqrt(n), 0.5 * 0.3 / np.sqrt(n), what)
    what = "the spread of the noise's mean over the pixels, per image (one ε per pixel per image, none shared)"
    assert_within(eps.mean(axis=1).std(), 0.3 / np.sqrt(d), 0.5 * 0.3 / np.sqrt(d), what)


def test_masking_noise():
    minae.manual_seed(1)
    y = minae.full((200, 100), 0.5)
    noisy = masking_noise(y, 0.3).numpy()
    unchanged(y, np.full((200, 100), 0.5), "masking_noise(y, 0.3)")
    drawn_per_pixel(noisy == 0, 0.3, "masking_noise(y, 0.3)")
    assert_within((noisy == 0).mean(), 0.3, 0.015, "the fraction of zeroed pixels (p = 0.3)")
    assert_close(
        noisy[noisy != 0], np.full((noisy != 0).sum(), 0.5 / 0.7), "the kept pixels, scaled by 1/(1 − p)", own=True
    )


def test_salt_and_pepper():
    minae.manual_seed(2)
    y = pixels()
    low, high = float(y.numpy().min()), float(y.numpy().max())
    clean = y.numpy().copy()
    noisy = salt_and_pepper(y, 0.2)
    unchanged(y, clean, "salt_and_pepper(y, 0.2)")
    kept = [str(noisy.dtype), tuple(noisy.shape)]
    assert_equal(kept, ["float32", tuple(y.shape)], "the noisy batch keeps y's shape and dtype: got {actual}")
    a, changed = noisy.numpy(), noisy.numpy() != y.numpy()
    drawn_per_pixel(changed, 0.2, "salt_and_pepper(y, 0.2)")
    assert_within(changed.mean(), 0.2, 0.015, "the fraction of changed pixels (p = 0.2)")
    assert_within((a[changed] == high).mean(), 0.5, 0.05, "the share of changed pixels set to the maximum")
    message = "salt-and-pepper sets a changed pixel to the batch's minimum or maximum, nothing else"
    assert_equal(bool(np.isin(a[changed], [low, high]).all()), True, message)


def test_salt_and_pepper_given_values():
    minae.manual_seed(3)
    a = salt_and_pepper(pixels(), 0.5, low=-1.0, high=1.0).numpy()
    changed = (a == -1.0) | (a == 1.0)
    assert_within(changed.mean(), 0.5, 0.02, "the fraction of pixels set to low = −1 or high = 1 (p = 0.5)")


def test_denoising_autoencoder_corrupts_in_training_only():
    minae.manual_seed(4)
    dae = DenoisingAutoencoder(100, 10, corruption="gaussian", level=0.5)
    y = pixels()
    noisy = dae.corrupt(y).numpy().astype(np.float64) - y.numpy()
    assert_within(noisy.std(), 0.5, 0.02, "the training-time corruption of a gaussian DAE (σ = 0.5)")
    dae.eval()
    assert_equal(dae.corrupt(y) is y, True, "in eval mode the DAE sees the clean input")
