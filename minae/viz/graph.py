"""The computational graph behind a tensor: its nodes and layers, drawn with matplotlib or written as DOT."""

from __future__ import annotations

from ..backend import np, to_numpy
from ..tensor import Tensor
from ._common import _plt

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
    list of (source key, destination key) in the direction of the forward pass, one per input of
    each op (a tensor an op reads twice, as in ``p * p``, gives two equal edges). Layers follow
    the generation numbers backward uses: an op of generation g is on layer g + 1, the output
    on the last layer, each input just before the first op that reads it.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"graph: expected a minae Tensor, got {type(tensor).__name__}")
    named = {id(t): name for name, t in (names or {}).items()}
    made_by = {id(t.grad_fn): name for name, t in (names or {}).items() if getattr(t, "grad_fn", None)}
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
        label = f.name()
        if id(f) in made_by and f is not tensor.grad_fn:  # the op that made a named tensor
            label = f"{label} → {made_by[id(f)]}"
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
            edges.append((src, key))  # once per input slot: x * x draws two edges, as backward sends two gradients
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
    repeats = {edge: edges.count(edge) for edge in edges}
    drawn = {}
    for a, b in edges:
        (la, ra), (lb, rb) = pos[a], pos[b]
        bends = [(la, ra)] + routes[(a, b)]
        k = drawn[(a, b)] = drawn.get((a, b), -1) + 1
        bow = 0.3 * (k - (repeats[(a, b)] - 1) / 2)  # repeated edges fan out as arcs, side by side
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
                "connectionstyle": f"arc3,rad={bow}",
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
