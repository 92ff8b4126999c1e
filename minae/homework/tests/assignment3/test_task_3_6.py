"""Task 3.6: target propagation: ž by descent on E(y, z) = C + R + D from z̃ = Enc(y), then the two updates
θ_Dec ← θ_Dec − η ∇ C(y, Dec(ž)) and θ_Enc ← θ_Enc − η ∇ D(ž, z̃), against NumPy."""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, helper, rng
from minae.models import TargetProp

IDEA = (  # what every test of this file checks: a failing test's line names it
    "target propagation: a descent on the latent with z̃ held fixed, then the decoder trained on C(y, Dec(ž))"
    " and the encoder on D(ž, Enc(y))"
)

N, D, H, Z, REG, DIST = 5, 6, 4, 2, 0.01, 0.5


def model(steps, lr):
    return TargetProp(D, H, Z, reg=REG, dist=DIST, steps=steps, z_lr=lr).double()


def weights(seq):
    """[(W, b), …] of a Sequential's Linear layers, as float64 arrays."""
    layers = [seq[i] for i in range(0, len(seq), 2)]
    return [(lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)) for lin in layers]


def mlp(params, x, out_tanh):
    """The forward pass of Linear–tanh–Linear(–tanh), keeping each layer's input and output."""
    (w1, b1), (w2, b2) = params
    h = np.tanh(x @ w1.T + b1)
    out = h @ w2.T + b2
    return h, np.tanh(out) if out_tanh else out


def mlp_backward(params, x, h, out, g_out, out_tanh):
    """Gradients of ⟨g_out, mlp(x)⟩ for x and for each W, b."""
    (w1, _), (w2, _) = params
    d2 = g_out * (1 - out**2) if out_tanh else g_out
    d1 = (d2 @ w2) * (1 - h**2)
    return d1 @ w1, [d1.T @ x, d1.sum(0), d2.T @ h, d2.sum(0)]


def descend(m, y, steps, lr):
    """z̃ = Enc(y) and ž after ``steps`` steps of z ← z − η ∂E/∂z, in NumPy."""
    enc, dec = weights(m.encoder), weights(m.decoder)
    z_tilde = mlp(enc, y, False)[1]
    z = z_tilde.copy()
    for _ in range(steps):
        h, out = mlp(dec, z, True)
        gz = mlp_backward(dec, z, h, out, -2 * (y - out), True)[0] + 2 * REG * z + 2 * DIST * (z - z_tilde)
        z = z - lr * gz
    return z, z_tilde


def data(seed):
    return rng(seed).uniform(-1, 1, (N, D))


def test_one_step_of_the_latent_descent():
    m, y = model(1, 0.1), data(0)
    z_check, z_tilde = m.infer(minae.tensor(y, dtype=minae.float64))
    want, want_tilde = descend(m, y, 1, 0.1)
    assert_close(z_tilde, want_tilde, "z̃ = Enc(y), the descent's start", rtol=1e-9)
    assert_close(z_check, want, "one step z ← z̃ − η ∂E/∂z of E = C + R + D (η = 0.1)", rtol=1e-8, atol=1e-12)


def test_several_steps_of_the_latent_descent():
    m, y = model(4, 0.05), data(1)
    z_check, _ = m.infer(minae.tensor(y, dtype=minae.float64))
    assert_close(
        z_check, descend(m, y, 4, 0.05)[0], "ž after 4 steps of descent on E (η = 0.05)", rtol=1e-8, atol=1e-12
    )


def test_the_two_terms_of_the_loss():
    m, y = model(3, 0.1), data(2)
    z_check, z_tilde = descend(m, y, 3, 0.1)
    helper("fixed_targets")(m, z_check)  # ž from the descent above: this test checks the loss, not the descent
    terms = m.loss(minae.tensor(y, dtype=minae.float64))
    cost = ((y - mlp(weights(m.decoder), z_check, True)[1]) ** 2).sum(1).mean()
    distance = DIST * ((z_check - z_tilde) ** 2).sum(1).mean()
    assert_close(
        terms["reconstruction"], cost, "C(y, Dec(ž)), the batch mean (the decoder reconstructs from ž)", rtol=1e-8
    )
    assert_close(terms["distance"], distance, "D(ž, z̃) = λ_D ‖ž − Enc(y)‖², the batch mean", rtol=1e-8)
    assert_close(terms["loss"], cost + distance, "the loss C(y, Dec(ž)) + D(ž, Enc(y))", rtol=1e-8)


def test_the_decoder_and_encoder_updates():
    m, y = model(3, 0.1), data(3)
    z_check, z_tilde = descend(m, y, 3, 0.1)
    helper("fixed_targets")(m, z_check)  # ž from the descent above: this test checks the updates, not the descent
    m.loss(minae.tensor(y, dtype=minae.float64))["loss"].backward()
    dec, enc = weights(m.decoder), weights(m.encoder)
    h, out = mlp(dec, z_check, True)
    dec_grads = mlp_backward(dec, z_check, h, out, -2 * (y - out) / N, True)[1]
    g, _ = mlp(enc, y, False)
    enc_grads = mlp_backward(enc, y, g, z_tilde, -2 * DIST * (z_check - z_tilde) / N, False)[1]
    names = ("W of layer 0", "b of layer 0", "W of layer 2", "b of layer 2")
    layers = (m.decoder[0].weight, m.decoder[0].bias, m.decoder[2].weight, m.decoder[2].bias)
    for name, p, want in zip(names, layers, dec_grads):
        what = f"the decoder's update ∇ C(y, Dec(ž)) for its {name} (ž a fixed target: no gradient through the descent)"
        assert_close(p.grad, want, what, rtol=1e-7, atol=1e-12)
    layers = (m.encoder[0].weight, m.encoder[0].bias, m.encoder[2].weight, m.encoder[2].bias)
    for name, p, want in zip(names, layers, enc_grads):
        what = f"the encoder's update ∇ D(ž, z̃) for its {name} (the encoder learns to predict ž; C does not train it)"
        assert_close(p.grad, want, what, rtol=1e-7, atol=1e-12)
