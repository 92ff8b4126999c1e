"""Module and Parameter: the containers a model is built from.

A ``Module`` holds its parameters, buffers and sub-modules in three ordered
dictionaries. Assigning an attribute files it in the right one (``self.fc =
Linear(...)`` registers a sub-module, ``self.w = Parameter(...)`` a parameter),
so the order of ``parameters()`` and the keys of ``state_dict()`` follow the
order of the assignments: ``encoder.0.weight``, ``encoder.0.bias``, … as in
PyTorch.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict, namedtuple

from .. import backend
from ..backend import Device
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "Sequential", "ModuleList", "Identity"]


class Parameter(Tensor):
    """A tensor that is a learnable parameter of a Module (requires grad by default).

    ``Parameter(t)`` shares ``t``'s array (a tensor or a NumPy/CuPy array), so an
    initialisation written into one shows in the other.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = backend.as_array([], backend.get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)  # Parameter(t) shares t's memory and version counter

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _parse_to(args, kwargs):
    """Module.to's arguments: a device ("cpu", "cuda:0", Device) and/or a dtype, in any order."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, (str, Device)):
            device = a
        elif isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        else:
            dtype = a
    dev = None if device is None else backend.device(device)
    dt = None if dtype is None else backend.as_dtype(dtype)
    if dt is not None and dt.kind != "f":
        raise TypeError(f"Module.to only accepts floating dtypes, got {dt}")
    return dev, dt


class Module:
    """The base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign their parameters and
    sub-modules as attributes, and define ``forward``; ``module(x)`` calls
    ``forward(x)``. ``training`` (True after construction) is switched for the
    whole tree by ``train()`` / ``eval()``; it changes the behaviour of layers
    such as Dropout.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration
    def _registry(self, name):
        try:
            return object.__getattribute__(self, "_parameters")
        except AttributeError:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() was called: "
                f"call super().__init__() at the top of {type(self).__name__}.__init__"
            ) from None

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._registry(name)
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._registry(name)
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as parameter {name!r} of {type(self).__name__} "
                    "(a minae.nn.Parameter or None is expected); to change its values, write to .data"
                )
            self._parameters[name] = None
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as sub-module {name!r} of {type(self).__name__} "
                    "(a Module or None is expected)"
                )
            self._modules[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign a {type(value).__name__} as buffer {name!r} (a Tensor or None is expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove ``name`` from every registry and the instance dict (before it is filed again)."""
        self.__dict__.pop(name, None)
        for reg in (self._parameters, self._buffers, self._modules):
            reg.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name):
        # only reached when normal lookup fails: parameters, buffers and modules live in the registries
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            if reg in d and name in d[reg]:
                return d[reg][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for reg in (self._parameters, self._buffers, self._modules):
            if name in reg:
                del reg[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or None, a declared slot such as a missing bias) under ``name``."""
        self._registry(name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a tensor that is state but not learned (a running mean, a fixed mask).

        Buffers move with ``to()`` and, when persistent, are saved in ``state_dict()``.
        """
        self._registry(name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name`` (what attribute assignment does)."""
        self._registry(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    # --- walking the tree
    def named_modules(self, memo=None, prefix: str = ""):
        """(dotted name, module) for this module ("") and every descendant, depth first, each once."""
        if memo is None:
            memo = set()
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, registry, recurse, prefix=""):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))  # a tied parameter is listed once, under its first name
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """(dotted name, Parameter) in registration order, e.g. ("encoder.0.weight", W)."""
        return self._named_members("_parameters", recurse, prefix)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named_members("_buffers", recurse, prefix)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(m)`` on every sub-module, then on self (e.g. a custom initialisation); returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # --- gradients and modes
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of all parameters (``.grad = None``, or zeros when set_to_none=False)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
                continue
            with backend.on(p.device):  # CuPy allocates and fills on the current GPU, which need not be p's
                if p.grad.grad_fn is not None:  # a gradient built with create_graph: leave its graph alone
                    p.grad = Tensor(backend.get_array_module(p.grad.data).zeros_like(p.grad.data))
                else:
                    p.grad.data[...] = 0
                    p.grad._bump_version()

    def requires_grad_(self, requires_grad: bool = True):
        """Switch gradient tracking of every parameter (freeze with False); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def train(self, mode: bool = True):
        """Set ``training`` on this module and all its descendants; returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        """Evaluation mode (``train(False)``): Dropout passes its input through unchanged."""
        return self.train(False)

    # --- devices and dtypes
    def to(self, *args, **kwargs):
        """Move parameters and buffers to a device and/or cast the floating ones to a dtype, in place.

        ``model.to("cuda")``, ``model.to(minae.float64)``. The Parameter objects stay
        the same (an optimizer built before still holds them); their arrays (and
        gradients) are replaced. Returns self.
        """
        dev, dt = _parse_to(args, kwargs)

        def convert(arr):
            if dt is not None and arr.dtype.kind == "f" and arr.dtype != dt:
                with backend.on_device_of((arr,)):  # CuPy casts on the current GPU, which need not be arr's
                    arr = arr.astype(dt)
            if dev is not None:
                arr = backend.to_device(arr, dev)
            return arr

        for t in list(self.parameters()) + list(self.buffers()):
            t.data = convert(t.data)
            if t.grad is not None:
                t.grad = Tensor(convert(t.grad.data))
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self, index: int = 0):
        return self.to(f"cuda:{index}")

    def float(self):
        return self.to(backend.float32)

    def double(self):
        return self.to(backend.float64)

    # --- state
    def _state_items(self, prefix=""):
        """(key, tensor) in PyTorch's state_dict order: own parameters, own buffers, then each child."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self) -> OrderedDict:
        """An ordered name -> Tensor map of parameters and persistent buffers.

        The tensors are detached and share memory with the module (save them, or
        copy them, before training on).
        """
        sd = OrderedDict()
        for key, t in self._state_items():
            if key not in sd:
                sd[key] = t.detach()
        return sd

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values from ``state_dict`` into this module's parameters and buffers, in place.

        Every problem is reported at once, by name: keys the module has but the
        dict lacks (missing), keys the dict has but the module lacks (unexpected),
        and entries whose shape or dtype differs from the module's. Missing and
        unexpected keys are an error only when ``strict``; a shape or dtype
        mismatch always is. Nothing is copied when there is an error.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        own = OrderedDict()
        for key, t in self._state_items():
            own.setdefault(key, t)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched, sources = [], {}
        for key, t in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value.data if isinstance(value, Tensor) else value
            if not backend.is_array(arr):
                if isinstance(arr, numbers.Number):
                    arr = backend.np.asarray(arr)
                else:
                    mismatched.append(f"{key}: expected a Tensor or array, got {type(value).__name__}")
                    continue
            if tuple(arr.shape) != tuple(t.shape):
                mismatched.append(f"{key}: shape {tuple(arr.shape)} in the state_dict, {tuple(t.shape)} in the model")
            elif arr.dtype != t.dtype:
                mismatched.append(
                    f"{key}: dtype {arr.dtype} in the state_dict, {t.dtype} in the model (convert the model "
                    f"with .to(dtype))"
                )
            else:
                sources[key] = arr
        problems = list(mismatched)
        if strict and missing:
            problems.insert(0, "missing keys: " + ", ".join(repr(k) for k in missing))
        if strict and unexpected:
            problems.insert(
                1 if strict and missing else 0, "unexpected keys: " + ", ".join(repr(k) for k in unexpected)
            )
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n  " + "\n  ".join(problems))
        for key, arr in sources.items():
            t = own[key]
            with backend.on(t.device):  # CuPy writes on the current GPU, which need not be t's
                t.data[...] = backend.to_device(arr, t.device)
            t._bump_version()  # a graph that saved t's old values must not use them
        return _IncompatibleKeys(missing, unexpected)

    # --- calling and printing
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward(self, ...) in the subclass")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's line in ``repr`` (its settings)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(m), 2) for name, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))


class Sequential(Module):
    """Modules applied one after the other: ``Sequential(Linear(784, 30), Tanh())``.

    The children are named ``0``, ``1``, … (or by the keys of an OrderedDict);
    ``seq[i]``, ``seq[a:b]``, ``len(seq)`` and iteration work as on a list.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
                self.add_module(str(i), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        try:
            return items[idx][1]
        except IndexError:
            raise IndexError(f"index {idx} is out of range for a Sequential of length {len(items)}") from None

    def append(self, module: Module):
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list would hide them).

    Children are named ``0``, ``1``, …; it has no forward of its own.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _index(self, idx):
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for a ModuleList of length {n}")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx, module):
        self.add_module(self._index(idx), module)

    def append(self, module: Module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module):
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        self.extend(mods)


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. "no activation"). Arguments are ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
