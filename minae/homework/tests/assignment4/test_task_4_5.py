"""Task 4.5: the KL term per latent dimension (which dimensions the encoder uses), the bubbles' radii √v, and
how far a code lies from the nearest bubble, counted in that bubble's radii (the holes of the code space)."""

import minae
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, assert_shape, kl_from_densities, rng
from minae.models import VAE

IDEA = (  # what every test of this file checks: a failing test's line names it
    "the bubbles: the KL per latent dimension, the radii √v, and the distance to the nearest bubble counted "
    "in that bubble's radii"
)

N, D, H, Z = 50, 6, 5, 4


def setup(seed):
    minae.manual_seed(seed)
    model = VAE(D, H, Z)
    y = rng(seed).uniform(0, 1, (N, D))
    with minae.no_grad():
        mu, logvar = (as_numpy(t) for t in model._encode(minae.tensor(y, dtype=minae.float32)))
    return model, minae.tensor(y, dtype=minae.float32), mu, logvar


def test_kl_per_dimension():
    model, y, mu, logvar = setup(0)
    got = model.kl_per_dimension(y)
    want = kl_from_densities(mu, logvar).mean(axis=0)
    assert_close(got, want, "the KL of N(μ_i, v_i) from N(0, 1), one per dimension, averaged over the batch", rtol=1e-4)
    assert_close(as_numpy(got).sum(), want.sum(), "the dimensions' KL add up to the loss's mean KL", rtol=1e-4)


def test_an_unused_dimension_has_no_kl():
    # a dimension whose code is the prior's for every image (μ_i = 0, log v_i = 0) costs nothing
    model, y, _, _ = setup(1)
    last = model.encoder[2]
    w, b = last.weight.numpy(), last.bias.numpy()
    w[0], b[0], w[Z], b[Z] = 0, 0, 0, 0  # μ_0 = 0 and log v_0 = 0 whatever the image
    last.weight.data = minae.tensor(w).data
    last.bias.data = minae.tensor(b).data
    got = as_numpy(model.kl_per_dimension(y))
    assert_close(got[0], 0.0, "the KL of a dimension the encoder does not use (μ = 0, v = 1)", rtol=0, atol=1e-7)
    assert_equal(bool((got[1:] > 0).all()), True, "the used dimensions' KL must be positive")


def test_bubble_radii():
    model, y, mu, logvar = setup(2)
    got = model.bubble_radii(y)
    # BEGIN GRADER ONLY; in a copy: assert_close(as_numpy(got) ** 2, np.exp(logvar), "the radii squared (v)", rtol=2e-5)
    assert_close(got, np.exp(0.5 * logvar), "the bubbles' radii: the standard deviations √v (not v)", rtol=1e-5)
    # END GRADER ONLY
    assert_equal(got.requires_grad, False, "bubble_radii is a measurement: it must not build a graph")


def spread(seed, n=N):
    """A model whose log v differs by several units between images (bubbles of very different sizes)."""
    model, _, _, _ = setup(seed)
    last = model.encoder[2]
    w, b = last.weight.numpy(), last.bias.numpy()
    w[Z:] *= 8.0  # the log v rows: radii from far below to far above 1
    last.weight.data = minae.tensor(w).data
    last.bias.data = minae.tensor(b).data
    y = minae.tensor(rng(seed).uniform(0, 1, (N, D))[:n], dtype=minae.float32)
    with minae.no_grad():
        mu, logvar = (as_numpy(t).astype(np.float64) for t in model._encode(y))
    return model, y, mu, logvar


def codes(seed, mu, k=7):
    """k codes near the bubbles' centres (each a random centre plus a random offset)."""
    g = rng(seed)
    return (mu[g.integers(0, len(mu), k)] + g.normal(0, 1.5, (k, Z))).astype(np.float32)


def test_a_code_at_a_bubbles_centre_is_at_distance_zero():
    model, y, mu, _ = spread(3)
    got = model.bubble_distance(minae.tensor(mu[[4, 0, 9]], dtype=minae.float32), y)
    assert_close(got, np.zeros(3), "the distance of a code at a bubble's centre μ_n (zero)", rtol=0, atol=1e-3)


def test_the_distance_is_counted_in_the_bubbles_radii():
    # one image: moving t times as far from its centre along any direction gives t times the distance
    model, y, mu, logvar = spread(4, n=1)
    step = rng(5).normal(0, 0.5, (1, Z))
    z = np.concatenate([mu + t * step for t in (1.0, 2.0, 3.0)]).astype(np.float32)
    got = as_numpy(model.bubble_distance(minae.tensor(z, dtype=minae.float32), y))
    assert_close(got[1:], got[0] * np.array([2.0, 3.0]), "a distance: twice as far, twice the distance", own=True)
    # BEGIN GRADER ONLY
    radii = np.exp(0.5 * logvar)
    want = np.sqrt((((z - mu) / radii) ** 2).sum(-1))
    _diagnose(got, z, mu, logvar, "one bubble: ‖(z − μ) ⊘ √v‖, each coordinate counted in its own radius √v_i")
    assert_close(got, want, "the distance from one bubble, in its radii ‖(z − μ) ⊘ √v‖", rtol=1e-4)
    # END GRADER ONLY


def test_the_nearest_bubble_is_nearest_in_radii():
    model, y, mu, logvar = spread(6)
    z = codes(7, mu)
    got = as_numpy(model.bubble_distance(minae.tensor(z, dtype=minae.float32), y))
    images = rng(6).uniform(0, 1, (N, D))  # spread(6)'s y
    each = np.stack(
        [
            as_numpy(
                model.bubble_distance(
                    minae.tensor(z, dtype=minae.float32), minae.tensor(images[n : n + 1], dtype=minae.float32)
                )
            )
            for n in range(N)
        ]
    )
    assert_close(
        got, each.min(axis=0), "the distance to the nearest of the bubbles: the least over the images", own=True
    )
    # BEGIN GRADER ONLY
    _diagnose(got, z, mu, logvar, "min over the images n of ‖(z − μ_n) ⊘ √v_n‖")
    # END GRADER ONLY


def test_the_distance_to_many_bubbles():
    model, y, mu, logvar = spread(8)
    z = codes(9, mu, k=11)
    got = as_numpy(model.bubble_distance(minae.tensor(z, dtype=minae.float32), y))
    assert_shape(got, (11,), "bubble_distance(z, y) for 11 codes")
    # BEGIN GRADER ONLY
    _diagnose(got, z, mu, logvar, "min over the images n of ‖(z − μ_n) ⊘ √v_n‖")
    # END GRADER ONLY


# BEGIN GRADER ONLY
def _diagnose(got, z, mu, logvar, right):
    """Which distance the student's values are: the right one, or a named mistake."""
    diff = z[:, None, :].astype(np.float64) - mu[None]
    v = np.exp(logvar)[None]
    candidates = {
        right: np.sqrt((diff**2 / v).sum(-1)).min(1),
        "counted in variances v, not in radii √v": np.sqrt((diff**2 / v**2).sum(-1)).min(1),
        "a plain Euclidean distance to the nearest centre, not counted in radii": np.sqrt((diff**2).sum(-1)).min(1),
        "in radii, but from the bubble whose centre is nearest, not the bubble nearest in radii": np.sqrt(
            (diff**2 / v).sum(-1)
        )[np.arange(len(z)), np.argmin((diff**2).sum(-1), axis=1)],
        "the mean over the images, not the nearest bubble": np.sqrt((diff**2 / v).sum(-1)).mean(1),
    }
    name = "none of the distances the test knows"
    for what, values in candidates.items():
        if values.shape == np.shape(got) and np.allclose(got, values, rtol=1e-4, atol=1e-5):
            name = what
            break
    assert_equal(name, right, "bubble_distance gives {actual}; it must be {expected}")


# END GRADER ONLY
