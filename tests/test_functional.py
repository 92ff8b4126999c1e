"""minae.nn.functional: activations, losses and penalties.

Every loss and penalty is checked against finite differences (first order, and
second order for the ones a model differentiates twice), against the formula
written out in NumPy, at extreme inputs in float32, and against
torch.nn.functional where torch is installed.
"""

import math

import numpy as np
import pytest

import minae
import minae.nn as nn
import minae.nn.functional as F
from minae import gradcheck, gradgradcheck

REDUCTIONS = ["mean", "sum", "none"]


def rnd(*shape, lo=-1.0, hi=1.0, seed=0, dtype=np.float64, device="cpu", requires_grad=True):
    a = np.random.default_rng(seed).uniform(lo, hi, size=shape).astype(dtype)
    return minae.tensor(a, device=device, requires_grad=requires_grad)


def npy(t):
    return t.numpy() if isinstance(t, minae.Tensor) else np.asarray(t)


def reduce_np(x, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](x)


# ------------------------------------------------------------- activations ---
@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "leaky_relu", "softplus"])
def test_activation_values_and_gradcheck(name, device):
    rng = np.random.default_rng(0)
    a = rng.uniform(0.1, 3, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))  # away from the kink at 0
    x = minae.tensor(a, device=device, requires_grad=True)
    ref = {
        "relu": lambda a: np.maximum(a, 0),
        "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
        "tanh": np.tanh,
        "leaky_relu": lambda a: np.where(a > 0, a, 0.01 * a),
        "softplus": lambda a: np.log1p(np.exp(a)),
    }[name]
    fn = getattr(F, name)
    np.testing.assert_allclose(npy(fn(x)), ref(npy(x)), rtol=1e-12, atol=1e-12)
    assert gradcheck(fn, [x])


def test_softplus_beta_and_leaky_slope():
    x = rnd(5, lo=-4, hi=4)
    np.testing.assert_allclose(npy(F.softplus(x, beta=2.0)), np.log1p(np.exp(2 * npy(x))) / 2, rtol=1e-12)
    np.testing.assert_allclose(npy(F.leaky_relu(x, 0.2)), np.where(npy(x) > 0, npy(x), 0.2 * npy(x)))
    assert gradcheck(lambda a: F.softplus(a, beta=3.0), [x])


def test_linear_matches_formula_and_gradcheck(device):
    x, w, b = rnd(4, 3, device=device), rnd(2, 3, seed=1, device=device), rnd(2, seed=2, device=device)
    np.testing.assert_allclose(npy(F.linear(x, w, b)), npy(x) @ npy(w).T + npy(b), rtol=1e-12)
    np.testing.assert_allclose(npy(F.linear(x, w)), npy(x) @ npy(w).T, rtol=1e-12)
    assert gradcheck(F.linear, [x, w, b])
    x3 = rnd(2, 4, 3, seed=3, device=device)  # leading batch dimensions broadcast
    assert F.linear(x3, w, b).shape == (2, 4, 2)
    assert gradcheck(F.linear, [x3, w, b])


def test_linear_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"linear: input of shape \(4, 5\) does not fit weight of shape \(2, 3\)"):
        F.linear(rnd(4, 5), rnd(2, 3))
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(2,\)"):
        F.linear(rnd(4, 3), rnd(2, 3), rnd(3))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax_and_softmax(dim, device):
    x = rnd(3, 5, lo=-5, hi=5, device=device)
    a = npy(x)
    ref = a - np.log(np.exp(a).sum(axis=dim, keepdims=True))
    np.testing.assert_allclose(npy(F.log_softmax(x, dim)), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npy(F.softmax(x, dim)), np.exp(ref), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npy(F.softmax(x, dim)).sum(axis=dim), 1.0)
    assert gradcheck(lambda t: F.log_softmax(t, dim), [x])
    assert gradcheck(lambda t: F.softmax(t, dim), [x])


def test_softmax_no_overflow_float32():
    x = minae.tensor([[1e4, 1e4 - 1.0, -1e4]], requires_grad=True)
    s = F.softmax(x)
    e = np.exp(-1.0)
    # finite and right to float32's resolution at 1e4 (ulp ≈ 1e-3 in x − logsumexp x)
    np.testing.assert_allclose(npy(s), [[1 / (1 + e), e / (1 + e), 0.0]], rtol=1e-3)


# ------------------------------------------------------------------ dropout ---
def test_dropout_statistics_scaling_and_gradient(device):
    p = 0.3
    x = minae.ones(200, 500, device=device, requires_grad=True)
    y = F.dropout(x, p, training=True)
    assert y.dtype == minae.float32 and y.device == x.device
    a = npy(y)
    kept = a != 0
    assert abs(1 - kept.mean() - p) < 0.01  # 100 000 draws: std of the fraction ≈ 0.0015
    np.testing.assert_allclose(a[kept], 1 / (1 - p), rtol=1e-6)  # inverted dropout scales what it keeps
    assert abs(a.mean() - 1.0) < 0.02  # the expectation is unchanged
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), a)  # ∂y/∂x is the scaled mask itself


def test_dropout_eval_and_edge_probabilities(device):
    x = rnd(4, 6, device=device, dtype=np.float32)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(npy(F.dropout(x, 1.0)), 0.0)
    assert F.dropout(rnd(10, device=device), 0.5).dtype == minae.float64
    with pytest.raises(ValueError, match="dropout: p must be a probability"):
        F.dropout(x, 1.5)


def test_dropout_is_reproducible_with_manual_seed():
    x = minae.ones(50)
    minae.manual_seed(7)
    a = npy(F.dropout(x, 0.5))
    minae.manual_seed(7)
    np.testing.assert_array_equal(npy(F.dropout(x, 0.5)), a)
    assert not np.array_equal(npy(F.dropout(x, 0.5)), a)


def test_dropout_gradcheck_with_fixed_mask():
    x = rnd(3, 4)

    def fn(t):
        minae.manual_seed(3)  # the same mask at every evaluation
        return F.dropout(t, 0.4)

    assert gradcheck(fn, [x])


# ------------------------------------------------------------------- losses ---
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction, device):
    a, b = rnd(3, 4, device=device), rnd(3, 4, seed=1, device=device)
    np.testing.assert_allclose(npy(F.mse_loss(a, b, reduction)), reduce_np((npy(a) - npy(b)) ** 2, reduction))
    assert gradcheck(lambda u, v: F.mse_loss(u, v, reduction), [a, b])


def test_mse_loss_sum_is_lecture_reconstruction_cost():
    y, y_tilde = rnd(5, 7), rnd(5, 7, seed=1)
    c = np.sum((npy(y) - npy(y_tilde)) ** 2)  # C(y, ỹ) = ‖y − ỹ‖²
    assert F.mse_loss(y_tilde, y, reduction="sum").item() == pytest.approx(c, rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction, device):
    p, y = rnd(3, 5, lo=0.05, hi=0.95, device=device), rnd(3, 5, lo=0, hi=1, seed=1, device=device)
    ref = -(npy(y) * np.log(npy(p)) + (1 - npy(y)) * np.log(1 - npy(p)))
    np.testing.assert_allclose(npy(F.binary_cross_entropy(p, y, reduction=reduction)), reduce_np(ref, reduction))
    assert gradcheck(lambda u, v: F.binary_cross_entropy(u, v, reduction=reduction), [p, y])
    w = rnd(5, lo=0.5, hi=2, seed=2, device=device)  # a per-column weight, broadcast over the batch
    assert gradcheck(lambda u, v, ww: F.binary_cross_entropy(u, v, ww, reduction), [p, y, w])
    np.testing.assert_allclose(npy(F.binary_cross_entropy(p, y, w, "none")), ref * npy(w), rtol=1e-12)


def test_binary_cross_entropy_clamps_log_at_minus_100():
    p = minae.tensor([0.0, 1.0, 0.0, 1.0, 1e-50], dtype=minae.float64, requires_grad=True)
    y = minae.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=minae.float64)
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_allclose(npy(loss), [100.0, 100.0, 0.0, 0.0, 100.0])
    loss.sum().backward()
    assert np.all(np.isfinite(npy(p.grad)))  # no 0·∞ = NaN where the log is clamped


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy_with_logits(reduction, device):
    x, y = rnd(4, 3, lo=-4, hi=4, device=device), rnd(4, 3, lo=0, hi=1, seed=1, device=device)
    s = 1 / (1 + np.exp(-npy(x)))
    ref = -(npy(y) * np.log(s) + (1 - npy(y)) * np.log(1 - s))
    np.testing.assert_allclose(
        npy(F.binary_cross_entropy_with_logits(x, y, reduction=reduction)), reduce_np(ref, reduction), rtol=1e-10
    )
    assert gradcheck(lambda u, v: F.binary_cross_entropy_with_logits(u, v, reduction=reduction), [x, y])
    w, pw = rnd(3, lo=0.5, hi=2, seed=2, device=device), rnd(3, lo=0.5, hi=3, seed=3, device=device)
    fn = lambda u, v, ww, pp: F.binary_cross_entropy_with_logits(u, v, ww, reduction, pos_weight=pp)  # noqa: E731
    assert gradcheck(fn, [x, y, w, pw])
    ref_pw = -npy(w) * (npy(pw) * npy(y) * np.log(s) + (1 - npy(y)) * np.log(1 - s))
    np.testing.assert_allclose(npy(fn(x, y, w, pw)), reduce_np(ref_pw, reduction), rtol=1e-10)


def test_bce_with_logits_equals_bce_of_sigmoid():
    x, y = rnd(6, lo=-5, hi=5), rnd(6, lo=0, hi=1, seed=1)
    a = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    b = F.binary_cross_entropy(F.sigmoid(x), y, reduction="none")
    np.testing.assert_allclose(npy(a), npy(b), rtol=1e-10)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_labels_and_probabilities(reduction, device):
    x = rnd(5, 4, lo=-3, hi=3, device=device)
    labels = minae.tensor([0, 3, 1, 1, 2], device=device)
    logp = npy(x) - np.log(np.exp(npy(x)).sum(axis=1, keepdims=True))
    ref = -logp[np.arange(5), npy(labels)]
    np.testing.assert_allclose(npy(F.cross_entropy(x, labels, reduction)), reduce_np(ref, reduction), rtol=1e-12)
    assert gradcheck(lambda u: F.cross_entropy(u, labels, reduction), [x])
    probs = F.softmax(rnd(5, 4, seed=4, device=device, requires_grad=False)).detach().requires_grad_()
    ref_p = -(npy(probs) * logp).sum(axis=1)
    np.testing.assert_allclose(npy(F.cross_entropy(x, probs, reduction)), reduce_np(ref_p, reduction), rtol=1e-12)
    assert gradcheck(lambda u, q: F.cross_entropy(u, q, reduction), [x, probs])


def test_cross_entropy_one_hot_probabilities_equal_labels():
    x = rnd(4, 3)
    labels = minae.tensor([2, 0, 1, 2])
    onehot = minae.tensor(np.eye(3)[npy(labels)])
    assert F.cross_entropy(x, labels).item() == pytest.approx(F.cross_entropy(x, onehot).item(), rel=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_penalty(reduction, device):
    h = rnd(4, 6, device=device)
    ref = np.abs(npy(h)).sum(axis=1)  # Σ_j |h_j| per sample
    out = F.l1_penalty(h, reduction)
    np.testing.assert_allclose(npy(out), reduce_np(ref, reduction), rtol=1e-12)
    assert gradcheck(lambda t: F.l1_penalty(t, reduction), [h])
    assert F.l1_penalty(rnd(4, 2, 3, device=device), "none").shape == (4,)


# ----------------------------------------------------------------- gaussian KL ---
def kl_reference(mu, v):
    return 0.5 * np.sum(v - np.log(v) - 1 + mu**2, axis=-1)  # the lecture's ½ Σ (v − log v − 1 + μ²)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gaussian_kl_formula_both_parametrisations(reduction, device):
    mu, logvar = rnd(4, 3, device=device), rnd(4, 3, lo=-2, hi=2, seed=1, device=device)
    var = minae.exp(logvar).detach().requires_grad_()
    ref = reduce_np(kl_reference(npy(mu), np.exp(npy(logvar))), reduction)
    np.testing.assert_allclose(npy(F.gaussian_kl(mu, logvar=logvar, reduction=reduction)), ref, rtol=1e-12)
    np.testing.assert_allclose(npy(F.gaussian_kl(mu, var=var, reduction=reduction)), ref, rtol=1e-12)
    assert gradcheck(lambda m, lv: F.gaussian_kl(m, logvar=lv, reduction=reduction), [mu, logvar])
    assert gradcheck(lambda m, v: F.gaussian_kl(m, var=v, reduction=reduction), [mu, var])


def test_gaussian_kl_gradgradcheck_and_broadcast():
    mu, logvar = rnd(3, 4), rnd(3, 4, lo=-1, hi=1, seed=1)
    assert gradgradcheck(lambda m, lv: F.gaussian_kl(m, logvar=lv), [mu, logvar])
    var = rnd(3, 4, lo=0.3, hi=2, seed=2)
    assert gradgradcheck(lambda m, v: F.gaussian_kl(m, var=v, reduction="none"), [mu, var])
    shared = rnd(4, lo=-1, hi=1, seed=3)  # one log-variance for the whole batch
    out = F.gaussian_kl(mu, logvar=shared, reduction="none")
    assert out.shape == (3,)
    np.testing.assert_allclose(npy(out), kl_reference(npy(mu), np.exp(npy(shared))[None, :].repeat(3, 0)))
    assert gradcheck(lambda m, lv: F.gaussian_kl(m, logvar=lv), [mu, shared])


def test_gaussian_kl_matches_monte_carlo():
    rng = np.random.default_rng(0)
    mu, logvar = rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, (3, 2))
    v = np.exp(logvar)
    z = mu + np.sqrt(v) * rng.standard_normal((200_000, 3, 2))  # z ~ q = N(μ, v)
    log_q = -0.5 * (np.log(2 * np.pi * v) + (z - mu) ** 2 / v)
    log_p = -0.5 * (np.log(2 * np.pi) + z**2)
    samples = (log_q - log_p).sum(axis=-1)  # KL(q‖p) = E_q[log q − log p]
    mc, sem = samples.mean(axis=0), samples.std(axis=0) / np.sqrt(len(samples))
    kl = npy(F.gaussian_kl(minae.tensor(mu), logvar=minae.tensor(logvar), reduction="none"))
    assert np.all(np.abs(kl - mc) < 5 * sem + 1e-3), (kl, mc, sem)


def test_gaussian_kl_large_logvar_float32(device):
    logvar = minae.tensor(np.linspace(-30, 30, 13, dtype=np.float32)[None, :], device=device, requires_grad=True)
    mu = minae.zeros(1, 13, device=device, requires_grad=True)
    kl = F.gaussian_kl(mu, logvar=logvar)
    assert kl.dtype == minae.float32
    lv = np.linspace(-30, 30, 13)
    assert kl.item() == pytest.approx(0.5 * np.sum(np.exp(lv) - lv - 1), rel=1e-5)
    kl.backward()
    assert np.all(np.isfinite(npy(logvar.grad))) and np.all(np.isfinite(npy(mu.grad)))
    np.testing.assert_allclose(npy(logvar.grad)[0], 0.5 * (np.exp(lv) - 1), rtol=1e-5)


def test_gaussian_kl_argument_errors():
    mu = rnd(2, 3)
    with pytest.raises(ValueError, match="gaussian_kl: give exactly one of logvar and var"):
        F.gaussian_kl(mu)
    with pytest.raises(ValueError, match="gaussian_kl: give exactly one of logvar and var"):
        F.gaussian_kl(mu, logvar=mu, var=mu)
    with pytest.raises(ValueError, match=r"gaussian_kl: mu of shape \(2, 3\) and logvar of shape \(4,\)"):
        F.gaussian_kl(mu, logvar=rnd(4))


# -------------------------------------------------------- contractive penalty ---
def one_layer(W, b, activation):
    f = F.sigmoid if activation == "sigmoid" else F.tanh
    return lambda y: f(F.linear(y, W, b))


def fd_jacobian_sq_norm(encoder, y, eps=1e-6):
    """‖∂h/∂y‖²_F per sample from central differences (the batch perturbed one input unit at a time)."""
    a = npy(y).copy()
    total = np.zeros(a.shape[0])
    with minae.no_grad():
        for i in range(a.shape[1]):
            plus, minus = a.copy(), a.copy()
            plus[:, i] += eps
            minus[:, i] -= eps
            col = (npy(encoder(minae.tensor(plus))) - npy(encoder(minae.tensor(minus)))) / (2 * eps)
            total += (col**2).sum(axis=1)
    return total


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_contractive_penalty_is_jacobian_norm(activation):
    y, W, b = rnd(5, 4, lo=-2, hi=2), rnd(3, 4, seed=1), rnd(3, seed=2)
    enc = one_layer(W, b, activation)
    cp = F.contractive_penalty(enc(y), W, activation, reduction="none")
    np.testing.assert_allclose(npy(cp), fd_jacobian_sq_norm(enc, y), rtol=1e-6)
    jp = F.jacobian_penalty(enc, y, reduction="none")
    np.testing.assert_allclose(npy(cp), npy(jp), rtol=1e-12)
    slope = npy(enc(y)) * (1 - npy(enc(y))) if activation == "sigmoid" else 1 - npy(enc(y)) ** 2
    np.testing.assert_allclose(npy(cp), (slope**2 * (npy(W) ** 2).sum(axis=1)).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_contractive_penalty_gradcheck(activation, reduction):
    h, W = rnd(4, 3, lo=0.05, hi=0.95), rnd(3, 5, seed=1)
    assert gradcheck(lambda hh, w: F.contractive_penalty(hh, w, activation, reduction), [h, W])
    y, b = rnd(4, 5, seed=2), rnd(3, seed=3)  # and through the encoder: W twice, b via h

    def through_encoder(yy, w, bb):
        return F.contractive_penalty(one_layer(w, bb, activation)(yy), w, activation, reduction)

    assert gradcheck(through_encoder, [y, W, b])


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_contractive_penalty_gradgradcheck(activation):
    y, W, b = rnd(3, 4, seed=2), rnd(2, 4, seed=1), rnd(2, seed=3)

    def through_encoder(w, bb):
        return F.contractive_penalty(one_layer(w, bb, activation)(y.detach()), w, activation)

    assert gradgradcheck(through_encoder, [W, b])


def test_contractive_penalty_errors():
    with pytest.raises(
        ValueError, match=r"contractive_penalty: h of shape \(4, 3\) does not fit weight of shape \(5, 2\)"
    ):
        F.contractive_penalty(rnd(4, 3), rnd(5, 2))
    with pytest.raises(ValueError, match="activation must be 'sigmoid' or 'tanh', got 'relu'"):
        F.contractive_penalty(rnd(4, 3), rnd(3, 2), activation="relu")


# ----------------------------------------------------------- jacobian penalty ---
def test_jacobian_penalty_two_layer_matches_finite_differences():
    minae.manual_seed(1)
    enc = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3), nn.Sigmoid()).double()
    y = rnd(6, 5, lo=-2, hi=2, requires_grad=False)
    jp = F.jacobian_penalty(enc, y, reduction="none")
    assert jp.shape == (6,)
    np.testing.assert_allclose(npy(jp), fd_jacobian_sq_norm(enc, y), rtol=1e-6)
    assert F.jacobian_penalty(enc, y).item() == pytest.approx(npy(jp).mean(), rel=1e-12)
    assert F.jacobian_penalty(enc, y, "sum").item() == pytest.approx(npy(jp).sum(), rel=1e-12)


def test_jacobian_penalty_is_trainable_double_backprop():
    # gradcheck of the penalty itself: its gradient in W1, b1, W2 and y needs second derivatives of the encoder
    W1, b1, W2, y = rnd(3, 4, seed=1), rnd(3, seed=2), rnd(2, 3, seed=3), rnd(4, 4, seed=4)

    def penalty(w1, bb, w2, yy):
        return F.jacobian_penalty(lambda t: F.sigmoid(F.linear(F.tanh(F.linear(t, w1, bb)), w2)), yy)

    assert gradcheck(penalty, [W1, b1, W2, y])


def test_jacobian_penalty_backward_reaches_module_parameters():
    enc = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid())
    y = minae.randn(8, 4)
    F.jacobian_penalty(enc, y).backward()
    assert all(p.grad is not None and np.all(np.isfinite(npy(p.grad))) for p in enc.parameters())
    assert y.grad is None and not y.requires_grad
    with minae.no_grad():
        assert not F.jacobian_penalty(enc, y, create_graph=False).requires_grad


def test_jacobian_penalty_of_a_constant_encoder_is_zero():
    out = F.jacobian_penalty(lambda t: minae.ones(t.shape[0], 2), rnd(3, 2), reduction="none")
    np.testing.assert_array_equal(npy(out), 0.0)


# ---------------------------------------------------------------- softmin ---
def softmin_reference(E, beta, axis):
    m = E.min(axis=axis, keepdims=True)  # shift by the minimum: no overflow
    lse = np.log(np.mean(np.exp(-beta * (E - m)), axis=axis))
    return np.squeeze(m, axis) - lse / beta


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("beta", [0.5, 3.0])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_softmin_free_energy_formula_and_gradcheck(dim, beta, reduction, device):
    E = rnd(3, 4, 2, lo=0, hi=3, device=device)
    ref = reduce_np(softmin_reference(npy(E), beta, dim), reduction)
    np.testing.assert_allclose(npy(F.softmin_free_energy(E, beta, dim, reduction)), ref, rtol=1e-12)
    assert gradcheck(lambda e: F.softmin_free_energy(e, beta, dim, reduction), [E])


@pytest.mark.parametrize("beta", [0.7, 5.0, 0.0, float("inf")])
def test_softmin_free_energy_gradgradcheck(beta):
    E = rnd(3, 5, lo=0, hi=2)
    assert gradgradcheck(lambda e: F.softmin_free_energy(e, beta, reduction="sum"), [E])


def test_softmin_limits_min_and_mean():
    E = rnd(4, 50, lo=0, hi=5, requires_grad=False)
    lo, avg = npy(E).min(axis=1), npy(E).mean(axis=1)
    np.testing.assert_allclose(npy(F.softmin_free_energy(E, float("inf"))), lo)
    np.testing.assert_allclose(npy(F.softmin_free_energy(E, 0.0)), avg)
    np.testing.assert_allclose(npy(F.softmin_free_energy(E, 1e4)), lo, atol=1e-3)  # β → ∞: the minimum
    np.testing.assert_allclose(npy(F.softmin_free_energy(E, 1e-6)), avg, atol=1e-4)  # β → 0: the mean
    values = [npy(F.softmin_free_energy(E, b)) for b in (0.0, 0.1, 1.0, 10.0, 100.0, float("inf"))]
    for hot, cold in zip(values, values[1:]):
        assert np.all(cold <= hot + 1e-12)  # F_β decreases from the mean to the minimum


def test_softmin_zero_temperature_gradient_goes_to_the_argmin():
    E = minae.tensor([[3.0, 1.0, 2.0]], requires_grad=True)
    F.softmin_free_energy(E, float("inf"), reduction="sum").backward()
    np.testing.assert_array_equal(npy(E.grad), [[0.0, 1.0, 0.0]])


def test_softmin_errors():
    E = rnd(2, 3)
    with pytest.raises(ValueError, match="softmin_free_energy: beta must be a number ≥ 0"):
        F.softmin_free_energy(E, -1.0)
    with pytest.raises(IndexError, match=r"softmin_free_energy: dim 2 is out of range for energies of shape \(2, 3\)"):
        F.softmin_free_energy(E, 1.0, dim=2)


# --------------------------------------------- extreme inputs in float32 ---
BIG = [-1e4, -60.0, -1.0, 0.0, 1.0, 60.0, 1e4]


def f32(values, device="cpu"):
    return minae.tensor(np.array(values, dtype=np.float32), device=device, requires_grad=True)


def finite_value_and_grad(fn, x):
    out = fn(x)
    out.sum().backward() if out.ndim else out.backward()
    return np.all(np.isfinite(npy(out))) and np.all(np.isfinite(npy(x.grad))), out


def test_sigmoid_softplus_extremes_float32(device):
    x = f32(BIG, device)
    ok, s = finite_value_and_grad(F.sigmoid, x)
    assert ok
    np.testing.assert_allclose(npy(s)[[0, -1]], [0.0, 1.0])
    x = f32(BIG, device)
    ok, sp = finite_value_and_grad(F.softplus, x)
    assert ok
    np.testing.assert_allclose(npy(sp)[[0, -1]], [0.0, 1e4])
    np.testing.assert_allclose(npy(x.grad)[[0, -1]], [0.0, 1.0])  # softplus' = σ


def test_bce_with_logits_extremes_float32(device):
    x = f32(BIG, device)
    y = minae.tensor(np.array([0, 1, 0.5, 1, 0, 0, 1], dtype=np.float32), device=device)
    ok, loss = finite_value_and_grad(lambda t: F.binary_cross_entropy_with_logits(t, y, reduction="none"), x)
    assert ok
    ref = np.logaddexp(0, np.array(BIG)) - np.array(BIG) * npy(y)  # softplus(x) − x·y in float64
    np.testing.assert_allclose(npy(loss), ref, rtol=1e-6)
    np.testing.assert_allclose(npy(x.grad), 0.5 * (1 + np.tanh(np.array(BIG) / 2)) - npy(y), atol=1e-7)  # σ(x) − y


def test_logsumexp_and_softmin_extremes_float32(device):
    x = f32([[1e4, 1e4 - 1, -1e4], [-1e4, -1e4, -1e4 + 3]], device)
    ok, lse = finite_value_and_grad(lambda t: minae.logsumexp(t, 1), x)
    assert ok
    np.testing.assert_allclose(npy(lse), [1e4 + np.log1p(np.exp(-1.0)), -1e4 + 3 + np.log1p(2 * np.exp(-3.0))])
    for beta in (1.0, 1e3, float("inf")):
        E = f32([[1e4, -1e4, 5e3], [1e4, 1e4, 1e4]], device)
        ok, F_b = finite_value_and_grad(lambda t, b=beta: F.softmin_free_energy(t, b), E)
        assert ok, beta
        if not math.isinf(beta):
            np.testing.assert_allclose(npy(F_b), softmin_reference(npy(E).astype(np.float64), beta, -1), rtol=1e-6)


@pytest.mark.parametrize(
    "fn",
    [
        F.sigmoid,
        F.softplus,
        lambda t: minae.logsumexp(t, 1),
        lambda t: F.softmin_free_energy(t, 2.0),
        lambda t: F.binary_cross_entropy_with_logits(t, minae.full_like(t, 0.3), reduction="none"),
    ],
    ids=["sigmoid", "softplus", "logsumexp", "softmin", "bce_with_logits"],
)
def test_float32_matches_float64_reference(fn):
    a = np.random.default_rng(5).uniform(-8, 8, size=(4, 6))
    x32, x64 = minae.tensor(a.astype(np.float32), requires_grad=True), minae.tensor(a, requires_grad=True)
    y32, y64 = fn(x32), fn(x64)
    assert y32.dtype == minae.float32
    np.testing.assert_allclose(npy(y32), npy(y64), rtol=2e-6, atol=1e-6)
    y32.sum().backward()
    y64.sum().backward()
    np.testing.assert_allclose(npy(x32.grad), npy(x64.grad), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b: F.mse_loss(a, b),
        lambda a, b: F.binary_cross_entropy(F.sigmoid(a), F.sigmoid(b)),
        lambda a, b: F.binary_cross_entropy_with_logits(a, F.sigmoid(b)),
        lambda a, b: F.l1_penalty(a),
        lambda a, b: F.gaussian_kl(a, logvar=b),
        lambda a, b: F.contractive_penalty(F.sigmoid(a), b.T),
    ],
    ids=["mse", "bce", "bce_logits", "l1", "kl", "contractive"],
)
def test_losses_keep_float32(loss):
    a, b = rnd(4, 4, dtype=np.float32), rnd(4, 4, seed=1, dtype=np.float32)
    out = loss(a, b)
    assert out.dtype == minae.float32
    out.backward()
    assert a.grad.dtype == minae.float32


# -------------------------------------------------------------- validation ---
def test_bad_reduction_is_named():
    a = rnd(2, 3)
    for fn in (lambda r: F.mse_loss(a, a, r), lambda r: F.l1_penalty(a, r), lambda r: F.gaussian_kl(a, a, reduction=r)):
        with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
            fn("avg")


def test_shape_and_type_errors_name_function_argument_and_shapes():
    with pytest.raises(ValueError, match=r"mse_loss: input has shape \(2, 3\) but target has shape \(3,\)"):
        F.mse_loss(rnd(2, 3), rnd(3))
    with pytest.raises(
        ValueError, match=r"binary_cross_entropy: input has shape \(2, 3\) but target has shape \(2, 1\)"
    ):
        F.binary_cross_entropy(rnd(2, 3, lo=0.1, hi=0.9), rnd(2, 1, lo=0, hi=1))
    with pytest.raises(ValueError, match="binary_cross_entropy: input must hold probabilities in \\[0, 1\\]"):
        F.binary_cross_entropy(rnd(2, 3, lo=-2, hi=2), rnd(2, 3, lo=0, hi=1))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: input has shape \(4,\) but target"):
        F.binary_cross_entropy_with_logits(rnd(4), rnd(5))
    with pytest.raises(TypeError, match="cross_entropy: target must be integer class labels"):
        F.cross_entropy(rnd(3, 4), rnd(3))
    with pytest.raises(IndexError, match=r"cross_entropy: label 4 is out of range for 4 classes"):
        F.cross_entropy(rnd(3, 4), minae.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"cross_entropy: labels must have shape \(3,\)"):
        F.cross_entropy(rnd(3, 4), minae.tensor([0, 1]))
    with pytest.raises(TypeError, match="mse_loss: target must be a minae Tensor, got ndarray"):
        F.mse_loss(rnd(3), np.zeros(3))


# ------------------------------------------------------------ against torch ---
def _torch_pair(*arrays, requires_grad=True):
    torch = pytest.importorskip("torch")
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad) for a in arrays]
    ms = [minae.tensor(a, requires_grad=requires_grad) for a in arrays]
    return torch, ts, ms


def _compare(out_m, out_t, ms, ts):
    np.testing.assert_allclose(npy(out_m), out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    out_m.sum().backward()
    out_t.sum().backward()
    for m, t in zip(ms, ts):
        if t.grad is None:  # an input the loss does not depend on (the probabilities next to labels)
            assert m.grad is None
            continue
        np.testing.assert_allclose(npy(m.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def _mse(F, lib, x, y, reduction):
    return F.mse_loss(x, y, reduction=reduction)


def _bce(F, lib, x, y, reduction):
    return F.binary_cross_entropy(lib.sigmoid(x), y, reduction=reduction)


def _bce_logits(F, lib, x, y, reduction):
    w = lib.tensor([0.5, 1.5, 2.0, 0.7], dtype=lib.float64)
    pos_weight = lib.tensor([1.0, 3.0, 0.5, 2.0], dtype=lib.float64)  # no gradient for these in torch
    return F.binary_cross_entropy_with_logits(x, y, w, reduction=reduction, pos_weight=pos_weight)


def _ce_labels(F, lib, x, y, reduction):
    return F.cross_entropy(x, lib.tensor([0, 3, 1, 2, 3]), reduction=reduction)


def _ce_probabilities(F, lib, x, y, reduction):
    return F.cross_entropy(x, y / y.sum(1, keepdim=True), reduction=reduction)


@pytest.mark.parametrize("loss", [_mse, _bce, _bce_logits, _ce_labels, _ce_probabilities])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_losses_match_torch(loss, reduction):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-3, 3, (5, 4)), rng.uniform(0, 1, (5, 4))
    torch, (xt, yt), (xm, ym) = _torch_pair(x, y)
    _compare(loss(F, minae, xm, ym, reduction), loss(torch.nn.functional, torch, xt, yt, reduction), [xm, ym], [xt, yt])


def test_activations_and_layers_match_torch():
    rng = np.random.default_rng(1)
    x, w, b = rng.uniform(-3, 3, (5, 4)), rng.normal(size=(3, 4)), rng.normal(size=3)
    torch, (xt, wt, bt), (xm, wm, bm) = _torch_pair(x, w, b)
    TF = torch.nn.functional
    _compare(F.linear(xm, wm, bm), TF.linear(xt, wt, bt), [xm, wm, bm], [xt, wt, bt])
    cases = [
        (F.relu, TF.relu),
        (F.sigmoid, torch.sigmoid),
        (F.tanh, torch.tanh),
        (lambda t: F.leaky_relu(t, 0.2), lambda t: TF.leaky_relu(t, 0.2)),
        (lambda t: F.softplus(t, beta=2.0), lambda t: TF.softplus(t, beta=2.0)),
        (lambda t: F.log_softmax(t, 1), lambda t: TF.log_softmax(t, 1)),
        (lambda t: F.softmax(t, 0), lambda t: TF.softmax(t, 0)),
    ]
    for fm, ft in cases:
        torch, (xt,), (xm,) = _torch_pair(x)
        _compare(fm(xm), ft(xt), [xm], [xt])


def test_gaussian_kl_matches_torch_distributions():
    rng = np.random.default_rng(2)
    mu, logvar = rng.normal(size=(4, 3)), rng.uniform(-3, 3, (4, 3))
    torch, (mt, lt), (mm, lm) = _torch_pair(mu, logvar)
    D = torch.distributions
    q = D.Normal(mt, torch.exp(0.5 * lt))
    p = D.Normal(torch.zeros_like(mt), torch.ones_like(mt))
    _compare(F.gaussian_kl(mm, logvar=lm, reduction="none"), D.kl_divergence(q, p).sum(-1), [mm, lm], [mt, lt])


# ------------------------------------------- value checks, and what they cost ---
def test_binary_cross_entropy_rejects_targets_outside_0_1(device):
    p = rnd(2, 3, lo=0.1, hi=0.9, device=device)
    bad = rnd(2, 3, lo=1.5, hi=2.0, device=device)
    with minae.detect_anomaly():  # on every device
        with pytest.raises(ValueError, match=r"binary_cross_entropy: target must hold probabilities in \[0, 1\]"):
            F.binary_cross_entropy(p, bad)
    if device == "cpu":  # on NumPy the check is cheap, so it always runs
        with pytest.raises(ValueError, match=r"target must hold probabilities in \[0, 1\], got values from 1\.5"):
            F.binary_cross_entropy(p, bad)
        with pytest.raises(ValueError, match=r"target must hold probabilities"):
            F.binary_cross_entropy(p, rnd(2, 3, lo=-0.5, hi=-0.1, device=device))
    F.binary_cross_entropy(p, rnd(2, 3, lo=0, hi=1, device=device))  # in range: fine


def test_cross_entropy_bad_label_on_every_device(device):
    x = rnd(2, 4, device=device)
    labels = minae.tensor([0, 4], device=device)
    with minae.detect_anomaly():
        with pytest.raises(IndexError, match=r"cross_entropy: label 4 is out of range for 4 classes"):
            F.cross_entropy(x, labels)
    if device == "cpu":
        with pytest.raises(IndexError, match=r"label 4 is out of range"):
            F.cross_entropy(x, labels)
    else:  # no device sync: the bad sample's loss is NaN instead
        loss = npy(F.cross_entropy(x, labels, reduction="none"))
        assert np.isfinite(loss[0]) and np.isnan(loss[1])


def test_fused_binary_cross_entropy_gradient_where_the_clamp_holds():
    """The clamped side of the loss is constant, so it adds nothing to the gradient (d/dỹ of the other side stays)."""
    p = minae.tensor([0.0, 1.0, 0.0, 1.0, 0.3], dtype=minae.float64, requires_grad=True)
    y = minae.tensor([1.0, 0.0, 0.25, 0.75, 0.6], dtype=minae.float64, requires_grad=True)
    F.binary_cross_entropy(p, y, reduction="sum").backward()
    # ∂ℓ/∂ỹ = (1 − y)/(1 − ỹ) − y/ỹ, each side only where its log is above −100
    np.testing.assert_allclose(npy(p.grad), [0.0, 0.0, 0.75, -0.75, 0.4 / 0.7 - 0.6 / 0.3], rtol=1e-12)
    # ∂ℓ/∂y = max(log(1 − ỹ), −100) − max(log ỹ, −100)
    np.testing.assert_allclose(npy(y.grad), [100.0, -100.0, 100.0, -100.0, math.log(0.7) - math.log(0.3)], rtol=1e-12)
    x = rnd(3, 4, lo=0.05, hi=0.95)
    assert gradgradcheck(lambda u: F.binary_cross_entropy(u, rnd(3, 4, lo=0, hi=1, seed=1), reduction="sum"), [x])


# ---------------------------------------------------------------------- logsigmoid ---
def test_logsigmoid_gradcheck_on_broadcasting_shapes(leaf64):
    x = leaf64(np.random.default_rng(0).standard_normal((2, 3)) * 5)
    b = leaf64(np.random.default_rng(1).standard_normal(3) * 5)
    assert gradcheck(lambda u, v: F.logsigmoid(u + v), [x, b])
    assert gradgradcheck(lambda u, v: F.logsigmoid(u * v), [x, b])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_logsigmoid_matches_pytorch_over_the_whole_range(dtype):
    torch = pytest.importorskip("torch")
    values = [-1e4, -800.0, -104.0, -40.0, -17.0, -1.0, 0.0, 1e-3, 1.0, 17.0, 40.0, 104.0, 800.0, 1e4]
    x = minae.tensor(values, dtype=getattr(minae, dtype), requires_grad=True)
    tx = torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True)
    y, ty = F.logsigmoid(x), torch.nn.functional.logsigmoid(tx)
    y.sum().backward()
    ty.sum().backward()
    assert y.dtype == x.dtype
    assert np.all(np.isfinite(y.numpy()))
    rtol = 1e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=rtol, atol=0)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=rtol, atol=0)


def test_logsigmoid_is_not_the_log_of_a_rounded_sigmoid():
    # at x = 30 the true value is −e^(−30) ≈ −9.36e-14; log(sigmoid(30)) in float32 is log(1) = 0
    x = minae.tensor([30.0, -200.0])
    y = F.logsigmoid(x).numpy()
    np.testing.assert_allclose(y, [-math.exp(-30.0), -200.0], rtol=1e-6)
