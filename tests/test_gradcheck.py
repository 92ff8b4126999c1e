"""minae.gradcheck and minae.gradgradcheck: pass on correct ops, fail loudly on wrong ones."""

import re

import numpy as np
import pytest

import minae


class SquareWithSignError(minae.Function):
    """y = x², with a backward that returns −2x·gy: wrong at every nonzero x."""

    def forward(self, x):
        return x * x

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return gy * x * -2.0


class SquareWithConstantGradient(minae.Function):
    """y = x², with a backward that is right (2x·gy) but built from the raw array, so the
    gradient is not a function of x in the graph: its second derivative is wrong."""

    def forward(self, x):
        return x * x

    def backward(self, gy, needs_grad):
        (x,) = self.saved()
        return gy * (2.0 * (x.data if isinstance(x, minae.Tensor) else x))


class MulWrongForSecondInput(minae.Function):
    """y = a·b; ∂/∂a right, ∂/∂b forgets a factor."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy, needs_grad):
        a, b = self.saved()
        return gy * b, gy * a * 0.5


MESSAGE = re.compile(
    r"input (\d+) \(shape \(([\d, ]*)\)\), element \(([\d, ]*)\): "
    r"backward gives (\S+), finite differences give (\S+)"
)


def test_passes_on_correct_ops(leaf64, device):
    x, y = leaf64([[0.5, -1.0], [2.0, 0.3]], device), leaf64([1.5, -0.5], device)
    assert minae.gradcheck(lambda a, b: (a * b).exp() @ b, [x, y]) is True
    assert minae.gradgradcheck(lambda a, b: (a * b).exp() @ b, [x, y]) is True
    assert minae.gradcheck(lambda a: (a.sin(), a * 2), x) is True  # several outputs


def test_a_custom_function_that_is_right_passes(leaf64, device):
    class Cube(minae.Function):
        def forward(self, x):
            return x * x * x

        def backward(self, gy, needs_grad):
            (x,) = self.saved()
            return gy * 3 * x * x

    x = leaf64([0.5, -1.2, 2.0], device)
    assert minae.gradcheck(lambda t: Cube()(t), [x])
    assert minae.gradgradcheck(lambda t: Cube()(t), [x])


def test_a_sign_error_fails_naming_input_element_and_values(leaf64, device):
    x = leaf64([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], device)
    with pytest.raises(minae.GradcheckError) as info:
        minae.gradcheck(lambda t: SquareWithSignError()(t), [x])
    m = MESSAGE.search(str(info.value))
    assert m, str(info.value)
    assert m.group(1) == "0" and m.group(2) == "2, 3"
    index = tuple(int(i) for i in m.group(3).split(","))
    assert len(index) == 2 and 0 <= index[0] < 2 and 0 <= index[1] < 3
    analytic, numeric = float(m.group(4)), float(m.group(5))
    assert analytic == pytest.approx(-numeric, rel=1e-4) and numeric != 0  # the sign error, seen exactly
    # the worst element is the largest |x| among equally weighted ones: check it is a real element
    assert x.numpy()[index] != 0


def test_the_failure_names_the_right_input(leaf64, device):
    a, b = leaf64([1.0, 2.0], device), leaf64([3.0, -4.0], device)
    with pytest.raises(minae.GradcheckError, match=r"input 1 \(shape \(2,\)\)"):
        minae.gradcheck(lambda p, q: MulWrongForSecondInput()(p, q), [a, b])
    # the right input alone passes: b is a constant here
    assert minae.gradcheck(lambda p, q: MulWrongForSecondInput()(p, q), [a, b.detach()])


def test_second_order_failure(leaf64, device):
    x = leaf64([0.5, -1.0, 2.0], device)
    fn = lambda t: SquareWithConstantGradient()(t)  # noqa: E731
    assert minae.gradcheck(fn, [x])  # first order is right
    with pytest.raises(
        minae.GradcheckError, match=r"input 0.*element \(\d,\).*backward gives .*finite differences give"
    ):
        minae.gradgradcheck(fn, [x])
    # gradgradcheck checks the second derivative only: a consistently wrong first one is gradcheck's job
    assert minae.gradgradcheck(lambda t: SquareWithSignError()(t), [x])


def test_raise_exception_false_returns_false(leaf64, device):
    x = leaf64([0.5, -1.0, 2.0], device)
    assert minae.gradcheck(lambda t: SquareWithSignError()(t), [x], raise_exception=False) is False
    assert minae.gradgradcheck(lambda t: SquareWithConstantGradient()(t), [x], raise_exception=False) is False
    assert minae.gradcheck(minae.exp, [x], raise_exception=False) is True


def test_non_finite_numeric_gradient_fails(leaf64, device):
    """A check that cannot be made (NaN from finite differences) must not pass silently."""
    x = leaf64([1e-7, 1.0], device)  # sqrt is evaluated at 1e-7 ± 1e-6: NaN on one side
    with np.errstate(invalid="ignore"):
        assert minae.gradcheck(minae.sqrt, [x], raise_exception=False) is False


def test_tolerances_are_used(leaf64, device):
    x = leaf64([1.0, 2.0], device)

    class SlightlyOff(minae.Function):
        def forward(self, x):
            return x * 2.0

        def backward(self, gy, needs_grad):
            return gy * 2.01

    fn = lambda t: SlightlyOff()(t)  # noqa: E731
    assert not minae.gradcheck(fn, [x], raise_exception=False)
    assert minae.gradcheck(fn, [x], atol=0.1)
    assert minae.gradcheck(fn, [x], rtol=0.01)


def test_checks_float64_copies_and_leaves_inputs_alone(device):
    x = minae.tensor([0.5, 1.5], device=device, requires_grad=True)  # float32
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t.exp()

    assert minae.gradcheck(fn, [x])
    assert set(seen) == {minae.float64}
    assert x.dtype == minae.float32 and x.grad is None and x.tolist() == [0.5, 1.5]


def test_inputs_without_grad_are_constants(leaf64, device):
    x, c = leaf64([1.0, 2.0], device), minae.tensor([3.0, 4.0], dtype=minae.float64, device=device)
    assert minae.gradcheck(lambda a, b: a * b, [x, c])
    with pytest.raises(ValueError, match="no input requires grad"):
        minae.gradcheck(lambda b: b * 2, [c])


def test_output_must_be_a_tensor(leaf64, device):
    x = leaf64([1.0], device)
    with pytest.raises(TypeError, match="not a Tensor"):
        minae.gradcheck(lambda t: 3.0, [x])
