"""In-place writes caught by version counters, the backward rule (saved(), the needs_grad mask),
the error for a walk in the wrong order, and the host-to-device conversions of the CUDA path."""

import inspect

import numpy as np
import pytest

import minae
from minae import autograd, backend, ops
from minae.backend import to_numpy


def t64(values, device="cpu", requires_grad=True):
    return minae.tensor(values, dtype=minae.float64, device=device, requires_grad=requires_grad)


# ------------------------------------------------------- the four cases of issue 11 ---
def test_writing_into_a_detached_view_of_a_kept_output_raises(device):
    x = t64([0.5, -1.0, 2.0], device)
    y = x.tanh()
    y.detach()[...] = 0  # detach() shares memory and the record of writes
    with pytest.raises(RuntimeError, match=r"Tanh saved for its backward has been modified by an in-place"):
        y.sum().backward()


def test_writing_into_an_input_that_needs_no_grad_raises(device):
    a = t64([1.0, 2.0, 3.0], device, requires_grad=False)
    w = t64([1.0, 1.0, 1.0], device)
    y = (a * w).sum()
    a[0] = 100
    with pytest.raises(RuntimeError, match=r"Mul saved .* at version 1, expected version 0"):
        y.backward()


def test_writing_into_a_parameter_under_no_grad_raises(device):
    w = t64([1.0, 2.0, 3.0], device)
    y = (w * w).sum()
    with minae.no_grad():
        w[...] = 0
    with pytest.raises(RuntimeError, match="Mul saved"):
        y.backward()


@pytest.mark.parametrize("make", [lambda p: minae.optim.SGD(p, lr=0.1), minae.optim.Adam, minae.optim.RMSprop])
def test_backward_again_after_an_optimizer_step_raises(device, make):
    w = t64([1.0, 2.0, 3.0], device)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    make([w]).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_right_gradients_when_nothing_saved_is_written(device):
    # writes to values the backward does not read are no error: Add needs only shapes
    a = t64([1.0, 2.0], device, requires_grad=False)
    w = t64([3.0, 4.0], device)
    y = (a + w).sum()
    a[0] = 100
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0])
    # a write before the op is recorded is fine, and the gradient uses the new values
    b = t64([1.0, 2.0], device, requires_grad=False)
    b[0] = 5
    (b * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0 + 5.0, 1.0 + 2.0])


def test_writes_through_data_are_not_tracked():
    # as in PyTorch: .data is the escape hatch, and its docstring says so
    w = t64([1.0, 2.0, 3.0])
    y = (w * w).sum()
    w.data[...] = 0
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), [0.0, 0.0, 0.0])
    doc = inspect.getdoc(minae.Tensor.data)  # help(minae.Tensor) shows it
    assert "NOT" in doc and "tracked" in doc


def test_version_counter_is_shared_with_detach_and_bumped():
    x = t64([1.0, 2.0], requires_grad=False)
    assert x._version.value == 0
    d = x.detach()
    d[0] = 3.0
    assert x._version.value == d._version.value == 1
    x._bump_version()
    assert d._version.value == 2


# ------------------------------------------------------------ the backward rule ---
def test_backward_gets_the_mask_and_saved_values():
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

    a, b = t64([1.0, 2.0]), t64([3.0, 4.0], requires_grad=False)
    Scale()(a, b).sum().backward()
    assert seen["mask"] == (True, False) and seen["kinds"] == ["ndarray"] * 3
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 4.0])
    # under create_graph the same backward sees tensors
    (g,) = minae.grad(Scale()(a, b).sum(), a, create_graph=True)
    assert seen["kinds"] == ["Tensor"] * 3


def test_minae_grad_passes_a_pruned_mask_and_leaves_the_recorded_one():
    masks = []

    class Spy(minae.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy, needs_grad):
            masks.append(needs_grad)
            a, b = self.saved()
            return (gy * b if needs_grad[0] else None, gy * a if needs_grad[1] else None)

    a, b = t64([1.0]), t64([2.0])
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


def test_a_walk_in_the_wrong_order_gets_its_own_error(monkeypatch):
    monkeypatch.setattr(autograd, "heapq", _oldest_first_heapq())
    x = t64([0.3, 0.7])
    p = x * 1.0  # p feeds sin (then tanh) and cos: two paths of different lengths
    y = minae.tanh(minae.sin(p)) + minae.cos(p)
    with pytest.raises(
        RuntimeError, match=r"took \w+ \(generation \d\) off the heap after a function of generation"
    ) as err:
        y.sum().backward(retain_graph=True)
    assert "newest generation first" in str(err.value) and "retain_graph" not in str(err.value)


def test_the_right_walk_order_on_the_same_graph():
    x = t64([0.3, 0.7])
    p = x * 1.0
    y = minae.tanh(minae.sin(p)) + minae.cos(p)
    y.sum().backward()
    xv = x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), (1 - np.tanh(np.sin(xv)) ** 2) * np.cos(xv) - np.sin(xv))


# ------------------------------------------------------------------ dtypes (issue 11) ---
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


# --------------------------------------------------------------- CUDA path (issue 13) ---
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


def test_setitem_converts_host_values_to_the_tensors_device_and_dtype(device):
    t = minae.zeros(4, device=device)  # float32
    with minae.no_grad():
        t[0:2] = [1.5, 2.5]  # a list
        t[2:] = np.array([3.0, 4.0])  # a float64 NumPy array
        assert type(t.data) is type(minae.zeros(1, device=device).data) and t.dtype == minae.float32
        t[[0, 3]] = minae.tensor([7.0, 8.0], dtype=minae.float64)  # a CPU tensor
        t[1] = np.float64(9.0)
    assert t.tolist() == [7.0, 9.0, 3.0, 8.0] and t.dtype == minae.float32


def test_list_operands_become_arrays_on_the_first_operands_device(device):
    t = minae.tensor([1.0, 2.0], device=device)
    s = t + [1.0, 2.0]
    assert s.tolist() == [2.0, 4.0] and s.dtype == minae.float32 and s.device == t.device
    assert (t == [1, 3]).tolist() == [True, False]
    assert ([3.0, 3.0] - t).tolist() == [2.0, 1.0]
    x = minae.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x * [3.0, 4.0]).sum().backward()
    assert x.grad.tolist() == [3.0, 4.0]


def test_out_of_range_integer_indices_raise(device):
    t = minae.arange(3, device=device)
    index = minae.tensor([0, 5], device=device)
    with minae.detect_anomaly():  # on CUDA the check reads the index back, so only under detect_anomaly
        with pytest.raises(IndexError, match="out of bounds"):
            t[index]
        with minae.no_grad(), pytest.raises(IndexError, match="out of bounds"):
            t[index] = 1


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
