"""Parameter initialisation, in place, with PyTorch's formulas.

Each function overwrites ``tensor.data`` on the tensor's own device and in its
own dtype, draws from minae's generator (``minae.manual_seed`` makes it
reproducible) and returns the tensor. For a weight of shape (out, in, *k):

    fan_in  = in · Πk        fan_out = out · Πk

    xavier (Glorot):  std = gain · √(2 / (fan_in + fan_out))
    kaiming (He):     std = gain / √fan            (fan = fan_in or fan_out)
    a uniform U(−b, b) has std b/√3, so its bound is b = √3 · std.
"""

from __future__ import annotations

import math
import numbers

from .. import backend

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The factor that keeps activations' variance steady through ``nonlinearity`` (PyTorch's values).

    linear, identity, sigmoid: 1;  tanh: 5/3;  relu: √2;
    leaky_relu with slope a (default 0.01): √(2 / (1 + a²));  selu: 3/4.
    """
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(
            f"fan in and fan out need a tensor of at least 2 dimensions (out, in, …), got shape {tuple(tensor.shape)}"
        )
    receptive = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values):
    with backend.on(tensor.device):  # CuPy writes on the current GPU, which need not be the tensor's
        tensor.data[...] = values
    tensor._bump_version()  # a graph that saved tensor's old values must not use them
    return tensor


def _empty(tensor) -> bool:
    # a zero-element tensor has nothing to fill (and a fan of 0 would divide by zero)
    return tensor.data.size == 0


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with samples of U(a, b)."""
    return _fill(tensor, backend.random_uniform(tensor.shape, tensor.dtype, tensor.device, a, b))


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with samples of N(mean, std²)."""
    return _fill(tensor, backend.random_normal(tensor.shape, tensor.dtype, tensor.device, mean, std))


def constant_(tensor, val: float):
    """Fill with ``val``."""
    return _fill(tensor, val)


def zeros_(tensor):
    return _fill(tensor, 0)


def ones_(tensor):
    return _fill(tensor, 1)


def xavier_uniform_(tensor, gain: float = 1.0):
    """U(−b, b) with b = gain · √(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    if _empty(tensor):
        return tensor
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    """N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    if _empty(tensor):
        return tensor
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """U(−b, b) with b = gain · √(3 / fan) (He et al., 2015); ``a`` is the leaky_relu slope in the gain.

    With a = √5 and fan_in this is PyTorch's default for Linear: gain = √(2/6),
    so b = √(1 / fan_in).
    """
    if _empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    """N(0, std²) with std = gain / √fan."""
    if _empty(tensor):
        return tensor
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode)))
