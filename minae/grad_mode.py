"""The two global switches of the engine: is the graph being recorded, is anomaly detection on.

``with minae.no_grad(): ...`` (evaluation, parameter updates) runs ops without
recording them; ``enable_grad`` records again inside such a region;
``set_grad_enabled(mode)`` does either, and also works as a plain call, as in
PyTorch. Each is a context manager and a decorator (``@minae.no_grad()``).
``detect_anomaly`` makes the first NaN or inf raise, naming the op and the line
of user code that created it.
"""

from __future__ import annotations

import contextlib


class _Switches:
    """Global switches: is the graph being recorded; is anomaly detection on."""

    __slots__ = ("enabled", "anomaly")

    def __init__(self):
        self.enabled, self.anomaly = True, False


GradMode = _Switches()  # one object, read by every op: a slot is the cheapest attribute Python reads


@contextlib.contextmanager
def _grad_enabled(mode: bool):
    prev = GradMode.enabled
    GradMode.enabled = mode
    try:
        yield
    finally:
        GradMode.enabled = prev


def no_grad():
    """Run without recording the graph: ``with minae.no_grad(): ...`` or ``@minae.no_grad()``."""
    return _grad_enabled(False)


def enable_grad():
    """Record the graph again inside a ``no_grad`` region."""
    return _grad_enabled(True)


class set_grad_enabled:
    """Switch recording on or off: as a plain call (like PyTorch), a context manager or a decorator."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = GradMode.enabled
        GradMode.enabled = self.mode  # a plain call takes effect at once; __exit__ restores

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        GradMode.enabled = self.prev

    def __call__(self, func):
        GradMode.enabled = self.prev  # as a decorator it changes only the calls, not the present
        return _grad_enabled(self.mode)(func)


def is_grad_enabled() -> bool:
    return GradMode.enabled


@contextlib.contextmanager
def detect_anomaly():
    """Raise at the first op whose forward or backward produces NaN or inf.

    The error names the op and the line of user code that created it.
    """
    prev = GradMode.anomaly
    GradMode.anomaly = True
    try:
        yield
    finally:
        GradMode.anomaly = prev
