"""Helpers shared by the figure modules: array conversion, pyplot on a headless machine, image mosaics."""

from __future__ import annotations

import math
import os

from ..backend import np, to_numpy
from ..tensor import Tensor


def _np(x):
    if isinstance(x, Tensor):
        return x.numpy()
    return to_numpy(x)  # also lists holding CuPy arrays, which np.asarray refuses


def _plt():
    import matplotlib

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in (
        "agg",
        "module://matplotlib_inline.backend_inline",
    ):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mosaic(imgs, ncol: int, pad: int = 2):
    """Images (N, H, W) tiled into one (rows·(H+pad) − pad, ncol·(W+pad) − pad) array, NaN between them.

    One imshow of a mosaic draws in milliseconds; one axes per image costs ~35 ms each
    in matplotlib, most of a short training run's time. NaN pixels are left blank.
    """
    n, h, w = imgs.shape
    nrows = max(int(math.ceil(n / ncol)), 1)
    out = np.full((nrows * (h + pad) - pad, ncol * (w + pad) - pad), np.nan)
    for i in range(n):
        r, c = divmod(i, ncol)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = imgs[i]
    return out


def _bare(ax):
    """An axes with no ticks and no frame: only the image (and the label, if any)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def _label(ax, xlabel=None, ylabel=None, title=None):
    """Set the axis labels and the title that are given (None or "" leaves matplotlib's default)."""
    ax.set(**{k: v for k, v in (("xlabel", xlabel), ("ylabel", ylabel), ("title", title)) if v})


def _axes(ax, figsize):
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _outline():
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=3.6, foreground="black"), patheffects.Normal()]


def _highlight_colour(k):
    return f"C{(k + 1) % 10}"  # C0 is kept for the data
