"""The Optimizer base class: parameter groups, per-parameter state, the step loop, state_dict.

An optimizer holds ``param_groups``, a list of dicts, each with its ``"params"``
(a list of tensors) and its hyper-parameters (``"lr"`` …), and ``state``, a dict
from each parameter to the buffers its update rule keeps (momentum, moment
estimates, the step count). ``step()`` walks the groups and their parameters and
calls ``update(w, g, state, group)`` once for every parameter with a gradient:
w and g are the parameter's and its gradient's arrays, and the rule (a subclass's
``update``, written as its paper's equations) changes w in place, on its device.

Hyper-parameters enter the arithmetic as Python floats, which never widen a
float32 array (NumPy 2's promotion rules), so float32 parameters stay float32.
A parameter moved by ``Module.to(device)`` takes its state along at its next step.
"""

from __future__ import annotations

import copy
from collections import defaultdict

from .. import backend
from ..grad_mode import enable_grad
from ..tensor import Tensor


class _RequiredParameter:
    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of all optimizers (PyTorch's ``torch.optim.Optimizer``).

    ``params``: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts
    ``{"params": [...], "lr": ...}`` (parameter groups, each with its own
    hyper-parameters; what a group leaves out comes from ``defaults``).
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state = defaultdict(dict)  # parameter (by identity) -> its buffers
        self.param_groups = []
        self._scratch_buffers = {}  # (device, dtype) -> a flat buffer for a rule's temporaries
        if isinstance(params, Tensor):
            raise TypeError(
                "params should be an iterable of Tensors or dicts, but got a single Tensor; "
                "pass [tensor] or model.parameters()"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters must be in an ordered collection (a list), not a set: "
                "the order of a set changes between runs, and with it the state_dict"
            )
        param_groups = list(params)
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------ groups ---
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. a new layer to fine-tune)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError("a parameter group needs a 'params' entry")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters must be in an ordered collection (a list), not a set: "
                "the order of a set changes between runs, and with it the state_dict"
            )
        else:
            params = list(params)
        if params and isinstance(params[0], tuple):  # named_parameters()
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"an optimizer can only optimize Tensors, but parameter {i} is a {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i}, shape {p.shape})")
            if p.dtype.kind != "f":
                raise TypeError(f"can only optimize floating-point tensors, parameter {i} has dtype {p.dtype}")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group holds the same parameter twice; it would be updated twice per step")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # ------------------------------------------------------------- steps ---
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (the default, cheapest), or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    with backend.on(p.device):  # CuPy fills on the current GPU, which need not be p's
                        p.grad.data.fill(0)
                    p.grad._bump_version()

    def step(self, closure=None):
        """Update every parameter that has a ``.grad``; ``closure`` re-evaluates the loss and returns it."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = p.data
                with backend.on(backend.array_device(w)):  # what the rule allocates lands on w's GPU
                    self.update(w, p.grad.data, self._state_on_device(p), group)
                p._bump_version()  # a graph that saved p's old values must not use them (autograd checks)
        return loss

    def update(self, w, g, state: dict, group: dict) -> None:
        """One parameter's step: change the array ``w`` in place from its gradient ``g``.

        ``state`` is the parameter's own dict of buffers (empty at its first step),
        ``group`` its parameter group (the hyper-parameters). Subclasses write their rule here.
        """
        raise NotImplementedError

    def _state_on_device(self, p: Tensor) -> dict:
        """``self.state[p]``, with every buffer on p's device and in its dtype (``Module.to`` moves only p)."""
        state = self.state[p]
        w = p.data
        host_array = backend.np.ndarray  # two NumPy arrays are on the same device: no need to ask
        for name, buf in state.items():
            if isinstance(buf, Tensor):
                b = buf.data
                moved = type(b) is not type(w) or (type(w) is not host_array and b.device != w.device)
                if moved or b.dtype != w.dtype:
                    state[name] = Tensor(backend.to_device(b, backend.array_device(w)).astype(w.dtype, copy=False))
        return state

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _scratch(self, like):
        """A scratch array shaped like ``like``, on its device: a view of one buffer that every parameter reuses."""
        key = (backend.array_device(like), like.dtype)
        buf = self._scratch_buffers.get(key)
        if buf is None or buf.size < like.size:
            with backend.on(key[0]):
                buf = backend.get_array_module(like).empty(like.size, like.dtype)
            self._scratch_buffers[key] = buf
        return buf[: like.size].reshape(like.shape)

    @staticmethod
    def _grad(w, g, weight_decay: float, maximize: bool):
        """The gradient the rule uses: g ← −g if maximizing, then g ← g + λw (the L2 penalty's gradient).

        Returns g itself or a new array: never changes the parameter's ``.grad``.
        """
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * w
        return g

    # -------------------------------------------------------------- state ---
    def state_dict(self) -> dict:
        """``{"state": {index: {name: value}}, "param_groups": [{..., "params": [indices]}]}``.

        Parameters are numbered 0, 1, … across the groups in order, as in PyTorch;
        buffers are tensors. Unlike PyTorch the buffers are copies: the snapshot does
        not change as training goes on.
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, buffers in self.state.items():
            if id(p) in index and buffers:  # a rule that keeps nothing (plain SGD) leaves an empty dict
                state[index[id(p)]] = {k: _snapshot(v) for k, v in buffers.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` gave (groups must match in number and sizes).

        Buffers are copied onto each parameter's device and cast to its floating dtype.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("an optimizer state_dict is a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter group(s), "
                f"but this optimizer has {len(self.param_groups)}"
            )
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {i} has {len(saved['params'])} parameter(s) in the loaded state dict, "
                    f"but {len(group['params'])} in this optimizer"
                )
        by_index = {}
        for saved, group in zip(saved_groups, self.param_groups):
            for i, p in zip(saved["params"], group["params"]):
                by_index[int(i)] = p
        state = defaultdict(dict)
        for key, buffers in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(f"the loaded state refers to parameter {key}, which none of its groups holds")
            p = by_index[int(key)]
            state[p] = {name: _restore(value, p, name, key) for name, value in buffers.items()}
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            new = dict(group)
            new.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
            new["params"] = group["params"]
            new_groups.append(new)
        self.state = state
        self.param_groups = new_groups

    def __repr__(self):
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _snapshot(value):
    if isinstance(value, Tensor):
        value = value.data
        with backend.on_device_of((value,)):  # CuPy copies to the current GPU, which need not be value's
            return Tensor(value.copy())
    if backend.is_array(value):
        with backend.on_device_of((value,)):
            return value.copy()
    return copy.deepcopy(value)


def _restore(value, p: Tensor, name: str, key):
    """One loaded buffer: the step count as an int, arrays as tensors on p's device and dtype."""
    if name == "step":
        return int(value.item() if isinstance(value, Tensor) or backend.is_array(value) else value)
    if isinstance(value, Tensor):
        value = value.data
    if not backend.is_array(value):
        return copy.deepcopy(value)
    if value.shape != p.shape:
        raise ValueError(
            f"state {name!r} of parameter {key} has shape {tuple(value.shape)}, "
            f"but the parameter has shape {tuple(p.shape)}"
        )
    array = backend.to_device(value, p.device)
    with backend.on(p.device):  # CuPy casts and copies on the current GPU, which need not be p's
        if array.dtype.kind == "f" and array.dtype != p.dtype:
            array = array.astype(p.dtype)
        elif array is value:
            array = array.copy()
    return Tensor(array)
