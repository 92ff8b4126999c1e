"""Task 2.6: Adam (and AdamW, which shares its code): trajectories against the update written out in NumPy."""

import math

import minae
from minae import optim
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, rng


def reference(w0, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    """The update rule of Adam's docstring, step by step, in float64."""
    b1, b2 = betas
    w = w0.astype(np.float64)
    m, v, v_max, path = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w), []
    for t, g in enumerate(grads, 1):
        g = g.astype(np.float64)
        if decoupled:
            w = w * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        v_max = np.maximum(v_max, v)
        denominator = np.sqrt(v_max if amsgrad else v) / math.sqrt(1 - b2**t) + eps
        w = w - lr / (1 - b1**t) * m / denominator
        path.append(w)
    return path, m, v


def run(make, settings, steps=5, seed=0):
    gen = rng(seed)
    w0 = gen.standard_normal((3, 2)).astype(np.float32)
    grads = [gen.standard_normal((3, 2)).astype(np.float32) for _ in range(steps)]
    p = minae.tensor(w0, requires_grad=True)
    opt = make([p])
    expected, m, v = reference(w0, grads, **settings)
    for step, (g, w) in enumerate(zip(grads, expected), 1):
        p.grad = minae.tensor(g)
        opt.step()
        assert_equal(str(p.dtype), "float32", f"{type(opt).__name__} turned a float32 parameter into {{actual}}")
        assert_close(p, w, f"{type(opt).__name__}({settings}): the parameter after step {step}", rtol=1e-5, atol=1e-6)
    return opt, p, m, v


def test_adam_defaults():
    run(lambda ps: optim.Adam(ps, lr=0.01), dict(lr=0.01))


def test_adam_weight_decay():
    run(lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1), dict(lr=0.01, weight_decay=0.1))


def test_adam_amsgrad():
    run(
        lambda ps: optim.Adam(ps, lr=0.02, betas=(0.8, 0.9), amsgrad=True),
        dict(lr=0.02, betas=(0.8, 0.9), amsgrad=True),
    )


def test_adamw():
    run(lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1), dict(lr=0.01, weight_decay=0.1, decoupled=True))


def test_adam_state():
    opt, p, m, v = run(lambda ps: optim.Adam(ps, lr=0.01), dict(lr=0.01))
    state = opt.state[p]
    assert_equal(state.get("step"), 5, "Adam's state['step'] after 5 steps should be {expected}, got {actual!r}")
    assert_close(state["exp_avg"], m, "Adam's state['exp_avg'] (m) after 5 steps", rtol=1e-5, atol=1e-7)
    assert_close(state["exp_avg_sq"], v, "Adam's state['exp_avg_sq'] (v) after 5 steps", rtol=1e-5, atol=1e-7)
