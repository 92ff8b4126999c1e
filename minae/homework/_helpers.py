"""Helpers that run next to the code under test: in the grader's own process for the reference, in the
sandboxed child (its text is shipped there) for a student's copy.

They only arrange how the student's code is called (one op's backward alone, a stand-in for ``sum_to``, a
default dtype, a probe that counts backward calls); they compute no expected value and judge nothing.
"""

import contextlib
import sys

import minae


def _run_backward_owners():
    """The loaded minae modules that hold ``run_backward`` (the engine may live in more than one file)."""
    original = minae.autograd.run_backward
    owners = [m for name, m in list(sys.modules.items()) if name.startswith("minae") and m is not None]
    return original, [m for m in owners if getattr(m, "run_backward", None) is original]


def _one_op_backward(roots, root_grads, retain_graph=False, create_graph=False, accumulate=True, capture=None):
    """Backward through a graph of exactly one op: that op's backward, its gradients to the leaves."""
    (y,), (gy,) = roots, root_grads
    f = y.grad_fn
    if f is None:
        return
    Tensor = minae.Tensor
    if any(isinstance(x, Tensor) and x.grad_fn is not None for x in f.inputs):
        raise AssertionError("internal error in the test: one_op_gradcheck needs a function made of one op")
    with minae.set_grad_enabled(create_graph):
        grads = f.backward(gy, f.needs_grad)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(f.inputs):
        raise AssertionError(f"{f.name()}.backward returned {len(grads)} gradient(s) for {len(f.inputs)} input(s)")
    for x, gx, need in zip(f.inputs, grads, f.needs_grad):
        if not need or gx is None:
            continue
        if tuple(gx.shape) != tuple(x.shape):
            raise AssertionError(
                f"{f.name()}.backward: the gradient for an input of shape {tuple(x.shape)} has shape "
                f"{tuple(gx.shape)}: an input that broadcasting stretched gets the sum of its copies' gradients, "
                "over every axis it was stretched along (sum_to)"
            )
        if gx.dtype != x.dtype:
            gx = gx.astype(x.dtype) if not isinstance(gx, Tensor) else gx.to(x.dtype)
        if capture is not None and id(x) in capture:
            capture[id(x)] = gx if capture[id(x)] is None else capture[id(x)] + gx
        elif accumulate and x.requires_grad:
            x.grad = gx if isinstance(gx, Tensor) else Tensor(gx)


@contextlib.contextmanager
def one_op_backward():
    """Inside: backward calls the single op's ``backward`` directly (minae's run_backward is not used)."""
    original, owners = _run_backward_owners()
    for m in owners:
        m.run_backward = _one_op_backward
    try:
        yield
    finally:
        for m in owners:
            m.run_backward = original


def _sum_leading_axes(x, shape):
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    lead = x.ndim - len(shape)
    if lead <= 0 or tuple(x.shape[lead:]) != shape:
        raise AssertionError(f"internal error in the test: no stand-in for sum_to from {tuple(x.shape)} to {shape}")
    data = x.data if isinstance(x, minae.Tensor) else x
    return data.sum(axis=tuple(range(lead)))


@contextlib.contextmanager
def leading_axes_sum_to():
    """Inside: ``sum_to`` only drops leading axes ((2, 3, 4) -> (3, 4)), without task 1.2's code."""
    original = minae.ops.sum_to
    owners = [m for name, m in list(sys.modules.items()) if name.startswith("minae") and m is not None]
    owners = [m for m in owners if getattr(m, "sum_to", None) is original]
    for m in owners:
        m.sum_to = _sum_leading_axes
    try:
        yield
    finally:
        for m in owners:
            m.sum_to = original


# BEGIN GRADER ONLY
def _adjoint_sum_to(x, shape):
    """sum_to by its definition, the adjoint of broadcasting: each element of x adds into the one it is a copy of."""
    np = minae.backend.np
    shape = tuple(shape)
    data = x.data if isinstance(x, minae.Tensor) else x
    if tuple(data.shape) == shape:
        return x
    size = int(np.prod(shape, dtype=np.int64))
    source = np.broadcast_to(np.arange(size).reshape(shape), data.shape)  # raises if shape does not broadcast
    total = np.bincount(source.ravel(), weights=data.ravel().astype(np.float64), minlength=size)
    return total.reshape(shape).astype(data.dtype)


# END GRADER ONLY


def _swap_sum_to(replacement):
    original = minae.ops.sum_to
    owners = [m for name, m in list(sys.modules.items()) if name.startswith("minae") and m is not None]
    owners = [m for m in owners if getattr(m, "sum_to", None) is original]
    for m in owners:
        m.sum_to = replacement

    def restore():
        for m in owners:
            m.sum_to = original

    return restore


@contextlib.contextmanager
def any_axes_sum_to():
    """Inside: ``sum_to`` undoes any broadcasting ((3, 4) -> (3, 1), (2, 3, 4) -> (3, 1)) without task 1.2's code.

    The grader brings its own; in a student's copy this uses the copy's own sum_to (task 1.2).
    """
    # BEGIN GRADER ONLY; in a copy: restore = _swap_sum_to(minae.ops.sum_to)
    restore = _swap_sum_to(_adjoint_sum_to)
    # END GRADER ONLY
    try:
        yield
    finally:
        restore()


# BEGIN GRADER ONLY
def _graph_sum_to(x, shape):
    """sum_to that keeps a tensor in the graph (under create_graph), from ops whose forward is given code (Sum,
    Reshape); arrays, in an ordinary backward, go to the adjoint stand-in."""
    if not isinstance(x, minae.Tensor):
        return _adjoint_sum_to(x, shape)
    shape = tuple(shape)
    if tuple(x.shape) == shape:
        return x
    lead = x.ndim - len(shape)
    stretched = tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return x.sum(dim=tuple(range(lead)) + stretched, keepdim=True).reshape(shape)


# END GRADER ONLY


def _reached(t, named: dict) -> list:
    """The names of the tensors in ``named`` that the graph of ``t`` reaches (itself included)."""
    found, seen, stack = set(), set(), [t]
    while stack:
        x = stack.pop()
        if not isinstance(x, minae.Tensor) or id(x) in seen:
            continue
        seen.add(id(x))
        found.update(name for name, leaf in named.items() if x is leaf)
        if x.grad_fn is not None:
            stack.extend(x.grad_fn.inputs)
    return [name for name in named if name in found]


def create_graph_report(op: str, gy, *inputs, **options) -> str:
    """What the one op ``minae.<op>(*inputs, **options)``'s backward builds under ``create_graph`` (double
    backprop), in words: for each input that wants a gradient, the tensors that gradient's graph is built from
    ("∂/∂input 0 from gy, input 1; …"), or what went wrong. There ``gy`` and ``saved()`` are tensors and the
    backward's own ops are recorded, so a gradient that is differentiable again reaches what its value depends on.
    """
    np = minae.backend.np
    y = getattr(minae, op)(*inputs, **options)
    f = y.grad_fn
    if f is None:
        return "no graph"
    gy = minae.tensor(minae.backend.to_numpy(gy.data), dtype=y.dtype, requires_grad=True)  # a later op's gradient
    named = {"gy": gy} | {f"input {i}": x for i, x in enumerate(inputs) if isinstance(x, minae.Tensor)}
    # BEGIN GRADER ONLY; in a copy: restore = _swap_sum_to(minae.ops.sum_to)
    restore = _swap_sum_to(_graph_sum_to)
    # END GRADER ONLY
    try:
        with minae.no_grad():
            plain = f.backward(gy.data, f.needs_grad)
        with minae.enable_grad():  # as run_backward does under create_graph
            grads = f.backward(gy, f.needs_grad)
    except NotImplementedError:
        raise  # the stub: not written yet
    except Exception as e:
        return f"raised {type(e).__name__}: {e}"
    finally:
        restore()
    plain = plain if isinstance(plain, tuple) else (plain,)
    grads = grads if isinstance(grads, tuple) else (grads,)
    built = []
    for i, (need, g, p) in enumerate(zip(f.needs_grad, grads, plain)):
        if not need:
            continue
        if g is None:
            return f"returned None for input {i}, which needs a gradient"
        if not isinstance(g, minae.Tensor):
            return f"returned a {type(g).__name__} for input {i}, not a tensor"
        p = None if p is None else minae.backend.to_numpy(p.data if isinstance(p, minae.Tensor) else p)
        if p is None or np.shape(p) != tuple(g.shape) or not np.allclose(minae.backend.to_numpy(g.data), p):
            return f"gave input {i} other values than without create_graph"
        built.append(f"∂/∂input {i} from " + (", ".join(_reached(g, named)) or "nothing"))
    return "; ".join(built)


def backward_report(op: str, *inputs) -> str:
    """What the one op ``minae.<op>(*inputs)`` hands back from its backward, in words: "ok", or what is wrong.

    Checks the contract of ``needs_grad``: None for every input that needs no gradient (a Python number, a
    tensor that does not require grad), a gradient for every other.
    """
    np = minae.backend.np
    y = getattr(minae, op)(*inputs)
    f = y.grad_fn
    if f is None:
        return "ok"
    gy = np.ones(tuple(y.shape), dtype=y.data.dtype)
    try:
        with minae.no_grad():
            grads = f.backward(gy, f.needs_grad)
    except NotImplementedError:
        raise  # the stub: not written yet
    except Exception as e:
        return f"raised {type(e).__name__}: {e}"
    grads = grads if isinstance(grads, tuple) else (grads,)
    for i, (need, g) in enumerate(zip(f.needs_grad, grads)):
        what = type(inputs[i]).__name__ if not isinstance(inputs[i], minae.Tensor) else "tensor"
        if not need and g is not None:
            return f"returned a gradient for input {i} (a {what} that needs none)"
        if need and g is None:
            return f"returned None for input {i}, which needs a gradient"
    return "ok"


@contextlib.contextmanager
def default_dtype(dtype):
    """Inside: new tensors and parameters get ``dtype`` (e.g. float64 models for gradcheck)."""
    previous = minae.get_default_dtype()
    minae.set_default_dtype(dtype)
    try:
        yield
    finally:
        minae.set_default_dtype(previous)


def probe():
    """An identity op that records the gradient each call of its backward received (``.calls``)."""
    np = minae.backend.np

    class Probe(minae.Function):
        def __init__(self):
            self.calls = []

        def forward(self, x):
            return x.copy()

        def backward(self, gy, needs_grad):
            self.calls.append(np.array(minae.backend.to_numpy(gy), dtype=np.float64))
            return gy

    return Probe()


class _Capture:
    def __init__(self):
        self.seen = []


def capture_decode(model):
    """Record every latent batch handed to ``model.decode`` (in ``.seen``), and still decode it."""
    capture, decode = _Capture(), model.decode

    def recording(z):
        capture.seen.append(z)
        return decode(z)

    model.decode = recording
    return capture


def add_chain(x, n):
    """x + x + … + x (n + 1 terms) as a chain of n additions, each newer than the last."""
    y = x
    for _ in range(n):
        y = y + x
    return y


class _Record:
    """What a stand-in saw: ``calls`` (its arguments, each a tuple) and ``outputs`` (what it returned)."""

    def __init__(self):
        self.calls, self.outputs = [], []


def fixed_corruption(model, noise):
    """Make ``model.corrupt`` add the given array in training: ŷ = y + noise, known to the test; in eval, ŷ = y."""
    record = _Record()

    def corrupt(y):
        if not model.training:
            return y
        record.calls.append((y,))
        out = y + minae.tensor(noise, dtype=y.dtype, device=y.device)
        record.outputs.append(out)
        return out

    model.corrupt = corrupt
    return record


def fixed_targets(model, z_check):
    """Make ``model.infer`` return the given ž (a target the test computed) with z̃ = Enc(y), so that a test of the
    loss's two updates does not hang on the latent descent (tested on its own)."""

    def infer(y, steps=None, lr=None, trajectory=False):
        with minae.no_grad():
            z_tilde = model.encoder(y)
        return minae.tensor(z_check, dtype=z_tilde.dtype, device=z_tilde.device), z_tilde

    model.infer = infer


def _with_params(layer, weight, bias, compute):
    """``compute()`` with ``layer``'s weight and bias replaced by the tensors given (a gradcheck's inputs)."""
    saved = dict(layer._parameters)
    layer._parameters["weight"], layer._parameters["bias"] = weight, bias
    try:
        return compute()
    finally:
        layer._parameters.update(saved)


def penalty_in_encoder_params(model, y, weight, bias):
    """The autoencoder's regulariser R(h, y) with h = Enc(y), as a function of the encoder's first W and b."""
    return _with_params(model.encoder[0], weight, bias, lambda: model.regulariser(model.encode(y), y))


def jacobian_norm_in_encoder_params(model, y, weight, bias):
    """The contractive autoencoder's ``jacobian_norm(y)``, as a function of the encoder's first W and b."""
    return _with_params(model.encoder[0], weight, bias, lambda: model.jacobian_norm(y))


def jacobian_penalty_in_params(encoder, y, weight, bias):
    """``F.jacobian_penalty(encoder, y)`` per sample, as a function of the encoder's first layer's W and b."""
    from minae.nn import functional

    return _with_params(encoder[0], weight, bias, lambda: functional.jacobian_penalty(encoder, y, reduction="none"))


def standin_sampler(model):
    """Replace ``model.reparameterise`` by a stand-in that records its arguments and what it returns.

    The stand-in is deliberately NOT the reparameterisation (task 4.1's): z = μ + σ(log v) ⊙ ε. It
    depends on both codes, so a test sees what the loss hands it and where its z goes.
    """
    record = _Record()

    def sampler(mu, logvar):
        record.calls.append((mu, logvar))
        z = mu + logvar.sigmoid() * minae.randn_like(mu)
        record.outputs.append(z)
        return z

    model.reparameterise = sampler
    return record


def capture_decoder(model):
    """Record every batch handed to the decoder network ``model.decoder`` (in ``.seen``), and still run it."""
    capture, forward = _Capture(), model.decoder.forward

    def recording(z):
        capture.seen.append(z)
        return forward(z)

    model.decoder.forward = recording
    return capture
