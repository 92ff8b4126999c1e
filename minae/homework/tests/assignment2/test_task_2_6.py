"""Task 2.6: Adam (``adam_step``), through ``optim.Adam``.

The tests here check what Adam's parts are for: the bias corrections make every step of a constant
gradient γ long in each coordinate (the first step too), the step does not change when the gradients are
scaled, and the moments are kept in the optimizer's state. Your teacher's grader runs more tests, on random
gradients, whose expected values stay with the grader.
"""

import minae
from minae import optim
from minae.backend import np
from minae.homework.testing import as_numpy, assert_close, assert_equal, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "Adam: two moving averages of the gradient and of its square, each with its bias correction, and ε "
    "outside the square root"
)


def setting(seed, shape=(3, 2)):
    gen = rng(seed)
    w0 = gen.standard_normal(shape).astype(np.float32)
    g = gen.standard_normal(shape).astype(np.float32)
    betas = (round(float(gen.uniform(0.7, 0.95)), 3), round(float(gen.uniform(0.9, 0.999)), 4))
    lr, gamma = round(float(gen.uniform(0.01, 0.05)), 4), round(float(gen.uniform(0.3, 0.7)), 3)
    return w0, g, betas, lr, gamma


def lr_schedule(opt, lr, gamma, steps=5):
    """The rates of step 1, 2, …: γ₀, γ₀·r, γ₀·r², … set by an ExponentialLR (its step() after each step)."""
    return optim.lr_scheduler.ExponentialLR(opt, gamma), [lr * gamma**k for k in range(steps)]


def test_adam_constant_gradient():
    # a constant g: m_t = (1 − β₁ᵗ) g and v_t = (1 − β₂ᵗ) g², so the corrected m̂ = g and v̂ = g², and every
    # step is −γ g/(|g| + ε), about γ in each coordinate: the first step too, and whatever γ is at that step
    w0, g, betas, lr0, gamma = setting(0)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.Adam([p], lr=lr0, betas=betas)
    scheduler, lrs = lr_schedule(opt, lr0, gamma)
    w = w0.astype(np.float64)
    g64 = g.astype(np.float64)
    for k, lr in enumerate(lrs, 1):
        p.grad = minae.tensor(g)
        opt.step()
        scheduler.step()
        assert_equal(str(p.dtype), "float32", "Adam turned a float32 parameter into {actual}")
        w = w - lr * g64 / (np.abs(g64) + 1e-8)
        assert_close(
            p,
            w,
            f"Adam(betas={betas}), constant gradient, lr {lr:.4g}: θ after step {k} (with both bias corrections "
            "every step is γ long in each coordinate)",
            rtol=1e-5,
            atol=1e-6,
        )


def test_adam_eps_is_added_to_the_corrected_root():
    # ε sits in θ ← θ − γ m̂ / (√v̂ + ε): added to the corrected √v̂, outside the root. With a small constant
    # gradient and an ε of its size, m̂ = g and v̂ = g² make every step γ g/(|g| + ε) exactly; √(v̂ + ε), or ε
    # added before the correction (√v̂ + ε/√(1 − β₂ᵗ)), give other steps
    gen = rng(3)
    w0 = gen.standard_normal((3, 2))
    g = gen.choice([-1.0, 1.0], (3, 2)) * 10 ** gen.uniform(-3, -2, (3, 2))
    eps = float(10 ** gen.uniform(-3, -2.5))
    betas = (round(float(gen.uniform(0.7, 0.95)), 3), round(float(gen.uniform(0.99, 0.999)), 4))
    lr = round(float(gen.uniform(0.01, 0.05)), 4)
    p = minae.tensor(w0, dtype=minae.float64, requires_grad=True)
    opt = optim.Adam([p], lr=lr, betas=betas, eps=eps)
    w = w0.copy()
    for k in range(1, 4):
        p.grad = minae.tensor(g, dtype=minae.float64)
        opt.step()
        w = w - lr * g / (np.abs(g) + eps)
        assert_close(
            p,
            w,
            f"Adam(eps={eps:.3g}), a small constant gradient: θ after step {k} (ε is added to the corrected √v̂, "
            "outside the square root: the step is γ m̂/(√v̂ + ε))",
            rtol=1e-9,
            atol=1e-12,
        )


def test_adam_is_invariant_to_the_gradients_scale():
    # m / √v does not change when every gradient is multiplied by c > 0 (ε aside)
    gen = rng(1)
    w0 = gen.standard_normal((4,)).astype(np.float32)
    grads = [gen.standard_normal((4,)).astype(np.float32) for _ in range(4)]
    scale = float(10 ** gen.uniform(1, 3))
    paths = []
    for c in (1.0, scale):
        p = minae.tensor(w0, requires_grad=True)
        opt = optim.Adam([p], lr=0.01)
        path = []
        for g in grads:
            p.grad = minae.tensor((c * g).astype(np.float32))
            opt.step()
            path.append(p.numpy())
        paths.append(path)
    for k, (plain, scaled) in enumerate(zip(*paths), 1):
        assert_close(scaled, plain, f"Adam with every gradient × {scale:.4g}: θ after step {k}", rtol=1e-4, own=True)


def test_adam_state():
    w0, g, betas, lr, _ = setting(2)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.Adam([p], lr=lr, betas=betas)
    for _ in range(4):
        p.grad = minae.tensor(g.copy())  # an array of its own: g stays what each step was given
        opt.step()
    assert_close(
        p.grad,
        g,
        "p.grad after the steps (Adam's step must leave the gradient as backward made it: g² and the other "
        "products go in the scratch array tmp or in m and v, never in g itself)",
        rtol=0,
        atol=0,
    )
    state = opt.state[p]
    assert_equal(state.get("step"), 4, "Adam's state['step'] after 4 steps should be {expected}, got {actual!r}")
    m, v = as_numpy(state["exp_avg"]).astype(np.float64), as_numpy(state["exp_avg_sq"]).astype(np.float64)
    assert_equal(
        list(m.shape), list(g.shape), "Adam's state['exp_avg'] (m) should have θ's shape {expected}, got {actual}"
    )
    assert_equal(
        list(v.shape), list(g.shape), "Adam's state['exp_avg_sq'] (v) should have θ's shape {expected}, got {actual}"
    )
    assert_equal(bool((np.sign(m) == np.sign(g)).all()), True, "Adam's m after 4 steps of one gradient g has g's signs")
    assert_equal(bool((v > 0).all()), True, "Adam's v after 4 steps of a nonzero gradient is positive")
    # BEGIN GRADER ONLY
    g64 = g.astype(np.float64)
    m = (1 - betas[0] ** 4) * g64
    v = (1 - betas[1] ** 4) * g64**2
    assert_close(state["exp_avg"], m, "Adam's state['exp_avg'] (m) after 4 steps", rtol=1e-5, atol=1e-7)
    assert_close(state["exp_avg_sq"], v, "Adam's state['exp_avg_sq'] (v) after 4 steps", rtol=1e-5, atol=1e-7)
    # END GRADER ONLY


# BEGIN GRADER ONLY
def reference(w0, grads, lrs, betas):
    """θ, m and v after each step, in float64."""
    b1, b2 = betas
    w = w0.astype(np.float64)
    m, v, path = np.zeros_like(w), np.zeros_like(w), []
    for t, (g, lr) in enumerate(zip(grads, lrs), 1):
        g = g.astype(np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + 1e-8)
        path.append((w, m, v))
    return path


def random_run(seed, change_lr):
    gen = rng(seed)
    w0 = gen.standard_normal((3, 2)).astype(np.float32)
    grads = [gen.standard_normal((3, 2)).astype(np.float32) for _ in range(5)]
    betas = (round(float(gen.uniform(0.7, 0.95)), 3), round(float(gen.uniform(0.9, 0.999)), 4))
    lr0, gamma = round(float(gen.uniform(0.01, 0.05)), 4), round(float(gen.uniform(0.3, 0.7)), 3)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.Adam([p], lr=lr0, betas=betas)
    scheduler, lrs = lr_schedule(opt, lr0, gamma if change_lr else 1.0)
    path = reference(w0, grads, lrs, betas)
    for k, (g, lr, (w, _, _)) in enumerate(zip(grads, lrs, path), 1):
        p.grad = minae.tensor(g)
        opt.step()
        scheduler.step()
        assert_close(
            p, w, f"Adam(betas={betas}), random gradients, lr {lr:.4g}: θ after step {k}", rtol=1e-5, atol=1e-6
        )
    state, (_, m, v) = opt.state[p], path[-1]
    assert_close(state["exp_avg"], m, "Adam's state['exp_avg'] (m) after random gradients", rtol=1e-5, atol=1e-7)
    assert_close(state["exp_avg_sq"], v, "Adam's state['exp_avg_sq'] (v) after random gradients", rtol=1e-5, atol=1e-7)


def test_adam_random_gradients():
    random_run(10, change_lr=False)


def test_adam_random_gradients_changing_lr():
    random_run(11, change_lr=True)


# END GRADER ONLY
