"""Figure output for the notebooks: one resolution for every figure, and PNGs that stay small.

A committed notebook stores every figure as a base64 PNG, so the figures are most of its size.
Three things keep a PNG small: fewer pixels (a lower dpi; matplotlib's sizes are in inches),
fewer distinct colours (antialiasing makes thousands of nearly equal ones; a 256-colour palette
keeps the picture and compresses far better), and a compressor that tries harder (Pillow's
``optimize``). ``notebook_setup()`` makes the notebook's inline figures go through
``compact_png``; ``save_figure`` is unaffected.
"""

from __future__ import annotations

import io

from ._common import _plt

NOTEBOOK_DPI = 80  # pixels per inch of the figures stored in the notebooks
NOTEBOOK_COLOURS = 256  # palette size of those PNGs; 0 keeps full colour


def compact_png(fig, dpi=NOTEBOOK_DPI, colours=NOTEBOOK_COLOURS) -> bytes:
    """The figure as PNG bytes at ``dpi``, reduced to a palette of ``colours`` (0: full colour).

    The palette is chosen for this picture (median cut) without dithering, whose noise would
    undo most of the compression; the margins are trimmed as Jupyter's own output does.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    if not colours:
        return buf.getvalue()
    image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    image = image.quantize(colors=int(colours), method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def notebook_setup(dpi=NOTEBOOK_DPI, colours=NOTEBOOK_COLOURS) -> bool:
    """In a Jupyter kernel: show every matplotlib figure as a ``compact_png``. Returns False (and
    does nothing) outside IPython, so a notebook's first cell can call it unconditionally."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    # load the backend now: the inline backend installs its own PNG formatter when it is loaded,
    # which happens at the first figure unless forced here, and would replace ours
    import matplotlib

    plt = _plt()
    plt.switch_backend(matplotlib.get_backend())
    from matplotlib.figure import Figure

    shell.display_formatter.formatters["image/png"].for_type(Figure, lambda fig: compact_png(fig, dpi, colours))
    return True
