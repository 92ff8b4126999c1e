"""Task 1.5: backward visits the graph newest generation first, each function once, gradients summed.

These graphs use only ops whose backward is given (add, sub, sin, cos, tanh), so
that they test the loop of run_backward and nothing of tasks 1.1 to 1.4.
"""

import minae
from minae.backend import np
from minae.homework.testing import assert_close, assert_equal, gradcheck, helper, rng

IDEA = (  # what every test of this file checks: a failing test's line names it
    "each function runs once, after every later function that used its output sent its share: the queue sums "
    "what each was sent, and the generation alone decides whose turn comes first"
)


def leaf(shape, seed):
    values = rng(seed).uniform(-1.5, 1.5, shape)
    return minae.tensor(values, dtype=minae.float64, requires_grad=True)


def test_a_variable_used_twice():
    # micrograd's classic: a = sin(x); b = a + a. Both uses of a must reach x: ∂b/∂x = 2 cos x
    x = leaf((), 0)
    a = minae.sin(x)
    b = a + a
    b.backward()
    assert_close(x.grad, 2 * np.cos(x.numpy()), "x.grad for b = a + a with a = sin(x)")
    # pop hands a function out with its gradient, and forgets both: else every gradient stays alive until the
    # backward ends (the peak memory of a long chain grows with its length), and the function could come out again
    queue = minae.autograd.GradientQueue()
    queue.add(a.grad_fn, np.ones(()))
    queue.pop()
    assert_equal(
        len(queue.pending),
        0,
        "gradients still pending after pop handed out the only function: {actual}; pop takes the function's "
        "gradient out of pending",
    )


def test_each_function_runs_once_after_all_its_gradients_arrived():
    # p feeds sin (whose result goes on through tanh) and cos: two paths of different lengths
    x = leaf((3,), 1)
    probe = helper("probe")()  # the identity, recording the gradient each call of its backward received
    p = probe(x)
    y = minae.tanh(minae.sin(p)) + minae.cos(p)
    y.backward(minae.ones(3, dtype=minae.float64))
    xv = x.numpy()
    expected = (1 - np.tanh(np.sin(xv)) ** 2) * np.cos(xv) - np.sin(xv)
    assert_equal(
        len(probe.calls),
        1,
        "the backward of a function used by two later ops ran {actual} times; it must run once, "
        "after the gradients from both paths have been summed (that is what the generation order is for)",
    )
    if len(probe.calls) != 1:
        return
    assert_close(probe.calls[0], expected, "the summed gradient that reached the shared function")
    assert_close(x.grad, expected, "x.grad for y = tanh(sin(x)) + cos(x)")


def test_a_long_chain():
    # 3000 ops deep: a loop, not recursion; x enters every step, so ∂y/∂x = 3001
    x = leaf((), 2)
    y = helper("add_chain")(x, 3000)  # y = x + x + … + x, built next to the code under test
    y.backward()
    assert_close(x.grad, 3001.0, "x.grad for y = x + x + … + x (3001 terms)")


def test_minae_grad_on_a_graph_with_shared_branches():
    x, w = leaf((2, 3), 3), leaf((2, 3), 4)

    def f(x, w):
        s = minae.sin(x) + w
        return minae.tanh(s) - minae.cos(x - w) + s

    gradcheck(f, [x, w])


def test_gradients_accumulate_over_two_backward_calls():
    x = leaf((4,), 5)
    y = minae.sin(x)
    g = minae.ones(4, dtype=minae.float64)
    y.backward(g, retain_graph=True)
    y.backward(g)
    assert_close(x.grad, 2 * np.cos(x.numpy()), "x.grad after two backward calls of y = sin(x)")


def _branches(seed, depths):
    """y = Σ_k branch_k(p), p = probe(x): branch k applies sin and tanh alternately, depths[k] ops deep."""
    x = leaf((4,), seed)
    probe = helper("probe")()
    p = probe(x)
    y, slope = None, np.zeros(4)
    for depth in depths:
        h, v, d = p, x.numpy(), np.ones(4)
        for k in range(depth):
            if k % 2 == 0:
                h, d, v = minae.sin(h), d * np.cos(v), np.sin(v)
            else:
                h, d, v = minae.tanh(h), d * (1 - np.tanh(v) ** 2), np.tanh(v)
        y = h if y is None else y + h
        slope = slope + d
    y.backward(minae.ones(4, dtype=minae.float64))
    message = (
        "branches {depths} ops deep all start from one function: its backward ran {{actual}} times; it must "
        "run once, after every branch, short or long, has sent its gradient (the newest generation first)"
    )
    assert_equal(len(probe.calls), 1, message.format(depths=list(depths)))
    if len(probe.calls) == 1:
        assert_close(x.grad, slope, f"x.grad for a sum of branches {list(depths)} ops deep")


def test_a_short_branch_and_a_long_one():
    # the short branch is sent first: a queue that ignores the generations runs the shared function too early
    _branches(6, (1, 4))


def test_a_long_branch_and_a_short_one():
    _branches(7, (5, 1, 2))


def test_branches_of_drawn_lengths():
    depths = [int(d) for d in rng(8).integers(1, 7, 3)]
    depths[int(rng(9).integers(0, 3))] = 1  # at least one short branch
    _branches(10, depths)


def test_a_gradient_shared_by_two_inputs_is_not_changed_in_place():
    # y = (sin x + cos x) + sin x: the inner + hands one gradient array to both sin and cos, and sin gets a
    # second gradient from the outer +. Summing into the first array in place (+=) changes cos's gradient too
    x = leaf((4,), 11)
    s, c = minae.sin(x), minae.cos(x)
    y = (s + c) + s
    y.backward(minae.tensor(rng(12).uniform(0.5, 1.5, 4), dtype=minae.float64))
    gy, xv = rng(12).uniform(0.5, 1.5, 4), x.numpy()
    assert_close(
        x.grad,
        gy * (2 * np.cos(xv) - np.sin(xv)),
        "x.grad for y = (sin x + cos x) + sin x (one function's gradient is the very array another was sent: "
        "sum the gradients into a new array, a + b, never into one of them in place, +=)",
    )
