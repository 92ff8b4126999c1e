"""minae.viz: every figure function returns a matplotlib Figure and draws what it is given."""

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import minae  # noqa: E402
from minae import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------- computational graph ---
def _expression():
    x = minae.tensor(2.0, requires_grad=True)
    w = minae.tensor(-1.5, requires_grad=True)
    a = x * w
    y = minae.sin(a) + x**2
    return x, w, a, y


def test_graph_figure_draws_every_node():
    x, w, a, y = _expression()
    fig = viz.graph_figure(y, names={"x": x, "w": w, "a": a, "y": y})
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_text()]  # the arrows are empty annotations
    # leaves x, w; the constant 2; ops Mul, Sin, Pow, Add; the output
    assert "x = 2" in labels and "w = -1.5" in labels and "2" in labels
    assert any(s.startswith("Mul → a") for s in labels)
    assert any(s.startswith("Sin") for s in labels) and any(s.startswith("Pow") for s in labels)
    assert any(s.startswith("Add\ngen 2") for s in labels)
    assert any(s.startswith("y = ") for s in labels)
    assert len(labels) == 8
    assert len(fig.axes[0].texts) == 8 + 8  # and one arrow per edge


def test_graph_layers_follow_generations():
    x, w, a, y = _expression()
    nodes, edges = viz._graph(y)
    layer = {n["label"].split("\n")[0]: n["layer"] for n in nodes.values()}
    assert layer["Mul"] < layer["Sin"] < layer["Add"] < layer["output = 3.859"]
    assert min(n["layer"] for n in nodes.values()) == 0
    for src, dst in edges:  # the forward pass runs left to right
        assert nodes[src]["layer"] < nodes[dst]["layer"]


def test_graph_of_a_gradient_and_of_a_matrix_expression():
    X = minae.randn(4, 3, requires_grad=True)
    W = minae.randn(3, 2, requires_grad=True)
    loss = minae.tanh(X @ W).sum()
    fig = viz.graph_figure(loss, names={"X": X, "W": W}, show_generation=False)
    labels = [t.get_text() for t in fig.axes[0].texts if t.get_text()]
    assert "X: (4, 3)" in labels and "W: (3, 2)" in labels
    x = minae.tensor(0.5, requires_grad=True)
    (g,) = minae.grad(x**3, x, create_graph=True)
    assert isinstance(viz.graph_figure(g), Figure)


def test_graph_reuse_and_leaf_only():
    x = minae.tensor(0.5, requires_grad=True)
    p = x * 3
    q = p * p + p  # p feeds two ops: one node, three edges out
    nodes, edges = viz._graph(q)
    ops = [n for n in nodes.values() if n["kind"] == "op"]
    assert len(ops) == 3
    # p reaches the square twice and the sum once: three edges, as backward delivers three contributions
    p_op, square = ("f", id(p.grad_fn)), ("f", id(q.grad_fn.inputs[0].grad_fn))
    assert edges.count((p_op, square)) == 2 and sum(a == p_op for a, _ in edges) == 3
    assert viz.to_dot(q).count(" -> ") == len(edges) == 1 + 1 + 3 + 1 + 1  # x, 3 → Mul; p ×3; p·p → Add; Add → q
    fig = viz.graph_figure(q)
    assert len(fig.axes[0].texts) == len(nodes) + len(edges)  # one arrow per edge, the repeated one included
    assert isinstance(viz.graph_figure(minae.tensor(1.0)), Figure)


def test_graph_after_backward_says_how_to_keep_it():
    _, _, _, y = _expression()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.graph_figure(y)
    _, _, _, y = _expression()
    y.backward(retain_graph=True)
    assert isinstance(viz.graph_figure(y), Figure)
    with pytest.raises(TypeError, match="Tensor"):
        viz.graph_figure(np.zeros(3))


def test_to_dot():
    x, w, a, y = _expression()
    dot = viz.to_dot(y, names={"x": x, "w": w, "a": a})
    assert dot.startswith("digraph minae {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == 8  # x→Mul, w→Mul, Mul→Sin, x→Pow, 2→Pow, Sin→Add, Pow→Add, Add→y
    assert dot.count("[label=") == 8
    assert '"x = 2"' in dot and '"Mul → a\\ngen 0"' in dot
    assert "shape=ellipse" in dot and "shape=box" in dot and "shape=plaintext" in dot


# ------------------------------------------------ latent-variable energy model ---
def test_energy_curves_marks_start_and_argmin():
    z = np.linspace(0, 2 * np.pi, 50)
    energies = np.stack([(np.cos(z) - 1) ** 2, (np.sin(z) - 1) ** 2])
    fig = viz.energy_curves(z, energies, z_tilde=[1.0, 2.0], z_check=[0.0, np.pi / 2], labels=["a", "b"], title="E")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 * 3 + 2  # a curve, ○ and ★ per sample; two legend entries
    assert ax.get_title() == "E"
    assert isinstance(viz.energy_curves(minae.tensor(z), minae.tensor(energies[0])), Figure)


def test_manifold_figure():
    z = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    manifold = np.stack([2 * np.cos(z), 1.5 * np.sin(z)], 1)
    data = manifold[::2] + 0.05
    pts = data[:3]
    fig = viz.manifold_figure(minae.tensor(data), manifold, pts, starts=manifold[:3], ends=manifold[5:8], lim=(3, 2))
    assert isinstance(fig, Figure)
    assert fig.axes[0].get_xlim() == (-3, 3)
    assert isinstance(viz.manifold_figure(data=data), Figure)


def test_manifold_weights_one_panel_per_point():
    z = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    manifold = np.stack([np.cos(z), np.sin(z)], 1)
    points = np.array([[1.0, 0.0], [0.0, 0.3]])
    weights = np.exp(-((manifold[None] - points[:, None]) ** 2).sum(-1))
    fig = viz.manifold_weights(manifold, weights, points, beta=1.0, data=manifold)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 + 1  # two panels and the colour bar


def test_free_energy_sections_one_curve_per_beta():
    y2 = np.linspace(-2, 2, 21)
    sections = {0: y2**2 + 1, 0.1: y2**2, 1.0: y2**2 - 1, math.inf: np.abs(y2)}
    fig = viz.free_energy_sections(y2, sections, title="cut")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4
    labels = [ln.get_label() for ln in lines]
    assert "β = ∞ (F∞)" in labels and "β = 0 (mean energy)" in labels and "β = 0.1" in labels


def test_line_plot():
    fig = viz.line_plot(
        np.logspace(-3, 0, 10), {"a": np.arange(10) + 1.0, "b": minae.ones(10)}, xlabel="ε", logx=True, logy=True,
        hlines={"ref": 2.0},
    )  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 3


def test_conditional_manifolds_panels_share_one_scale():
    x = np.linspace(0, 1, 200)
    theta = np.linspace(0, 2 * np.pi, 200)
    y = np.stack([np.cos(theta), np.sin(theta)], 1) * (1 + 5 * x)[:, None]
    curves = {v: np.stack([np.cos(theta), np.sin(theta)], 1)[:48] * (1 + 5 * v) for v in (0.0, 0.5, 1.0)}
    fig = viz.conditional_manifolds(x, y, curves, title="horn", label="trained")
    assert len(fig.axes) == 3
    assert fig.axes[0].get_xlim() == fig.axes[2].get_xlim()
    fig, axes = plt.subplots(2, 3)
    assert viz.conditional_manifolds(x, y, curves, axes=axes[1]) is fig


def test_descent_paths_with_and_without_an_energy_map():
    steps = [minae.randn(5, 2) * 0.1 + i * 0.05 for i in range(6)]
    fig = viz.descent_paths(steps, labels=np.arange(5))
    assert isinstance(fig, Figure)
    a = np.linspace(-1, 1, 20)
    A, B = np.meshgrid(a, a)
    fig = viz.descent_paths(np.stack([s.numpy() for s in steps])[:, 0], energy=A**2 + B**2, extent=[-1, 1, -1, 1])
    assert len(fig.axes) == 2  # the map and its colour bar


# ------------------------------------------------------------------ autoencoders ---
def test_kernel_grid_one_block_per_model_each_kernel_on_its_own_scale():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(30, 784)) * np.arange(1, 31)[:, None]  # kernels of very different sizes
    fig = viz.kernel_grid({"AE": w, "DAE": minae.tensor(w[:12].astype(np.float32))}, n=20, ncol=10)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    first = fig.axes[0].images[0].get_array()
    assert first.shape == (2 * 30 - 2, 10 * 30 - 2)  # 2 rows of 10 kernels, 2-pixel gaps
    assert np.nanmax(np.abs(first)) == pytest.approx(1.0)  # every kernel scaled to [−1, 1]
    assert fig.axes[1].images[0].get_array().shape == (2 * 30 - 2, 10 * 30 - 2)  # 12 kernels: 2 rows
    assert [ax.get_ylabel() for ax in fig.axes] == ["AE", "DAE"]


def test_energy_path_images_sit_under_their_points():
    path = np.random.default_rng(0).uniform(size=(7, 784))
    fig = viz.energy_path({"y(t)": path, "ỹ(t)": path[::-1]}, {"a": np.arange(7.0), "b": np.ones(7)}, title="t")
    curve, *rows = fig.axes
    assert len(rows) == 2 and len(curve.lines) == 2
    for ax in rows:
        assert ax.get_xlim() == curve.get_xlim() == (-0.5, 6.5)
        left, right, *_ = ax.images[0].get_extent()
        assert (left, right) == (-0.5, 6.5)
    # a single unnamed row and curve work too
    assert len(viz.energy_path(path, np.arange(7.0)).axes) == 2


def test_energy_histogram_groups_and_marks():
    fig = viz.energy_histogram({"a": np.arange(1, 100.0), "b": minae.arange(50, 150).float()}, marks={"m": 7.0},
                               logx=True)  # fmt: skip
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "m"]
    # each group: a light fill and an opaque outline, so overlapping histograms all stay visible
    fills = [p for p in ax.patches if p.get_fill()]
    outlines = [p for p in ax.patches if not p.get_fill()]
    assert len(fills) == len(outlines) == 2
    assert all(p.get_alpha() <= 0.3 for p in fills) and all(p.get_alpha() in (None, 1) for p in outlines)


def test_vector_field_arrows_end_at_the_ends():
    starts = np.array([[0.0, 0.0], [1.0, 1.0]])
    ends = np.array([[0.5, 0.0], [1.0, 0.0]])
    fig = viz.vector_field(starts, ends, data=np.zeros((3, 2)), curve=np.array([[0, 0], [1, 1.0]]))
    q = [c for c in fig.axes[0].collections if hasattr(c, "U")][0]
    assert np.allclose(q.U, [0.5, 0.0]) and np.allclose(q.V, [0.0, -1.0])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["manifold", "y (data)", "ŷ"]
    assert viz.vector_field(starts, ends, dots=False).axes[0].get_legend() is None  # nothing to name


def test_jacobian_ellipses_follow_the_singular_vectors():
    points = np.array([[0.0, 0.0], [1.0, 0.0]])
    jac = np.zeros((2, 3, 2))
    jac[0, 0, 0] = 2.0  # sensitive along y₁ only: a flat ellipse lying along y₁
    jac[1, 0, 1], jac[1, 1, 0] = 1.0, 1.0  # equally sensitive both ways: a circle
    fig = viz.jacobian_ellipses(points, jac, size=0.1)
    flat, round_ = fig.axes[0].patches
    assert flat.width == pytest.approx(0.4) and flat.height == pytest.approx(0.0)
    assert abs(math.sin(math.radians(flat.angle))) < 1e-9
    assert round_.width == pytest.approx(round_.height) == pytest.approx(0.2)


def test_metric_bars_one_panel_per_metric():
    table = {"AE": {"J": 5.0, "sat": 0.4}, "CAE": {"J": 1.0, "sat": 0.6}}
    fig = viz.metric_bars(table, title="t")
    assert len(fig.axes) == 2
    assert [b.get_height() for b in fig.axes[0].patches] == [5.0, 1.0]
    assert [t.get_text() for t in fig.axes[1].texts] == ["0.4", "0.6"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["AE", "CAE"]


def test_metric_bars_shared_and_log_scales():
    table = {"AE": {"test": 5.0, "shifted": 60.0}, "DAE": {"test": 4.0, "shifted": 0.5}}
    fig = viz.metric_bars(table)
    assert fig.axes[0].get_ylim() != fig.axes[1].get_ylim()  # by default each metric on its own scale
    fig = viz.metric_bars(table, sharey=True, ylabel="energy")
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim() and fig.axes[0].get_ylabel() == "energy"
    fig = viz.metric_bars(table, logy=True)
    assert all(ax.get_yscale() == "log" for ax in fig.axes)


def test_heatmap_panels_can_share_one_colour_scale():
    fig, axes = plt.subplots(1, 2)
    viz.heatmap(np.ones((3, 4)), [0, 1, 0, 1], ax=axes[0], vmin=0, vmax=10)
    viz.heatmap(5 * np.ones((3, 4)), [0, 1, 0, 1], ax=axes[1], vmin=0, vmax=10)
    assert axes[0].images[0].get_clim() == axes[1].images[0].get_clim() == (0, 10)


def test_free_energy_sections_every_curve_is_dark_enough_to_see():
    y2 = np.linspace(-2, 2, 11)
    sections = {b: y2**2 + b for b in (0.1, 0.3, 1, 3.2, 10)}
    fig = viz.free_energy_sections(y2, sections)
    for line in fig.axes[0].get_lines():
        r, g, b, _ = matplotlib.colors.to_rgba(line.get_color())
        assert 0.299 * r + 0.587 * g + 0.114 * b < 0.6, line.get_label()  # luminance: not a pale curve on white


def test_compact_png_is_a_smaller_png():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(np.random.default_rng(0).uniform(size=(28, 28)), cmap="gray")
    ax.plot(np.sin(np.linspace(0, 6, 50)))
    small = viz.compact_png(fig)
    full = viz.compact_png(fig, dpi=150, colours=0)
    assert small[:8] == full[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(small) < len(full) / 2
    assert viz.notebook_setup() is False  # outside a kernel: nothing to set up


def test_image_tile_edge_to_edge_with_tick_labels():
    imgs = minae.rand(6, 784)
    fig = viz.image_tile(imgs, 3, xticks=[-1, 0, 1], yticks=["a", "b"])
    ax = fig.axes[0]
    assert ax.images[0].get_array().shape == (56, 84)  # no gaps
    assert [t.get_text() for t in ax.get_xticklabels()] == ["-1", "0", "1"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]


def test_latent_scatter_names_the_classes():
    mu = np.random.default_rng(0).normal(size=(20, 2))
    fig = viz.latent_scatter(mu, labels=np.arange(20) % 3, std=np.full((20, 2), 0.1))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["0", "1", "2"]
    assert len(fig.axes[0].patches) == 20


# ----------------------------------------------- the CUDA paths (issue 13) ---
def _pixels(fig):
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def _figures(to):
    """The figures a GPU user draws straight from device tensors (``to`` moves a CPU tensor there)."""
    minae.manual_seed(0)
    images, mu, grid = minae.rand(6, 16), minae.randn(20, 2), minae.rand(5, 7)
    labels = minae.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    z, energies = minae.linspace(0, 6, 30), minae.rand(2, 30)
    x = to(minae.tensor(2.0)).requires_grad_()  # a leaf on the device: .to() of a leaf needing grad adds a ToCopy node
    yield viz.image_grid(to(images), shape=(4, 4), scale=0.5)
    yield viz.latent_scatter(to(mu), labels=to(labels), std=to(mu.abs() * 0.1))
    yield viz.heatmap(to(grid), extent=(0, 1, 0, 1))
    yield viz.energy_curves(to(z), to(energies), z_tilde=to(z[:2]), z_check=to(z[3:5]))
    yield viz.energy_histogram({"a": to(grid.flatten())}, marks={"m": to(grid.mean())})
    yield viz.line_plot(to(z), {"e": to(energies[0])}, hlines={"h": to(grid.max())})
    yield viz.graph_figure(minae.sin(x * 3.0) + x, names={"x": x}, scale=0.5)


def test_figures_from_device_tensors_match_the_cpu(device):
    """On a GPU the figures drawn from CUDA tensors are pixel for pixel the CPU's (on the CPU, where
    that comparison would be with itself, only that they are drawn: rendering is the slow part)."""
    dev = minae.device(device)
    for cpu_fig, dev_fig in zip(_figures(lambda t: t), _figures(lambda t: t.to(dev))):
        assert isinstance(dev_fig, Figure) and len(dev_fig.axes) == len(cpu_fig.axes)
        if device != "cpu":
            np.testing.assert_array_equal(_pixels(dev_fig), _pixels(cpu_fig))
        plt.close("all")
