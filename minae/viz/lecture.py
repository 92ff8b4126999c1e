"""The lecture's figures: the latent-variable energy model, descent in latent space, and the autoencoders."""

from __future__ import annotations

import math

from ..backend import np
from ._common import _axes, _bare, _highlight_colour, _mosaic, _np, _outline, _plt


def energy_curves(z, energies, z_tilde=None, z_check=None, labels=None, ax=None, title=None):
    """E(y′, z) against z for a few samples y′, with z̃ (a start, ○) and ž (the argmin, ★) marked.

    z: (M,) latents; energies: (K, M), row k is E(y′_k, z) over z (or (M,) for one sample);
    z_tilde, z_check: (K,) latents; the energy there is read off the curve (interpolated).
    Curve k gets the colour of highlighted point k in ``manifold_figure``.
    """
    fig, ax = _axes(ax, (6, 3.6))
    z = _np(z).ravel()
    energies = np.atleast_2d(_np(energies))
    for k, e in enumerate(energies):
        c = _highlight_colour(k)
        ax.plot(z, e, color=c, lw=1.6, label=None if labels is None else labels[k])
        if z_tilde is not None:
            zt = float(_np(z_tilde).ravel()[k])
            ax.plot(zt, np.interp(zt, z, e), "o", ms=8, mfc="white", mec=c, mew=2)
        if z_check is not None:
            zc = float(_np(z_check).ravel()[k])
            ax.plot(zc, np.interp(zc, z, e), "*", ms=14, color=c, mec="black", mew=0.6)
    if z_tilde is not None:
        ax.plot([], [], "o", ms=8, mfc="white", mec="0.3", mew=2, label=r"$\tilde{z}$ (start)")
    if z_check is not None:
        ax.plot([], [], "*", ms=12, color="0.5", mec="black", mew=0.6, label="ž = argmin E")
    ax.set_xlabel("z")
    ax.set_ylabel("E(y′, z)")
    if z.min() >= 0 and z.max() <= 2 * np.pi + 1e-6:
        ax.set_xticks(np.arange(5) * np.pi / 2, ["0", "π/2", "π", "3π/2", "2π"])
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return fig


def manifold_figure(data=None, manifold=None, points=None, starts=None, ends=None, ax=None, title=None, lim=None):
    """The y-plane: data (blue dots), the model's manifold g(z) on its grid, and for a few samples y′
    the start g(z̃) (○), the closest manifold point g(ž) (★) and the distance between y′ and g(ž).

    data, manifold: (N, 2) and (M, 2); points, starts, ends: (K, 2). lim: (y₁ max, y₂ max) of the view.
    """
    fig, ax = _axes(ax, (5.2, 4.2))
    if manifold is not None:
        m = _np(manifold)
        closed = np.concatenate([m, m[:1]])
        ax.plot(closed[:, 0], closed[:, 1], "-", color="0.6", lw=1, zorder=1)
        ax.plot(m[:, 0], m[:, 1], ".", color="0.35", ms=4, zorder=2, label="g(z) on the grid")
    if data is not None:
        d = _np(data)
        ax.scatter(d[:, 0], d[:, 1], s=18, color="C0", zorder=3, label="data y")
    if points is not None:
        p = _np(points)
        for k in range(len(p)):
            c = _highlight_colour(k)
            ax.plot(p[k, 0], p[k, 1], "D", ms=7, color=c, mec="black", mew=0.6, zorder=5)
            if starts is not None:
                s = _np(starts)[k]
                ax.plot(s[0], s[1], "o", ms=8, mfc="white", mec=c, mew=2, zorder=4)
                ax.annotate("", xy=s, xytext=p[k], arrowprops={"arrowstyle": "-", "color": c, "ls": ":", "lw": 1})
            if ends is not None:
                e = _np(ends)[k]
                ax.plot(e[0], e[1], "*", ms=14, color=c, mec="black", mew=0.6, zorder=4)
                ax.plot([p[k, 0], e[0]], [p[k, 1], e[1]], "-", color=c, lw=1.5, zorder=3)
        ax.plot([], [], "D", ms=6, color="0.5", mec="black", mew=0.6, label="y′")
        if starts is not None:
            ax.plot([], [], "o", ms=7, mfc="white", mec="0.3", mew=2, label=r"$g(\tilde{z})$")
        if ends is not None:
            ax.plot([], [], "*", ms=11, color="0.5", mec="black", mew=0.6, label="g(ž)")
    if lim is not None:
        ax.set_xlim(-lim[0], lim[0])
        ax.set_ylim(-lim[1], lim[1])
    ax.set_aspect("equal")
    ax.set_xlabel("y₁")
    ax.set_ylabel("y₂")
    ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    if title:
        ax.set_title(title)
    return fig


def manifold_weights(manifold, weights, points, beta=1.0, titles=None, data=None):
    """exp(−βE(y′, z)) along the manifold, one panel per sample y′: each grid point g(z) is
    coloured and sized by its weight, the share it gets in the softmin F_β(y′).

    manifold: (M, 2); weights: (K, M); points: (K, 2).
    """
    plt = _plt()
    m, w, p = _np(manifold), np.atleast_2d(_np(weights)), np.atleast_2d(_np(points))
    k = len(p)
    fig, axes = plt.subplots(1, k, figsize=(3.2 * k + 0.8, 3.2), squeeze=False)
    top = float(w.max()) if w.size else 1.0
    sc = None
    for i, ax in enumerate(axes[0]):
        if data is not None:
            d = _np(data)
            ax.scatter(d[:, 0], d[:, 1], s=6, color="0.8", zorder=1)
        share = w[i] / top
        sc = ax.scatter(m[:, 0], m[:, 1], c=w[i], s=8 + 70 * share, cmap="magma_r", vmin=0, vmax=top, zorder=2,
                        edgecolors="0.4", linewidths=0.3)  # fmt: skip
        ax.plot(p[i, 0], p[i, 1], "D", ms=7, color=_highlight_colour(i), mec="black", mew=0.6, zorder=3)
        ax.set_aspect("equal")
        ax.set_xlabel("y₁")
        if i == 0:
            ax.set_ylabel("y₂")
        ax.set_title(titles[i] if titles else f"y′ = ({p[i, 0]:.2f}, {p[i, 1]:.2f})", fontsize=9)
    fig.colorbar(sc, ax=list(axes[0]), label=f"exp(−βE(y′, z)), β = {beta:g}", shrink=0.85)
    return fig


def free_energy_sections(y2, sections: dict, ax=None, title=None, xlabel="y₂", ylabel=None):
    """Cross-sections of the free energy, one curve per inverse temperature.

    y2: (P,) positions along the cut; sections: {β: (P,) values of F_β}, β = float("inf") for F_∞
    (drawn in black), β = 0 for the mean energy (dotted). Small β (hot, red) tends to the mean
    energy, large β (cold, blue) to F_∞; the colours run red, purple, blue, all dark enough to
    read on white (a diverging map's pale middle would hide the middle β).
    """
    from matplotlib.colors import LinearSegmentedColormap

    fig, ax = _axes(ax, (6, 3.8))
    y2 = _np(y2).ravel()
    finite = sorted(b for b in sections if np.isfinite(b) and b > 0)
    cmap = LinearSegmentedColormap.from_list("hot_to_cold", ["#c62828", "#7b1fa2", "#1565c0"])
    if 0 in sections:
        ax.plot(y2, _np(sections[0]).ravel(), color="0.45", lw=1.5, ls=":", label="β = 0 (mean energy)")
    for i, beta in enumerate(finite):
        c = cmap(i / max(len(finite) - 1, 1))
        ax.plot(y2, _np(sections[beta]).ravel(), color=c, lw=1.8, label=f"β = {beta:g}")
    for beta in sections:
        if not np.isfinite(beta):
            ax.plot(y2, _np(sections[beta]).ravel(), color="black", lw=2, ls="--", label="β = ∞ (F∞)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel or "F_β(y)")
    ax.legend(fontsize=8, ncol=2)
    if title:
        ax.set_title(title)
    return fig


def conditional_manifolds(x, y, curves: dict, axes=None, title=None, label=None):
    """The conditional "horn", one panel per input value: curves {x value: (M, 2) points} are the
    model's manifolds g(x, z); each panel shows them with the data whose x lies nearest that value.

    x: (N,), y: (N, 2). axes: a row of len(curves) axes to draw into (a new figure if None);
    label: a text put left of the row (e.g. "trained"). All panels share one scale.
    """
    plt = _plt()
    x, y = _np(x).ravel(), _np(y)
    keys = sorted(curves)
    if axes is None:
        fig, axes = plt.subplots(1, len(keys), figsize=(2.6 * len(keys), 2.9), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    cmap = plt.cm.viridis
    edges = [(a + b) / 2 for a, b in zip(keys[:-1], keys[1:])]
    bounds = [-np.inf] + edges + [np.inf]
    reach = 1.08 * max(np.abs(y).max(), max(np.abs(_np(p)).max() for p in curves.values()))
    for i, (ax, xv) in enumerate(zip(axes, keys)):
        near = (x >= bounds[i]) & (x < bounds[i + 1])
        ax.scatter(y[near, 0], y[near, 1], c=x[near], cmap=cmap, vmin=0, vmax=1, s=6, alpha=0.6)
        p = _np(curves[xv])
        p = np.concatenate([p, p[:1]])
        ax.plot(p[:, 0], p[:, 1], color=cmap(float(xv)), lw=2.2, path_effects=_outline())
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        ax.set_title(f"x = {xv:g}", fontsize=9)
        ax.set_xlabel("y₁")
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_ylabel(("" if label is None else label + "\n\n") + "y₂")
    if title:
        fig.suptitle(title)
    return fig


def descent_paths(paths, energy=None, extent=None, ax=None, title=None, labels=None, max_paths=40):
    """Latent descent trajectories z̃ → ž in a 2-D latent space.

    paths: (T, N, 2) (or a list of T tensors (N, 2)): z at each step, z₀ = z̃ (○), z_T = ž (★).
    energy: an optional (H, W) map of E(y, z) over ``extent`` = (z₁ min, z₁ max, z₂ min, z₂ max)
    drawn as filled contours (meaningful for one sample y). labels: (N,) colours the paths by class.
    """
    plt = _plt()
    fig, ax = _axes(ax, (5.5, 4.6))
    if isinstance(paths, (list, tuple)):
        paths = np.stack([_np(p) for p in paths])
    else:
        paths = _np(paths)
    if paths.ndim == 2:
        paths = paths[:, None, :]
    if energy is not None:
        e = _np(energy)
        # levels at quantiles of E: the floor near the minimum gets as many lines as the steep walls
        levels = np.unique(np.quantile(e, np.linspace(0, 1, 21)))
        cs = ax.contourf(e, levels=levels, extent=extent, origin="lower", cmap="viridis", alpha=0.9)
        ax.contour(e, levels=levels, extent=extent, origin="lower", colors="white", linewidths=0.3, alpha=0.5)
        # the colour steps are quantiles, not equal steps of E: the colour bar says so
        fig.colorbar(cs, ax=ax, label="E(y, z), quantile colour steps (each ≈ 5% of the map)", format="%.4g")
    n = min(paths.shape[1], max_paths)
    colours = None if labels is None else plt.cm.tab10(_np(labels).astype(int) % 10)
    for i in range(n):
        c = "white" if energy is not None and colours is None else ("C3" if colours is None else colours[i])
        ax.plot(paths[:, i, 0], paths[:, i, 1], "-", color=c, lw=1.2, alpha=0.9)
        ax.plot(paths[0, i, 0], paths[0, i, 1], "o", ms=6, mfc="none", mec=c, mew=1.5)
        ax.plot(paths[-1, i, 0], paths[-1, i, 1], "*", ms=10, color=c, mec="black", mew=0.5)
    ax.plot([], [], "o", ms=6, mfc="none", mec="0.3", mew=1.5, label=r"$\tilde{z}$ = Enc(y)")
    ax.plot([], [], "*", ms=10, color="0.5", mec="black", mew=0.5, label="ž")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_xlabel("z₁")
    ax.set_ylabel("z₂")
    if energy is None:
        ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return fig


def kernel_grid(weights, n=20, ncol=10, shape=(28, 28), title=None, scale=1.0):
    """The first ``n`` rows of an encoder's weight matrix W_h (its kernels) as images.

    weights: (d_h, d_y), or {name: (d_h, d_y)} for one labelled block per model. Each kernel
    is drawn on its own symmetric scale: grey is 0, white the largest positive weight, black
    the most negative one, so the shape of every kernel shows whatever its magnitude.
    """
    plt = _plt()
    blocks = weights if isinstance(weights, dict) else {"": weights}
    imgs = {}
    for name, w in blocks.items():
        w = _np(w)[:n].reshape((-1,) + tuple(shape)).astype(float)
        peak = np.abs(w).reshape(len(w), -1).max(axis=1)
        imgs[name] = w / np.where(peak > 0, peak, 1.0)[:, None, None]
    rows = [int(math.ceil(len(w) / ncol)) for w in imgs.values()]
    fig, axes = plt.subplots(
        len(imgs), 1, figsize=(scale * ncol * 0.75, scale * sum(rows) * 0.75 + 0.4 * bool(title)), squeeze=False,
        gridspec_kw={"height_ratios": rows},
    )  # fmt: skip
    for ax, (name, w) in zip(axes[:, 0], imgs.items()):
        ax.imshow(_mosaic(w, ncol), cmap="gray", vmin=-1, vmax=1)
        _bare(ax)
        if name:
            ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def energy_path(rows, energies, t=None, ylabel="energy", title=None, shape=(28, 28), vmin=None, vmax=None):
    """Energies along a path of K inputs (an interpolation), with the images of the path under the curve.

    rows: (K, D) images, or {name: (K, D)} for several rows (e.g. the path y(t) and its
    reconstructions ỹ(t)); energies: (K,) or {name: (K,)} for several curves on the same axes;
    t: (K,) the position along the path (0 … 1 by default). Image k sits under point k.
    """
    plt = _plt()
    rows = rows if isinstance(rows, dict) else {"": rows}
    energies = energies if isinstance(energies, dict) else {"": energies}
    arrays = {name: _np(v).reshape((-1,) + tuple(shape)) for name, v in rows.items()}
    k = max(a.shape[0] for a in arrays.values())
    t = np.linspace(0, 1, k) if t is None else _np(t).ravel()
    # laid out in inches, so that every image is square and sits exactly under its point
    left, right, top, curve, gap, bottom = 1.3, 0.2, 0.45 if title else 0.15, 2.4, 0.55, 0.1
    cell = 0.62
    width = left + k * cell + right
    height = top + curve + gap + len(arrays) * (cell + 0.04) + bottom
    fig = plt.figure(figsize=(width, height))
    box = [left / width, 1 - (top + curve) / height, k * cell / width, curve / height]
    ax = fig.add_axes(box)
    for i, (name, e) in enumerate(energies.items()):
        ax.plot(np.arange(k), _np(e).ravel(), "o-", ms=4, lw=1.6, color=f"C{i % 10}", label=name or None)
    ax.set_xlim(-0.5, k - 0.5)
    step = max(1, (k - 1) // 5)
    ax.set_xticks(np.arange(0, k, step), [f"{v:.2g}" for v in t[::step]])
    ax.set_xlabel("t along the path", labelpad=1)
    ax.set_ylabel(ylabel)
    if any(energies):
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    y = height - top - curve - gap
    for name, imgs in arrays.items():
        y -= cell + 0.04
        a = fig.add_axes([left / width, y / height, k * cell / width, cell / height])
        lo = imgs.min() if vmin is None else vmin
        hi = imgs.max() if vmax is None else vmax
        a.imshow(_mosaic(imgs, k), cmap="gray", vmin=lo, vmax=hi, aspect="auto", extent=(-0.5, k - 0.5, 1, 0))
        a.set_xlim(-0.5, k - 0.5)
        _bare(a)
        if name:
            a.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    return fig


def vector_field(starts, ends, data=None, curve=None, ax=None, title=None, lim=None, start_label="ŷ", dots=True):
    """Arrows from each start to its end in the plane: e.g. corrupted points ŷ (red) to their
    reconstructions ỹ = Dec(Enc(ŷ)), on top of the clean data y (blue) and the true manifold (grey).

    starts, ends: (N, 2); data: (M, 2); curve: (P, 2) points of the manifold, in order.
    lim: ((y₁ min, y₁ max), (y₂ min, y₂ max)) of the view. dots: mark the starts (red), named
    ``start_label`` in the legend; leave them out for a dense field on a grid.
    """
    fig, ax = _axes(ax, (5.5, 4.2))
    s, e = _np(starts), _np(ends)
    if curve is not None:
        c = _np(curve)
        ax.plot(c[:, 0], c[:, 1], "-", color="0.55", lw=2, zorder=1, label="manifold")
    if data is not None:
        d = _np(data)
        ax.scatter(d[:, 0], d[:, 1], s=5, color="C0", alpha=0.6, zorder=2, label="y (data)")
    d = e - s
    ax.quiver(s[:, 0], s[:, 1], d[:, 0], d[:, 1], angles="xy", scale_units="xy", scale=1, width=0.004,
              color="0.2", zorder=3)  # fmt: skip
    if dots:
        ax.scatter(s[:, 0], s[:, 1], s=8, color="C3", zorder=4, label=start_label)
    if lim is not None:
        ax.set_xlim(*lim[0])
        ax.set_ylim(*lim[1])
    ax.set_aspect("equal")
    ax.set_xlabel("y₁")
    ax.set_ylabel("y₂")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    if title:
        ax.set_title(title)
    return fig


def jacobian_ellipses(points, jacobians, curve=None, data=None, ax=None, title=None, size=None):
    """How far a code h moves for a small step of y in each direction, at points of the plane.

    At each point y the ellipse has semi-axes σ₁v₁ and σ₂v₂, the singular values and right
    singular vectors of J = ∂h/∂y, so it is long in the directions h is sensitive to and flat
    in those it ignores. points: (N, 2); jacobians: (N, d_h, 2). size: data units per unit of
    σ (default: the largest ellipse spans a tenth of the view).
    """
    from matplotlib.patches import Ellipse

    fig, ax = _axes(ax, (5.5, 4.2))
    p, jac = _np(points), _np(jacobians)
    _, sv, vt = np.linalg.svd(jac)  # vt[i, k] is the k-th right singular vector at point i
    if curve is not None:
        c = _np(curve)
        ax.plot(c[:, 0], c[:, 1], "-", color="0.55", lw=2, zorder=1)
    if data is not None:
        d = _np(data)
        ax.scatter(d[:, 0], d[:, 1], s=4, color="0.7", zorder=1)
    span = max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), 1e-12)
    size = 0.05 * span / max(float(sv.max()), 1e-12) if size is None else size
    for i in range(len(p)):
        angle = np.degrees(np.arctan2(vt[i, 0, 1], vt[i, 0, 0]))
        ax.add_patch(Ellipse(p[i], 2 * size * sv[i, 0], 2 * size * sv[i, 1], angle=angle, facecolor="C1",
                             alpha=0.45, edgecolor="C3", zorder=3))  # fmt: skip
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("y₁")
    ax.set_ylabel("y₂")
    if title:
        ax.set_title(title)
    return fig
