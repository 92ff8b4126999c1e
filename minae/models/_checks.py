"""Input checks shared by the models: errors that name the model, the expected and the actual shape."""

from __future__ import annotations

from ..tensor import Tensor


def check_input(model, y, feature_shape: tuple, name: str = "input"):
    """``y`` must be a floating tensor of shape (N,) + feature_shape on the model's device."""
    who = type(model).__name__
    if not isinstance(y, Tensor):
        raise TypeError(f"{who}: {name} must be a minae.Tensor, got {type(y).__name__}")
    if y.ndim != 1 + len(feature_shape) or tuple(y.shape[1:]) != tuple(feature_shape):
        expected = "(N, " + ", ".join(str(n) for n in feature_shape) + ")"
        raise ValueError(f"{who}: expected {name} of shape {expected}, got {tuple(y.shape)}")
    if y.dtype.kind != "f":
        raise TypeError(f"{who}: expected a floating-point {name}, got dtype {y.dtype}")
    param = next(iter(model.parameters()), None)
    if param is not None:
        if param.device != y.device:
            raise RuntimeError(f"{who}: {name} is on {y.device} but the model is on {param.device}; use .to(device)")
        if param.dtype != y.dtype:
            raise TypeError(f"{who}: {name} has dtype {y.dtype} but the model's parameters have dtype {param.dtype}")
    return y
