"""Task 2.5: SGD with momentum (PyTorch's rule): trajectories against the update written out in NumPy."""

import minae
from minae import optim
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, rng


def reference(w0, grads, lr, momentum, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """The update rule of SGD's docstring, step by step, in float64."""
    w, b, path = w0.astype(np.float64), None, []
    for g in grads:
        g = -g if maximize else g
        g = g + weight_decay * w
        b = np.array(g) if b is None else momentum * b + (1 - dampening) * g
        w = w - lr * (g + momentum * b if nesterov else b)
        path.append(w)
    return path, b


def run(settings, steps=4, seed=0):
    gen = rng(seed)
    w0 = gen.standard_normal((2, 3)).astype(np.float32)
    grads = [gen.standard_normal((2, 3)).astype(np.float32) for _ in range(steps)]
    p = minae.tensor(w0, requires_grad=True)
    opt = optim.SGD([p], **settings)
    expected, buffer = reference(w0, grads, **settings)
    for step, (g, w) in enumerate(zip(grads, expected), 1):
        p.grad = minae.tensor(g)
        opt.step()
        assert_equal(str(p.dtype), "float32", f"SGD({settings}) turned a float32 parameter into {{actual}}")
        assert_close(p, w, f"SGD({settings}): the parameter after step {step}", rtol=1e-5, atol=1e-6)
    return opt, p, buffer


def test_sgd_momentum():
    run(dict(lr=0.1, momentum=0.9))


def test_sgd_momentum_dampening_and_weight_decay():
    run(dict(lr=0.05, momentum=0.8, dampening=0.3))
    run(dict(lr=0.05, momentum=0.9, weight_decay=0.01))


def test_sgd_nesterov():
    run(dict(lr=0.1, momentum=0.9, nesterov=True))


def test_sgd_momentum_maximize():
    run(dict(lr=0.1, momentum=0.5, maximize=True))


def test_sgd_momentum_buffer_in_state():
    opt, p, buffer = run(dict(lr=0.1, momentum=0.9))
    state = opt.state[p]
    message = "SGD with momentum keeps b in opt.state[p]['momentum_buffer'], but it is missing"
    assert_equal("momentum_buffer" in state, True, message)
    if "momentum_buffer" not in state:
        return
    assert_close(state["momentum_buffer"], buffer, "opt.state[p]['momentum_buffer'] after 4 steps", rtol=1e-5)
