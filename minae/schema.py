"""What a loaded value must look like, said once: a small schema language and one checker.

A checkpoint is an untrusted file; before anything is restored from it, every field is
compared with a schema built from the objects it will be loaded into (the model's own
parameter shapes, the optimizer's groups, the generator's kind), and the first field that
does not fit is reported by its path, e.g. ``optimizer.state[0].exp_avg``. Restoring
then only ever sees values of the right types and shapes.

A schema is a ``Spec``; ``check(value, spec)`` raises ``Invalid(field, problem)``.
"""

from __future__ import annotations

import math
import numbers

from . import backend
from .tensor import Tensor


class Invalid(ValueError):
    """``field`` (a path such as ``history[3].train``) does not fit its schema: ``problem`` says how."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def _show(value) -> str:
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _join(field: str, key) -> str:
    if isinstance(key, str):  # a state_dict's "encoder.0.weight" reads as model_state.encoder.0.weight
        return f"{field}.{key}" if field else key
    return f"{field}[{key!r}]"


class Spec:
    """One rule; ``validate(value, field)`` raises Invalid or returns nothing."""

    def validate(self, value, field: str) -> None:
        raise NotImplementedError


class Anything(Spec):
    def validate(self, value, field):
        pass


class Int(Spec):
    """An integer (not a bool) in [low, high]."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def validate(self, value, field):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise Invalid(field, f"must be an integer, not {_show(value)}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            bounds = f"at least {self.low}" if self.high is None else f"in [{self.low}, {self.high}]"
            raise Invalid(field, f"must be an integer {bounds}, not {_show(value)}")


class Real(Spec):
    """A real number (int or float, not a bool); finite unless ``finite=False``; at least ``low``."""

    def __init__(self, low=None, finite=True, positive=False):
        self.low, self.finite, self.positive = low, finite, positive

    def validate(self, value, field):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise Invalid(field, f"must be a number, not {_show(value)}")
        if self.finite and not math.isfinite(value):
            raise Invalid(field, f"must be a finite number, not {_show(value)}")
        if self.low is not None and not value >= self.low:
            raise Invalid(field, f"must be at least {self.low}, not {_show(value)}")
        if self.positive and not value > 0:
            raise Invalid(field, f"must be positive, not {_show(value)}")


class Bool(Spec):
    def validate(self, value, field):
        if not isinstance(value, bool):
            raise Invalid(field, f"must be true or false, not {_show(value)}")


class Str(Spec):
    """A string, one of ``choices`` when they are given."""

    def __init__(self, choices=None):
        self.choices = choices

    def validate(self, value, field):
        if not isinstance(value, str):
            raise Invalid(field, f"must be a string, not {_show(value)}")
        if self.choices is not None and value not in self.choices:
            raise Invalid(field, f"must be one of {', '.join(map(repr, self.choices))}, not {_show(value)}")


class Optional(Spec):
    """None, or what ``spec`` takes."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def validate(self, value, field):
        if value is not None:
            self.spec.validate(value, field)


class Record(Spec):
    """A dict with the given keys (each with its own spec); ``optional`` keys may be absent; other keys
    are refused unless ``others`` gives their spec."""

    def __init__(self, fields: dict, optional=(), others: Spec | None = None):
        self.fields, self.optional, self.others = fields, set(optional), others

    def validate(self, value, field):
        if not isinstance(value, dict):
            raise Invalid(field, f"must be a dict, not {_show(value)}")
        for key, spec in self.fields.items():
            if key in value:
                spec.validate(value[key], _join(field, key))
            elif key not in self.optional:
                raise Invalid(_join(field, key), "is missing")
        for key in value:
            if key not in self.fields:
                if self.others is None:
                    raise Invalid(_join(field, key), "is not a field minae knows here")
                self.others.validate(value[key], _join(field, key))


class Mapping(Spec):
    """A dict whose keys all fit ``key`` and values all fit ``value`` (a spec, or a function of the key
    giving the spec, for values whose shape depends on the key)."""

    def __init__(self, key: Spec, value):
        self.key, self.value = key, value

    def validate(self, value, field):
        if not isinstance(value, dict):
            raise Invalid(field, f"must be a dict, not {_show(value)}")
        for k, v in value.items():
            self.key.validate(k, f"{field} key {_show(k)}")
            (self.value if isinstance(self.value, Spec) else self.value(k)).validate(v, _join(field, k))


class Sequence(Spec):
    """A list or tuple of ``length`` items (any number when None), each fitting ``item``
    (or, when ``item`` is a list, item i fitting ``item[i]``)."""

    def __init__(self, item, length=None):
        self.item = item
        self.length = len(item) if isinstance(item, list) else length

    def validate(self, value, field):
        if not isinstance(value, (list, tuple)):
            raise Invalid(field, f"must be a list, not {_show(value)}")
        if self.length is not None and len(value) != self.length:
            raise Invalid(field, f"must have {self.length} items, not {len(value)}")
        for i, v in enumerate(value):
            (self.item[i] if isinstance(self.item, list) else self.item).validate(v, f"{field}[{i}]")


class Array(Spec):
    """A tensor or array of exactly ``shape`` whose dtype kind is one of ``kinds`` ("f" float, "iu" integers …),
    or whose dtype is ``dtype`` when that is given."""

    def __init__(self, shape, kinds="f", dtype=None):
        self.shape, self.kinds, self.dtype = tuple(shape), kinds, dtype

    def validate(self, value, field):
        data = value.data if isinstance(value, Tensor) else value
        if not backend.is_array(data):
            raise Invalid(field, f"must be an array of shape {self.shape}, not {_show(value)}")
        if tuple(data.shape) != self.shape:
            raise Invalid(field, f"has shape {tuple(data.shape)}, but {self.shape} is what it is loaded into")
        if self.dtype is not None and data.dtype != self.dtype:
            raise Invalid(field, f"has dtype {data.dtype}, but {self.dtype} is what it is loaded into")
        if data.dtype.kind not in self.kinds:
            raise Invalid(field, f"has dtype {data.dtype}, not a {'float' if self.kinds == 'f' else self.kinds} one")


def like(example) -> Spec:
    """The spec of a value of the same kind as ``example`` (a live object's own state): numbers for
    numbers, bools for bools, strings for strings, sequences of the same length, dicts with the same
    keys, arrays of the same shape and dtype kind."""
    if isinstance(example, bool):
        return Bool()
    if isinstance(example, numbers.Integral):
        return Int()
    if isinstance(example, numbers.Real):
        return Real(finite=math.isfinite(example))
    if isinstance(example, str):
        return Str()
    if example is None:
        return Anything()
    if isinstance(example, (list, tuple)):
        return Sequence([like(v) for v in example])
    if isinstance(example, dict):
        return Record({k: like(v) for k, v in example.items()})
    if isinstance(example, Tensor) or backend.is_array(example):
        data = example.data if isinstance(example, Tensor) else example
        return Array(data.shape, data.dtype.kind, data.dtype)
    return Anything()


class Satisfies(Spec):
    """``test(value)`` must return None (fine), a problem string, or (a sub-field such as "[3].epoch", a problem)."""

    def __init__(self, test):
        self.test = test

    def validate(self, value, field):
        problem = self.test(value)
        if isinstance(problem, tuple):
            raise Invalid(field + problem[0], problem[1])
        if problem:
            raise Invalid(field, problem)


class All(Spec):
    """Every one of ``specs``, in order."""

    def __init__(self, *specs):
        self.specs = specs

    def validate(self, value, field):
        for spec in self.specs:
            spec.validate(value, field)


def check(value, spec: Spec, field: str = "") -> None:
    """Raise ``Invalid`` for the first part of ``value`` that does not fit ``spec``."""
    spec.validate(value, field)
