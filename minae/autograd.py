"""Reverse-mode automatic differentiation: Function, the graph, backward and grad.

The whole engine in three ideas:

1. A ``Tensor`` (``tensor.py``) wraps one array. When a ``Function`` (one op) runs on tensors
   that require grad, it remembers its inputs and becomes the result's ``grad_fn``: the graph
   is built as the forward pass runs, one node per op.
2. ``Function.forward`` computes on raw arrays. ``Function.backward(gy, needs_grad)`` turns
   ∂L/∂y into one ∂L/∂x = ∂L/∂y · ∂y/∂x per input (None where ``needs_grad`` says no gradient
   is wanted), written with minae's own ops, which accept raw arrays as well as tensors. It
   reads what the forward kept with ``self.saved()``: raw arrays in an ordinary backward (fast,
   nothing recorded), tensors under ``create_graph=True``, so the gradient is itself a graph
   that can be differentiated again.
3. ``run_backward`` visits the functions from the output down, newest generation first (a
   heap, no recursion): a function's generation is one more than its inputs', so every
   gradient flowing into its output has arrived, and been summed, before its backward runs.
   Each runs once.

Values a backward reads must not change between the forward and the backward: each tensor
has a version that in-place writes bump, and a function checks the versions it saw before
its backward runs.
"""

from __future__ import annotations

import heapq
import itertools
import traceback
import weakref

from . import backend, diagnostics, graph
from .backend import array_device, as_array, is_array
from .grad_mode import GradMode, _grad_enabled

_ndarray, _np_generic = backend.np.ndarray, backend.np.generic
_new = object.__new__


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` in ops.

    Subclasses write::

        def forward(self, x):                 # raw arrays in, one raw array out
            ...
        def backward(self, gy, needs_grad):   # ∂L/∂y in, one ∂L/∂x (or None) per input out
            x, = self.saved()                 # arrays, or tensors under create_graph
            ...

    Class switches: ``keeps_output = True`` adds the forward's result to what ``saved()`` returns;
    ``reads_inputs = False`` says backward uses only its inputs' shapes, so writing into an input
    afterwards is no error. Inputs that are not tensors (numbers, raw arrays) are constants. Called
    with no tensor among its inputs, a Function just computes its forward: that is what lets a
    backward call ops on raw arrays. An instance records one call (it is that call's node): make
    a new one for every call, as the lowercase functions in ``ops.py`` do.
    """

    # output (held weakly: a strong reference would be a cycle) and out_version are set only with keeps_output,
    # created_at only under detect_anomaly: a slot set on every op costs time on every op
    __slots__ = (
        "inputs", "arrays", "needs_grad", "generation", "versions",
        "output", "out_version", "created_at", "__weakref__",
    )  # fmt: skip
    keeps_output = False
    reads_inputs = True
    differentiable = True

    def __call__(self, *args):
        for a in args:
            if isinstance(a, Tensor):
                break
        else:  # no tensor at all: raw arrays in, raw array out (how an ordinary backward calls ops)
            return self.forward(*args)
        arrays, any_grad = _keep_inputs(self, args)
        try:
            if type(arrays[0]) is _ndarray:  # the CPU: no device to make current
                y = self.forward(*arrays)
            else:  # CuPy computes on the current GPU: make the inputs' current
                with backend.on_device_of(arrays):
                    y = self.forward(*arrays)
        except ValueError as e:
            raise ValueError(f"{self.name()}: {diagnostics.describe_inputs(self.inputs)}: {e}") from None
        if type(y) is not _ndarray and not is_array(y):  # NumPy ufuncs turn 0-d arrays into scalars
            y = backend.np.asarray(y)
        if GradMode.anomaly:
            diagnostics.check_forward(self, y)
        out = _new(Tensor)  # no __init__: its checks are for user data, and y is an array already
        out.data, out.grad = y, None
        out._version, out._retains_grad = None, False
        if not (any_grad and GradMode.enabled and self.differentiable):
            out.requires_grad, out.grad_fn = False, None
            return out
        # record: self becomes the node that made out (it keeps its inputs already)
        self.arrays = arrays
        if self.keeps_output:
            arrays.append(y)
            self.output, self.out_version = weakref.ref(out), [0]
            out._version = self.out_version  # shared with out's detach() views: writes through them count
        if GradMode.anomaly:
            self.created_at = traceback.extract_stack()[:-1]
        out.requires_grad, out.grad_fn = True, self
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, gy, needs_grad):
        raise NotImplementedError

    def saved(self):
        """What backward reads: the inputs, then the output if ``keeps_output``; raw arrays in an ordinary
        backward, tensors under ``create_graph`` (so that the gradient's graph reaches the real inputs)."""
        if not GradMode.enabled:
            return self.arrays
        values = list(self.inputs)
        if self.keeps_output:
            out = self.output()
            values.append(out if out is not None else Tensor(self.arrays[-1]))
        return values

    @classmethod
    def name(cls) -> str:
        return cls.__name__

    def __repr__(self):
        return f"<{self.name()}Backward>"

    def next_functions(self):
        """The functions that made this one's inputs (for drawing the graph)."""
        if getattr(self, "inputs", None) is None:
            return ()
        return tuple(a.grad_fn for a in self.inputs if isinstance(a, Tensor))


def _keep_inputs(func, args):
    """Keep the inputs, their needs-grad mask, generation and versions in func.

    Returns the forward's arrays, and whether any input needs a gradient.
    """
    arrays, needs_grad, gen, written, plain = [], (), 0, False, True
    for a in args:  # tensors on the CPU and Python numbers here; anything else in _constants
        if isinstance(a, Tensor):
            needs_grad += (a.requires_grad,)
            g = 0 if a.grad_fn is None else a.grad_fn.generation + 1  # one more than every input's
            if g > gen:
                gen = g
            written = written or a._version is not None and a._version[0] != 0
            a = a.data
            plain = plain and type(a) is _ndarray
        else:
            needs_grad += (False,)
            plain = plain and (type(a) is float or type(a) is int)
        arrays.append(a)
    if not plain:
        args, arrays = _constants(func, args)
    func.inputs, func.needs_grad, func.generation = args, needs_grad, gen
    # versions: when every input is at version 0 (the common case), the count of in-place writes so far, which
    # backward compares with the count then (one comparison), reading the inputs' versions only if it moved
    func.versions = tuple(_version(a) for a in args) if written else IN_PLACE_WRITES[0]
    return arrays, True in needs_grad


def _version(a) -> int:
    return a._version_value if isinstance(a, Tensor) else 0


def _constants(func, args):
    """The inputs and arrays in general: NumPy scalars become numbers, lists arrays; one device for all."""
    arrays, first, converted = [], None, False
    for a in args:
        if isinstance(a, Tensor):
            a = a.data
        elif isinstance(a, _np_generic):  # np.float64(2) would upcast float32 arrays; a Python number does not
            a, converted = a.item(), True
        if not is_array(a):  # a Python number (or a list, converted below): a constant
            converted = converted or isinstance(a, list)
        elif first is None:
            first = a
        elif type(a) is not type(first) or (type(a) is not _ndarray and a.device != first.device):
            raise diagnostics.device_error(func, args)
        arrays.append(a)
    if converted:  # saved as the values the forward saw, so that the gradient keeps their dtype too
        dt = first.dtype if first.dtype.kind == "f" else None  # t + [1., 2.]: on t's device (CuPy takes no lists)
        arrays = [as_array(a, dt, array_device(first)) if isinstance(a, list) else a for a in arrays]
        args = tuple(a if isinstance(a, Tensor) else x for a, x in zip(args, arrays))
    return args, arrays


# ---------------------------------------------------------------- backward ---
_tiebreak = itertools.count()


def run_backward(roots, root_grads, retain_graph, create_graph, accumulate=True, capture=None):
    """Propagate gradients from ``roots`` to the leaves, newest generation first: into the leaves' ``.grad``
    (``accumulate``) and/or into ``capture`` ({id(tensor): None}, for ``grad``)."""
    pending, heap, last = {}, [], float("inf")  # f -> Σ gradients at its output; (−generation, tiebreak, f)

    def send(t, g, owned=False):
        f = t.grad_fn
        # (dtypes by identity: equal ones are almost always one object, and _deliver compares them fully)
        if f is None or t._retains_grad or capture is not None or g.dtype is not t.data.dtype:
            g = _deliver(t, g, accumulate, capture, create_graph, owned)  # into a .grad or the capture, or cast
            if f is None:
                return
        # BEGIN SOLUTION task 1.5
        if f in pending:
            pending[f] = pending[f] + g
        else:
            pending[f] = g
            heapq.heappush(heap, (-f.generation, next(_tiebreak), f))
        # END SOLUTION

    # the backward's own ops are recorded only under create_graph; the roots' GPU current for their sends
    with _grad_enabled(create_graph), backend.on_device_of([t.data for t in roots]):
        for t, g in zip(roots, root_grads):
            send(t, g)
        wanted = None if accumulate or capture is None else graph.leading_to(roots, capture)
        while heap:
            # BEGIN SOLUTION task 1.5
            f = heapq.heappop(heap)[2]
            gy = pending.pop(f)
            # END SOLUTION
            last, before = f.generation, last
            if last > before:  # an older function ran already: a gradient may reach it after its backward
                raise diagnostics.walk_order_error(f, before)
            needs_grad = f.needs_grad if wanted is None else graph.pruned_mask(f, wanted, capture)
            if type(gy) is _ndarray:  # the CPU: no device to make current
                _call_backward(f, gy, needs_grad, retain_graph, send)
            else:  # CuPy computes on the current GPU: make f's current for its backward and the sums of its sends
                with backend.on_device_of(f.arrays):
                    _call_backward(f, gy, needs_grad, retain_graph, send)


def _call_backward(f, gy, needs_grad, retain_graph, send):
    """f's backward, after checking what it saved; ``send`` each input its gradient; free f's saved values."""
    inputs = f.inputs
    if inputs is None or f.versions != IN_PLACE_WRITES[0]:  # freed, or something was written in place since
        _check_saved(f)
    gxs = f.backward(gy, needs_grad)
    if type(gxs) is not tuple:
        gxs = (gxs,)
    if GradMode.anomaly:
        diagnostics.check_backward(f, gxs)
    for x, gx, need in zip(inputs, gxs, needs_grad):
        if need and gx is not None:  # owned: made for x alone, so a leaf may keep it without a copy
            send(x, gx, not retain_graph and x.grad_fn is None and _owned(gx, f, gy, gxs))
    if not retain_graph:
        f.inputs = f.arrays = None


def _deliver(t, g, accumulate, capture, create_graph, owned):
    """Cast g to t's dtype, and hand it to the ``.grad`` or the capture that wants it."""
    if g.dtype != t.data.dtype:  # a float64 constant promoted this path: t's gradient keeps t's dtype
        g = _ops.cast(g, t.data.dtype) if isinstance(g, Tensor) else g.astype(t.data.dtype)
    if capture is not None and id(t) in capture:
        capture[id(t)] = g if capture[id(t)] is None else capture[id(t)] + g
    if accumulate and (t._retains_grad or (t.grad_fn is None and t.requires_grad)):
        t._accumulate_grad(g, create_graph, owned and t.grad_fn is None)
    return g


def _owned(g, f, gy, gxs) -> bool:
    """Whether f's backward made g afresh for one input: not a view, not gy, not sent twice, not saved by f."""
    if not is_array(g) or g.base is not None or g is gy:
        return False
    return sum(x is g for x in gxs) == 1 and all(a is not g for a in f.arrays)


def _check_saved(f):
    """Raise if what f's backward reads was freed, or written in place since its forward (a wrong gradient)."""
    if f.inputs is None:
        raise diagnostics.freed_error(f)
    if f.reads_inputs:  # versions: the inputs' versions, or (an int) the count of writes when all were at 0
        seen = f.versions if isinstance(f.versions, tuple) else itertools.repeat(0)
        for a, v in zip(f.inputs, seen):
            if isinstance(a, Tensor) and a._version is not None and a._version[0] != v:
                raise diagnostics.modified_error(f, a._version[0], v)
    if f.keeps_output and f.out_version[0] != 0:
        raise diagnostics.modified_error(f, f.out_version[0], 0)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Σ_k grad_outputs[k] · ∂outputs[k]/∂inputs[i] for each input, as a tuple of tensors, touching no ``.grad``.

    With ``create_graph=True`` the results are part of a graph and can be differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    diagnostics.check_grad_arguments(outputs, inputs, grad_outputs)
    grads = [as_grad_array(g, y, create_graph) for y, g in zip(outputs, grad_outputs)]
    capture = {id(x): None for x in inputs}
    retain = create_graph if retain_graph is None else retain_graph
    run_backward(outputs, grads, retain, create_graph, accumulate=False, capture=capture)
    if not allow_unused:
        diagnostics.check_all_used(inputs, capture)
    grads = [capture[id(x)] for x in inputs]
    return tuple(g if g is None or isinstance(g, Tensor) else Tensor(g) for g in grads)


# Tensor's methods and the ops need Function defined above
from . import ops as _ops  # noqa: E402
from .tensor import IN_PLACE_WRITES, Tensor, as_grad_array  # noqa: E402
