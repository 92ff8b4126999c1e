"""General figures: image grids, loss curves, latent codes, scalar fields, line and bar charts."""

from __future__ import annotations

import math

from ..backend import np
from ..io import atomic_write
from ._common import _axes, _bare, _label, _mosaic, _np, _plt

_MIN_WIDTH = 3.0  # inches: a grid of one or two images is still readable


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
        fig, ax = plt.subplots(figsize=(max(scale * ncol * 0.9, _MIN_WIDTH), scale * nrows * 0.9 + 0.4 * bool(title)))
        ax.imshow(_mosaic(imgs, ncol), cmap="gray", vmin=lo, vmax=hi)
        _bare(ax)
    else:  # one axes per image, so each gets its title
        fig, axes = plt.subplots(nrows, ncol, figsize=(max(scale * ncol * 0.9, _MIN_WIDTH), scale * nrows * 1.15))
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
    fig, axes = plt.subplots(
        len(arrays), 1, figsize=(max(scale * ncol * 0.9, _MIN_WIDTH), scale * len(arrays) * 1.0), squeeze=False
    )
    for ax, (name, imgs) in zip(axes[:, 0], arrays.items()):
        lo = imgs.min() if vmin is None else vmin  # each row on its own scale
        hi = imgs.max() if vmax is None else vmax
        ax.imshow(_mosaic(imgs, ncol), cmap="gray", vmin=lo, vmax=hi)
        _bare(ax)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def image_tile(images, ncol, ax=None, title=None, shape=(28, 28), xticks=None, yticks=None, xlabel=None, ylabel=None):
    """Images tiled edge to edge into one picture (e.g. a decoder's output over a grid of codes).

    xticks, yticks: labels for the columns and the rows (left to right, top to bottom).
    """
    imgs = _np(images).reshape((-1,) + tuple(shape))
    nrows = int(math.ceil(len(imgs) / ncol))
    fig, ax = _axes(ax, (0.5 * ncol + 1, 0.5 * nrows + 0.8))
    h, w = shape
    ax.imshow(_mosaic(imgs, ncol, pad=0), cmap="gray", vmin=imgs.min(), vmax=imgs.max())
    if xticks is not None:
        ax.set_xticks(w * np.arange(ncol) + (w - 1) / 2, [str(v) for v in xticks], fontsize=7)
    else:
        ax.set_xticks([])
    if yticks is not None:
        ax.set_yticks(h * np.arange(nrows) + (h - 1) / 2, [str(v) for v in yticks], fontsize=7)
    else:
        ax.set_yticks([])
    _label(ax, xlabel, ylabel, title)
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
        if any(r.get("test") for r in history):  # a resumed run may have test values for some epochs only
            ax.plot(epochs, [(r.get("test") or {}).get(name, np.nan) for r in history], "s--", ms=3, label="test")
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
    if labels is not None:  # one legend entry per class present
        classes = np.unique(_np(labels).astype(int))
        handles = [ax.scatter([], [], s=12, color=plt.cm.tab10(k % 10), label=str(k)) for k in classes]
        ax.legend(handles=handles, fontsize=7, ncol=2, loc="best", framealpha=0.8, handletextpad=0.1, columnspacing=0.6)
    ax.set_aspect("equal")
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    if title:
        ax.set_title(title)
    ax.autoscale_view()
    return fig


def heatmap(
    values, extent, ax=None, title=None, points=None, arrows=None, cmap="viridis", label="F(y)", vmin=None, vmax=None
):
    """A scalar field over a grid (rows along y₂, columns along y₁), optional points and arrow field.

    vmin, vmax: the colour scale's ends; give panels that are compared the same ones, so that one
    colour means one value in all of them.
    """
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4.5))
    else:
        fig = ax.figure
    im = ax.imshow(_np(values), origin="lower", extent=extent, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
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


def line_plot(x, series: dict, xlabel=None, ylabel=None, title=None, ax=None, logx=False, logy=False, hlines=None):
    """Curves sharing one x axis: series {name: values}; hlines {name: value} as dashed references."""
    fig, ax = _axes(ax, (5.5, 3.5))
    x = _np(x).ravel()
    for i, (name, values) in enumerate(series.items()):
        ax.plot(x, _np(values).ravel(), color=f"C{i % 10}", lw=1.6, label=name)
    for j, (name, value) in enumerate((hlines or {}).items()):
        ax.axhline(float(value), color=f"C{j % 10}", ls="--", lw=1, alpha=0.7, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    _label(ax, xlabel, ylabel, title)
    ax.legend(fontsize=8)
    return fig


def energy_histogram(groups: dict, marks: dict = None, bins=40, ax=None, xlabel="F(y)", title=None, logx=False):
    """Histograms of energies, one per group {name: (N,) values}; marks {name: value} as vertical lines.

    Each group is a light fill under a solid outline, so that where the histograms overlap
    every one of them stays visible.
    """
    fig, ax = _axes(ax, (6, 3.4))
    values = {name: _np(v).ravel() for name, v in groups.items()}
    everything = np.concatenate(list(values.values()) + [_np(list((marks or {}).values())).astype(float)])
    lo, hi = float(everything.min()), float(everything.max())
    if logx:
        edges = np.geomspace(max(lo, 1e-12), hi, bins + 1)
        ax.set_xscale("log")
    else:
        edges = np.linspace(lo, hi, bins + 1)
    for i, (name, v) in enumerate(values.items()):
        ax.hist(v, bins=edges, histtype="stepfilled", alpha=0.25, color=f"C{i % 10}")
        ax.hist(v, bins=edges, histtype="step", lw=1.6, color=f"C{i % 10}", label=name)
    for j, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(float(value), color=f"C{(len(values) + j) % 10}", lw=2, ls="--", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def metric_bars(table: dict, title=None, fmt="{:.3g}", sharey=False, logy=False, ylabel=None):
    """Bar charts comparing models: table {model: {metric: value}}, one panel per metric, one bar
    (and one colour, named in the legend) per model, its value written on top.

    sharey: one y scale for every panel, for metrics that are compared with each other (e.g. the
    same energy on several test sets); each panel then reads against the same ruler. logy: a log
    scale, so that small bars that matter are not flattened by one large bar beside them.
    """
    plt = _plt()
    models = list(table)
    metrics = list(dict.fromkeys(m for row in table.values() for m in row))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 + (0.55 * len(models) + 1.1) * len(metrics), 3.2),
                             squeeze=False, sharey=bool(sharey))  # fmt: skip
    for ax, metric in zip(axes[0], metrics):
        values = [float(table[m].get(metric, np.nan)) for m in models]
        bars = ax.bar(range(len(models)), values, color=[f"C{i % 10}" for i in range(len(models))], label=models)
        for b, v in zip(bars, values):
            ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xticks([])
        ax.set_title(metric, fontsize=10)
        if logy:
            ax.set_yscale("log")
        ax.margins(y=0.15)
    if ylabel:
        axes[0, 0].set_ylabel(ylabel)
    fig.legend(axes[0, 0].patches, models, loc="lower center", ncol=len(models), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def save_figure(fig, path, dpi=110) -> None:
    """Write the figure atomically: a complete PNG or nothing."""
    plt = _plt()
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    finally:
        plt.close(fig)
