"""Layers: Linear, Dropout and the activations as modules."""

from __future__ import annotations

import math

from .. import backend
from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Dropout", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus"]


class Linear(Module):
    """The affine layer y ↦ W y + b, applied to a batch as y Wᵀ + b.

    weight W: (out_features, in_features); bias b: (out_features,), or None
    with ``bias=False``. Input (…, in_features) -> output (…, out_features).

    Initialisation (PyTorch's default): W ~ U(−1/√in, 1/√in), from
    kaiming_uniform_ with a = √5 (gain √(2/(1+5)) = 1/√3, bound √3 · gain/√in),
    and b ~ U(−1/√in, 1/√in). Seeded by ``minae.manual_seed``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        for name, n in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"Linear: {name} must be a non-negative integer, got {n!r}")
        self.in_features = in_features
        self.out_features = out_features
        dev = backend.device(device)
        dt = backend.as_dtype(dtype)
        with backend.on(dev):
            self.weight = Parameter(dev.xp.empty((out_features, in_features), dtype=dt))
            bias_array = dev.xp.empty((out_features,), dtype=dt) if bias else None
        if bias:
            self.bias = Parameter(bias_array)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw W and b again from PyTorch's default distributions (see the class docstring)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1 − p).

    In evaluation mode (``model.eval()``) it returns its input unchanged.
    """

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = p

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sigmoid(Module):
    """σ(x) = 1 / (1 + e^(−x)) elementwise."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x) elementwise."""

    def forward(self, input):
        return F.tanh(input)


class ReLU(Module):
    """max(x, 0) elementwise."""

    def forward(self, input):
        return F.relu(input)


class LeakyReLU(Module):
    """x for x > 0, negative_slope · x otherwise."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softplus(Module):
    """(1/β) log(1 + e^(βx)) elementwise, a smooth ReLU (see F.softplus)."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"
