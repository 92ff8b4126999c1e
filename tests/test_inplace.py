"""In-place writes: views and versions (a write between forward and backward is caught; only what a needed
gradient reads is checked), in-place operators (also through views), setitem, both against PyTorch, the backward
rule (saved(), the needs_grad mask, the walk order), dtypes, devices and errors."""

import inspect

import numpy as np
import pytest
from torch_oracle import HAS_TORCH, torch_or_skip

import minae
from minae import autograd, backend, ops
from minae.backend import to_numpy


# ------ views and versions: a write between forward and backward is caught ---
def test_writing_into_a_detached_view_of_a_kept_output_raises(leaf64, device):
    x = leaf64([0.5, -1.0, 2.0], device)
    y = x.tanh()
    y.detach()[...] = 0  # detach() shares memory and the record of writes
    with pytest.raises(RuntimeError, match=r"Tanh saved for its backward has been modified by an in-place"):
        y.sum().backward()


def test_writing_into_an_input_that_needs_no_grad_raises(leaf64, device):
    a = leaf64([1.0, 2.0, 3.0], device, requires_grad=False)
    w = leaf64([1.0, 1.0, 1.0], device)
    y = (a * w).sum()
    a[0] = 100
    with pytest.raises(RuntimeError, match=r"Mul saved .* at version 1, expected version 0"):
        y.backward()


def test_writing_into_a_parameter_under_no_grad_raises(leaf64, device):
    w = leaf64([1.0, 2.0, 3.0], device)
    y = (w * w).sum()
    with minae.no_grad():
        w[...] = 0
    with pytest.raises(RuntimeError, match="Mul saved"):
        y.backward()


@pytest.mark.parametrize("make", [lambda p: minae.optim.SGD(p, lr=0.1), minae.optim.Adam, minae.optim.RMSprop])
def test_backward_again_after_an_optimizer_step_raises(leaf64, device, make):
    w = leaf64([1.0, 2.0, 3.0], device)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    make([w]).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_right_gradients_when_nothing_saved_is_written(leaf64, device):
    # writes to values the backward does not read are no error: Add needs only shapes
    a = leaf64([1.0, 2.0], device, requires_grad=False)
    w = leaf64([3.0, 4.0], device)
    y = (a + w).sum()
    a[0] = 100
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0])
    # a write before the op is recorded is fine, and the gradient uses the new values
    b = leaf64([1.0, 2.0], device, requires_grad=False)
    b[0] = 5
    (b * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0 + 5.0, 1.0 + 2.0])


def test_writes_through_data_are_not_tracked(leaf64):
    # as in PyTorch: .data is the escape hatch, and its docstring says so
    w = leaf64([1.0, 2.0, 3.0])
    y = (w * w).sum()
    w.data[...] = 0
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [0.0, 0.0, 0.0])
    doc = inspect.getdoc(minae.Tensor.data)  # help(minae.Tensor) shows it
    assert "NOT" in doc and "tracked" in doc


def test_version_counter_is_shared_with_detach_and_bumped(leaf64):
    x = leaf64([1.0, 2.0], requires_grad=False)
    d = x.detach()
    assert x._version.value == 0
    d[0] = 3.0
    assert x._version.value == d._version.value == 1
    x._bump_version()
    assert d._version.value == 2


# each case: a value a backward saved is changed through another tensor that shares its memory
VIEWS = {
    "slice": lambda t: t[1:3],
    "basic index": lambda t: t[0],
    "transpose": lambda t: t.T,
    "reshape": lambda t: t.reshape(-1),
    "view": lambda t: t.view(6),
    "unsqueeze": lambda t: t.unsqueeze(0),
    "squeeze": lambda t: t.unsqueeze(0).squeeze(0),
    "view of a view": lambda t: t.T[1:][0],
    "detach": lambda t: t.detach(),
    "detach of a reshape": lambda t: t.reshape(3, 2).detach(),
    "Parameter": lambda t: minae.nn.Parameter(t, requires_grad=False),
}


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_write_through_any_view_into_a_saved_input_raises(leaf64, view):
    x = leaf64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=False)
    w = leaf64([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    y = (x * w).sum()  # Mul saved x
    with minae.no_grad():
        view(x)[...] = 0
    with pytest.raises(RuntimeError, match="Mul saved .* modified by an in-place"):
        y.backward()


@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_a_write_through_any_view_into_a_kept_output_raises(leaf64, view):
    x = leaf64([[0.5, -1.0, 2.0], [1.0, 0.0, -2.0]])
    y = x.exp()  # Exp keeps its output
    loss = y.sum()
    view(y)[...] = 0
    with pytest.raises(RuntimeError, match="Exp saved .* modified by an in-place"):
        loss.backward()


def test_a_write_into_the_base_of_a_saved_view_raises(leaf64):
    a = leaf64([1.0, 2.0, 3.0], requires_grad=False)
    v = leaf64([1.0, 1.0])
    y = (a[0:2] * v).sum()
    a[0] = 100
    with pytest.raises(RuntimeError, match="modified by an in-place"):
        y.backward()


def test_a_write_after_the_parameter_of_a_tensor_was_made_raises():
    t = minae.tensor([1.0, 2.0], dtype=minae.float64)
    p = minae.nn.Parameter(t)
    y = (p * p).sum()
    t[0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an in-place"):
        y.backward()
    assert p.data[0] == 5.0  # the same memory


# each use reads the view for a gradient that is needed (x's, or the view's own in W.reshape(-1) ** 3): PyTorch
# raises for each; where nothing reads the weight (x @ W.T with x needing no gradient) neither raises
W_USES = {
    "x @ W.T": lambda x, W: x @ W.T,
    "W[0]": lambda x, W: x * W[0],
    "W.reshape(-1)": lambda x, W: W.reshape(-1) ** 3,
}


@pytest.mark.parametrize("use", W_USES.values(), ids=W_USES.keys())
@pytest.mark.parametrize("make", [lambda p: minae.optim.SGD(p, lr=0.1), minae.optim.Adam])
def test_an_optimizer_step_between_forward_and_backward_raises_for_any_view_of_the_weight(leaf64, use, make):
    W = minae.nn.Parameter(minae.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=minae.float64))
    x = leaf64([[1.0, -1.0, 0.5]])
    W.grad = minae.ones_like(W)
    loss = (use(x, W) ** 2).sum()
    make([W]).step()
    with pytest.raises(RuntimeError, match="modified by an in-place"):
        loss.backward()


@pytest.mark.parametrize(
    "write",
    [
        lambda m: minae.nn.init.normal_(m.weight),
        lambda m: minae.nn.init.zeros_(m.weight),
        lambda m: m.load_state_dict({k: v * 2 for k, v in m.state_dict().items()}),
    ],
    ids=["init.normal_", "init.zeros_", "load_state_dict"],
)
def test_library_writes_between_forward_and_backward_raise(write):
    m = minae.nn.Linear(3, 2)
    loss = (m(minae.ones(4, 3, requires_grad=True)) ** 2).sum()  # Linear saved the weight, for the input's gradient
    write(m)
    with pytest.raises(RuntimeError, match="modified by an in-place"):
        loss.backward()


def test_version_counter_is_shared_by_views_and_bumped_by_every_write(leaf64):
    x = leaf64([[1.0, 2.0], [3.0, 4.0]], requires_grad=False)
    views = [x[0], x.T, x.reshape(-1), x.detach(), x.unsqueeze(0), minae.nn.Parameter(x)]
    x += 1
    x.mul_(2)
    x[0, 0] = 3
    x.zero_()
    x.copy_(minae.ones(2, 2))
    assert all(v._version is x._version for v in views)
    assert x._version.value == 5
    copy = x.clone()  # its own memory: its own counter
    assert copy._version is not x._version


# --- views and versions: only what a needed gradient reads is checked (PyTorch's rule) ---
# x needs no gradient, w does; the named one is written (under no_grad) between forward and backward. PyTorch saves
# an input only for a gradient it will compute, and checks only what it saved: minae must raise exactly when it does.
READS = {
    "x * w, w written": (lambda lib, x, w: x * w, "w"),
    "x * w, x written": (lambda lib, x, w: x * w, "x"),
    "x / w, x written": (lambda lib, x, w: x / w, "x"),
    "x / w, w written": (lambda lib, x, w: x / w, "w"),
    "w / x, w written": (lambda lib, x, w: w / x, "w"),
    "w / x, x written": (lambda lib, x, w: w / x, "x"),
    "x @ w.T, w written": (lambda lib, x, w: x @ w.T, "w"),
    "x @ w.T, x written": (lambda lib, x, w: x @ w.T, "x"),
    "linear(x, w), w written": (lambda lib, x, w: lib.nn.functional.linear(x, w, w[:, 0]), "w"),
    "linear(x, w), x written": (lambda lib, x, w: lib.nn.functional.linear(x, w, w[:, 0]), "x"),
    "where(x > 3, w, x), x written": (lambda lib, x, w: lib.where(x > 3, w, x), "x"),
    "maximum(w, x), x written": (lambda lib, x, w: lib.maximum(w, x), "x"),
    "x ** w, w written": (lambda lib, x, w: x**w, "w"),
    "w ** x, x written": (lambda lib, x, w: w**x, "x"),
}


def _reads(lib, case):
    fn, written = case
    x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)
    w = lib.tensor([[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]], dtype=lib.float64, requires_grad=True)
    y = fn(lib, x, w).sum()
    with lib.no_grad():
        (x if written == "x" else w).add_(1)
    try:
        y.backward()
    except RuntimeError:
        return "raises"
    return np.asarray(w.grad.detach().numpy() if lib is not minae else w.grad.numpy())


@pytest.mark.parametrize("case", READS.values(), ids=READS.keys())
def test_only_inputs_that_a_needed_gradient_reads_are_checked_as_in_pytorch(case):
    torch = torch_or_skip()
    got, want = _reads(minae, case), _reads(torch, case)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_an_input_read_only_for_a_gradient_that_is_not_needed_is_not_checked(leaf64):
    # y = x * w with only w requiring grad: ∂y/∂w = x is all the backward reads (it raised for w too)
    x, w = leaf64([1.0, 2.0], requires_grad=False), leaf64([3.0, 4.0])
    y = (x * w).sum()
    with minae.no_grad():
        w += 1
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 2.0])
    y = (x * w).sum()
    x += 1
    with pytest.raises(RuntimeError, match="Mul saved"):
        y.backward()


def test_what_grads_pruning_skips_is_still_checked(leaf64):
    # both need a gradient at the forward, so both were saved; grad(y, x) reads only w, and still checks x (PyTorch)
    x, w = leaf64([1.0, 2.0]), leaf64([3.0, 4.0])
    y = (x * w).sum()
    with minae.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match="Mul saved"):
        minae.grad(y, x)


def test_a_write_into_unrelated_memory_makes_backward_check_each_saved_tensor_and_pass(leaf64):
    # the fast path (ANY_MEMORY unchanged: nothing to read) and the full check agree
    x = leaf64([1.0, 2.0])
    y = (x.exp() * x).sum()
    before = minae.autograd.ANY_MEMORY.value
    other = minae.zeros(3)
    other += 1
    assert minae.autograd.ANY_MEMORY.value == before + 1
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])))


# ------------------------------------------------------ in-place operators ---
def test_the_update_loop_under_no_grad_trains():
    minae.manual_seed(0)
    model = minae.nn.Linear(3, 1)
    x = minae.randn(32, 3)
    y = x @ minae.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    losses = []
    for _ in range(20):
        loss = ((model(x) - y) ** 2).mean()
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with minae.no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < 0.1 * losses[0]
    assert all(isinstance(p, minae.nn.Parameter) and p.is_leaf for p in model.parameters())


@pytest.mark.parametrize(
    "op",
    [
        lambda w: w.__iadd__(1),
        lambda w: w.__imul__(2),
        lambda w: w.add_(1),
        lambda w: w.zero_(),
        lambda w: w[0].mul_(2),
    ],
)
def test_in_place_on_a_leaf_that_requires_grad_raises_while_grad_is_on(leaf64, op):
    w = leaf64([1.0, 2.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        op(w)
    assert w.tolist() == [1.0, 2.0] and w.is_leaf
    with minae.no_grad():
        op(w)
    assert w.tolist() != [1.0, 2.0] and w.is_leaf


def test_in_place_writes_into_the_memory():
    t = minae.tensor([1.0, 2.0, 3.0])
    data, alias = t.data, t[1:]
    t += 1
    t -= minae.tensor([0.5, 0.5, 0.5])
    t *= 2
    t /= 4
    t **= 2
    t.clamp_(0, 1.5)
    assert t.data is data
    np.testing.assert_allclose(t.numpy(), np.clip(((np.array([1, 2, 3.0]) + 0.5) * 2 / 4) ** 2, 0, 1.5))
    np.testing.assert_allclose(alias.numpy(), t.numpy()[1:])
    m = minae.eye(2)
    m @= minae.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert m.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_earlier_users_of_a_rebased_tensor_keep_the_old_gradient_path(leaf64):
    x = leaf64([1.0, 2.0])
    h = x * 3
    z = h + 1  # recorded before the write: its gradient goes to the old h (3x), not through the add_
    h.add_(x * x)
    (z.sum() + h.sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0 + 3.0 + 2.0, 3.0 + 3.0 + 4.0])


def test_users_between_two_writes_each_keep_the_gradient_path_they_saw(leaf64):
    # h = 3x; z1 = h + 1; h += x²; z2 = h + 1; h *= 2: z1 sees 3x, z2 sees 3x + x², h ends 2(3x + x²)
    torch = torch_or_skip()
    grads = []
    for lib in (minae, torch):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        h = x * 3
        z1 = h + 1
        h.add_(x * x)
        z2 = h + 1
        h.mul_(2)
        (z1.sum() + 10 * z2.sum() + 100 * h.sum()).backward()
        grads.append(np.asarray(x.grad.detach().numpy() if lib is torch else x.grad.numpy()))
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)
    np.testing.assert_allclose(grads[0], 3 + 10 * (3 + 2 * np.array([1.0, 2.0])) + 200 * (3 + 2 * np.array([1.0, 2.0])))


# ------------ in-place operators through views: stale views, rebased bases ---
def test_a_write_through_a_stale_view_takes_the_bases_write_into_account(leaf64):
    # h = x·1, v = h[0], h *= 2, v += x[1]: h[0] = 2 x[0] + x[1], h[1] = 2 x[1]; L = Σ h·x
    x = leaf64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    h = x * 1
    v = h[0]
    h.mul_(2)
    v.add_(x[1])
    (h * x).sum().backward()
    x0, x1 = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    np.testing.assert_allclose(x.grad.numpy(), [4 * x0 + x1, x0 + 4 * x1])


def test_grad_of_a_stale_view_as_output(leaf64):
    # v = h[0:2] taken before h *= x: v = x[0:2]², so ∂Σv/∂x = (2x₀, 2x₁, 0)
    x = leaf64([1.0, 2.0, 3.0])
    h = x * 1
    v = h[0:2]
    h.mul_(x)
    (g,) = minae.grad([v], [x], grad_outputs=[minae.ones(2, dtype=minae.float64)])
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0, 0.0])
    torch = pytest.importorskip("torch")
    tx = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    th = tx * 1
    tv = th[0:2]
    th.mul_(tx)
    (tg,) = torch.autograd.grad([tv], [tx], grad_outputs=[torch.ones(2, dtype=torch.float64)])
    np.testing.assert_allclose(g.numpy(), tg.numpy())


def test_backward_and_grad_of_a_view_whose_base_gained_a_gradient_path_after_it_was_taken(leaf64):
    # v = h[0:2] of zeros; h[1] = 5 x₀ afterwards: v = (0, 5 x₀) depends on x through the write
    x = leaf64([1.0, 2.0, 3.0])
    h = minae.zeros(3, dtype=minae.float64)
    v = h[0:2]
    h[1] = x[0] * 5
    (g,) = minae.grad([v], [x], grad_outputs=[minae.ones(2, dtype=minae.float64)], retain_graph=True)
    np.testing.assert_allclose(g.numpy(), [5.0, 0.0, 0.0])
    v.backward(minae.ones(2, dtype=minae.float64))
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "write", [lambda v: v.mul_(3), lambda v: v.__setitem__(0, 5.0), lambda v: v.fill_(1.0), lambda v: v.add_(v * 1)]
)
def test_a_write_with_grad_on_through_a_view_taken_under_no_grad_raises(leaf64, write):
    # h[0]'s gradient path would silently be cut (or kept): PyTorch raises, and so do we
    h = leaf64([[1.0, 2.0], [3.0, 4.0]]) * 2
    with minae.no_grad():
        v = h[0]
    with pytest.raises(RuntimeError, match="taken under no_grad"):
        write(v)
    with minae.no_grad():  # under no_grad it is an ordinary write
        write(v)


# ---------------------------------------- views that change nothing are views ---
# A view op asked for the shape the tensor has already (reshape to its shape, squeeze with no size-1 dim, expand to
# its shape, …) returned the tensor itself: a hook, requires_grad_ or detach_ on the "view" then acted on the
# original. PyTorch returns a new tensor that views the same memory.
SAME_SHAPE_VIEWS = {
    "reshape": lambda t: t.reshape(2, 3),
    "view": lambda t: t.view(2, 3),
    "view(-1) of 1-D": lambda t: t[0].view(-1),
    "squeeze()": lambda t: t.squeeze(),
    "squeeze(0)": lambda t: t.squeeze(0),
    "expand": lambda t: t.expand(2, 3),
    "expand(-1, -1)": lambda t: t.expand(-1, -1),
    "broadcast_to": lambda t: t.broadcast_to((2, 3)),
    "expand_as": lambda t: t.expand_as(t),
}


@pytest.mark.parametrize("view", SAME_SHAPE_VIEWS.values(), ids=SAME_SHAPE_VIEWS.keys())
def test_a_view_to_the_same_shape_is_a_new_tensor_a_hook_on_it_sees_only_its_own_path(view):
    libs = [minae] + ([torch_or_skip()] if HAS_TORCH else [])
    grads = []
    for lib in libs:
        x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64, requires_grad=True)
        v = view(x)
        assert v is not x
        v.register_hook(lambda g: g * 10)  # L = Σv + Σx²: the hook scales the first path only
        (v.sum() + (x * x).sum()).backward()
        grads.append(x.grad.detach().numpy())
    expected = np.full((2, 3), 10.0) + 2 * np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    if view is SAME_SHAPE_VIEWS["view(-1) of 1-D"]:
        expected[1] = 2 * np.array([4.0, 5.0, 6.0])
    for g in grads:
        np.testing.assert_allclose(g, expected)


@pytest.mark.parametrize("view", SAME_SHAPE_VIEWS.values(), ids=SAME_SHAPE_VIEWS.keys())
def test_requires_grad_or_detach_on_a_same_shape_view_leaves_the_base_alone(view):
    x = minae.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    v = view(x)
    v.requires_grad_()
    assert not x.requires_grad and v.requires_grad
    with minae.no_grad():
        x[0, 0] = 7.0  # the base is no leaf that requires grad: an ordinary write, seen through the view
    assert v.detach().numpy().flat[0] == 7.0
    w = minae.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    h = w * 2
    with pytest.raises(RuntimeError, match="detach"):  # a view in the graph (PyTorch: "Can't detach views in-place")
        view(h).detach_()
    assert h.requires_grad and h.grad_fn is not None


# ----------------------------------------------------------------- setitem ---
def test_assigning_a_tensor_that_requires_grad_records_the_copy():
    w = minae.tensor([1.0, 2.0], requires_grad=True)
    out = minae.zeros(2)
    out[0] = (w * w).sum()
    out[1] = w[0] * 3
    (out * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [13.0, 7.0])  # PyTorch's values


def test_setitem_converts_host_values_to_the_tensors_device_and_dtype(device):
    t = minae.zeros(4, device=device)  # float32
    with minae.no_grad():
        t[0:2] = [1.5, 2.5]  # a list
        t[2:] = np.array([3.0, 4.0])  # a float64 NumPy array
        assert type(t.data) is type(minae.zeros(1, device=device).data) and t.dtype == minae.float32
        t[[0, 3]] = minae.tensor([7.0, 8.0], dtype=minae.float64)  # a CPU tensor
        t[1] = np.float64(9.0)
    assert t.tolist() == [7.0, 9.0, 3.0, 8.0] and t.dtype == minae.float32


# A value with extra leading size-1 dimensions (out[i] = model(x[i:i+1]): (1, d) for a row of d), which PyTorch
# drops: minae refused it for a one-element slot, and where the value required grad its backward failed in NumPy
# ("cannot reshape array of size 1 into shape (1,3)").
@pytest.mark.parametrize("index, shape", [((0, 0), (1,)), ((0, 0), (1, 1)), (1, (1, 3)), ((slice(None), 0), (1, 2))])
def test_setitem_drops_a_values_leading_size_one_dims_as_pytorch(index, shape):
    libs = [minae] + ([torch_or_skip()] if HAS_TORCH else [])
    values = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
    for lib in libs:
        t = lib.zeros(2, 3, dtype=lib.float64)
        w = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        t[index] = w * 1
        (t * t).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), 2 * values)
        plain = lib.zeros(2, 3, dtype=lib.float64)
        plain[index] = lib.tensor(values, dtype=lib.float64)
        np.testing.assert_allclose(plain.numpy(), t.detach().numpy())


# -------------------------- in-place operators and setitem against PyTorch ---
# Each case runs once in minae and once in PyTorch, with x a float64 leaf ([[1, 2, 3], [4, 5, 6]]); the gradients
# must agree, or both must raise. Written as students write PyTorch code.
CASES = {
    "h *= x; h += 1 on a non-leaf": lambda lib, x, c: _cs(lambda: (x * 2).mul_(x).add_(1)),
    "x * 1 then b[0, 0:2] += 3 x[1, 1:]": lambda lib, x, c: _sq(_add_at(x * 1, x)),
    "mul_ through a slice view": lambda lib, x, c: _sq(_then(x * 1, lambda b: b[0:1].mul_(x[0:1]))),
    "two overlapping views, write through one": lambda lib, x, c: _overlap(x),
    "mul_ through .T": lambda lib, x, c: _sq(_then(x * 1, lambda b: b.T.mul_(c([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])))),
    "*= through reshape(-1)[2:4]": lambda lib, x, c: _cube(_then(x * 1, lambda b: b.reshape(-1)[2:4].mul_(2))),
    "view of a view": lambda lib, x, c: _sq(_then(x * 1, lambda b: b[0][1:].add_(x[1, 1:]))),
    "stale view after its base was written": lambda lib, x, c: _stale(x),
    "out[i] = ... (copy-slices)": lambda lib, x, c: _rows(lib, x),
    "exp_ output written: Exp must raise": lambda lib, x, c: _cs(lambda: x.exp().add_(1)),
    "write after a Mul saved it": lambda lib, x, c: _saved_then_written(x),
    "add_ after an Add (nothing read)": lambda lib, x, c: _added_then_written(x),
    "zero_, fill_": lambda lib, x, c: ((x * 1).zero_() * x).sum() + ((x * 1).fill_(2.0) * x).sum(),
    "copy_ of a tensor that requires grad": lambda lib, x, c: (lib.zeros(2, 3, dtype=x.dtype).copy_(x * x) * x).sum(),
    "clamp_": lambda lib, x, c: ((x * 1).clamp_(2, 5) * x).sum(),
    "/= then **=": lambda lib, x, c: _cs(lambda: _then(x * 1, lambda h: h.div_(x + 1).pow_(2)) * x),
    "masked setitem": lambda lib, x, c: (_then(x * 1, lambda h: h.__setitem__(h > 3, 0)) * x).sum(),
    "setitem of a column from another": lambda lib, x, c: _sq(
        _then(x * 1, lambda h: h.__setitem__((slice(None), 1), x[:, 0]))
    ),
    "write through view(-1)": lambda lib, x, c: (
        _then(x * 1, lambda h: h.view(-1).__setitem__(0, x[1, 2] * 7)) * x
    ).sum(),
    "sigmoid output, write via unsqueeze/squeeze": lambda lib, x, c: _cs(lambda: _sig(x)),
    "detach() view of a kept output": lambda lib, x, c: _detached(x),
    "clone then rows assigned": lambda lib, x, c: _sq(
        _then(x.detach().clone(), lambda h: (h.__setitem__(0, x[1]), h.__setitem__(1, x[0] * 2)))
    ),
    # a view whose base was written after the view was taken (its grad_fn is stale), then written through itself
    "add_ through a stale view": lambda lib, x, c: _stale_write(x, lambda v: v.add_(x[1])),
    "mul_ through a stale view": lambda lib, x, c: _stale_write(x, lambda v: v.mul_(3)),
    "setitem through a stale view": lambda lib, x, c: _stale_write(x, lambda v: v.__setitem__(1, x[1, 1] * 7)),
    "write through a stale view of a view": lambda lib, x, c: _stale_view_of_view(x),
    # results whose backward reads only the inputs may be written (PyTorch saves x, not x², for x ** 2)
    "x ** 2 then += 1": lambda lib, x, c: _sq(_then(x**2, lambda h: h.add_(1))),
    "x ** 0.5 then *= x": lambda lib, x, c: _sq(_then(x**0.5, lambda h: h.mul_(x))),
    "max(dim) values then += 1": lambda lib, x, c: _sq(_then(x.max(dim=1)[0], lambda h: h.add_(1))),
    # a view taken under no_grad of a tensor that requires grad, written with grad on: ambiguous, PyTorch raises
    "mul_ by a constant through a view taken under no_grad": lambda lib, x, c: _no_grad_view_write(lib, x, 3),
    "mul_ by x through a view taken under no_grad": lambda lib, x, c: _no_grad_view_write(lib, x, x[1, 1:, None]),
    "setitem through a view taken under no_grad": lambda lib, x, c: _no_grad_view_write(lib, x, None),
}


def _set(t, index, value):
    t[index] = value
    return t


def _then(t, fn):
    fn(t)
    return t


def _sq(t):
    return (t * t).sum()


def _cube(t):
    return (t**3).sum()


def _cs(fn):
    return _sq(fn())


def _add_at(b, x):
    b[0, 0:2] += x[1, 1:] * 3
    return b


def _overlap(x):
    b = x * 1
    v1, v2 = b[:, 0:2], b[:, 1:3]
    v1 += x[:, 0:2] * 5
    return _sq(v2)


def _stale(x):
    h = x * 1
    w = h[0]
    h += x * x
    return _sq(w)


def _rows(lib, x):
    out = lib.zeros(2, 3, dtype=x.dtype)
    out[0] = (x * x).sum(0)
    out[1] = x[0] * 3
    return (out * x).sum()


def _saved_then_written(x):
    b = x * 2
    c = (b * b).sum()
    b.add_(1)
    return c


def _added_then_written(x):
    b = x * 2
    c = (b + 1).sum()
    b.mul_(3)
    return c + _sq(b)


def _stale_write(x, write):
    h = x * 1
    v = h[0]
    h.mul_(x)  # v's grad_fn was taken before this write
    write(v)
    return (h * x).sum()


def _stale_view_of_view(x):
    h = x * 1
    w = h.T[1]
    h[:, 1] = x[:, 0] ** 2
    w.mul_(x[1, 0])
    return (h * x).sum()


def _no_grad_view_write(lib, x, factor):
    h = x * 2
    with lib.no_grad():
        v = h.T[1:]
    if factor is None:
        v[0] = 5.0
    else:
        v.mul_(factor)
    return (h * x).sum()


def _sig(x):
    b = x.sigmoid()
    b.unsqueeze(0).squeeze(0)[1] = 0
    return b * x


def _detached(x):
    y = x.tanh()
    loss = y.sum()
    y.reshape(3, 2).detach()[0] = 0
    return loss


def _run(lib, case):
    x = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64, requires_grad=True)

    def const(v):
        return lib.tensor(v, dtype=lib.float64)

    try:
        case(lib, x, const).backward()
    except RuntimeError:
        return "raises"
    return np.asarray(x.grad.detach().numpy() if lib is not minae else x.grad.numpy())


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_in_place_and_setitem_gradients_match_pytorch(case):
    torch = torch_or_skip()
    got, want = _run(minae, case), _run(torch, case)
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


# --------- the backward rule: saved(), the needs_grad mask, the walk order ---
def test_backward_gets_the_mask_and_saved_values(leaf64):
    seen = {}

    class Scale(minae.Function):
        keeps_output = True

        def forward(self, a, b):
            return a * b

        def backward(self, gy, needs_grad):
            a, b, y = self.saved()
            seen["mask"], seen["kinds"] = needs_grad, [type(v).__name__ for v in (a, b, y)]
            na, nb = needs_grad
            return (gy * b if na else None, gy * a if nb else None)

    a, b = leaf64([1.0, 2.0]), leaf64([3.0, 4.0], requires_grad=False)
    Scale()(a, b).sum().backward()
    assert seen["mask"] == (True, False) and seen["kinds"] == ["ndarray"] * 3
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0])
    # under create_graph the same backward sees tensors
    (g,) = minae.grad(Scale()(a, b).sum(), a, create_graph=True)
    assert seen["kinds"] == ["Tensor"] * 3


def test_minae_grad_passes_a_pruned_mask_and_leaves_the_recorded_one(leaf64):
    masks = []

    class Spy(minae.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy, needs_grad):
            masks.append(needs_grad)
            a, b = self.saved()
            return (gy * b if needs_grad[0] else None, gy * a if needs_grad[1] else None)

    a, b = leaf64([1.0]), leaf64([2.0])
    y = Spy()(a, b)
    (ga,) = minae.grad(y.sum(), a)
    assert masks == [(True, False)] and y.grad_fn.needs_grad == (True, True)
    np.testing.assert_allclose(ga.numpy(), [2.0])


def _oldest_first_heapq():
    """heapq as a student's wrong walk would use it: the oldest generation pops first."""

    class Wrong:
        @staticmethod
        def heappush(heap, item):
            import heapq

            heapq.heappush(heap, (-item[0],) + item[1:])

        @staticmethod
        def heappop(heap):
            import heapq

            return heapq.heappop(heap)

    return Wrong


def test_a_walk_in_the_wrong_order_gets_its_own_error(leaf64, monkeypatch):
    monkeypatch.setattr(autograd, "heapq", _oldest_first_heapq())
    x = leaf64([0.3, 0.7])
    p = x * 1.0  # p feeds sin (then tanh) and cos: two paths of different lengths
    y = minae.tanh(minae.sin(p)) + minae.cos(p)
    with pytest.raises(
        RuntimeError, match=r"took \w+ \(generation \d\) off the heap after a function of generation"
    ) as err:
        y.sum().backward(retain_graph=True)
    assert "newest generation first" in str(err.value) and "retain_graph" not in str(err.value)


def test_the_right_walk_order_on_the_same_graph(leaf64):
    x = leaf64([0.3, 0.7])
    p = x * 1.0
    y = minae.tanh(minae.sin(p)) + minae.cos(p)
    y.sum().backward()
    xv = x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), (1 - np.tanh(np.sin(xv)) ** 2) * np.cos(xv) - np.sin(xv))


# ------------------------------------------------------------------ dtypes ---
@pytest.mark.parametrize("fn", [minae.tanh, minae.exp, minae.sigmoid, minae.sin, minae.sqrt, minae.softplus])
@pytest.mark.parametrize("values", [[True, False], [1, 2]])
def test_float_only_ops_of_bool_and_int_give_the_default_float(device, fn, values):
    t = minae.tensor(values, device=device)
    assert fn(t).dtype == minae.float32
    minae.set_default_dtype(minae.float64)
    assert fn(t).dtype == minae.float64


def test_float_only_ops_keep_a_float_dtype():
    assert minae.tanh(minae.tensor([1.0], dtype="float16")).dtype == np.float16
    assert minae.tanh(minae.tensor([1.0], dtype=minae.float64)).dtype == minae.float64


# ----------------------------- devices: host data onto the tensor's device ---
def test_tensor_of_a_tensor_keeps_its_device_and_dtype(device):
    t = minae.tensor([1.0, 2.0], dtype=minae.float64, device=device)
    u = minae.tensor(t)
    assert u.device == t.device and u.dtype == minae.float64
    u[0] = 5.0  # a copy, not a view
    assert t.tolist() == [1.0, 2.0]
    assert minae.tensor(t, device="cpu").device.type == "cpu"


def test_tensor_of_a_device_array_keeps_its_device(device):
    arr = minae.zeros(3, device=device).data
    assert minae.tensor(arr).device == minae.device(device)


def test_list_operands_become_arrays_on_the_first_operands_device(device):
    t = minae.tensor([1.0, 2.0], device=device)
    s = t + [1.0, 2.0]
    assert s.tolist() == [2.0, 4.0] and s.dtype == minae.float32 and s.device == t.device
    assert (t == [1, 3]).tolist() == [True, False]
    assert ([3.0, 3.0] - t).tolist() == [2.0, 1.0]
    x = minae.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * [3.0, 4.0]).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_the_bounds_check_used_on_cuda():
    # on CUDA index_key runs it under detect_anomaly only; here it is called directly
    ops._check_bounds((slice(None), np.array([0, 2])), (4, 3))
    with pytest.raises(IndexError, match="index 7 is out of bounds for dim 0 with size 3"):
        ops._check_bounds(np.array([0, 7]), (3,))
    with pytest.raises(IndexError, match="index -4 is out of bounds for dim 1 with size 3"):
        ops._check_bounds((slice(None), np.array([-4, 1])), (2, 3))


def test_backward_values_stay_on_the_device(device):
    x = minae.tensor([0.5, -1.0], device=device, requires_grad=True)
    (minae.relu(x) * minae.sigmoid(x)).sum().backward()
    assert type(x.grad.data) is type(x.data)
    xv = to_numpy(x.data)
    s = 1 / (1 + np.exp(-xv))
    np.testing.assert_allclose(x.grad.numpy(), (xv > 0) * (s + xv * s * (1 - s)), rtol=1e-6)
    assert backend.array_device(x.grad.data) == x.device


# ------------------------------------------------------------------ errors ---
def test_in_place_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="cannot change a tensor's shape"):
        minae.zeros(2).add_(minae.zeros(3, 2))
    with pytest.raises(TypeError, match="float32 cannot be written into a tensor of dtype int64"):
        minae.tensor([1, 2]).mul_(0.5)
    with pytest.raises(RuntimeError, match="expand"):
        minae.zeros(1, 2).expand(3, 2).add_(1)
    with pytest.raises(RuntimeError, match=r"copy_: a source of shape \(2, 3\) does not broadcast to \(3,\)"):
        minae.zeros(3).copy_(minae.ones(2, 3))
    w = minae.tensor([3.0, 4.0], requires_grad=True)
    for value in (w, w.detach()):  # recorded (value requires grad) or not: one message
        with pytest.raises(ValueError, match=r"t\[0\] = value: a value of shape \(2,\) does not fit .* shape \(\)"):
            minae.zeros(2)[0] = value


def test_out_of_range_integer_indices_raise(device):
    t = minae.arange(3, device=device)
    index = minae.tensor([0, 5], device=device)
    with minae.detect_anomaly():  # on CUDA the check reads the index back, so only under detect_anomaly
        with pytest.raises(IndexError, match="out of bounds"):
            t[index]
        with minae.no_grad(), pytest.raises(IndexError, match="out of bounds"):
            t[index] = 1
