"""PyTorch as the oracle of the comparison tests: they skip where it is not installed (CI installs no torch)."""

import importlib.util

import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None


def torch_or_skip():
    """The torch module, or skip the calling test (``pytest.importorskip``)."""
    return pytest.importorskip("torch")
