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


# ------------------------------------------- every GPU, not only the first (issue 20) ---
# On cuda:1 the current GPU is another one (cuda:0): CuPy computes and allocates on the current GPU,
# so each of these fails unless minae makes the tensors' GPU current for the work it does.
def test_results_stay_on_their_tensors_gpu(device):
    a = minae.ones(3, device=device, requires_grad=True)
    y = a * 2
    assert y.device == device
    z = (y + a).exp().sum()  # a * 2 + a mixed a result with its input
    z.backward()
    assert z.device == a.grad.device == device
    np.testing.assert_allclose(a.grad.numpy(), np.full(3, 3 * np.exp(3.0)), rtol=1e-6)
    (g,) = minae.grad((a * a).sum(), a, create_graph=True)
    assert g.device == device and g.grad_fn is not None
    leaf = minae.tensor(2.0, device=device, requires_grad=True)
    leaf.backward()  # the root is the leaf: its gradient made and added on its GPU
    leaf.backward()
    assert leaf.grad.device == device and leaf.grad.item() == 2.0


def test_zero_grad_and_clipping_on_the_parameters_gpu(device):
    from minae import nn

    model = nn.Linear(3, 2, device=device)
    opt = minae.optim.SGD(model.parameters(), lr=0.1)
    for zero in (lambda: model.zero_grad(set_to_none=False), lambda: opt.zero_grad(set_to_none=False)):
        model(minae.ones(4, 3, device=device)).sum().backward()
        minae.optim.clip_grad_value_(model.parameters(), 0.5)
        assert model.weight.grad.device == device and model.weight.grad.abs().max().item() <= 0.5
        zero()
        assert model.weight.grad.device == device and model.weight.grad.abs().sum().item() == 0.0
    state = opt.state_dict()
    opt.load_state_dict(state)
    opt.step()
    assert model.weight.device == device


def test_penalties_on_the_inputs_gpu(device):
    from minae import nn

    enc = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()).to(device)
    y = minae.rand(5, 4, device=device)
    p = F.jacobian_penalty(enc, y)
    assert p.device == device and p.requires_grad
    p.backward()
    assert enc[0].weight.grad.device == device
    with minae.detect_anomaly():
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            F.binary_cross_entropy(minae.rand(3, device=device), minae.full((3,), 2.0, device=device))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # inf − inf in the sums
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_scalars_beyond_the_dtypes_range_keep_its_dtype(device, dtype):
    """float32 × 1e300 is float32 (inf) on the CPU and on CuPy 14 (NEP 50), float64 on CuPy 13 (value-based):
    the GPU must give the CPU's dtype and values whichever CuPy runs (tests/fake_cupy.py rule 12)."""
    big = 1e300 if dtype == "float32" else 1e5
    x = minae.tensor([1.0, -2.0, 3.0], dtype=dtype, device=device, requires_grad=True)
    for y in (x * big, big - x, x / big, minae.maximum(x, -big), minae.where(x > 0, x, big), x.clamp(-big, big)):
        assert y.dtype == x.dtype and y.device == device, (y, y.dtype)
    cpu = minae.tensor([1.0, -2.0, 3.0], dtype=dtype, requires_grad=True)
    for t in (x, cpu):
        (t * big + t.clamp(max=big)).sum().backward()
    np.testing.assert_array_equal((x * big).numpy(), (cpu * big).numpy())  # ±inf, as the CPU
    assert x.grad.dtype == x.dtype
    np.testing.assert_array_equal(x.grad.numpy(), cpu.grad.numpy())


def test_integers_beyond_the_dtypes_range_raise_as_on_the_cpu(device):
    """int8 + 300 raises OverflowError on the CPU and on CuPy 14; CuPy 13 would make it int16 silently."""
    t = minae.tensor([1, 2, 3], dtype="int8", device=device)
    for op in (lambda: t + 300, lambda: 300 * t, lambda: t - (-200)):
        with pytest.raises(OverflowError, match="out of bounds for int8"):
            op()
    assert (t + 100).dtype == np.int8 and (t + 100).device == device
