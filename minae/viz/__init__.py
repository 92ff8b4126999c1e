"""Figures for the notebooks and the ``minae`` command, in matplotlib. Each function returns its Figure.

Inputs may be minae tensors (any device) or NumPy arrays. ``figures`` holds the general ones,
``graph`` the computational-graph drawing, ``lecture`` the lecture's own figures, ``style``
the notebooks' compact PNG output.
"""

from .figures import (
    energy_histogram,
    heatmap,
    image_grid,
    image_rows,
    image_tile,
    latent_scatter,
    line_plot,
    loss_curves,
    metric_bars,
    save_figure,
)
from .graph import (
    _graph,  # noqa: F401  (the graph's nodes and layers, read by tests and older callers)
    graph_figure,
    to_dot,
)
from .lecture import (
    conditional_manifolds,
    descent_paths,
    energy_curves,
    energy_path,
    free_energy_sections,
    jacobian_ellipses,
    kernel_grid,
    manifold_figure,
    manifold_weights,
    vector_field,
)
from .style import NOTEBOOK_DPI, compact_png, notebook_setup

__all__ = [
    "NOTEBOOK_DPI",
    "compact_png",
    "notebook_setup",
    "conditional_manifolds",
    "descent_paths",
    "energy_curves",
    "energy_histogram",
    "energy_path",
    "free_energy_sections",
    "graph_figure",
    "heatmap",
    "image_grid",
    "image_rows",
    "image_tile",
    "jacobian_ellipses",
    "kernel_grid",
    "latent_scatter",
    "line_plot",
    "loss_curves",
    "manifold_figure",
    "manifold_weights",
    "metric_bars",
    "save_figure",
    "to_dot",
    "vector_field",
]
