"""Reverse-mode automatic differentiation: Function, the graph, backward and grad.

The whole engine in three ideas:

1. A ``Tensor`` (``tensor.py``) wraps one array. When a ``Function`` (one op) runs
   on tensors that require grad, it remembers its inputs and becomes the result's
   ``grad_fn``: the graph is built as the forward pass runs, one node per op.
2. ``Function.forward`` computes on raw arrays. ``Function.backward(gy, needs_grad)``
   turns ∂L/∂y into one ∂L/∂x = ∂L/∂y · ∂y/∂x per input (None where ``needs_grad``
   says no gradient is wanted), written with minae's own ops, which accept raw
   arrays as well as tensors. It reads what the forward kept with ``self.saved()``:
   raw arrays in an ordinary backward (fast, nothing recorded), tensors under
   ``create_graph=True``, so the gradient is itself a graph that can be
   differentiated again.
3. ``run_backward`` visits the functions from the output down, newest generation
   first (a heap, no recursion): a function's generation is one more than its
   inputs', so every gradient flowing into its output has arrived, and been
   summed, before its backward runs. Each runs once.

Values a backward reads must not change between the forward and the backward:
each tensor has a version that in-place writes bump, and a function checks the
versions it saw before its backward runs.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import traceback
import weakref

from . import backend, diagnostics, graph
from .backend import array_device, as_array, is_array
from .grad_mode import GradMode, _grad_enabled

_np_generic = backend.np.generic


class Function:
    """One differentiable operation: ``forward`` on arrays, ``backward`` in ops.

    Subclasses write::

        def forward(self, x):                 # raw arrays in, one raw array out
            ...
        def backward(self, gy, needs_grad):   # ∂L/∂y in, one ∂L/∂x (or None) per input out
            x, = self.saved()                 # arrays, or tensors under create_graph
            ...

    Class switches: ``keeps_output = True`` adds the forward's result to what
    ``saved()`` returns; ``reads_inputs = False`` says backward uses only its
    inputs' shapes, so writing into an input afterwards is no error.
    Inputs that are not tensors (numbers, raw arrays) are constants. Called with
    no tensor among its inputs, a Function just computes its forward: that is
    what lets a backward call ops on raw arrays.
    """

    __slots__ = (
        "inputs", "arrays", "needs_grad", "generation", "output", "versions", "out_version", "writes", "created_at",
        "__weakref__",
    )  # fmt: skip
    keeps_output = False
    reads_inputs = True
    differentiable = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        code = getattr(cls.__dict__.get("backward"), "__code__", None)
        if code is not None and code.co_argcount == 2:  # backward(self, gy), the older form: reads self.needs_grad
            backward = cls.backward
            cls.backward = functools.wraps(backward)(lambda self, gy, needs_grad: backward(self, gy))

    def __call__(self, *args):
        for a in args:
            if isinstance(a, Tensor):
                break
        else:  # no tensor at all: raw arrays in, raw array out (how an ordinary backward calls ops)
            return self.forward(*args)
        args, arrays, needs_grad, gen, versions = _unwrap(self, args)
        try:
            y = self.forward(*arrays)
        except ValueError as e:
            raise ValueError(f"{self.name()}: {diagnostics.describe_inputs(args)}: {e}") from None
        if not is_array(y):  # NumPy ufuncs turn 0-d arrays into scalars
            y = backend.np.asarray(y)
        if GradMode.anomaly:
            diagnostics.check_forward(self, y)
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out._version, out._retains_grad = y, None, None, False
        if not (GradMode.enabled and self.differentiable and True in needs_grad):
            out.requires_grad, out.grad_fn = False, None
            return out
        # record: self becomes the node that made out, keeping its inputs and the versions they had
        self.versions, self.writes = (versions if self.reads_inputs else None), IN_PLACE_WRITES[0]
        self.out_version = None
        if self.keeps_output:  # the output is held weakly: hold its counter, which its detach() views share
            arrays.append(y)
            self.out_version = out._version = [0]
        self.inputs, self.arrays, self.needs_grad, self.generation = args, tuple(arrays), needs_grad, gen
        self.output = weakref.ref(out)
        self.created_at = traceback.extract_stack()[:-2] if GradMode.anomaly else None
        out.requires_grad, out.grad_fn = True, self
        return out

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, gy, needs_grad):
        raise NotImplementedError

    def saved(self):
        """What backward reads: the inputs, then the output if ``keeps_output``.

        Raw arrays in an ordinary backward; under ``create_graph`` tensors, so
        that the gradient's graph reaches the real inputs.
        """
        if not GradMode.enabled:
            return self.arrays
        values = list(self.inputs)
        if self.keeps_output:
            out = self.output()
            values.append(out if out is not None else Tensor(self.arrays[-1]))
        return values

    inputs_ = saved  # the name notebook 00 used before saved() (which adds the output when keeps_output)

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


def _unwrap(func, args):
    """The forward's arrays, the needs-grad mask, the generation, and the inputs' versions.

    Numbers stay numbers (NumPy scalars become Python numbers), lists become arrays.
    """
    arrays, needs_grad, first, converted, gen, written = [], [], None, False, 0, False
    for a in args:
        if isinstance(a, Tensor):
            needs_grad.append(a.requires_grad)
            if a.grad_fn is not None and a.grad_fn.generation >= gen:
                gen = a.grad_fn.generation + 1
            written = written or a._version is not None and a._version[0] != 0
            a = a.data
        else:
            needs_grad.append(False)
            if isinstance(a, _np_generic):  # np.float64(2) would upcast float32 arrays; a Python number does not
                a, converted = a.item(), True
            if not is_array(a):  # a Python number (or a list, converted below): a constant
                converted = converted or isinstance(a, list)
                arrays.append(a)
                continue
        if first is None:
            first = a
        elif type(a) is not type(first) or (type(a) is not backend.np.ndarray and a.device != first.device):
            raise diagnostics.device_error(func, args)
        arrays.append(a)
    if converted:  # saved as the values the forward saw, so that the gradient keeps their dtype too
        dt = first.dtype if first.dtype.kind == "f" else None  # t + [1., 2.]: on t's device (CuPy takes no lists)
        arrays = [as_array(a, dt, array_device(first)) if isinstance(a, list) else a for a in arrays]
        args = tuple(a if isinstance(a, Tensor) else x for a, x in zip(args, arrays))
    # the versions the inputs have now (None: all 0, the common case, at no cost)
    versions = tuple(a._version_value if isinstance(a, Tensor) else 0 for a in args) if written else None
    return args, arrays, tuple(needs_grad), gen, versions


# ---------------------------------------------------------------- backward ---
_tiebreak = itertools.count()
_ZEROS = itertools.repeat(0)


def run_backward(roots, root_grads, retain_graph, create_graph, accumulate=True, capture=None):
    """Propagate gradients from ``roots`` to the leaves, newest generation first.

    ``accumulate`` into the leaves' ``.grad``, and/or ``capture`` ({id(tensor): None}, for ``grad``).
    """
    pending = {}  # Function -> the sum of the gradients that reached its output so far
    heap = []  # (−generation, tiebreak, Function): the newest generation pops first
    done = set()  # the functions whose backward already ran in this walk

    def send(t, g, owned=False):
        f = t.grad_fn
        if f is None or t._retains_grad or capture is not None or g.dtype != t.data.dtype:
            g = _deliver(t, g, accumulate, capture, create_graph, owned)  # into a .grad or the capture, or cast
            if f is None:
                return
        if f in done:
            raise diagnostics.late_gradient_error(f)
        # BEGIN SOLUTION task 1.5
        if f in pending:
            pending[f] = pending[f] + g
        else:
            pending[f] = g
            heapq.heappush(heap, (-f.generation, next(_tiebreak), f))
        # END SOLUTION

    with _grad_enabled(create_graph):  # the backward's own ops are recorded only under create_graph
        for t, g in zip(roots, root_grads):
            send(t, g)
        wanted = None if accumulate or capture is None else graph.leading_to(roots, capture)
        while heap:
            # BEGIN SOLUTION task 1.5
            f = heapq.heappop(heap)[2]
            gy = pending.pop(f)
            # END SOLUTION
            done.add(f)
            needs_grad = f.needs_grad if wanted is None else graph.pruned_mask(f, wanted, capture)
            for x, gx, owned in _call_backward(f, gy, needs_grad, retain_graph):
                send(x, gx, owned)


def _deliver(t, g, accumulate, capture, create_graph, owned):
    """Cast g to t's dtype, and hand it to the ``.grad`` or the capture that wants it."""
    if g.dtype != t.data.dtype:  # a float64 constant promoted this path: t's gradient keeps t's dtype
        g = _ops.cast(g, t.data.dtype) if isinstance(g, Tensor) else g.astype(t.data.dtype)
    if capture is not None and id(t) in capture:
        capture[id(t)] = g if capture[id(t)] is None else capture[id(t)] + g
    if accumulate and (t._retains_grad or (t.grad_fn is None and t.requires_grad)):
        _accumulate_grad(t, g, create_graph, owned and t.grad_fn is None)
    return g


def _owned(g, f, gy, gxs) -> bool:
    """Whether f's backward made g afresh for one input: not a view, not gy, not sent twice, not saved by f."""
    if not is_array(g) or g.base is not None or g is gy:
        return False
    return sum(x is g for x in gxs) == 1 and all(a is not g for a in f.arrays)


def _check_unchanged(f):
    """Raise if a value f's backward reads was written in place after its forward (a wrong gradient otherwise)."""
    if f.reads_inputs:
        for a, seen in zip(f.inputs, f.versions or _ZEROS):  # (versions None: every input was at 0)
            if isinstance(a, Tensor) and a._version is not None and a._version[0] != seen:
                raise diagnostics.modified_error(f, a._version[0], seen)
    if f.out_version is not None and f.out_version[0] != 0:
        raise diagnostics.modified_error(f, f.out_version[0], 0)


def _call_backward(f, gy, needs_grad, retain_graph):
    """f's backward, after checking that what it saved is still there and unchanged.

    Returns (input, its gradient, owned) for each input that gets one (owned: a leaf may keep the
    array uncopied), and frees what f saved unless ``retain_graph``.
    """
    if f.inputs is None:
        raise diagnostics.freed_error(f)
    if f.writes != IN_PLACE_WRITES[0]:  # something was written in place since f's forward: was it f's?
        _check_unchanged(f)
    gxs = f.backward(gy, needs_grad)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if GradMode.anomaly:
        diagnostics.check_backward(f, gxs)
    sends = []
    for x, gx, need in zip(f.inputs, gxs, needs_grad):
        if need and gx is not None:
            sends.append((x, gx, not retain_graph and x.grad_fn is None and _owned(gx, f, gy, gxs)))
    if not retain_graph:
        f.inputs = f.arrays = None
    return sends


def _accumulate_grad(t, g, create_graph, owned=False):
    if not isinstance(g, Tensor):
        g = Tensor(g)
    if g.shape != t.shape:
        raise RuntimeError(f"internal error: gradient of shape {g.shape} for a tensor of shape {t.shape}")
    if t.grad is None:
        # a buffer of its own (later backward calls add in place), unless the backward made g for t alone:
        # else it may be shared with another path (a + b sends the same one to both) or a read-only view
        t.grad = _ops.clone(g) if create_graph else Tensor(g.data if owned else g.data.copy())
    elif create_graph:
        t.grad = t.grad + g
    else:
        t.grad.data += g.data


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple of tensors.

    Computes Σ_k grad_outputs[k] · ∂outputs[k]/∂inputs[i] for each input without
    touching any ``.grad``. With ``create_graph=True`` the results are part of a
    graph and can be differentiated again.
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
