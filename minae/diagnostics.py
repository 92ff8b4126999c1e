"""The engine's error messages and ``detect_anomaly``'s checks, kept out of ``autograd.py``.

Each message names the op, the shapes or devices involved and what to do about
it; anomaly checks name the line of user code that created the op.
"""

from __future__ import annotations

import os
import traceback

from . import backend
from .backend import array_device, is_array


class AnomalyError(RuntimeError):
    """An op produced NaN or inf under ``detect_anomaly``."""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_frame(stack) -> str:
    """The innermost frame outside the minae package: where the user wrote the op."""
    for frame in reversed(stack):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f'File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}'
    frame = stack[-1]
    return f'File "{frame.filename}", line {frame.lineno}'


def nonfinite(array) -> bool:
    if not hasattr(array, "dtype") or array.dtype.kind not in "fc":  # arrays and NumPy scalars (0-d results)
        return False
    with backend.on_device_of((array,)):  # CuPy computes on the current GPU, which need not be the array's
        return not bool(backend.get_array_module(array).isfinite(array).all())


def check_forward(func, y) -> None:
    if nonfinite(y):
        where = user_frame(traceback.extract_stack()[:-2])
        raise AnomalyError(f"{func.name()} produced NaN or inf in its forward pass, at\n{where}")


def check_backward(func, grads) -> None:
    for g in grads:
        if g is not None and nonfinite(g.data if _is_tensor(g) else g):
            created = getattr(func, "created_at", None)  # set only on functions recorded under detect_anomaly
            where = user_frame(created) if created else "(created outside detect_anomaly)"
            raise AnomalyError(f"{func.name()} produced NaN or inf in its backward pass; it was created at\n{where}")


def _is_tensor(a) -> bool:
    return hasattr(a, "grad_fn")  # (tensor.py imports this module's users; no import cycle here)


def describe_inputs(args) -> str:
    parts = []
    for a in args:
        if _is_tensor(a):
            parts.append(f"shape {tuple(a.shape)}")
        elif is_array(a):
            parts.append(f"array of shape {tuple(a.shape)}")
        else:
            parts.append(repr(a))
    return "inputs " + ", ".join(parts)


def device_error(func, args) -> RuntimeError:
    where = []
    for a in args:
        if _is_tensor(a):
            where.append(f"tensor of shape {tuple(a.shape)} on {a.device}")
        elif is_array(a):
            where.append(f"raw array of shape {tuple(a.shape)} on {array_device(a)}")
    return RuntimeError(
        f"{func.name()}: expected all inputs on the same device, got "
        + " and ".join(where)
        + "; move them with .to(device)"
    )


def freed_error(func) -> RuntimeError:
    return RuntimeError(
        f"trying to backward through {func.name()} a second time: its saved values were freed "
        "after the first backward. Pass retain_graph=True to the first backward() to keep them."
    )


def modified_error(func, now: int, seen: int) -> RuntimeError:
    return RuntimeError(
        f"one of the tensors {func.name()} saved for its backward has been modified by an in-place "
        f"operation (a write, or detach_()): it is at version {now}, expected version {seen}. Write into a copy "
        "(.clone()), or do the write after backward()."
    )


def walk_order_error(func, last: int) -> RuntimeError:
    return RuntimeError(
        f"run_backward took {func.name()} (generation {func.generation}) off the heap after a function of "
        f"generation {last}, whose backward already ran: a gradient may reach it after its backward. A function's "
        "backward must wait until the gradients from every later op that uses its output have arrived and been "
        "summed: run_backward must visit functions newest generation first (the largest f.generation first)."
    )


def gradient_shape_error(shape, like_shape) -> RuntimeError:
    return RuntimeError(f"gradient has shape {shape}, but the output it belongs to has shape {like_shape}")


def check_grad_arguments(outputs, inputs, grad_outputs) -> None:
    """minae.grad's arguments: one grad_output per output, inputs that require grad, outputs that depend on them."""
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, x in enumerate(inputs):
        if not _is_tensor(x) or not x.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise RuntimeError("grad: an output does not require grad (it does not depend on any input)")
        if g is None and y.data.size != 1:
            raise RuntimeError(f"grad: grad_outputs is needed for a non-scalar output of shape {y.shape}")


def check_all_used(inputs, capture) -> None:
    """minae.grad without allow_unused: every input must have received a gradient."""
    for i, x in enumerate(inputs):
        if capture[id(x)] is None:
            raise RuntimeError(
                f"grad: input {i} (shape {x.shape}) was not used to compute the outputs; pass allow_unused=True"
            )
