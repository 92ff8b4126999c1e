"""minae.nn: Module registration and state, Sequential/ModuleList, Linear, Dropout, activations, init."""

import math
from collections import OrderedDict

import numpy as np
import pytest

import minae
import minae.nn as nn
import minae.nn.functional as F
from minae.nn import init


def npy(t):
    return t.numpy()


class AE(nn.Module):
    """A small autoencoder in the lecture's shape: h = Enc(y), ỹ = Dec(h)."""

    def __init__(self, d_y=6, d_h=3):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_y, d_h), nn.Tanh())
        self.decoder = nn.Sequential(nn.Linear(d_h, d_y), nn.Dropout(0.2), nn.Sigmoid())
        self.scale = nn.Parameter(minae.ones(1))
        self.register_buffer("steps", minae.zeros(1, dtype=minae.int64))
        self.register_buffer("y_mean", minae.zeros(d_y))

    def forward(self, y):
        return self.decoder(self.encoder(y)) * self.scale


# --------------------------------------------------------------- Parameter ---
def test_parameter_requires_grad_and_shares_data():
    a = np.zeros((2, 3), dtype=np.float32)
    p = nn.Parameter(a)
    assert isinstance(p, minae.Tensor) and p.requires_grad and p.is_leaf
    a[0, 0] = 5.0
    assert p.data[0, 0] == 5.0  # the array is shared, not copied
    t = minae.randn(4)
    q = nn.Parameter(t)
    assert q.data is t.data
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert repr(q).startswith("Parameter containing:\ntensor(")
    assert type(q * 2) is minae.Tensor  # results of ops are plain tensors


# ------------------------------------------------------------ registration ---
def test_registration_order_and_state_dict_keys():
    m = AE()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "decoder.0.weight", "decoder.0.bias"]
    assert [p for p in m.parameters()] == [p for _, p in m.named_parameters()]
    # PyTorch's order: own parameters, own buffers, then each child
    assert list(m.state_dict()) == [
        "scale",
        "steps",
        "y_mean",
        "encoder.0.weight",
        "encoder.0.bias",
        "decoder.0.weight",
        "decoder.0.bias",
    ]
    assert [n for n, _ in m.named_buffers()] == ["steps", "y_mean"]
    assert [n for n, _ in m.named_children()] == ["encoder", "decoder"]
    assert [n for n, _ in m.named_modules()] == [
        "",
        "encoder",
        "encoder.0",
        "encoder.1",
        "decoder",
        "decoder.0",
        "decoder.1",
        "decoder.2",
    ]
    assert len(list(m.modules())) == 8
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["scale"]
    assert np.shares_memory(m.encoder[0].weight.data, m.state_dict()["encoder.0.weight"].data)


def test_order_follows_assignment_not_alphabet():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.zeta = nn.Linear(2, 2)
            self.alpha = nn.Linear(2, 2, bias=False)

    assert list(Net().state_dict()) == ["zeta.weight", "zeta.bias", "alpha.weight"]


def test_tied_parameter_is_listed_once():
    enc = nn.Linear(4, 3)
    m = nn.Sequential(enc, nn.Tanh(), enc)
    assert len(list(m.parameters())) == 2
    sd = m.state_dict()  # as in PyTorch, the state_dict names it at every place it is used
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert np.shares_memory(sd["0.weight"].data, sd["2.weight"].data)
    m.load_state_dict(sd)
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight  # one Parameter in two modules (tied weights)
    assert [n for n, _ in nn.Sequential(a, b).named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_plain_attributes_are_not_registered_and_reassignment_rules():
    m = nn.Linear(3, 2)
    m.note = "hello"
    m.cache = minae.ones(2)  # a plain Tensor attribute is not a parameter
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    with pytest.raises(TypeError, match="cannot assign a Tensor as parameter 'weight' of Linear"):
        m.weight = minae.ones(2, 3)
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    m.bias = nn.Parameter(minae.zeros(2))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    del m.bias
    assert not hasattr(m, "bias")
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        _ = m.nope


def test_forgetting_super_init_is_explained():
    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Bad()


def test_forward_must_be_defined_and_call_runs_forward():
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        nn.Module()(1)

    class Double(nn.Module):
        def forward(self, x, k=2):
            return x * k

    assert Double()(3, k=4) == 12


# ---------------------------------------------------------------- gradients ---
def test_zero_grad_and_requires_grad():
    m = AE()
    m(minae.randn(5, 6)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not npy(p.grad).any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.encoder.requires_grad_(False) is m.encoder
    assert [p.requires_grad for p in m.parameters()] == [True, False, False, True, True]


def test_apply_visits_children_then_self():
    m = AE()
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Linear", "Tanh", "Sequential", "Linear", "Dropout", "Sigmoid", "Sequential", "AE"]

    def zero_linear(mod):
        if isinstance(mod, nn.Linear):
            init.zeros_(mod.weight)

    m.apply(zero_linear)
    assert not npy(m.encoder[0].weight).any() and not npy(m.decoder[0].weight).any()


# ------------------------------------------------------------ train / eval ---
def test_train_eval_propagate_to_every_module():
    m = AE()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    m.train()
    assert all(mod.training for mod in m.modules())
    m.decoder.train(False)
    assert m.training and m.encoder.training and not m.decoder[1].training
    with pytest.raises(TypeError, match="mode must be a bool"):
        m.train("no")


def test_eval_makes_dropout_the_identity_and_forward_deterministic():
    m = AE()
    y = minae.rand(4, 6)
    m.eval()
    np.testing.assert_array_equal(npy(m(y)), npy(m(y)))
    m.train()
    assert not np.array_equal(npy(m(y)), npy(m(y)))


# ------------------------------------------------------- devices and dtypes ---
def test_to_dtype_keeps_parameter_objects(device):
    m = AE()
    params = list(m.parameters())
    m(minae.randn(2, 6)).sum().backward()
    assert m.to(minae.float64) is m
    assert list(m.parameters()) == params and all(a is b for a, b in zip(m.parameters(), params))
    assert all(p.dtype == minae.float64 and p.grad.dtype == minae.float64 for p in params)
    assert m.y_mean.dtype == minae.float64
    assert m.steps.dtype == minae.int64  # only floating tensors are cast
    out = m.to(device)(minae.randn(3, 6, dtype=minae.float64, device=device))
    assert out.dtype == minae.float64 and str(out.device).startswith(device)
    assert all(str(p.device).startswith(device) for p in m.parameters())
    assert m.float().encoder[0].weight.dtype == minae.float32
    with pytest.raises(TypeError, match="floating dtypes"):
        m.to(minae.int64)


# ---------------------------------------------------------------- state dict ---
def test_state_dict_is_detached_and_round_trips():
    minae.manual_seed(1)
    a = AE().eval()
    minae.manual_seed(2)
    b = AE().eval()
    y = minae.rand(3, 6)
    assert not np.allclose(npy(a(y)), npy(b(y)))
    sd = a.state_dict()
    assert all(not t.requires_grad and t.grad_fn is None for t in sd.values())
    result = b.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(npy(a(y)), npy(b(y)))
    assert b.encoder[0].weight.data is not a.encoder[0].weight.data  # copied, not aliased
    # raw arrays are accepted as values too (e.g. from a checkpoint file)
    b.load_state_dict(OrderedDict((k, v.numpy() * 0) for k, v in sd.items()))
    assert not npy(b.encoder[0].weight).any()


def test_load_state_dict_reports_every_problem_by_name():
    m = AE()
    sd = m.state_dict()
    sd.pop("encoder.0.bias")
    sd["decoder.9.weight"] = minae.zeros(2)
    sd["encoder.0.weight"] = minae.zeros(4, 6)
    sd["decoder.0.bias"] = minae.zeros(6, dtype=minae.float64)
    before = npy(m.decoder[0].bias).copy()
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(sd)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for AE" in msg
    assert "missing keys: 'encoder.0.bias'" in msg
    assert "unexpected keys: 'decoder.9.weight'" in msg
    assert "encoder.0.weight: shape (4, 6) in the state_dict, (3, 6) in the model" in msg
    assert "decoder.0.bias: dtype float64 in the state_dict, float32 in the model" in msg
    np.testing.assert_array_equal(npy(m.decoder[0].bias), before)  # nothing was loaded


def test_load_state_dict_non_strict_returns_missing_and_unexpected():
    m = AE()
    sd = m.state_dict()
    sd.pop("scale")
    sd["extra"] = minae.zeros(1)
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["scale"] and unexpected == ["extra"]
    sd["encoder.0.weight"] = minae.zeros(1)
    with pytest.raises(RuntimeError, match=r"encoder.0.weight: shape \(1,\)"):
        m.load_state_dict(sd, strict=False)  # a shape mismatch is an error even when not strict


# -------------------------------------------------------------------- repr ---
def test_repr_shows_the_tree():
    assert repr(AE()) == (
        "AE(\n"
        "  (encoder): Sequential(\n"
        "    (0): Linear(in_features=6, out_features=3, bias=True)\n"
        "    (1): Tanh()\n"
        "  )\n"
        "  (decoder): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=6, bias=True)\n"
        "    (1): Dropout(p=0.2)\n"
        "    (2): Sigmoid()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.Linear(2, 5, bias=False)) == "Linear(in_features=2, out_features=5, bias=False)"
    assert repr(nn.Identity()) == "Identity()"


# --------------------------------------------------------------- containers ---
def test_sequential_behaves_like_a_list():
    layers = [nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)]
    s = nn.Sequential(*layers)
    assert len(s) == 3 and list(s) == layers
    assert s[0] is layers[0] and s[-1] is layers[2]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == layers[1:]
    with pytest.raises(IndexError, match="out of range for a Sequential of length 3"):
        s[3]
    x = minae.randn(5, 4)
    np.testing.assert_allclose(npy(s(x)), npy(layers[2](F.relu(layers[0](x)))))
    named = nn.Sequential(OrderedDict([("enc", nn.Linear(2, 2)), ("act", nn.Tanh())]))
    assert list(named.state_dict()) == ["enc.weight", "enc.bias"]
    s.append(nn.Sigmoid())
    assert len(s) == 4 and [n for n, _ in s.named_children()] == ["0", "1", "2", "3"]
    with pytest.raises(TypeError, match="Sequential: argument 1 is a int, not a Module"):
        nn.Sequential(nn.Tanh(), 3)


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
            self.plain = [nn.Linear(2, 2)]  # a Python list hides its modules (as in PyTorch)

    m = Stack()
    assert list(m.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    m.layers.append(nn.Linear(2, 1))
    m.layers.extend([nn.Tanh()])
    assert len(m.layers) == 4 and isinstance(m.layers[-1], nn.Tanh)
    assert isinstance(m.layers[1:3], nn.ModuleList) and len(m.layers[1:3]) == 2
    m.layers.insert(0, nn.Identity())
    assert isinstance(m.layers[0], nn.Identity) and "layers.1.weight" in m.state_dict()
    m.layers[0] = nn.ReLU()
    assert isinstance(m.layers[0], nn.ReLU)
    with pytest.raises(IndexError):
        m.layers[9]


def test_identity():
    x = minae.randn(3)
    assert nn.Identity(54, unused="x")(x) is x


# ------------------------------------------------------------------- Linear ---
def test_linear_shapes_and_forward(device):
    lin = nn.Linear(5, 3, device=device)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)
    assert lin.weight.dtype == minae.float32 and str(lin.weight.device).startswith(device)
    x = minae.randn(7, 5, device=device)
    np.testing.assert_allclose(npy(lin(x)), npy(x) @ npy(lin.weight).T + npy(lin.bias), rtol=1e-6)
    no_bias = nn.Linear(5, 3, bias=False, dtype=minae.float64)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert no_bias.weight.dtype == minae.float64
    with pytest.raises(ValueError, match=r"input of shape \(7, 4\) does not fit weight of shape \(3, 5\)"):
        lin(minae.randn(7, 4, device=device))


def test_linear_default_init_is_pytorchs():
    fan_in = 400
    lin = nn.Linear(fan_in, 300)
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=√5) ⇒ U(−1/√in, 1/√in)
    w, b = npy(lin.weight), npy(lin.bias)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # the whole interval is used, not a narrower one
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert abs(w.mean()) < 0.01 * bound
    assert np.unique(b).size == 300 and np.abs(b).max() > 0.9 * bound


def test_linear_init_is_reproducible_with_manual_seed():
    minae.manual_seed(3)
    a = nn.Linear(4, 4)
    minae.manual_seed(3)
    b = nn.Linear(4, 4)
    np.testing.assert_array_equal(npy(a.weight), npy(b.weight))
    np.testing.assert_array_equal(npy(a.bias), npy(b.bias))
    assert not np.array_equal(npy(nn.Linear(4, 4).weight), npy(a.weight))


def test_linear_trains_one_step():
    lin = nn.Linear(3, 1)
    x, t = minae.randn(8, 3), minae.randn(8, 1)
    loss = F.mse_loss(lin(x), t)
    loss.backward()
    with minae.no_grad():
        for p in lin.parameters():
            p.data -= 0.1 * p.grad.data
    assert F.mse_loss(lin(x), t).item() < loss.item()


# ------------------------------------------------------------------ Dropout ---
def test_dropout_module_statistics_and_eval(device):
    d = nn.Dropout(0.25)
    x = minae.ones(400, 250, device=device)
    out = npy(d(x))
    assert abs((out == 0).mean() - 0.25) < 0.01
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)
    d.eval()
    assert d(x) is x
    x64 = minae.ones(10, dtype=minae.float64, device=device)
    assert d.train()(x64).dtype == minae.float64
    with pytest.raises(ValueError, match="Dropout: p must be a probability"):
        nn.Dropout(-0.1)


# --------------------------------------------------------------- activations ---
@pytest.mark.parametrize(
    "module, fn",
    [
        (nn.Sigmoid(), F.sigmoid),
        (nn.Tanh(), F.tanh),
        (nn.ReLU(), F.relu),
        (nn.LeakyReLU(0.1), lambda x: F.leaky_relu(x, 0.1)),
        (nn.Softplus(beta=2.0), lambda x: F.softplus(x, beta=2.0)),
    ],
)
def test_activation_modules_match_functions(module, fn, device):
    x = minae.randn(4, 5, device=device)
    np.testing.assert_array_equal(npy(module(x)), npy(fn(x)))
    assert list(module.parameters()) == []


# --------------------------------------------------------------------- init ---
def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_init_functions_statistics(device):
    t = minae.zeros(300, 200, device=device)
    fan_in, fan_out = 200, 300
    assert init.uniform_(t, -2.0, 3.0) is t
    a = npy(t)
    assert a.min() >= -2 and a.max() < 3 and a.mean() == pytest.approx(0.5, abs=0.03)
    a = npy(init.normal_(t, 1.0, 0.5))
    assert a.mean() == pytest.approx(1.0, abs=0.01) and a.std() == pytest.approx(0.5, rel=0.02)
    np.testing.assert_array_equal(npy(init.constant_(t, 0.3)), np.float32(0.3))
    np.testing.assert_array_equal(npy(init.zeros_(t)), 0)
    np.testing.assert_array_equal(npy(init.ones_(t)), 1)

    b = math.sqrt(6 / (fan_in + fan_out))
    a = npy(init.xavier_uniform_(t))
    assert np.abs(a).max() <= b and np.abs(a).max() > 0.99 * b
    a = npy(init.xavier_normal_(t, gain=2.0))
    assert a.std() == pytest.approx(2 * math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    a = npy(init.kaiming_uniform_(t, nonlinearity="relu"))
    assert np.abs(a).max() <= math.sqrt(6 / fan_in) and a.std() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    a = npy(init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"))
    assert a.std() == pytest.approx(math.sqrt(2 / fan_out), rel=0.02)
    a = npy(init.kaiming_normal_(t, a=0.2))  # leaky_relu gain with slope 0.2
    assert a.std() == pytest.approx(math.sqrt(2 / (1 + 0.04)) / math.sqrt(fan_in), rel=0.02)
    assert t.dtype == minae.float32 and str(t.device).startswith(device)


def test_init_in_place_keeps_dtype_and_is_seeded():
    t = minae.zeros(3, 4, dtype=minae.float64)
    arr = t.data
    minae.manual_seed(9)
    init.xavier_uniform_(t)
    assert t.data is arr and t.dtype == minae.float64
    first = npy(t).copy()
    minae.manual_seed(9)
    np.testing.assert_array_equal(npy(init.xavier_uniform_(t)), first)
    p = nn.Parameter(minae.zeros(2, 5))
    init.kaiming_normal_(p)
    assert p.requires_grad and p.grad_fn is None and npy(p).any()


def test_init_fan_needs_two_dimensions_and_valid_mode():
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(5,\)"):
        init.xavier_uniform_(minae.zeros(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(minae.zeros(2, 2), mode="fan_avg")
    conv = minae.zeros(8, 4, 3, 3)  # fans include the receptive field: in·k·k
    a = npy(init.kaiming_uniform_(conv, nonlinearity="linear"))
    assert np.abs(a).max() <= math.sqrt(3 / (4 * 9))


def test_deepcopy_gives_an_independent_module():
    import copy

    m = AE()
    c = copy.deepcopy(m)
    assert list(c.state_dict()) == list(m.state_dict())
    assert isinstance(c.encoder[0].weight, nn.Parameter)
    init.zeros_(c.encoder[0].weight)
    assert npy(m.encoder[0].weight).any()
