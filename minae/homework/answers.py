"""What each task's answer looks like in code, so that no shipped notebook cell computes it.

A notebook cell that computes a graded task's answer (the sampler, the per-dimension KL,
a descent step on z) hands the task out as surely as a solution line would; so does a
docstring, a comment or a test that states it. The build empties such cells in a copy
(``Exercise`` entries in assignments.py), cuts such lines (FORMULA sections, see
markers.py) and warns about any shipped text that still matches one of these forms
(``build.shipped_answers``); the tests require no warning. The forms themselves are
the grader's: a copy holds an empty table, so the table does not hand the answers out
either.

A form is a regular expression matched against a code cell's source with its comments
dropped and its spaces and tabs removed (``x @ w + b`` is read as ``x@w+b``), across lines;
prose (a docstring, a README, a Markdown cell) with every space removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ANSWERS", "REWORDS", "Reword", "answers_in", "compact"]


@dataclass(frozen=True)
class Reword:
    """Text of a notebook cell (Markdown or code: a comment, a figure's label) that states a task's answer: a copy
    that cuts ``task`` out writes ``new`` in place of ``old`` (the reference notebook keeps the formula). The
    table is the grader's (a copy that listed ``old`` would state the answer again)."""

    notebook: str  # a file-name prefix in notebooks/
    old: str
    new: str
    task: str


# BEGIN GRADER ONLY; in a copy: ANSWERS, REWORDS = {}, ()
_SQRT_V = (  # √v written any common way: np.sqrt(v), v.sqrt(), v ** 0.5, exp(½ log v)
    r"(?:(?:np|math|minae|xp|torch)\.sqrt\([^()]*(?:\([^()]*\)[^()]*)*\)|[\w.\]\[]+\.sqrt\(\)|[\w.\]\[]+\*\*0?\.5"
    r"|\(0?\.5\*[\w.\[\]:,]+\)\.exp\(\)|\([\w.\[\]:,]+\*0?\.5\)\.exp\(\)|\([\w.\[\]:,]+/2\)\.exp\(\)"
    r"|(?:np|minae|xp|torch|math)\.exp\((?:0?\.5\*[\w.\[\]:,]+|[\w.\[\]:,]+\*0?\.5|[\w.\[\]:,]+/2)\))"
)
_INDEX = r"(?:\[[^\]]*\])*"
_NOISE = r"(?:eps\w*|ε\w*|noise\w*|(?:[\w.]*\.)?(?:randn(?:_like)?|standard_normal|normal)\([^()]*\))"
_M = r"[-−]"  # a minus sign, ASCII or typeset
_SQ = r"(?:\*\*2|\.square\(\)|\.pow\(2\)|²|\^\{?2\}?)"
_TERM = r"[\w.\[\]:,μσ\\{}]+"
_LOG_V = (  # log v as code (log(var), logvar, lv) or as prose (log v_i, log σ², \log v)
    r"(?:(?:np\.|minae\.|_ops\.|math\.|xp\.|torch\.)?(?:log|\\log|ln)\(?[\w.\[\]:,σ²\\{}^]+\)?|logvar|log_var|lv)"
)
_KL_TERMS = (  # v − log v − 1 + μ², in either order, from v or from log v, as code or as prose; and 1 + log v − μ² − v
    rf"{_LOG_V}\)?{_M}1\+{_TERM}(?:{_SQ}|\*[\w.\[\]:,μ]+)"
    rf"|{_SQ}\+{_TERM}(?:\.exp\(\))?{_M}{_LOG_V}\)?{_M}1"
    rf"|1\+{_LOG_V}\)?{_M}{_TERM}(?:{_SQ}|\*[\w.\[\]:,μ]+){_M}"
)
_KL = ("the Gaussian KL's terms, v − log v − 1 + μ² (or 1 + log v − μ² − v)", _KL_TERMS)
_REDUCED = r"(?:min|amin|nanmin|mean|nanmean|average)"
_ENERGIES = r"(?<![\w.])(?:[eE]|energ\w*|E_?\w*)(?:\[[^\]]*\]|\.data|\.numpy\(\)|\.detach\(\))*"
_LIMITS = (  # min_z E and the mean energy over the latents' axis, written any common way: e.min(axis=-1),
    # e.min(-1), np.min(e, axis=1), np.mean(energies, -1), minae.min(energies, dim).values, E.amin(axis=dim)
    rf"{_ENERGIES}\.{_REDUCED}\((?:axis=|dim=)?(?:-?\d+|dim|axis)\)"
    rf"|\b(?:np|numpy|minae|xp|_ops|torch)\.{_REDUCED}\({_ENERGIES},(?:axis=|dim=)?(?:-?\d+|dim|axis)\)"
)
_GY = (  # ∂L/∂y: in prose, or as code names for the output's gradient
    r"(?:∂L/∂y|dL/dy|∂L/∂Y|dL/dY|\\partialL/\\partialy|gy\w*|g_?y\w*|grad_?y\w*|grad_?out\w*|g_?out\w*|dy|upstream\w*)"
)
_TIMES = r"(?:@|·|⋅|\*|,|×|⊙|\\cdot|\\odot)?"


def _transposed(name):  # name's transpose written any common way: bᵀ, b^T, b.T, b.mT, b.transpose(…), swapaxes(b, …)
    n = rf"{name}\w{{0,2}}"
    return (
        rf"(?:{n}ᵀ|{n}\^\{{?(?:T|\\top)\}}?|{n}\.(?:T|mT)\b|{n}\.(?:transpose|swapaxes)\([^()]*\)"
        rf"|_?(?:transpose|swapaxes|swap_last|swap)\({n}[,)])"
    )


_MATMUL_GRADS = (  # ∂L/∂a = ∂L/∂y bᵀ and ∂L/∂b = aᵀ ∂L/∂y
    rf"{_GY}\)?{_TIMES}{_transposed('b')}|(?<![\w.]){_transposed('a')}\)?{_TIMES}{_GY}"
)
_SQRT_V_PROSE = (  # √v in prose: √v, √(v), \sqrt{v}, σ, exp(½ log v), e^(½ log v)
    r"(?:√\(?v\w*\)?|√\{v\w*\}|\\sqrt\{v\w*\}|σ(?![²^\w])|\\sigma(?![\^\w])|(?:exp|e\^)\(?(?:½|1/2|0?\.5)\*?(?:·)?log\(?v\w*\)?\)?)"
)
_EPS_PROSE = r"(?:ε\w*|\\epsilon\w*|\\varepsilon\w*|eps\w*)"
_MU = r"(?:μ|\\mu|mu)\w*"
ANSWERS = {
    "1.1": (
        (
            "the derivatives of a·b, log x and e^x, in prose",
            r"[∂d]\(?a[·*⋅]?b\)?/[∂d]a=b\b|[∂d]\(?a[·*⋅]?b\)?/[∂d]b=a\b"
            r"|[∂d]\(?(?:log|ln)\(?x\)?\)?/[∂d]x=1/x|[∂d]\(?(?:e\^x|exp\(?x\)?)\)?/[∂d]x=(?:e\^x|exp\(?x|y\b)",
        ),
    ),
    "1.3": (("MatMul's backward, ∂L/∂a = ∂L/∂y bᵀ and ∂L/∂b = aᵀ ∂L/∂y", _MATMUL_GRADS),),
    "2.3": (_KL,),
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
        (
            "the rows of J = diag(f′) W: W's rows scaled by the code's slopes",
            r"(?:h\*\(1-h\)|1-h\*\*2|1-h\*h)\)?(?:\[[^\]]*\])*\[:,None\]\*"
            r"|(?:h\*\(1-h\)|1-h\*\*2|1-h\*h)[^\n]*\n(?:[^\n]*\n){0,5}?[^\n]*\[:,None\]\*[\w.\[\]]*(?:weight|W)\b",
        ),
        (
            "‖J‖²_F from the code h and the encoder's first layer (jacobian_norm's body, the regulariser's less λ)",
            r"contractive_penalty\([^\n]*?encoder\[0\]\.(?:weight|W)\b",
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
            # a loop over the code units, each a backward pass with grad_outputs and the graph kept (a single
            # double-backward Jacobian-vector product, as in ContractiveAutoencoder.sensitivity, is not it)
            r"(?:^|\n)[^\n]*for[^\n]*:\n(?:[^\n]*\n){0,8}?[^\n]*grad\((?:[^()]|\([^()]*\))*?"
            r"(?:grad_outputs=(?:[^()]|\([^()]*\))*?create_graph=True|create_graph=True(?:[^()]|\([^()]*\))*?grad_outputs=)",
        ),
    ),
    "4.1": (
        ("the sampler z = μ + √v·ε", rf"\+{_SQRT_V}{_INDEX}\*{_NOISE}|\+{_NOISE}{_INDEX}\*{_SQRT_V}"),
        (
            "a sampler μ + s·ε with s made from log v (one token from the answer)",
            rf"\+[\w.(]*(?:logvar|log_var)[\w.*()]*\.exp\(\){_INDEX}\*{_NOISE}",
        ),
        (
            "the sampler z = μ + √v ⊙ ε, in prose",
            rf"{_MU}\+{_SQRT_V_PROSE}{_TIMES}{_EPS_PROSE}|{_MU}\+{_EPS_PROSE}{_TIMES}{_SQRT_V_PROSE}(?![\w²^])",
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
        (
            "the interpolation (1 − t) μ_a + t μ_b (or μ_a + t(μ_b − μ_a)), as code or prose",
            rf"\(1[-−]t\w*\){_TIMES}[\w.()\[\]]*?{_MU}[\w.()\[\]]*\+t\w*{_TIMES}[\w.(]*?{_MU}"
            rf"|{_MU}[\w.()\[\]]*\+t\w*{_TIMES}\({_MU}[\w.()\[\]]*[-−]{_MU}",
        ),
    ),
    "4.4": (
        ("the K-sample F̃: C averaged over the draws, plus the KL", r"\.mean\((?:axis=)?[01]\)\+(?:[\w.]+\*)?kl\b"),
        (
            "the K-sample F̃ = (1/K) Σ_k C(y, Dec(z_k)) + β·KL, in prose",
            r"1/K\)?·?(?:Σ|\\sum)(?:_\{?k(?:=1)?\}?)?(?:\^\{?K\}?)?(?:C|\\mathcal\{?C\}?)_?\w*\(",
        ),
    ),
    "4.5": (
        _KL,
        ("the distance to the nearest bubble, in its radii", r"/(?:var|v)\w*(?:\[[^\]]*\])*\)\.sum\(-1\)\)\.min\("),
    ),
}
REWORDS = (
    Reword(
        "06",
        r"\boldsymbol z = \boldsymbol\mu + \sqrt{\boldsymbol v} \odot \boldsymbol\epsilon, \;\; "
        r"\boldsymbol\epsilon \sim \mathcal N(\boldsymbol 0, \boldsymbol I),",
        r"\boldsymbol z \sim \mathcal N(\boldsymbol\mu, \operatorname{diag} \boldsymbol v) "
        r"\text{ (drawn by the sampler of task 4.1)},",
        "4.1",
    ),
    Reword(
        "06",
        "that is what scales $\\boldsymbol\\epsilon$ (the formula above, and `VAE.reparameterise`).",
        "which of the two scales $\\boldsymbol\\epsilon$ is for you to work out (task 4.1, `VAE.reparameterise`).",
        "4.1",
    ),
    Reword("06", '"sampler\\nz = μ + √v ⊙ ε"', '"sampler\\nz ~ N(μ, v)"', "4.1"),
    Reword("06", "# Dec((1 − t) μ_a + t μ_b)", "# decoded codes from μ_a to μ_b (task 4.3)", "4.3"),
    Reword(
        "06",
        r"In the code, $\boldsymbol z(t) = (1 - t)\,\boldsymbol\mu_a + t\,\boldsymbol\mu_b$, decoded into",
        r"In the code (task 4.3), $\boldsymbol z(t)$ runs on the straight line from $\boldsymbol\mu_a$ to "
        r"$\boldsymbol\mu_b$, decoded into",
        "4.3",
    ),
    Reword(
        "06",
        r"the **reparameterisation**: $\boldsymbol z = \boldsymbol\mu + \sqrt{\boldsymbol v} "
        r"\odot \boldsymbol\epsilon$",
        r"the **reparameterisation** (task 4.1): $\boldsymbol z$ a differentiable function of "
        r"$\boldsymbol\mu$, $\boldsymbol v$ and a noise $\boldsymbol\epsilon$",
        "4.1",
    ),
    Reword(
        "06",
        r"the sampler is written $\boldsymbol\mu + \sqrt{\boldsymbol v} \odot \boldsymbol\epsilon$:",
        r"the sampler is written as a function of $\boldsymbol\mu$, $\boldsymbol v$ and $\boldsymbol\epsilon$ "
        "(task 4.1):",
        "4.1",
    ),
)
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


_LATEX = (  # LaTeX read as the typeset symbols the prose forms know: \sqrt{\boldsymbol v} \odot \epsilon is √v⊙ε
    (r"\\(?:boldsymbol|mathbf|mathit|mathrm|bm|text|operatorname|big|Big|bigg|Bigg|left|right)(?![a-zA-Z])", ""),
    (r"\\mu(?![a-zA-Z])", "μ"),
    (r"\\sigma(?![a-zA-Z])", "σ"),
    (r"\\(?:var)?epsilon(?![a-zA-Z])", "ε"),
    (r"\\odot(?![a-zA-Z])", "⊙"),
    (r"\\cdot(?![a-zA-Z])", "·"),
    (r"\\sqrt(?![a-zA-Z])", "√"),
    (r"\\log(?![a-zA-Z])", "log"),
    (r"\\sum(?![a-zA-Z])", "Σ"),
    (r"\\[td]?frac\s*\{?\s*1\s*\}?\s*\{?\s*2\s*\}?", "½"),
    (r"\\[,;:! ]", ""),
    (r"[{}$]", ""),
)


def _plain_latex(text: str) -> str:
    for pattern, symbol in _LATEX:
        text = re.sub(pattern, symbol, text)
    return text


def answers_in(source: str, tasks, comments: bool = False, given=()) -> list:
    """[(task, what)] for every answer form of ``tasks`` that the code ``source`` computes.

    ``comments=True`` reads the comments too (a test file's or a docstring's text hands an answer out
    whether or not it runs): only spaces and tabs are removed. A form that is also one of the ``given``
    tasks' (solved in the copy) is not reported: the student has that answer from the earlier task.
    """
    shared = {form for task in given for _, form in ANSWERS.get(task, ())}
    texts = [compact(source)]
    if comments:  # prose around code: every space removed, and (for word boundaries) only those beside symbols
        texts = [source.replace(" ", "").replace("\t", ""), re.sub(r"[ \t]*([^\w\s])[ \t]*", r"\1", source)]
        if "\\" in source:  # LaTeX (a Markdown cell, a docstring): also as the symbols it typesets
            texts.append(_plain_latex(source).replace(" ", "").replace("\t", ""))
    found = []
    for task in tasks:
        for what, form in ANSWERS.get(task, ()):
            if form in shared:
                continue
            if any(re.search(form, text, re.DOTALL) for text in texts):
                found.append((task, what))
    return found
