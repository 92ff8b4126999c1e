"""minae.optim: each optimizer against a plain-NumPy reference of its published rule (and torch.optim).

The problem: f(w, M) = ½‖A w − b‖² + ½ Σ s ⊙ (M − T)² + ¼ Σ (M − T)⁴ in float64,
two parameters so that parameter groups can differ. The references below are
written from the update rules in PyTorch's documentation, out of place, and share
no code with minae.
"""

import math

import numpy as np
import pytest

import minae
from minae.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm_, clip_grad_value_, lr_scheduler

STEPS = 100
RNG = np.random.default_rng(1234)
A = RNG.standard_normal((8, 5))
B = RNG.standard_normal(8)
S = RNG.uniform(0.5, 3.0, (3, 2))
T = RNG.standard_normal((3, 2))
W0 = RNG.standard_normal(5)
M0 = RNG.standard_normal((3, 2))


def numpy_grads(w, m, sign):
    """∂(sign·f)/∂w, ∂(sign·f)/∂M in closed form."""
    d = m - T
    return sign * (A.T @ (A @ w - B)), sign * (S * d + d**3)


def minae_loss(w, m, sign):
    d = m - minae.tensor(T, dtype=minae.float64)
    f = 0.5 * ((minae.tensor(A, dtype=minae.float64) @ w - minae.tensor(B, dtype=minae.float64)) ** 2).sum()
    f = f + 0.5 * (minae.tensor(S, dtype=minae.float64) * d * d).sum() + 0.25 * (d**4).sum()
    return f * sign


# ------------------------------------------------------------- references ---
def ref_sgd(theta, g, st, h):
    if h["maximize"]:
        g = -g
    if h["weight_decay"]:
        g = g + h["weight_decay"] * theta
    if h["momentum"]:
        if "b" not in st:
            st["b"] = g.copy()
        else:
            st["b"] = h["momentum"] * st["b"] + (1 - h["dampening"]) * g
        g = g + h["momentum"] * st["b"] if h["nesterov"] else st["b"]
    return theta - h["lr"] * g


def ref_adam(theta, g, st, h):
    if h["maximize"]:
        g = -g
    if h["decoupled"]:
        theta = theta * (1 - h["lr"] * h["weight_decay"])
    elif h["weight_decay"]:
        g = g + h["weight_decay"] * theta
    b1, b2 = h["betas"]
    t = st["t"] = st.get("t", 0) + 1
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    v = st["v"]
    if h["amsgrad"]:
        v = st["vmax"] = np.maximum(st.get("vmax", 0.0), st["v"])
    m_hat = st["m"] / (1 - b1**t)
    v_hat = v / (1 - b2**t)
    return theta - h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])


def ref_rmsprop(theta, g, st, h):
    if h["maximize"]:
        g = -g
    if h["weight_decay"]:
        g = g + h["weight_decay"] * theta
    a = h["alpha"]
    st["v"] = a * st.get("v", 0.0) + (1 - a) * g * g
    v = st["v"]
    if h["centered"]:
        st["gbar"] = a * st.get("gbar", 0.0) + (1 - a) * g
        v = v - st["gbar"] ** 2
    step = g / (np.sqrt(v) + h["eps"])
    if h["momentum"] > 0:
        st["b"] = h["momentum"] * st.get("b", 0.0) + step
        step = st["b"]
    return theta - h["lr"] * step


REFS = {"SGD": ref_sgd, "Adam": ref_adam, "AdamW": ref_adam, "RMSprop": ref_rmsprop}
DEFAULTS = {
    "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False, decoupled=False),
    "AdamW": dict(
        lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False, decoupled=True
    ),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False),
}
CLASSES = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW, "RMSprop": RMSprop}

# (optimizer, options for all, options of group 1 (the matrix M) or None for a single group)
CASES = [
    ("SGD", dict(lr=0.01), None),
    ("SGD", dict(lr=0.01, momentum=0.9), None),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.5), None),
    ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True), None),
    ("SGD", dict(lr=0.01, momentum=0.8, weight_decay=0.1), None),
    ("SGD", dict(lr=0.01, weight_decay=0.05, maximize=True), None),
    ("SGD", dict(lr=0.01, momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True), None),
    ("SGD", dict(lr=0.01, momentum=0.9), dict(lr=0.002, momentum=0.5, dampening=0.1)),
    ("Adam", dict(lr=0.05), None),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6), None),
    ("Adam", dict(lr=0.05, weight_decay=0.1), None),
    ("Adam", dict(lr=0.05, amsgrad=True), None),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1, maximize=True), None),
    ("Adam", dict(lr=0.05, maximize=True), None),
    ("Adam", dict(lr=0.05), dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.05), None),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, amsgrad=True), None),
    ("AdamW", dict(lr=0.05, weight_decay=0.1, maximize=True), None),
    ("AdamW", dict(lr=0.05), dict(lr=0.01, weight_decay=0.5)),
    ("RMSprop", dict(lr=0.01), None),
    ("RMSprop", dict(lr=0.01, centered=True), None),
    ("RMSprop", dict(lr=0.005, momentum=0.9), None),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1, alpha=0.9), None),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1, maximize=True), None),
    ("RMSprop", dict(lr=0.01), dict(lr=0.001, momentum=0.5, centered=True)),
]


def case_id(case):
    name, opts, group = case
    text = ",".join(f"{k}={v}" for k, v in opts.items())
    return f"{name}[{text}]" + (f"+group[{','.join(f'{k}={v}' for k, v in group.items())}]" if group else "")


def reference_trajectory(name, opts, group1):
    """θ after each step, from the plain-NumPy rule."""
    h0 = {**DEFAULTS[name], **opts}
    h1 = {**h0, **(group1 or {})}
    sign = -1.0 if h0["maximize"] else 1.0  # maximize -f, which has the same optimum
    w, m, sw, sm = W0.copy(), M0.copy(), {}, {}
    traj = []
    for _ in range(STEPS):
        gw, gm = numpy_grads(w, m, sign)
        w = REFS[name](w, gw, sw, h0)
        m = REFS[name](m, gm, sm, h1)
        traj.append((w, m))
    return traj


def make_params():
    w = minae.tensor(W0, dtype=minae.float64, requires_grad=True)
    m = minae.tensor(M0, dtype=minae.float64, requires_grad=True)
    return w, m


def make_optimizer(name, opts, group1, w, m):
    cls = CLASSES[name]
    params = [{"params": [w]}, {"params": [m], **group1}] if group1 else [w, m]
    return cls(params, **opts)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_trajectory_matches_numpy_reference(case):
    name, opts, group1 = case
    ref = reference_trajectory(name, opts, group1)
    w, m = make_params()
    frozen = minae.tensor([1.0, 2.0], dtype=minae.float64, requires_grad=True)  # never gets a grad
    opt = make_optimizer(name, opts, group1, w, m)
    opt.add_param_group({"params": [frozen]})
    sign = -1.0 if opt.defaults["maximize"] else 1.0
    for k in range(STEPS):
        opt.zero_grad()
        minae_loss(w, m, sign).backward()
        opt.step()
        np.testing.assert_allclose(w.numpy(), ref[k][0], rtol=1e-10, atol=1e-12, err_msg=f"w after step {k + 1}")
        np.testing.assert_allclose(m.numpy(), ref[k][1], rtol=1e-10, atol=1e-12, err_msg=f"M after step {k + 1}")
    assert frozen.tolist() == [1.0, 2.0] and frozen not in opt.state
    # the run moved far from the start, so the comparison was not trivial
    assert np.abs(w.numpy() - W0).max() > 1e-2


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_trajectory_matches_torch(case):
    torch = pytest.importorskip("torch")
    name, opts, group1 = case
    topts = dict(opts)
    tw = torch.tensor(W0, requires_grad=True)
    tm = torch.tensor(M0, requires_grad=True)
    params = [{"params": [tw]}, {"params": [tm], **group1}] if group1 else [tw, tm]
    topt = getattr(torch.optim, name)(params, **topts)
    w, m = make_params()
    opt = make_optimizer(name, opts, group1, w, m)
    sign = -1.0 if opt.defaults["maximize"] else 1.0
    for k in range(STEPS):
        gw, gm = numpy_grads(tw.detach().numpy(), tm.detach().numpy(), sign)
        tw.grad, tm.grad = torch.from_numpy(gw), torch.from_numpy(gm)
        topt.step()
        gw, gm = numpy_grads(w.numpy(), m.numpy(), sign)
        w.grad, m.grad = minae.tensor(gw, dtype=minae.float64), minae.tensor(gm, dtype=minae.float64)
        opt.step()
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {k + 1}")
        np.testing.assert_allclose(m.numpy(), tm.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {k + 1}")
    # same buffers under the same names
    tsd, sd = topt.state_dict(), opt.state_dict()
    # torch keeps momentum_buffer=None for plain SGD; minae keeps no state it does not use
    tstate = {i: {k: v for k, v in s.items() if v is not None} for i, s in tsd["state"].items()}
    tstate = {i: s for i, s in tstate.items() if s}
    assert sorted(sd["state"]) == sorted(tstate)
    for i in tstate:
        assert set(sd["state"][i]) == set(tstate[i])
        for key, value in tstate[i].items():
            if key == "step":
                assert sd["state"][i]["step"] == int(value.item()) == STEPS
            elif value is not None:
                np.testing.assert_allclose(sd["state"][i][key].numpy(), value.numpy(), rtol=1e-10, atol=1e-12)
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        for key, value in g.items():
            if key in tg:
                assert tg[key] == value, key


def test_defaults_are_pytorchs():
    import inspect

    expected = {
        "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False),
        "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False),
        "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False),
        "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False),
    }
    for name, values in expected.items():
        opt = CLASSES[name]([minae.zeros(2, requires_grad=True)])
        for key, value in values.items():
            assert opt.defaults[key] == value, (name, key)
    try:
        import torch
    except ImportError:
        return
    for name, values in expected.items():
        sig = inspect.signature(getattr(torch.optim, name).__init__)
        for key, value in values.items():
            assert sig.parameters[key].default == value, (name, key)


# ------------------------------------------------------------ dtypes, devices ---
FLOAT32_CASES = [
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    (SGD, dict(lr=0.1, momentum=0.9, dampening=0.1)),
    (Adam, dict(lr=0.1, weight_decay=0.01, amsgrad=True, maximize=True)),
    (AdamW, dict(lr=0.1, amsgrad=True)),
    (RMSprop, dict(lr=0.1, momentum=0.9, centered=True, weight_decay=0.01, maximize=True)),
]


@pytest.mark.parametrize("cls,opts", FLOAT32_CASES, ids=[c.__name__ + str(i) for i, (c, _) in enumerate(FLOAT32_CASES)])
def test_float32_stays_float32_in_place(device, cls, opts):
    p = minae.randn(4, 3, device=device, requires_grad=True)
    q = minae.randn(3, device=device, requires_grad=True)
    # hyper-parameters given as float64 NumPy scalars must not widen the arithmetic either
    opts = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in opts.items()}
    opt = cls([p, q], **opts)
    data_before = p.data
    for _ in range(5):
        opt.zero_grad()
        ((p * p).sum() + (q * q * q).sum()).backward()
        opt.step()
    assert p.data is data_before, "the update must be in place"
    assert p.dtype == q.dtype == minae.float32
    assert str(p.device).startswith(device)
    for state in opt.state.values():
        for key, value in state.items():
            if key != "step" and value is not None:
                assert value.dtype == minae.float32 and str(value.device).startswith(device), key


def test_float32_matches_float64_reference():
    """A float32 run follows the float64 reference to float32 accuracy."""
    ref = reference_trajectory("Adam", dict(lr=0.05, amsgrad=True), None)
    w = minae.tensor(W0, dtype=minae.float32, requires_grad=True)
    m = minae.tensor(M0, dtype=minae.float32, requires_grad=True)
    opt = Adam([w, m], lr=0.05, amsgrad=True)
    for _ in range(20):
        gw, gm = numpy_grads(w.numpy().astype(np.float64), m.numpy().astype(np.float64), 1.0)
        w.grad, m.grad = minae.tensor(gw, dtype=minae.float32), minae.tensor(gm, dtype=minae.float32)
        opt.step()
    np.testing.assert_allclose(w.numpy(), ref[19][0], rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- state_dict ---
@pytest.mark.parametrize(
    "name,opts",
    [
        ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True)),
        ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.01)),
        ("AdamW", dict(lr=0.05)),
        ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
    ],
)
def test_state_dict_round_trip_continues_identically(name, opts):
    w, m = make_params()
    opt = make_optimizer(name, opts, dict(lr=0.003), w, m)

    def train(opt, w, m, n):
        for _ in range(n):
            opt.zero_grad()
            minae_loss(w, m, 1.0).backward()
            opt.step()

    train(opt, w, m, 10)
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"} and sorted(sd["state"]) == [0, 1]
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.003
    w2 = minae.tensor(w.numpy(), dtype=minae.float64, requires_grad=True)
    m2 = minae.tensor(m.numpy(), dtype=minae.float64, requires_grad=True)
    snapshot = {
        i: {k: (v.numpy().copy() if hasattr(v, "numpy") else v) for k, v in s.items()} for i, s in sd["state"].items()
    }
    train(opt, w, m, 10)
    # the state_dict is a snapshot: training on does not change it
    for i, s in sd["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(v.numpy() if hasattr(v, "numpy") else v, snapshot[i][k])
    opt2 = CLASSES[name]([{"params": [w2]}, {"params": [m2]}])  # other hyper-parameters: the load restores them
    opt2.load_state_dict(sd)
    assert opt2.param_groups[1]["lr"] == 0.003 and opt2.param_groups[0]["lr"] == opts["lr"]
    assert opt2.param_groups[0]["params"][0] is w2
    train(opt2, w2, m2, 10)
    np.testing.assert_array_equal(w2.numpy(), w.numpy())
    np.testing.assert_array_equal(m2.numpy(), m.numpy())


def test_load_state_dict_says_what_differs():
    p, q, r = (minae.randn(3, requires_grad=True) for _ in range(3))
    opt = Adam([{"params": [p, q]}, {"params": [r]}])
    (p.sum() + q.sum() + r.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 parameter group.*but this optimizer has 1"):
        Adam([p, q, r]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameter.*but 1 in this optimizer"):
        Adam([{"params": [p]}, {"params": [q, r]}]).load_state_dict(sd)
    other = minae.randn(4, requires_grad=True)
    with pytest.raises(ValueError, match=r"exp_avg.*parameter 2 has shape \(3,\).*\(4,\)"):
        Adam([{"params": [p, q]}, {"params": [other]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        Adam([p]).load_state_dict({"state": {}})


def test_load_state_dict_casts_to_parameter_dtype():
    p = minae.randn(3, requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.sum().backward()
    opt.step()
    sd = opt.state_dict()
    p64 = minae.randn(3, dtype=minae.float64, requires_grad=True)
    opt64 = SGD([p64], lr=0.1, momentum=0.9)
    opt64.load_state_dict(sd)
    assert opt64.state[p64]["momentum_buffer"].dtype == minae.float64


# ------------------------------------------------------------------- basics ---
def test_zero_grad():
    p = minae.randn(3, requires_grad=True)
    opt = SGD([p], lr=0.1)
    p.sum().backward()
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad and p.grad.tolist() == [0.0, 0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradient: nothing happens


def test_step_with_closure_returns_loss():
    p = minae.tensor([3.0], requires_grad=True)
    opt = SGD([p], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        calls.append(1)
        return loss

    with minae.no_grad():  # the closure runs with grad enabled anyway
        loss = opt.step(closure)
    assert loss.item() == 9.0 and len(calls) == 1
    assert p.item() == pytest.approx(3.0 - 0.25 * 6.0)


def test_constructor_errors():
    p = minae.randn(2, requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="set"):
        SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="same parameter twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        Adam([p], lr=-1)
    with pytest.raises(ValueError, match="beta"):
        Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        SGD([p], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="epsilon"):
        RMSprop([p], eps=-1)


def test_param_groups_and_named_parameters():
    a, b = minae.randn(2, requires_grad=True), minae.randn(2, requires_grad=True)
    opt = Adam([("a", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    c = minae.randn(2, requires_grad=True)
    opt.add_param_group({"params": c, "lr": 0.5})
    assert opt.param_groups[1]["lr"] == 0.5 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert "Parameter Group 1" in repr(opt) and "lr: 0.5" in repr(opt)


def test_amsgrad_switched_on_later_and_lr_changed_midway():
    """Changing a group's hyper-parameters between steps takes effect (what schedulers rely on)."""
    w, m = make_params()
    opt = Adam([w, m], lr=0.05)
    w_ref, m_ref, sw, sm = W0.copy(), M0.copy(), {}, {}
    h = {**DEFAULTS["Adam"], "lr": 0.05}
    for k in range(30):
        if k == 10:
            opt.param_groups[0]["lr"] = h["lr"] = 0.01
        gw, gm = numpy_grads(w_ref, m_ref, 1.0)
        w_ref, m_ref = ref_adam(w_ref, gw, sw, h), ref_adam(m_ref, gm, sm, h)
        opt.zero_grad()
        minae_loss(w, m, 1.0).backward()
        opt.step()
    np.testing.assert_allclose(w.numpy(), w_ref, rtol=1e-10)


# ----------------------------------------------------------------- clipping ---
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm(norm_type):
    ps = [minae.randn(4, 3, dtype=minae.float64, requires_grad=True) for _ in range(3)]
    unused = minae.randn(2, dtype=minae.float64, requires_grad=True)
    for i, p in enumerate(ps):
        p.grad = minae.tensor(np.random.default_rng(i).standard_normal((4, 3)) * (i + 1), dtype=minae.float64)
    grads = [p.grad.numpy().copy() for p in ps]
    flat = np.concatenate([g.ravel() for g in grads])
    expected = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    total = clip_grad_norm_(ps + [unused], max_norm=1.0, norm_type=norm_type)
    assert isinstance(total, minae.Tensor) and total.ndim == 0
    assert total.item() == pytest.approx(expected, rel=1e-12)
    coef = 1.0 / (expected + 1e-6)
    for p, g in zip(ps, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    clipped = np.concatenate([p.grad.numpy().ravel() for p in ps])
    new_norm = (
        np.abs(clipped).max() if norm_type == math.inf else (np.abs(clipped) ** norm_type).sum() ** (1 / norm_type)
    )
    assert new_norm == pytest.approx(1.0, rel=1e-5)
    # below the threshold nothing changes
    before = [p.grad.numpy().copy() for p in ps]
    total = clip_grad_norm_(ps, max_norm=10.0, norm_type=norm_type)
    assert total.item() == pytest.approx(new_norm, rel=1e-12)
    for p, g in zip(ps, before):
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_clip_grad_norm_float32_single_tensor_and_nonfinite(device):
    p = minae.randn(100, device=device, requires_grad=True)
    (p * 10.0).sum().backward()
    total = clip_grad_norm_(p, 1.0)
    assert total.item() == pytest.approx(100.0, rel=1e-5)
    assert p.grad.dtype == minae.float32 and total.dtype == minae.float32
    assert float(((p.grad * p.grad).sum()).item()) == pytest.approx(1.0, rel=1e-4)
    p.grad[0] = float("nan")  # Tensor.__setitem__ writes on the tensor's GPU
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert clip_grad_norm_([minae.randn(2, requires_grad=True)], 1.0).item() == 0.0  # no grads at all


def test_clip_grad_value():
    p = minae.randn(5, requires_grad=True)
    p.grad = minae.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


# --------------------------------------------------------------- schedulers ---
def two_group_optimizer():
    a, b = minae.randn(2, requires_grad=True), minae.randn(2, requires_grad=True)
    return SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)


SCHEDULES = [
    (lambda o: lr_scheduler.StepLR(o, step_size=3), lambda base, t: base * 0.1 ** (t // 3)),
    (lambda o: lr_scheduler.StepLR(o, step_size=4, gamma=0.5), lambda base, t: base * 0.5 ** (t // 4)),
    (lambda o: lr_scheduler.ExponentialLR(o, gamma=0.9), lambda base, t: base * 0.9**t),
    (
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10),
        lambda base, t: base * (1 + math.cos(math.pi * t / 10)) / 2,
    ),
    (
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
        lambda base, t: 0.01 + (base - 0.01) * (1 + math.cos(math.pi * t / 7)) / 2,
    ),
]


@pytest.mark.parametrize("make,closed_form", SCHEDULES, ids=["step", "step_gamma", "exp", "cos", "cos_eta_min"])
def test_scheduler_follows_closed_form(make, closed_form):
    opt = two_group_optimizer()
    sched = make(opt)
    for t in range(25):  # past T_max: the cosine rises again, as PyTorch's does
        expected = [closed_form(0.1, t), closed_form(0.5, t)]
        assert sched.get_last_lr() == pytest.approx(expected, rel=1e-12, abs=1e-15), t
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        opt.step()
        sched.step()
    assert sched.last_epoch == 25


@pytest.mark.parametrize("make,closed_form", SCHEDULES, ids=["step", "step_gamma", "exp", "cos", "cos_eta_min"])
def test_scheduler_matches_torch(make, closed_form):
    torch = pytest.importorskip("torch")
    tp = [torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)]
    topt = torch.optim.SGD([{"params": [tp[0]]}, {"params": [tp[1]], "lr": 0.5}], lr=0.1, momentum=0.9)
    opt = two_group_optimizer()
    sched = make(opt)
    name = type(sched).__name__
    kwargs = {k: v for k, v in sched.state_dict().items() if k in ("step_size", "gamma", "T_max", "eta_min")}
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for t in range(25):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-9, abs=1e-12), t
        topt.step()
        tsched.step()
        sched.step()


def test_scheduler_state_dict_round_trip():
    opt = two_group_optimizer()
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for _ in range(4):
        sched.step()
    sd = sched.state_dict()
    assert sd["last_epoch"] == 4 and sd["base_lrs"] == [0.1, 0.5] and "optimizer" not in sd
    opt2 = two_group_optimizer()
    opt2.load_state_dict(opt.state_dict())  # carries lr and initial_lr
    sched2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=3)  # settings come from the state_dict
    sched2.load_state_dict(sd)
    for _ in range(5):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
        assert [g["lr"] for g in opt2.param_groups] == sched.get_last_lr()


def test_scheduler_resume_needs_initial_lr():
    opt = two_group_optimizer()
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=5)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)


# ----------------------------------------------- the CUDA paths (issue 13) ---
MOVE_CASES = [
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (Adam, dict(lr=0.05, amsgrad=True, weight_decay=0.01)),
    (AdamW, dict(lr=0.05)),
    (RMSprop, dict(lr=0.01, momentum=0.9, centered=True)),
]


@pytest.mark.parametrize("cls,opts", MOVE_CASES, ids=[c.__name__ for c, _ in MOVE_CASES])
def test_optimizer_keeps_working_after_module_to(device, cls, opts):
    """Steps on the CPU, then ``model.to(device)``, more steps there, then back: the trajectory is the
    all-CPU one, and every state tensor follows its parameter."""

    def run(move):
        minae.manual_seed(0)
        model = minae.nn.Sequential(minae.nn.Linear(5, 4), minae.nn.Tanh(), minae.nn.Linear(4, 2))
        opt = cls(model.parameters(), **opts)
        x = minae.randn(8, 5)
        for step in range(6):
            if move and step == 2:
                model.to(device)
            if move and step == 4:
                model.to("cpu")
            dev = model[0].weight.device
            opt.zero_grad()
            (model(x.to(dev)) ** 2).mean().backward()
            opt.step()
            assert all(any(isinstance(v, minae.Tensor) for v in opt.state[p].values()) for p in model.parameters())
            for p in model.parameters():
                assert p.device == dev
                for key, value in opt.state[p].items():
                    if isinstance(value, minae.Tensor):
                        assert value.device == dev, (cls.__name__, step, key)
        return [p.numpy().copy() for p in model.parameters()]

    for moved, stayed in zip(run(True), run(False)):
        np.testing.assert_allclose(moved, stayed, rtol=1e-5, atol=1e-6)


# ------------------------------------------------- state after Module.to ---
STATEFUL = [
    (SGD, dict(lr=0.1, momentum=0.9)),
    (Adam, dict(lr=0.01, amsgrad=True)),
    (RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
]


@pytest.mark.parametrize("cls,opts", STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_state_follows_the_parameters_after_module_to(device, cls, opts):
    """Module.to moves the parameters only; the next step moves the optimizer's buffers along."""
    half = 3

    def run(move_after):
        minae.manual_seed(0)
        model = minae.nn.Linear(4, 3)
        opt = cls(model.parameters(), **opts)
        x = minae.randn(5, 4)
        for k in range(2 * half):
            if k == move_after:
                model.to(device)
                x = x.to(device)
            opt.zero_grad()
            (model(x) ** 2).sum().backward()
            opt.step()
        return model, opt

    moved, opt = run(move_after=half)
    stayed, _ = run(move_after=10**9)
    for p in moved.parameters():
        assert str(p.device).startswith(device)
        for name, buf in opt.state[p].items():
            if isinstance(buf, minae.Tensor):
                assert buf.device == p.device, f"state {name!r} stayed on {buf.device}"
    for a, b in zip(moved.parameters(), stayed.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls,opts", STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_state_follows_the_parameters_dtype(cls, opts):
    model = minae.nn.Linear(4, 3)
    opt = cls(model.parameters(), **opts)
    for k in range(4):
        if k == 2:
            model.to(minae.float64)
        opt.zero_grad()
        x = minae.randn(5, 4, dtype=next(iter(model.parameters())).dtype)
        (model(x) ** 2).sum().backward()
        opt.step()
    for p in model.parameters():
        assert p.dtype == minae.float64
        assert all(b.dtype == minae.float64 for b in opt.state[p].values() if isinstance(b, minae.Tensor))


def test_clip_grad_norm_without_gradients_is_on_the_parameters_device(device):
    p = minae.randn(3, device=device, requires_grad=True)
    total = clip_grad_norm_([p], 1.0)
    assert total.item() == 0.0 and total.device == p.device


# ---------------------------------------------------------------- blocks ---
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("opts", [{}, {"amsgrad": True}, {"weight_decay": 0.1, "maximize": True}])
def test_adam_in_cache_sized_pieces_equals_adam_on_whole_arrays(monkeypatch, dtype, opts):
    """A parameter several pieces long (and one whose last piece is short) gets exactly the whole-array update."""
    rng = np.random.default_rng(5)
    shape = (3 * minae.backend.CACHE_BLOCK_BYTES // np.dtype(dtype).itemsize // 100 + 7, 100)
    w0, grads = rng.standard_normal(shape).astype(dtype), [rng.standard_normal(shape).astype(dtype) for _ in range(4)]

    def run(block_bytes):
        monkeypatch.setattr(minae.backend, "CACHE_BLOCK_BYTES", block_bytes)
        p = minae.tensor(w0.copy(), requires_grad=True)
        opt = Adam([p], lr=0.01, **opts)
        for g in grads:
            p.grad = minae.tensor(g)
            opt.step()
        return p.numpy(), opt.state[p]["exp_avg_sq"].numpy()

    pieces = run(minae.backend.CACHE_BLOCK_BYTES)
    whole = run(1 << 40)
    np.testing.assert_array_equal(pieces[0], whole[0])
    np.testing.assert_array_equal(pieces[1], whole[1])
    assert not np.array_equal(pieces[0], w0)  # it did move


def test_blocks_are_views_that_cover_the_arrays_or_the_whole_arrays():
    step = minae.backend.CACHE_BLOCK_BYTES // 4
    a, b = np.zeros(2 * step + 3, np.float32), np.arange(2 * step + 3, dtype=np.float32)
    pieces = list(minae.backend.blocks(a, b, None))
    assert [len(x) for x, _, _ in pieces] == [step, step, 3] and all(n is None for _, _, n in pieces)
    for x, y, _ in pieces:
        x += y  # writes reach the arrays: the pieces are views
    np.testing.assert_array_equal(a, b)
    t = np.zeros((step, 3), np.float32).T  # not C-contiguous: a flat view would be a copy
    assert [len(x) for x in minae.backend.blocks(t, t)] == [2] and next(minae.backend.blocks(t, t))[0] is t
    small = np.zeros(10, np.float32)
    assert next(minae.backend.blocks(small))[0] is small


def test_adams_cache_blocked_step_equals_the_plain_step_on_whole_arrays():
    from minae import backend
    from minae.optim.adam import adam_step

    rng = np.random.default_rng(3)
    n = 3 * backend.CACHE_BLOCK_BYTES // 4 + 17  # several float32 pieces and a short last one
    w0, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    p = minae.tensor(w0.copy(), requires_grad=True)
    opt = minae.optim.Adam([p], lr=0.01, amsgrad=True)
    w, m, v, v_max = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0)
    for t in (1, 2, 3):
        p.grad = minae.tensor(g * t)
        opt.step()
        adam_step(w, g * t, m, v, t, 0.01, 0.9, 0.999, 1e-8, np.empty_like(w), v_max=v_max)
    np.testing.assert_array_equal(p.numpy(), w)
    np.testing.assert_array_equal(opt.state[p]["exp_avg_sq"].numpy(), v)
