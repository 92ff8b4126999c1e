"""Neural-network building blocks: modules, layers, initialisation, and (in ``functional``) losses.

``import minae.nn as nn`` and ``import minae.nn.functional as F``, as in PyTorch.
"""

from . import functional, init
from .layers import Dropout, LeakyReLU, Linear, ReLU, Sigmoid, Softplus, Tanh
from .module import Identity, Module, ModuleList, Parameter, Sequential

__all__ = [
    "functional",
    "init",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Identity",
    "Linear",
    "Dropout",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "Softplus",
]
