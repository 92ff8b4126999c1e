"""minae: a from-scratch deep-learning library for the autoencoders lecture.

``import minae`` gives the tensor and autodiff core (PyTorch's names);
``minae.nn``, ``minae.optim``, ``minae.data`` and ``minae.models`` build on it.
"""

__version__ = "0.1.0"

from . import cuda
from .autograd import Function, grad
from .backend import (
    Device,
    bool_,
    float32,
    float64,
    get_default_dtype,
    int32,
    int64,
    set_default_device,
    set_default_dtype,
    uint8,
)
from .backend import default_device as get_default_device
from .backend import device
from .diagnostics import AnomalyError
from .grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .tensor import Tensor
from .creation import (
    arange,
    as_tensor,
    broadcast_shapes,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import (
    abs,
    add,
    argmax,
    argmin,
    broadcast_to,
    cast,
    cat,
    clamp,
    clone,
    cos,
    div,
    exp,
    expand,
    flatten,
    floor_divide,
    getitem,
    leaky_relu,
    log,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    permute,
    pow,
    relu,
    remainder,
    reshape,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    sum_to,
    tanh,
    transpose,
    unsqueeze,
    var,
    view,
    where,
)

from .io import CheckpointError, load, save
from . import optim
from . import nn

clip = clamp

# Loaded on first use, as numpy does with numpy.linalg: `import minae` stays light, and
# `minae.data.toy.ellipse(...)` or `minae.homework.check("1.3")` works without importing them first.
_LAZY = ("data", "models", "train", "viz", "homework", "schema")


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
