"""What each task's answer looks like in code, so that no shipped notebook cell computes it.

A notebook cell that computes a graded task's answer (the sampler's μ + √v·ε, the
per-dimension KL, a descent step on z) hands the task out as surely as a solution line
would. The build empties such cells in a copy (``Exercise`` entries in assignments.py)
and warns about any cell that still matches one of these forms; the tests require no
warning. The forms themselves are the grader's: a copy holds an empty table, so the
table does not hand the answers out either.

A form is a regular expression matched against a code cell's source with its comments
dropped and its spaces and tabs removed (``mu + np.sqrt(var) * eps`` is read as
``mu+np.sqrt(var)*eps``), across lines.
"""

from __future__ import annotations

import re

__all__ = ["ANSWERS", "answers_in", "compact"]

# BEGIN GRADER ONLY; in a copy: ANSWERS = {}
_SQRT_V = (  # √v written any common way: np.sqrt(v), v.sqrt(), v ** 0.5, exp(½ log v)
    r"(?:(?:np|math|minae|xp)\.sqrt\([^()]*(?:\([^()]*\)[^()]*)*\)|[\w.\]\[]+\.sqrt\(\)|[\w.\]\[]+\*\*0?\.5"
    r"|\(0?\.5\*[\w.\[\]:,]+\)\.exp\(\)|\([\w.\[\]:,]+\*0?\.5\)\.exp\(\)|\([\w.\[\]:,]+/2\)\.exp\(\)"
    r"|(?:np|minae|xp)\.exp\((?:0?\.5\*[\w.\[\]:,]+|[\w.\[\]:,]+\*0?\.5|[\w.\[\]:,]+/2)\))"
)
_INDEX = r"(?:\[[^\]]*\])*"
_NOISE = r"(?:eps\w*|ε\w*|noise\w*|(?:[\w.]*\.)?(?:randn(?:_like)?|standard_normal|normal)\([^()]*\))"
_KL_TERMS = (  # v − log v − 1 + μ², in either order, from v or from log v
    r"(?:log\([\w.\[\]:,]+\)|logvar|log_var|lv)\)?-1\+[\w.\[\]:,]+(?:\*\*2|\*[\w.\[\]:,]+|\.square\(\)|\.pow\(2\))"
    r"|(?:\*\*2|\.square\(\)|\.pow\(2\))\+[\w.\[\]:,]+(?:\.exp\(\))?-(?:np\.|minae\.)?log(?:\([\w.\[\]:,]+\)|var)?-1"
)
_REDUCED = r"(?:min|amin|nanmin|mean|nanmean|average)"
_ENERGIES = r"(?<![\w.])(?:[eE]|energ\w*|E_?\w*)(?:\[[^\]]*\]|\.data|\.numpy\(\)|\.detach\(\))*"
_LIMITS = (  # min_z E and the mean energy over the latents' axis, written any common way: e.min(axis=-1),
    # e.min(-1), np.min(e, axis=1), np.mean(energies, -1), minae.min(energies, dim).values, E.amin(axis=dim)
    rf"{_ENERGIES}\.{_REDUCED}\((?:axis=|dim=)?(?:-?\d+|dim|axis)\)"
    rf"|\b(?:np|numpy|minae|xp|_ops|torch)\.{_REDUCED}\({_ENERGIES},(?:axis=|dim=)?(?:-?\d+|dim|axis)\)"
)
ANSWERS = {
    "3.1": (
        ("the stable softmin F_β: a log-sum-exp of −βE", r"logsumexp\(-[\w.]*\*|log\((?:np\.)?mean\(\w*\.?exp\(-"),
        (
            "the softmin's −(1/β) log Σ e^(−βE), or the −(1/β) log n that the 1/n adds",
            r"log\((?:np\.|minae\.)?exp\(-[^\n]*?\)\.sum\([^\n]*?\)\)/|log\(\d+\)/[\w.]*(?:beta|β|tiny|b)\b",
        ),
        ("F_β's two limits: the energies' min over the latents (β = ∞) and their mean (β = 0)", _LIMITS),
    ),
    "3.2": (("a gradient step on the latent z of E(y, z)", r"grad\([\w.]*energy\(.*?\)(?:\.sum\(\))?,z\w*\)"),),
    "3.3": (("the DAE's training loss: the encoder sees the corruption", r"encode\([\w.]*corrupt\("),),
    "3.4": (
        ("additive Gaussian noise on y", r"\+(?:[\w.]+\*)?[\w.]*randn_like\([\w.]+\)"),
        ("a dropout mask on the pixels", r"dropout\([\w.]+,[\w.]+,training=True\)"),
    ),
    "3.5": (
        (
            "the code's sensitivity along a direction, J u with J = diag(f′) W",
            r"(?:h\*\(1-h\)|1-h\*\*2|1-h\*h)\)?(?:\[[^\]]*\])*\*\(?[\w.\[\]()]*@"
            r"|def\w*jacobians?\w*\(.*?\(h\*\(1-h\)\).*?@[\w.]*(?:along|across|u)\b"
            r"|\*\([\w.\[\]:,]+@[\w.\[\]()]*(?:weight|W)\b",
        ),
    ),
    "3.6": (
        ("target propagation's decoder update: ∇ of C(y, Dec(ž)) in the decoder's parameters", r"grad\(C\w*,dec"),
        ("target propagation's encoder update: ∇ of D(ž, Enc(y)) in the encoder's parameters", r"grad\(D\w*,enc"),
        ("a gradient step on the latent z of E(y, z, z̃)", r"grad\([\w.]*energy\(.*?\)(?:\.sum\(\))?,z\w*\)"),
    ),
    "3.7": (
        (
            "the Jacobian penalty by double backprop: rows selected by grad_outputs, graph kept",
            r"grad\([^\n]*grad_outputs=[^\n]*create_graph=True|grad\([^\n]*create_graph=True[^\n]*grad_outputs=",
        ),
    ),
    "4.1": (
        ("the sampler z = μ + √v·ε", rf"\+{_SQRT_V}{_INDEX}\*{_NOISE}|\+{_NOISE}{_INDEX}\*{_SQRT_V}"),
        (
            "a sampler μ + s·ε with s made from log v (one token from the answer)",
            rf"\+[\w.(]*(?:logvar|log_var)[\w.*()]*\.exp\(\){_INDEX}\*{_NOISE}",
        ),
    ),
    "4.2": (
        (
            "the VAE's cost C: the pixels' BCE of the decoder's logits, summed over the pixels",
            r"binary_cross_entropy_with_logits\([\w.]*decoder\(",
        ),
    ),
    "4.3": (
        (
            "sampling: prior noise decoded",
            r"(?:randn|standard_normal)\(.*?\.decoder?\(|\.decoder?\([^\n]*(?:randn|standard_normal)\(",
        ),
        ("the interpolation (1 − t) μ_a + t μ_b, decoded", r"decoder?\(\(1-t\)\*"),
    ),
    "4.4": (
        ("the K-sample F̃: C averaged over the draws, plus the KL", r"\.mean\((?:axis=)?[01]\)\+(?:[\w.]+\*)?kl\b"),
    ),
    "4.5": (
        ("the Gaussian KL per dimension, ½(v − log v − 1 + μ²)", _KL_TERMS),
        ("the distance to the nearest bubble, in its radii", r"/(?:var|v)\w*(?:\[[^\]]*\])*\)\.sum\(-1\)\)\.min\("),
    ),
}
# END GRADER ONLY


def compact(source: str) -> str:
    """The source with comments dropped and spaces and tabs removed (newlines kept)."""
    lines = []
    for line in source.splitlines():
        code, quote = [], None
        for ch in line:  # a '#' inside a string is not a comment
            if quote is None and ch == "#":
                break
            if ch in "'\"":
                quote = None if quote == ch else (ch if quote is None else quote)
            code.append(ch)
        lines.append("".join(code).replace(" ", "").replace("\t", ""))
    return "\n".join(lines)


def answers_in(source: str, tasks, comments: bool = False) -> list:
    """[(task, what)] for every answer form of ``tasks`` that the code ``source`` computes.

    ``comments=True`` reads the comments too (a test file's or a docstring's text hands an answer out
    whether or not it runs): only spaces and tabs are removed.
    """
    texts = [compact(source)]
    if comments:  # prose around code: every space removed, and (for word boundaries) only those beside symbols
        texts = [source.replace(" ", "").replace("\t", ""), re.sub(r"[ \t]*([^\w\s])[ \t]*", r"\1", source)]
    found = []
    for task in tasks:
        for what, form in ANSWERS.get(task, ()):
            if any(re.search(form, text, re.DOTALL) for text in texts):
                found.append((task, what))
    return found
