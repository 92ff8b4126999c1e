"""Optimizers, learning-rate schedules and gradient clipping (PyTorch's ``torch.optim``).

    opt = minae.optim.Adam(model.parameters(), lr=1e-3)
    for y in loader:
        opt.zero_grad()
        loss = criterion(model(y), y)
        loss.backward()
        opt.step()

Defaults and update rules are PyTorch's, so hyper-parameters carry over unchanged;
each optimizer's docstring gives its rule as formulas.
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "lr_scheduler",
    "clip_grad_norm_",
    "clip_grad_value_",
]
