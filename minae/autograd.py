"""Reverse-mode automatic differentiation: Function, the graph, backward and grad.

The whole engine in three ideas:

1. A ``Tensor`` (``tensor.py``) wraps one array. When a ``Function`` (one op) runs on tensors
   that require grad, it remembers its inputs and becomes the result's ``grad_fn``: the graph
   is built as the forward pass runs, one node per op, and an input's ``grad_fn`` is the edge
   to the node below (``maker``: the one it had then, if an in-place write replaced it since).
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

Values a backward reads must not change between the forward and the backward. Each piece of
memory has one ``Version`` counter, shared by every tensor that views it and bumped by every
write (``tensor.py``); a function notes the counts of its inputs and, before its backward runs,
compares those that a needed gradient reads (``_inputs_read``, PyTorch's rule).
"""

from __future__ import annotations

import heapq
import itertools
import traceback
import weakref

from . import backend, diagnostics, grad_pruning
from .backend import array_device, as_array, get_array_module, is_array
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
    ``grad_reads`` says, for each input, which inputs its gradient reads (``((1,), (0,))`` for a·b:
    ∂/∂a = b, ∂/∂b = a; None, the default: every input), so that only those are checked for writes
    since the forward (see ``_inputs_read``); ``checks_input_versions = False`` skips the check
    altogether (for a backward that uses only its inputs' shapes); ``promotes = True`` gives the result
    PyTorch's type promotion of two operands (``ops.promoted``). Inputs that are not
    tensors (numbers, raw arrays) are constants. Called with no tensor among its inputs, a Function
    just computes its forward: that is what lets a backward call ops on raw arrays. An instance
    records one call (it is that call's node): make a new one for every call, as the lowercase
    functions in ``ops.py`` do.
    """

    # versions: each input's version count when this one ran, set only when one was not 0 (else unset, read as 0);
    # writes_seen: ANY_MEMORY's count then. output (held weakly: a strong reference would be a cycle) and
    # output_version (its counter, and its count) are set only with keeps_output, created_at only under
    # detect_anomaly.
    __slots__ = (
        "inputs", "arrays", "needs_grad", "generation", "versions", "writes_seen",
        "output", "output_version", "created_at", "__weakref__",
    )  # fmt: skip
    keeps_output = False
    promotes = False
    grad_reads = None
    checks_input_versions = True
    differentiable = True

    def __call__(self, *args):
        for a in args:
            if isinstance(a, Tensor):
                break
        else:  # no tensor at all: raw arrays in, raw array out (how an ordinary backward calls ops)
            return self.forward(*args)
        # keep the inputs, which of them need a gradient, and the generation: one more than every input's
        arrays, needs_grad, gen, plain, written = [], (), 0, True, False
        for a in args:  # tensors on the CPU and Python numbers here; anything else in _constants
            if isinstance(a, Tensor):
                v = a._version
                if v is not None:  # its memory was viewed or written
                    if a._view is not None and a._view[2] != v.value:  # refresh_if_stale(a), inline: the per-op path
                        refresh_view(a)
                    written = written or v.value != 0
                needs_grad += (a._requires_grad,)
                f = a.grad_fn
                if f is not None:  # (f.generation read once: f's class varies, so each read is a full lookup)
                    g = f.generation
                    if g >= gen:
                        gen = g + 1
                a = a.data
                plain = plain and type(a) is _ndarray
            else:
                needs_grad += (False,)
                plain = plain and (type(a) is float or type(a) is int)
            arrays.append(a)
        any_grad = True in needs_grad
        if not plain:
            args, arrays = _constants(self, args, GradMode.enabled and any_grad)
        self.inputs, self.needs_grad, self.generation = args, needs_grad, gen
        if written:  # else left unset (read as None): a slot set on every op costs time on every op
            self.versions = tuple(_count(a) for a in args)
        self.writes_seen = ANY_MEMORY.value
        try:
            if plain:  # NumPy arrays and Python numbers only: no device to make current
                y = self.forward(*arrays)  # the forward call
            else:  # CuPy computes on the current GPU: make the inputs' current
                with backend.on_device_of(arrays):
                    y = self.forward(*arrays)
            if self.promotes:  # arithmetic of two operands: where NumPy's result dtype is not an operand's,
                a, b = arrays  # perhaps it is not PyTorch's (a, b: Python numbers or arrays; dtypes by identity)
                if type(a) is not _ndarray or y.dtype is not a.dtype or type(b) is _ndarray and b.dtype is not y.dtype:
                    y = _promote(self, arrays, y)
        except ValueError as e:
            raise ValueError(f"{self.name()}: {diagnostics.describe_inputs(self.inputs)}: {e}") from None
        if type(y) is not _ndarray and not is_array(y):  # NumPy ufuncs turn 0-d arrays into scalars
            y = backend.np.asarray(y)
        if GradMode.anomaly:
            diagnostics.check_forward(self, y)
        out = _new(Tensor)  # no __init__: its checks are for user data, and y is an array already
        out.data, out._retains_grad = y, False
        # memory of its own, not written yet (_version None), unless y views an input's (a slice, a reshape, …)
        out._grad = out._version = out._view = out._earlier_grad_fns = out._hooks = None
        if y.base is not None or y is arrays[0]:
            _share_memory(self, out, args)
        if not (any_grad and GradMode.enabled and self.differentiable):
            out._requires_grad, out.grad_fn = False, None
            return out
        # record: self becomes the node that made out (it keeps its inputs already)
        self.arrays = arrays
        if self.keeps_output:
            arrays.append(y)
            if out._version is None:
                out._version = Version()
            # the counter itself, held strongly: out may be gone while views of its memory live on
            self.output, self.output_version = weakref.ref(out), (out._version, out._version.value)
        if GradMode.anomaly:
            self.created_at = traceback.extract_stack()[:-1]
        out._requires_grad, out.grad_fn = True, self
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
        """The op's name in messages and reprs (SigmoidOp → Sigmoid: the suffix only keeps op classes apart from
        the nn layers of the same name)."""
        return cls.__name__.removesuffix("Op")

    def __repr__(self):
        return f"<{self.name()}Backward>"

    def next_functions(self):
        """The functions that made this one's inputs (for drawing the graph)."""
        if getattr(self, "inputs", None) is None:
            return ()
        return tuple(maker(self, a) for a in self.inputs if isinstance(a, Tensor))


def _promote(func, arrays, y):
    """func's result with PyTorch's type promotion (``ops.promoted``) where it differs from NumPy's: the forward
    again on the cast inputs, for the ops that say they promote (``promotes``: the arithmetic of two operands)."""
    with backend.on_device_of(arrays):  # CuPy casts and computes on the current GPU, which need not be theirs
        a, b = _ops.promoted(*arrays)
        return y if a is arrays[0] and b is arrays[1] else func.forward(a, b)


def _count(a) -> int:
    """The version count of a's memory (0 for a constant, or for memory never viewed nor written)."""
    return 0 if not isinstance(a, Tensor) or a._version is None else a._version.value


def maker(f, x):
    """The function that made x, f's input, when f ran (None for a leaf): the graph's edge from f to below.

    That is x.grad_fn, unless an in-place write gave x a new one since: f's gradient is then the gradient of x's
    value before the write, and goes to the function that made that value. x keeps its replaced grad_fns, each with
    the last version count it served (``tensor._replace_grad_fn``); f noted the count it saw.
    """
    earlier = x._earlier_grad_fns
    if earlier is not None:
        versions = getattr(f, "versions", None)
        seen = versions[next(i for i, a in enumerate(f.inputs) if a is x)] if versions else 0
        for last_count, fn in earlier:
            if seen <= last_count:
                return fn
    return x.grad_fn


def _share_memory(func, out, args):
    """When out's array views an input's memory, out shares that input's version counter (a write through
    either is a write into both) and remembers the input and the view op (for writes recorded through it)."""
    y = out.data
    base = next((a for a in args if isinstance(a, Tensor) and _views(y, a.data)), None)
    if base is None:
        out._version, out._view = None, None
        return
    if base._version is None:
        base._version = Version()
    out._version, out._view = base._version, (base, func, base._version.value)


def _views(y, x) -> bool:
    """Whether array y may view x's memory. NumPy and CuPy both compare the bounds of the two allocations
    (CuPy's on the host, from the device pointers and ids: no kernel, so any GPU may be current); arrays of
    two array modules never share memory (and CuPy's function takes CuPy arrays only)."""
    return y is x or (type(y) is type(x) and get_array_module(y).may_share_memory(y, x))


def _constants(func, args, record=False):
    """The inputs and arrays in general: NumPy scalars become numbers, lists arrays; one device for all; raw
    arrays copied when the call is ``record``-ed."""
    arrays, first, converted = [], None, False
    for a in args:
        if isinstance(a, Tensor):
            a = a.data
        elif isinstance(a, _np_generic):  # np.float64(2) would upcast float32 arrays; a Python number does not
            a, converted = a.item(), True
        elif record and is_array(a):  # the caller still holds it: a write into it before the backward (x * c,
            with backend.on_device_of((a,)):  # then c[0] = 100) would change the gradient silently; CuPy copies
                a, converted = a.copy(), True  # onto the current GPU
        if not is_array(a):  # a Python number (or a list, converted below): a constant
            converted = converted or isinstance(a, list)
        elif first is None:
            first = a
        elif type(a) is not type(first) or (type(a) is not _ndarray and a.device != first.device):
            raise diagnostics.device_error(func, args)
        arrays.append(a)
    if first is not None and type(first) is not _ndarray and len(arrays) > 1:
        # a GPU: numbers out of first's range give another dtype on CuPy 13 than on CuPy 14 (kernel_scalar)
        like = next((a for a in arrays if is_array(a) and a.dtype.kind != "b"), first)  # where's values, not cond
        fitted = [a if is_array(a) else backend.kernel_scalar(a, like) for a in arrays]
        if any(f is not a for f, a in zip(fitted, arrays)):
            arrays, converted = fitted, True
    if converted:  # saved as the values the forward saw, so that the gradient keeps their dtype too
        dt = first.dtype if first.dtype.kind == "f" else None  # t + [1., 2.]: on t's device (CuPy takes no lists)
        arrays = [as_array(a, dt, array_device(first)) if isinstance(a, list) else a for a in arrays]
        args = tuple(a if isinstance(a, Tensor) else x for a, x in zip(args, arrays))
    return args, arrays


# ---------------------------------------------------------------- backward ---
_tiebreak = itertools.count()


class GradientQueue:
    """The functions waiting for their backward: each with the sum of the gradients that reached its output so
    far (``pending``), handed out newest generation first (``heap``, a binary heap: ``heapq`` pops its smallest
    item), so that a function runs once, after every path through the later functions has brought its part."""

    __slots__ = ("pending", "heap")

    def __init__(self):
        self.pending, self.heap = {}, []

    def add(self, f, g):
        """Add g to the gradient waiting for f; the first time f is seen, queue it."""
        # BEGIN SOLUTION task 1.5
        if f in self.pending:
            self.pending[f] = self.pending[f] + g
        else:
            self.pending[f] = g
            heapq.heappush(self.heap, (-f.generation, next(_tiebreak), f))
        # END SOLUTION

    def pop(self):
        """The function of the newest generation, and the sum of its output's gradients: (f, ∂L/∂y)."""
        # BEGIN SOLUTION task 1.5
        f = heapq.heappop(self.heap)[2]
        return f, self.pending.pop(f)
        # END SOLUTION


def run_backward(roots, root_grads, retain_graph, create_graph, accumulate=True, capture=None):
    """Propagate gradients from ``roots`` to the leaves, newest generation first: into the leaves' ``.grad``
    (``accumulate``) and/or into ``capture`` ({id(tensor): None}, for ``grad``)."""
    queue, last, hook_nodes = GradientQueue(), float("inf"), {}

    def send(t, f, g, owned=False, hooked=False):
        """Hand g = ∂L/∂t to t's .grad (a leaf, or retain_grad) or the capture, and/or to f, the function that
        made t, adding it to what f got already. A tensor with hooks gets its gradients summed first (``hooked``:
        the sum, after the hooks ran)."""
        if t._hooks and not hooked:
            key = (id(t), id(f))  # (ids: == on tensors is elementwise)
            if key not in hook_nodes:
                hook_nodes[key] = TensorHooks(t, f)
            queue.add(hook_nodes[key], g)
            return
        # (dtypes by identity: equal ones are almost always one object, and _deliver compares them fully)
        if f is None or t._retains_grad or capture is not None or g.dtype is not t.data.dtype:
            g = _deliver(t, f, g, accumulate, capture, create_graph, owned)
            if f is None:
                return
        queue.add(f, g)

    # the backward's own ops are recorded only under create_graph; the roots' GPU current for their sends
    with _grad_enabled(create_graph), backend.on_device_of([t.data for t in roots]):
        for t, g in zip(roots, root_grads):
            send(t, t.grad_fn, g)
        prune = None if accumulate or capture is None else grad_pruning.Pruning(roots, capture)
        while queue.heap:  # (not `while queue`: a method call per function)
            f, gy = queue.pop()
            gen = f.generation
            if gen > last:  # an older function ran already: a gradient may reach it after its backward
                raise diagnostics.walk_order_error(f, last)
            last = gen
            if hook_nodes and type(f) is TensorHooks:  # a tensor's hooks, on its gradient's sum (register_hook)
                send(f.tensor, f.maker, f.run(gy, create_graph), hooked=True)
            elif type(gy) is _ndarray:  # a NumPy gradient: no GPU to make current (a `with` costs two Python calls)
                _backward_step(f, gy, prune, retain_graph, send)
            else:  # CuPy computes on the current GPU: make f's current (a tensor under create_graph: perhaps)
                with backend.on_device_of(f.arrays):
                    _backward_step(f, gy, prune, retain_graph, send)


class TensorHooks:
    """A node in the backward for a tensor with hooks: it collects the gradients sent to the tensor, then runs the
    hooks on their sum, ∂L/∂t, once, as PyTorch does. Its generation lies between that of the function that made t
    (or −1 for a leaf) and those of the functions that read t (one more, at least), so it runs after they all sent
    their part, and before the function that made t."""

    __slots__ = ("tensor", "maker", "generation", "__weakref__")

    def __init__(self, t, maker):
        self.tensor, self.maker = t, maker
        self.generation = (-1 if maker is None else maker.generation) + 0.5

    def run(self, g, create_graph):
        """Each hook in turn: called with the gradient (a tensor, in the tensor's dtype, as ``.grad`` gets it); a
        tensor it returns replaces it."""
        t = self.tensor
        if g.dtype != t.data.dtype:  # a float64 constant promoted this path (as in _deliver)
            g = _ops.cast(g, t.data.dtype) if isinstance(g, Tensor) else g.astype(t.data.dtype)
        for hook in list(t._hooks.values()):
            result = hook(g if isinstance(g, Tensor) else Tensor(g))
            if result is None:
                continue
            _check_hook_result(t, result)
            g = result if create_graph else result.data
        return g

    def __repr__(self):
        return "<TensorHooks>"


def _check_hook_result(t, result):
    """A gradient a hook returns for t has t's shape, dtype and device (PyTorch raises for each too: a float64
    gradient cast silently back to a float32 tensor's dtype, or flowing on as float32 below a float64 one, is not
    what the hook wrote)."""
    if isinstance(result, Tensor) and (result.shape, result.dtype, result.device) == (t.shape, t.dtype, t.device):
        return
    got = type(result).__name__
    if isinstance(result, Tensor):
        got = f"tensor of shape {tuple(result.shape)}, dtype {result.dtype} on {result.device}"
    raise RuntimeError(
        f"a hook returned a {got} for the gradient of a tensor of shape {tuple(t.shape)}, dtype {t.dtype} on "
        f"{t.device}: return a tensor like that, or None to keep the gradient"
    )


def _backward_step(f, gy, prune, retain_graph, send):
    """f's backward, after checking what it saved; ``send`` each input its gradient; free what f saved."""
    inputs = f.inputs
    if inputs is None or f.writes_seen != ANY_MEMORY.value:  # freed, or some memory was written since
        _check_saved(f)
    needs_grad = f.needs_grad if prune is None else prune.mask(f)
    gxs = f.backward(gy, needs_grad)  # the backward call
    if type(gxs) is not tuple:
        gxs = (gxs,)
    if GradMode.anomaly:
        diagnostics.check_backward(f, gxs)
    for x, gx, need in zip(inputs, gxs, needs_grad):
        if need and gx is not None:
            m = x.grad_fn if x._earlier_grad_fns is None else maker(f, x)  # maker(f, x), inline: the per-op path
            send(x, m, gx, m is None and not retain_graph and _owned(gx, f, gy, gxs))
    if not retain_graph:
        f.inputs = f.arrays = None  # free what it saved, and its hold on the graph below


def _deliver(t, f, g, accumulate, capture, create_graph, owned):
    """Cast g to t's dtype, and hand it to the ``.grad`` or the capture that wants it (``owned``: a leaf may keep
    g as its .grad without a copy)."""
    if g.dtype != t.data.dtype:  # a float64 constant promoted this path: t's gradient keeps t's dtype
        g = _ops.cast(g, t.data.dtype) if isinstance(g, Tensor) else g.astype(t.data.dtype)
    # f is t.grad_fn: a gradient sent to the function that made t before an in-place write into t is the gradient
    # of t's old value, not of t
    if capture is not None and f is t.grad_fn and id(t) in capture:
        capture[id(t)] = g if capture[id(t)] is None else capture[id(t)] + g
    if accumulate and f is t.grad_fn and (t._retains_grad or (f is None and t._requires_grad)):
        t._accumulate_grad(g, create_graph, owned)
    return g


def _owned(g, f, gy, gxs) -> bool:
    """Whether f's backward made the array g afresh for one input: not a view, not gy, not sent twice, not saved
    by f. A leaf may then keep it as its .grad without a copy (fast path: a copy per parameter per step)."""
    if not is_array(g) or g.base is not None or g is gy:
        return False
    return sum(x is g for x in gxs) == 1 and all(a is not g for a in f.arrays)


def _check_saved(f):
    """Raise if what f's backward reads was freed, or written in place since its forward (a wrong gradient)."""
    if f.inputs is None:
        raise diagnostics.freed_error(f)
    if f.checks_input_versions:
        versions = getattr(f, "versions", None) or itertools.repeat(0)
        for a, seen, read in zip(f.inputs, versions, _inputs_read(f)):
            if read and _count(a) != seen:
                raise diagnostics.modified_error(f, _count(a), seen)
    if f.keeps_output:
        counter, seen = f.output_version
        if counter.value != seen:
            raise diagnostics.modified_error(f, counter.value, seen)


def _inputs_read(f) -> list:
    """Which of f's inputs its backward reads: those that the gradient of some input needing one reads.

    PyTorch's rule: a forward saves an input only for a gradient that will be computed, and only what it saved
    is checked. So after ``y = x * w`` with only w requiring grad, writing into w is no error (∂y/∂w = x reads
    x alone) while writing into x is. ``needs_grad`` is the forward's: what grad()'s pruning skips later was
    saved, and is checked, all the same (as in PyTorch).
    """
    if f.grad_reads is None:
        return [True] * len(f.inputs)
    read = [False] * len(f.inputs)
    for need, reads in zip(f.needs_grad, f.grad_reads):
        if need:
            for j in reads:
                read[j] = True
    return read


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """Σ_k grad_outputs[k] · ∂outputs[k]/∂inputs[i] for each input, as a tuple of tensors, touching no ``.grad``.

    With ``create_graph=True`` the results are part of a graph and can be differentiated again.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    for y in outputs:
        refresh_if_stale(y)
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
from .tensor import ANY_MEMORY, Tensor, Version, as_grad_array, refresh_if_stale, refresh_view  # noqa: E402
