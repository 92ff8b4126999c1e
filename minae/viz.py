"""Figures for the notebooks and the ``minae`` command, in matplotlib. Each function returns its Figure.

Inputs may be minae tensors (any device) or NumPy arrays.
"""

from __future__ import annotations

import math
import os
import tempfile

from .autograd import Tensor
from .backend import np, to_numpy


def _np(x):
    if isinstance(x, Tensor):
        return x.numpy()
    return to_numpy(x) if hasattr(x, "shape") else np.asarray(x)


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


def image_grid(images, nrow=None, title=None, shape=(28, 28), labels=None, vmin=None, vmax=None, scale=1.0):
    """Images (N, H·W) or (N, H, W) in a grid of ``nrow`` columns; optional per-image labels."""
    plt = _plt()
    imgs = _np(images).reshape((-1,) + tuple(shape))
    n = imgs.shape[0]
    ncol = nrow or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncol))
    lo = imgs.min() if vmin is None else vmin
    hi = imgs.max() if vmax is None else vmax
    if labels is None:  # one mosaic: fast
        # the title gets its own strip, else it squeezes a single row of images to a sliver
        fig, ax = plt.subplots(figsize=(scale * ncol * 0.9, scale * nrows * 0.9 + 0.4 * bool(title)))
        ax.imshow(_mosaic(imgs, ncol), cmap="gray", vmin=lo, vmax=hi)
        _bare(ax)
    else:  # one axes per image, so each gets its title
        fig, axes = plt.subplots(nrows, ncol, figsize=(scale * ncol * 0.9, scale * nrows * 1.15))
        for i, ax in enumerate(np.atleast_1d(axes).ravel()):
            ax.axis("off")
            if i < n:
                ax.imshow(imgs[i], cmap="gray", vmin=lo, vmax=hi)
                ax.set_title(str(labels[i]), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def image_rows(rows: dict, shape=(28, 28), vmin=None, vmax=None, scale=1.0):
    """Several rows of images, each with a name: e.g. {"clean": y, "corrupted": ŷ, "reconstructed": ỹ}."""
    plt = _plt()
    arrays = {name: _np(v).reshape((-1,) + tuple(shape)) for name, v in rows.items()}
    ncol = max(a.shape[0] for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), 1, figsize=(scale * ncol * 0.9, scale * len(arrays) * 1.0), squeeze=False)
    for ax, (name, imgs) in zip(axes[:, 0], arrays.items()):
        lo = imgs.min() if vmin is None else vmin  # each row on its own scale
        hi = imgs.max() if vmax is None else vmax
        ax.imshow(_mosaic(imgs, ncol), cmap="gray", vmin=lo, vmax=hi)
        _bare(ax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def loss_curves(history, terms=None, title="training"):
    """Each loss term per epoch, train (solid) and test (dashed), from fit()'s history."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    names = terms or list(history[0]["train"]) if history else []
    fig, axes = plt.subplots(1, len(names), figsize=(4 * max(len(names), 1), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        # markers: a run of one epoch is one point, which a bare line would not draw
        ax.plot(epochs, [r["train"].get(name, np.nan) for r in history], "o-", ms=3, label="train")
        if history and history[0].get("test"):
            ax.plot(epochs, [r["test"].get(name, np.nan) for r in history], "s--", ms=3, label="test")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def latent_scatter(mu, labels=None, std=None, ax=None, title=None, max_bubbles=400):
    """2-D codes μ coloured by label; with ``std`` (√v) each code is drawn as a bubble of that radius."""
    plt = _plt()
    mu = _np(mu)
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5))
    else:
        fig = ax.figure
    colors = None if labels is None else plt.cm.tab10(_np(labels).astype(int) % 10)
    if std is not None:
        from matplotlib.patches import Ellipse

        std = _np(std)
        for i in range(min(len(mu), max_bubbles)):
            c = "C0" if colors is None else colors[i]
            ax.add_patch(Ellipse(mu[i, :2], 2 * std[i, 0], 2 * std[i, 1], facecolor=c, alpha=0.25, edgecolor=c))
    ax.scatter(mu[:, 0], mu[:, 1], s=6, c=colors if colors is not None else "C0")
    ax.set_aspect("equal")
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    if title:
        ax.set_title(title)
    ax.autoscale_view()
    return fig


def heatmap(values, extent, ax=None, title=None, points=None, arrows=None, cmap="viridis", label="F(y)"):
    """A scalar field over a grid (rows along y₂, columns along y₁), optional points and arrow field."""
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    else:
        fig = ax.figure
    im = ax.imshow(_np(values), origin="lower", extent=extent, aspect="auto", cmap=cmap)
    fig.colorbar(im, ax=ax, label=label)
    if arrows is not None:
        gx, gy, u, v = (_np(a) for a in arrows)
        ax.quiver(gx, gy, u, v, color="white", alpha=0.8)
    if points is not None:
        pts = _np(points)
        ax.scatter(pts[:, 0], pts[:, 1], s=12, c="red", edgecolors="white", linewidths=0.5)
    ax.set_xlabel("y₁")
    ax.set_ylabel("y₂")
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig, path, dpi=110) -> None:
    """Write the figure atomically: a complete PNG or nothing."""
    plt = _plt()
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    finally:
        plt.close(fig)
