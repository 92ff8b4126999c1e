"""Results on a GPU equal the CPU's: the ops whose CuPy code differs most from NumPy's.

Each case computes on the CPU and on ``device`` from the same host values and compares values
and gradients. On the CPU the comparison is with itself, and cheap; on a GPU it is the check.
"""

import numpy as np
import pytest

import minae
import minae.nn.functional as F


def _on(device, values, requires_grad=False):
    return minae.tensor(values, device=device, requires_grad=requires_grad)


def _both(device, fn, *host_args):
    """fn on the CPU and on ``device`` from the same float64 arrays: [(value, grads), (value, grads)]."""
    out = []
    for dev in ("cpu", device):
        args = [_on(dev, a, requires_grad=a.dtype.kind == "f") for a in host_args]
        y = fn(*args)
        y.backward(minae.ones_like(y))
        out.append((y.numpy(), [a.grad.numpy() if a.grad is not None else None for a in args]))
    return out


def test_scatter_add_gradients_of_repeated_indices(device):
    """x[idx] with repeated idx: the gradient adds up every use (xp.add.at, not a plain store)."""
    x = np.arange(6.0).reshape(3, 2)
    idx = np.array([0, 2, 0, 0, 1, 2])
    cases = {
        "rows": lambda t: t[_on(t.device, idx)] * 1.5,
        "pairs": lambda t: t[_on(t.device, idx[:4]), _on(t.device, [1, 0, 1, 1])] ** 2,
        "list": lambda t: t[[2, 2, 1]].sin(),
    }
    for name, fn in cases.items():
        (cpu_y, (cpu_g,)), (dev_y, (dev_g,)) = _both(device, fn, x)
        np.testing.assert_allclose(dev_y, cpu_y, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(dev_g, cpu_g, rtol=1e-12, err_msg=name)
    (_, (g,)), _ = _both(device, cases["rows"], x)
    np.testing.assert_array_equal(g, [[4.5, 4.5], [1.5, 1.5], [3.0, 3.0]])  # row 0 used three times


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_the_cpu(device, reduction):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, (7, 5))
    logits[0, 2] = 60.0  # a confident row: the log-sum-exp must not overflow
    target = np.array([2, 0, 4, 4, 1, 3, 2])
    (cpu_y, (cpu_g, _)), (dev_y, (dev_g, _)) = _both(
        device, lambda x, t: F.cross_entropy(x, t, reduction=reduction), logits, target
    )
    np.testing.assert_allclose(dev_y, cpu_y, rtol=1e-12)
    np.testing.assert_allclose(dev_g, cpu_g, rtol=1e-12, atol=1e-15)
    assert np.isfinite(dev_y).all()


def test_binary_cross_entropy_matches_the_cpu(device):
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 5, (4, 6)), rng.uniform(0, 1, (4, 6))
    for fn in (
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="sum"),
        lambda a, b: F.binary_cross_entropy(a.sigmoid(), b, reduction="mean"),
    ):
        (cpu_y, cpu_g), (dev_y, dev_g) = _both(device, fn, x, y)
        np.testing.assert_allclose(dev_y, cpu_y, rtol=1e-10)
        for a, b in zip(dev_g, cpu_g):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
