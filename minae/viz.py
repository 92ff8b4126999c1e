"""Figures for the notebooks and the ``minae`` command, in matplotlib. Each function returns its Figure.

Inputs may be minae tensors (any device) or NumPy arrays.
"""

from __future__ import annotations

import math
import os

from .autograd import Tensor
from .backend import np, to_numpy
from .io import atomic_write


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
    try:
        with atomic_write(path) as fh:
            fig.savefig(fh, format="png", dpi=dpi)
    finally:
        plt.close(fig)


# ------------------------------------------------------- computational graph ---
_GRAPH_STYLE = {  # kind -> (DOT shape, fill colour)
    "leaf": ("box", "#cfe3f6"),  # a tensor that requires grad: gradients are accumulated here
    "data": ("box", "#e6e6e6"),  # a tensor that does not require grad
    "const": ("plaintext", "#ffffff"),  # a Python number or raw array inside an op
    "op": ("ellipse", "#fde2c6"),  # a Function: forward on arrays, backward in ops
    "output": ("box", "#d5efd2"),  # the tensor the graph was drawn from
}


def _describe_value(data) -> str:
    """A scalar's value, an array's shape, anything else as text."""
    if hasattr(data, "shape"):
        if data.size == 1:
            return f"{float(to_numpy(data).reshape(())):.4g}"
        return "shape " + str(tuple(data.shape))
    if isinstance(data, (int, float)) and not isinstance(data, bool):
        return f"{data:.4g}"
    return str(data)[:24]


def _graph(tensor, names=None, show_generation=True):
    """The graph that made ``tensor``, walked from its ``grad_fn`` through ``inputs``.

    Returns (nodes, edges): nodes is an ordered dict key -> {"kind", "label", "layer"}, edges a
    list of (source key, destination key) in the direction of the forward pass. Layers follow
    the generation numbers backward uses: an op of generation g is on layer g + 1, the output
    on the last layer, each input just before the first op that reads it.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a minae Tensor, got {type(tensor).__name__}")
    named = {id(t): name for name, t in (names or {}).items()}
    nodes, edges = {}, []

    def tensor_label(t, fallback):
        name = named.get(id(t), fallback)
        value = _describe_value(t.data)
        if t.data.size != 1:
            return f"{name}: {value[6:]}" if name else value
        return f"{name} = {value}" if name else value

    root_key = ("t", id(tensor))
    if tensor.grad_fn is None:
        nodes[root_key] = {"kind": "output", "label": tensor_label(tensor, "output"), "layer": 0}
        return nodes, edges

    consumers = {}  # input key -> layers of the ops that read it
    stack, seen = [tensor.grad_fn], set()
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        if getattr(f, "inputs", None) is None:
            raise RuntimeError(
                f"graph: the inputs of {f.name()} were freed by a backward pass; draw the graph before "
                "calling backward(), or pass retain_graph=True"
            )
        key = ("f", id(f))
        out = f.output() if getattr(f, "output", None) is not None else None
        label = f.name()
        if out is not None and id(out) in named and out is not tensor:
            label = f"{label} → {named[id(out)]}"
        if show_generation:
            label += f"\ngen {f.generation}"
        nodes[key] = {"kind": "op", "label": label, "layer": f.generation + 1}
        for i, a in enumerate(f.inputs):
            if isinstance(a, Tensor) and a.grad_fn is not None:
                src = ("f", id(a.grad_fn))
                stack.append(a.grad_fn)
            elif isinstance(a, Tensor):
                src = ("t", id(a))
                if src not in nodes:
                    nodes[src] = {"kind": "leaf" if a.requires_grad else "data", "label": tensor_label(a, "")}
                consumers.setdefault(src, []).append(f.generation + 1)
            else:
                src = ("c", id(f), i)
                nodes[src] = {"kind": "const", "label": _describe_value(a)}
                consumers.setdefault(src, []).append(f.generation + 1)
            if (src, key) not in edges:
                edges.append((src, key))
    for key, layers in consumers.items():
        nodes[key]["layer"] = min(layers) - 1
    nodes[root_key] = {
        "kind": "output",
        "label": tensor_label(tensor, "output"),
        "layer": tensor.grad_fn.generation + 2,
    }
    edges.append((("f", id(tensor.grad_fn)), root_key))
    low = min(n["layer"] for n in nodes.values())
    for n in nodes.values():
        n["layer"] -= low
    return nodes, edges


def _layered_positions(nodes, edges, sweeps=6):
    """Node positions (layer, rank), and for each edge the (layer, rank) points it bends through.

    An edge that skips layers gets a virtual node in each layer it crosses, so that it keeps a
    slot of its own there; ranks come from a few sweeps of the barycentre heuristic (each node
    placed at the mean rank of its neighbours).
    """
    layer = {key: n["layer"] for key, n in nodes.items()}
    chains = {}
    links = []
    for a, b in edges:
        chain = [a] + [("v", a, b, lay) for lay in range(layer[a] + 1, layer[b])] + [b]
        for v in chain[1:-1]:
            layer[v] = v[3]
        chains[(a, b)] = chain
        links.extend(zip(chain[:-1], chain[1:]))
    layers = {}
    for key in layer:
        layers.setdefault(layer[key], []).append(key)
    rank = {key: float(i) for members in layers.values() for i, key in enumerate(members)}
    nbrs = {key: [] for key in layer}
    for a, b in links:
        nbrs[a].append(b)
        nbrs[b].append(a)
    order = sorted(layers)
    for sweep in range(sweeps):
        for lay in order if sweep % 2 == 0 else reversed(order):
            members = layers[lay]
            bary = {k: (np.mean([rank[m] for m in nbrs[k]]) if nbrs[k] else rank[k]) for k in members}
            members.sort(key=lambda k: (bary[k], rank[k]))
            for i, k in enumerate(members):
                rank[k] = i - (len(members) - 1) / 2

    def crossings(lay):  # edge crossings between a layer and its two neighbours
        count = 0
        for other in (lay - 1, lay + 1):
            pairs = [(rank[a], rank[b]) for a, b in links if layer[a] == lay and layer[b] == other]
            pairs += [(rank[b], rank[a]) for a, b in links if layer[b] == lay and layer[a] == other]
            count += sum((p[0] - q[0]) * (p[1] - q[1]) < 0 for i, p in enumerate(pairs) for q in pairs[i + 1 :])
        return count

    improved = True
    while improved:  # swap neighbours within a layer while that removes crossings
        improved = False
        for lay in order:
            members = layers[lay]
            for i in range(len(members) - 1):
                before = crossings(lay)
                a, b = members[i], members[i + 1]
                rank[a], rank[b] = rank[b], rank[a]
                if crossings(lay) < before:
                    members[i], members[i + 1] = b, a
                    improved = True
                else:
                    rank[a], rank[b] = rank[b], rank[a]
    pos = {key: (layer[key], rank[key]) for key in layer}
    routes = {edge: [pos[v] for v in chain[1:-1]] for edge, chain in chains.items()}
    return {key: pos[key] for key in nodes}, routes, pos


def graph_figure(tensor, names=None, show_generation=True, title=None, scale=1.0):
    """Draw the computational graph that made ``tensor``, with matplotlib alone (no graphviz).

    Square boxes are tensors (blue: requires grad, grey: does not, green: the output), rounded
    ones the ops (``Function``s, with their generation), plain text the constants. The forward
    pass runs left to right; backward visits the ops right to left, highest generation first.
    ``names``: {"x": x, "a": a, …} labels those tensors (an op's output by the op). Draw it
    before ``backward()`` (which frees the graph) or keep it with ``retain_graph=True``.
    """
    plt = _plt()
    nodes, edges = _graph(tensor, names, show_generation)
    pos, routes, every = _layered_positions(nodes, edges)
    n_layers = 1 + max(p[0] for p in every.values())
    per_layer = {}
    for lay, _ in every.values():
        per_layer[lay] = per_layer.get(lay, 0) + 1
    tallest = max(per_layer.values())
    dx, dy = 2.2, 1.0
    fig, ax = plt.subplots(figsize=(scale * (0.6 + 1.6 * n_layers), scale * (0.6 + 0.75 * tallest)))
    texts = {}
    for key, n in nodes.items():
        lay, r = pos[key]
        shape, fill = _GRAPH_STYLE[n["kind"]]
        style = {"box": "square,pad=0.4", "ellipse": "round,pad=0.45,rounding_size=0.75"}.get(shape, "square,pad=0.2")
        bbox = {"boxstyle": style, "facecolor": fill, "edgecolor": "0.35" if n["kind"] != "const" else "0.8"}
        texts[key] = ax.text(
            lay * dx, -r * dy, n["label"], ha="center", va="center", fontsize=9, bbox=bbox, zorder=3,
            color="0.3" if n["kind"] == "const" else "black",
        )  # fmt: skip
    for a, b in edges:
        (la, ra), (lb, rb) = pos[a], pos[b]
        bends = [(la, ra)] + routes[(a, b)]
        if len(bends) > 1:  # the part through the virtual nodes, under the boxes
            xs = [p[0] * dx for p in bends]
            ys = [-p[1] * dy for p in bends]
            ax.plot(xs, ys, "-", color="0.3", lw=1.0, zorder=1)
        start = bends[-1]
        ax.annotate(
            "",
            xy=(lb * dx, -rb * dy),
            xytext=(start[0] * dx, -start[1] * dy),
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.3",
                "lw": 1.0,
                "shrinkA": 1 if len(bends) == 1 else 0,
                "shrinkB": 1,
                "patchA": texts[a].get_bbox_patch() if len(bends) == 1 else None,
                "patchB": texts[b].get_bbox_patch(),
            },
            zorder=2,
        )
    ranks = [p[1] for p in every.values()]
    ax.set_xlim(-0.75 * dx, (n_layers - 1) * dx + 0.75 * dx)
    ax.set_ylim(-max(ranks) * dy - 0.7, -min(ranks) * dy + 0.7)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def to_dot(tensor, names=None, show_generation=True) -> str:
    """The computational graph that made ``tensor`` as Graphviz DOT text (render it with ``dot -Tpng``).

    The same nodes, labels and colours as ``graph_figure``; the forward pass runs left to right.
    """
    nodes, edges = _graph(tensor, names, show_generation)
    ids = {key: f"n{i}" for i, key in enumerate(nodes)}

    def quote(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["digraph minae {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    for key, n in nodes.items():
        shape, fill = _GRAPH_STYLE[n["kind"]]
        lines.append(f'  {ids[key]} [label={quote(n["label"])}, shape={shape}, style=filled, fillcolor="{fill}"];')
    for a, b in edges:
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------ latent-variable energy model ---
def _axes(ax, figsize):
    plt = _plt()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def _highlight_colour(k):
    return f"C{(k + 1) % 10}"  # C0 is kept for the data


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
    energy, large β (cold, blue) to F_∞.
    """
    plt = _plt()
    fig, ax = _axes(ax, (6, 3.8))
    y2 = _np(y2).ravel()
    finite = sorted(b for b in sections if np.isfinite(b) and b > 0)
    cmap = plt.cm.coolwarm_r
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
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
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


def _outline():
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=3.6, foreground="black"), patheffects.Normal()]


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
        fig.colorbar(cs, ax=ax, label="E(y, z)", format="%.4g")
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


# ------------------------------------------------------------------ autoencoders ---
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


def energy_histogram(groups: dict, marks: dict = None, bins=40, ax=None, xlabel="F(y)", title=None, logx=False):
    """Histograms of energies, one per group {name: (N,) values}; marks {name: value} as vertical lines."""
    fig, ax = _axes(ax, (6, 3.4))
    values = {name: _np(v).ravel() for name, v in groups.items()}
    everything = np.concatenate(list(values.values()) + [np.asarray(list((marks or {}).values()), float)])
    lo, hi = float(everything.min()), float(everything.max())
    if logx:
        edges = np.geomspace(max(lo, 1e-12), hi, bins + 1)
        ax.set_xscale("log")
    else:
        edges = np.linspace(lo, hi, bins + 1)
    for i, (name, v) in enumerate(values.items()):
        ax.hist(v, bins=edges, alpha=0.55, color=f"C{i % 10}", label=name)
    for j, (name, value) in enumerate((marks or {}).items()):
        ax.axvline(float(value), color=f"C{(len(values) + j) % 10}", lw=2, ls="--", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
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


def metric_bars(table: dict, title=None, fmt="{:.3g}"):
    """Bar charts comparing models: table {model: {metric: value}}, one panel per metric, one bar
    (and one colour, named in the legend) per model, its value written on top."""
    plt = _plt()
    models = list(table)
    metrics = list(dict.fromkeys(m for row in table.values() for m in row))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.2 + (0.55 * len(models) + 1.1) * len(metrics), 3.2),
                             squeeze=False)  # fmt: skip
    for ax, metric in zip(axes[0], metrics):
        values = [float(table[m].get(metric, np.nan)) for m in models]
        bars = ax.bar(range(len(models)), values, color=[f"C{i % 10}" for i in range(len(models))], label=models)
        for b, v in zip(bars, values):
            ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8, xytext=(0, 2), textcoords="offset points")  # fmt: skip
        ax.set_xticks([])
        ax.set_title(metric, fontsize=10)
        ax.margins(y=0.15)
    fig.legend(axes[0, 0].patches, models, loc="lower center", ncol=len(models), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
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
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig
