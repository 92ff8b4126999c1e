"""Task 2.5: SGD with momentum (PyTorch's rule, ``sgd_momentum_step``), through ``optim.SGD``.

The tests here check what momentum does: with a constant gradient the steps grow geometrically towards
γ g/(1 − μ), the buffer holds gradients (so a new learning rate scales all of it at once), and it survives
``zero_grad(set_to_none=False)``, which reuses the ``.grad`` array. Your teacher's grader runs more tests,
on random gradients, whose expected values stay with the grader.
"""

import minae
from minae import optim
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "SGD with momentum: the buffer remembers past gradients (not steps) in an array of its own, and the step "
    "is the learning rate times the buffer"
)


def start(seed, shape=(2, 3)):
    gen = rng(seed)
    w0 = gen.standard_normal(shape).astype(np.float32)
    g = gen.standard_normal(shape).astype(np.float32)
    momentum = round(float(gen.uniform(0.5, 0.95)), 3)
    lr, gamma = round(float(gen.uniform(0.05, 0.2)), 4), round(float(gen.uniform(0.3, 0.7)), 3)
    return w0, g, momentum, lr, gamma


def lr_schedule(opt, lr, gamma, steps=5):
    """The rates of step 1, 2, …: γ₀, γ₀·r, γ₀·r², … set by an ExponentialLR (its step() after each step)."""
    return optim.lr_scheduler.ExponentialLR(opt, gamma), [lr * gamma**k for k in range(steps)]


def gradient_by_backward(p, g):
    """p.grad += g through a backward pass (into the existing .grad array, if there is one)."""
    (p * minae.tensor(g)).sum().backward()


def test_sgd_momentum_constant_gradient():
    # a constant gradient g: b_k = (1 + μ + … + μ^(k−1)) g, so θ_k − θ_(k−1) = −γ (1 − μ^k)/(1 − μ) g
    w0, g, momentum, lr, _ = start(0)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    w = w0.astype(np.float64)
    for k in range(1, 6):
        p.grad = minae.tensor(g)
        opt.step()
        assert_equal(str(p.dtype), "float32", "SGD turned a float32 parameter into {actual}")
        w = w - lr * (1 - momentum**k) / (1 - momentum) * g
        assert_close(p, w, f"SGD(momentum={momentum}), constant gradient: θ after step {k}", rtol=1e-5, atol=1e-6)


def test_sgd_momentum_buffer_holds_gradients_not_steps():
    # PyTorch's momentum: b ← μ b + g, θ ← θ − γ_t b. A new γ_t scales the whole of b at once (the textbook's
    # v ← μ v − γ g, θ ← θ + v keeps the old γ inside v: the same only while γ stays the same)
    w0, g, momentum, lr0, gamma = start(1)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], lr=lr0, momentum=momentum)
    scheduler, lrs = lr_schedule(opt, lr0, gamma)
    w = w0.astype(np.float64)
    for k, lr in enumerate(lrs, 1):
        p.grad = minae.tensor(g)
        opt.step()
        scheduler.step()
        w = w - lr * (1 - momentum**k) / (1 - momentum) * g
        assert_close(
            p,
            w,
            f"SGD(momentum={momentum}), lr changed to {lr:.4g} for step {k} (the step is −γ_t b, and b = μ b + g "
            "holds gradients, not steps): θ",
            rtol=1e-5,
            atol=1e-6,
        )


def test_sgd_momentum_survives_a_reused_grad_array():
    # zero_grad(set_to_none=False) fills .grad with zeros in place and backward adds into it: a buffer that
    # is the .grad array itself (b = g without a copy) is zeroed with it, and momentum is lost
    w0, g, momentum, lr, _ = start(2)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    w = w0.astype(np.float64)
    for k in range(1, 5):
        opt.zero_grad(set_to_none=False)
        gradient_by_backward(p, g)
        opt.step()
        w = w - lr * (1 - momentum**k) / (1 - momentum) * g
        assert_close(
            p,
            w,
            f"SGD(momentum={momentum}) with zero_grad(set_to_none=False): θ after step {k} (the momentum buffer "
            "must be an array of its own, not the .grad array that zero_grad clears and backward refills)",
            rtol=1e-5,
            atol=1e-6,
        )


def test_sgd_momentum_buffer_in_state():
    w0, g, momentum, lr, _ = start(3)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    for _ in range(3):
        p.grad = minae.tensor(g.copy())  # an array of its own: g stays what each step was given
        opt.step()
    assert_close(
        p.grad,
        g,
        "p.grad after the steps (SGD's step must leave the gradient as backward made it: the buffer and the "
        "products go in b and tmp, never in g itself)",
        rtol=0,
        atol=0,
    )
    state = opt.state[p]
    message = "SGD with momentum keeps b in opt.state[p]['momentum_buffer'], but it is missing"
    assert_equal("momentum_buffer" in state, True, message)
    if "momentum_buffer" not in state:
        return
    expected = (1 + momentum + momentum**2) * g.astype(np.float64)
    assert_close(state["momentum_buffer"], expected, "opt.state[p]['momentum_buffer'] b after 3 steps", rtol=1e-5)


# BEGIN GRADER ONLY
def reference(w0, grads, lrs, momentum):
    """θ after each step, in float64, for gradients ``grads`` and learning rates ``lrs``."""
    w, b, path = w0.astype(np.float64), None, []
    for g, lr in zip(grads, lrs):
        b = np.array(g, np.float64) if b is None else momentum * b + g
        w = w - lr * b
        path.append(w)
    return path


def random_run(seed, reuse_grad):
    gen = rng(seed)
    w0 = gen.standard_normal((3, 2)).astype(np.float32)
    grads = [gen.standard_normal((3, 2)).astype(np.float32) for _ in range(5)]
    momentum = round(float(gen.uniform(0.5, 0.95)), 3)
    lr0, gamma = round(float(gen.uniform(0.05, 0.2)), 4), round(float(gen.uniform(0.3, 0.7)), 3)
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], lr=lr0, momentum=momentum)
    scheduler, lrs = lr_schedule(opt, lr0, gamma)
    how = "zero_grad(set_to_none=False) and backward" if reuse_grad else "a new .grad each step"
    for k, (g, lr, w) in enumerate(zip(grads, lrs, reference(w0, grads, lrs, momentum)), 1):
        if reuse_grad:
            opt.zero_grad(set_to_none=False)
            gradient_by_backward(p, g)
        else:
            p.grad = minae.tensor(g)
        opt.step()
        scheduler.step()
        assert_close(
            p,
            w,
            f"SGD(momentum={momentum}), random gradients, lr {lr:.4g} at step {k}, {how}: θ after step {k}",
            rtol=1e-5,
            atol=1e-6,
        )


def test_sgd_momentum_random_gradients_changing_lr():
    random_run(10, reuse_grad=False)


def test_sgd_momentum_random_gradients_reused_grad():
    random_run(11, reuse_grad=True)


# END GRADER ONLY
