"""The read-along notebooks run top to bottom, and minae.notebooks (their runner) behaves.

Every ``notebooks/*.ipynb`` is executed in a fresh Jupyter kernel with ``MINAE_FAST=1`` (small
settings) and its HTTP(S) proxies pointed at a closed port (no network); a failure shows the
cell's source and the error. New notebooks are picked up by file name.

The committed files are checked as they are on disk, cells found by content and tags (never by
index, so that editing a notebook does not break these tests): outputs produced by the current
``minae/`` sources (the record ``--execute`` writes), claim cells, no run-dependent values or
widget state in the outputs, ≤ 1 MB, a first cell pointing into the lecture (its public page, never a
development path), exercises with answers, and every claim (solutions included) two-sided or marked one-sided.
"""

import ast
import json
import re
import shutil
import warnings
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from minae import notebooks  # noqa: E402

FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(FOLDER.glob("*.ipynb"))
FAST_BUDGET_S = 60  # each notebook, MINAE_FAST=1, 2 CPU cores
MAX_BYTES = 1_000_000
COURSE_PAGE = "https://atcold.github.io/NYU-DLSP21/en/week08/08-3/"
INTERNAL_PATH = "shared/lecture"  # where the lecture text sits in development, not for readers
# the sections of the lecture file (its headings), so that the pointer cell names a real one
SECTIONS = (
    "Recap: Predictive Latent Variable Model", "Training recap", "Target propagation", "Autoencoder (AE)",
    "Reconstruction costs", "Loss functional", "Under-/over-complete hidden layer", "Denoising Autoencoder",
    "Contractive Autoencoder", "Variational Autoencoder (VAE)", "The VAE objective (loss) function",
    "reparameterisation trick", "Visualizing Latent Variable Estimates and Reconstruction Loss",
)  # fmt: skip
MIN_CLAIMS = {"00": 2}  # claim cells per notebook; 3 for the others

# run-dependent values: durations, and tqdm's rates, ETAs and bars
TIMING = re.compile(
    r"\b\d+(?:\.\d+)? ?(?:s|ms|µs|us|sec|secs|seconds|min)\b(?!\w)"
    r"|\d+(?:\.\d+)? ?(?:it|s)/(?:s|it)\b"
    r"|\[\d\d:\d\d(?:<|\])"
    r"|\d+%\|"
)
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {FOLDER}"
    assert notebooks.list_notebooks() == NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path):
    result = notebooks.run_notebook(path, fast=True, write=False, timeout=600, offline=True)
    if not result.ok:
        pytest.fail(result.describe(), pytrace=False)
    if result.seconds > FAST_BUDGET_S:  # a busy machine can be slow: say so, don't fail
        warnings.warn(
            f"{path.name} took {result.seconds:.0f} s with MINAE_FAST=1 (budget {FAST_BUDGET_S} s)", stacklevel=2
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_committed_with_outputs(path):
    """Committed executed (so they read on GitHub), top to bottom, without errors, reading MINAE_FAST."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name} has no code cells"
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: cells {[i for i, n in enumerate(counts) if n is None]} were not executed"
    assert counts == sorted(counts), f"{path.name}: cells were not run top to bottom ({counts})"
    for i, c in enumerate(code):
        errors = [o for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name}: code cell {i} was saved with an error: {errors[0].get('ename')}"
    assert any("MINAE_FAST" in c.source for c in code), f"{path.name} does not read MINAE_FAST"
    assert not any("download=True" in c.source for c in code), f"{path.name} downloads data"


# ------------------------------------------------------- the committed notebooks ---
def _committed(check):
    """Parametrize a check of the committed files over the notebooks."""
    return pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])(check)


def _read(path):
    return nbformat.read(path, as_version=4)


def _text_outputs(cell):
    """The text of a code cell's stream outputs and plain-text results."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            yield out.get("text", "")
        elif out.get("output_type") in ("execute_result", "display_data"):
            yield out.get("data", {}).get("text/plain", "")


def timing_in(text):
    """The run-dependent pieces (durations, tqdm rates, ETAs, bars) found in ``text``."""
    return [m.group(0) for m in TIMING.finditer(text)]


def test_timing_pattern_finds_durations_and_progress_bars_only():
    assert timing_in("epoch 1/8: train 326.5, test 192.6 (6.0 s)") == ["6.0 s"]
    assert timing_in("took 12ms") == ["12ms"]
    assert timing_in(" 40%|████      | 4/10 [00:02<00:03,  1.98it/s]") == ["40%|", "[00:02<", "1.98it/s"]
    assert timing_in("w₁ = 1.985, loss = 0.031 after 500 steps; 3 samples; β = 0.3") == []
    assert timing_in("F(y) at 2 points, 10 classes, shape (4, 3)") == []


@_committed
def test_notebook_outputs_are_not_stale(path):
    reason = notebooks.stale_reason(path)
    assert reason is None, reason


@_committed
def test_notebook_has_claim_cells(path):
    """Claims are ordinary code cells tagged `claim` (so the fast run executes them) holding asserts."""
    nb = _read(path)
    claims = [c for c in nb.cells if "claim" in c.metadata.get("tags", [])]
    need = MIN_CLAIMS.get(path.name[:2], 3)
    assert len(claims) >= need, f"{path.name} has {len(claims)} cells tagged 'claim', needs {need}"
    for c in claims:
        assert c.cell_type == "code", f"{path.name}: a markdown cell is tagged 'claim': {c.source[:60]!r}"
        assert "assert" in c.source, f"{path.name}: claim cell without an assert: {c.source[:60]!r}"
        assert c.get("execution_count") is not None, f"{path.name}: claim cell not executed: {c.source[:60]!r}"


# ---------------------------------------------------------------- claims, two-sided ---
ONE_SIDED_MARK = "# one-sided"  # on an assert's line: the sentence it checks is itself a one-sided bound
CLOSENESS = ("abs", "allclose", "isclose", "array_equal", "assert_allclose")


def _atoms(test):
    """The comparisons an assert's test is made of: `and` split, `all(... for ...)` opened."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        for value in test.values:
            yield from _atoms(value)
    elif (
        isinstance(test, ast.Call)
        and ast.unparse(test.func) in ("all", "np.all")
        and test.args
        and isinstance(test.args[0], (ast.GeneratorExp, ast.ListComp))
    ):
        yield from _atoms(test.args[0].elt)
    else:
        yield test


def one_sided_asserts(source: str) -> list[str]:
    """The asserts in a claim cell that bound a quantity on one side only, with nothing saying that one side is
    the claim: ``x < 0.5 * y`` passes for a negative x, so a sentence "x is positive but much smaller than y"
    needs ``0 < x < 0.5 * y``.

    An inequality counts as two-sided when it is chained (``lo < x < hi``), when it bounds a closeness
    (``abs(a - b) < tol``, ``np.abs(d).max() < tol``), or when the cell bounds the same expression from the other
    side in another assert. Any other inequality needs the comment ``# one-sided`` on one of its lines, with the
    reason (the sentence is an ordering, "more than 100x", "at least"...). Equalities and calls pass.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    upper, lower, single = set(), set(), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        marked = any(ONE_SIDED_MARK in lines[i - 1] for i in range(node.lineno, node.end_lineno + 1))
        for atom in _atoms(node.test):
            if not isinstance(atom, ast.Compare) or len(atom.ops) != 1:
                continue  # a call (np.allclose, ...), a chained comparison, a bare flag
            op = atom.ops[0]
            if not isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                continue  # ==, !=, in, is
            left, right = ast.unparse(atom.left), ast.unparse(atom.comparators[0])
            if any(word in side for side in (left, right) for word in CLOSENESS):
                continue
            small, big = (left, right) if isinstance(op, (ast.Lt, ast.LtE)) else (right, left)
            upper.add(small)
            lower.add(big)
            if not marked:
                single.append((small, big, ast.unparse(atom)))
    return [text for small, big, text in single if not (small in lower or big in upper)]


def test_one_sided_assert_detector():
    """It flags the defect (a bound that a value of the wrong sign also passes) and nothing two-sided."""
    found = one_sided_asserts("assert rise_raw > 0  # one-sided: a rise\nassert rise_net < 0.5 * rise_raw")
    assert found == ["rise_net < 0.5 * rise_raw"]  # notebook 06's old claim: a fall passes it
    assert one_sided_asserts("assert r < 0.9") == ["r < 0.9"]
    assert one_sided_asserts("assert all(a < b for a, b in pairs)") == ["a < b"]
    assert one_sided_asserts("assert r < 0.9  # one-sided: 'below 0.9' is the claim") == []
    assert one_sided_asserts("assert 0 < rise_net < 0.5 * rise_raw") == []
    assert one_sided_asserts("assert abs(w - 2) < 0.05 and np.abs(d).max() < 1e-4") == []
    assert one_sided_asserts("assert x > 0.2\nassert x < 0.8") == []  # bounded from both sides in the cell
    assert one_sided_asserts("assert np.allclose(a, b) and n == 3") == []


def _claim_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "claim" in c.metadata.get("tags", [])]


@_committed
def test_claims_are_two_sided(path):
    """Every claim bounds what it measures from both sides, or says why one side is the whole sentence."""
    found = {}
    for cell in _claim_cells(_read(path)):
        bad = one_sided_asserts(cell.source)
        if bad:
            found[cell.source.splitlines()[0][:60]] = bad
    assert not found, f"{path.name}: one-sided asserts without '{ONE_SIDED_MARK}: why' (cell: asserts): {found}"


EXERCISE = re.compile(r"^##+ Exercise (\d+)", re.M)
ANSWER = re.compile(r"Exercise (\d+)")


@_committed
def test_every_solution_is_checked_by_a_claim(path):
    """Solutions state results too: after the Solutions heading, each exercise's answer is followed (before the
    next answer) by a code cell tagged `claim`."""
    nb = _read(path)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    exercises = sorted({int(n) for m in markdown for n in EXERCISE.findall(m)})
    headings = [c.cell_type == "markdown" and re.search(r"^##+ Solutions", c.source, re.M) for c in nb.cells]
    start = next((i for i, found in enumerate(headings) if found), None)
    assert start is not None, f"{path.name}: no '## Solutions' heading"
    checked, current = set(), None
    for cell in nb.cells[start:]:
        if cell.cell_type == "markdown":
            named = ANSWER.findall(cell.source)
            current = int(named[-1]) if named else current
        elif "claim" in cell.metadata.get("tags", []) and current is not None:
            checked.add(current)
    missing = [n for n in exercises if n not in checked]
    assert not missing, f"{path.name}: the solutions of exercises {missing} have no claim cell after them"


@_committed
def test_notebook_outputs_have_no_run_dependent_values(path):
    nb = _read(path)
    assert "widgets" not in nb.metadata, f"{path.name}: ipywidgets state in the notebook metadata"
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        for out in c.get("outputs", []):
            assert WIDGET_MIME not in out.get("data", {}), f"{path.name}: a widget output in {c.source[:60]!r}"
            if out.get("output_type") == "stream":
                assert out.get("name") != "stderr" or not timing_in(out.get("text", "")), (
                    f"{path.name}: a progress bar on stderr in {c.source[:60]!r}"
                )
        found = [t for text in _text_outputs(c) for t in timing_in(text)]
        assert not found, f"{path.name}: run-dependent values {found[:3]} in the output of {c.source[:60]!r}"


@_committed
def test_notebook_size(path):
    size = path.stat().st_size
    assert size <= MAX_BYTES, f"{path.name} is {size / 1e6:.2f} MB, over the {MAX_BYTES / 1e6:g} MB budget"


@_committed
def test_notebook_structure(path):
    """A way in (the lecture pointer first) and a way through (exercises, with answers to reveal)."""
    nb = _read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell is not markdown"
    assert COURSE_PAGE in first.source, f"{path.name}: the first cell does not link {COURSE_PAGE}"
    internal = [c.source[:60] for c in nb.cells if INTERNAL_PATH in c.source]
    assert not internal, f"{path.name}: a path that exists only in this repository's development setup: {internal}"
    assert any(s.lower() in first.source.lower() for s in SECTIONS), (
        f"{path.name}: the first cell names none of the lecture's sections {SECTIONS}"
    )
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    exercises = [m for m in markdown if re.search(r"^## Exercise", m, re.M)]
    assert exercises, f"{path.name} has no '## Exercise' heading"
    answers = any(re.search(r"^##+ .*(Solutions|Answers)", m, re.M | re.I) for m in markdown) or any(
        c.metadata.get("jupyter", {}).get("source_hidden") or "<details>" in c.source for c in nb.cells
    )
    assert answers, f"{path.name}: no answers to reveal (a '## Solutions' section, a collapsed cell or <details>)"


# ------------------------------------------------------------------- the runner ---
def _notebook(folder, *sources, name="t.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_runner_executes_writes_and_sets_environment(tmp_path):
    path = _notebook(
        tmp_path,
        "import os\nprint(os.environ.get('MINAE_FAST'), os.environ.get('https_proxy'), os.getcwd())",
        "2 + 3",
    )
    before = path.read_text()
    result = notebooks.run_notebook(path, fast=True, write=False)
    assert result.ok, result.describe()
    assert path.read_text() == before  # without write, the file is untouched

    result = notebooks.run_notebook(path, fast=True, write=True)
    assert result.ok, result.describe()
    nb = nbformat.read(path, as_version=4)
    fast, proxy, cwd = nb.cells[0].outputs[0]["text"].split()
    assert fast == "1"
    assert proxy.startswith("http://127.0.0.1:")
    assert Path(cwd).resolve() == tmp_path.resolve()
    assert nb.cells[1].outputs[0]["data"]["text/plain"] == "5"
    assert not list(tmp_path.glob(".tmp-*"))  # the atomic write left no temporary file
    assert "execution" not in json.dumps(nb.cells[1].metadata)  # no timestamps


def test_runner_reports_the_failing_cell_and_keeps_the_file(tmp_path, monkeypatch, capsys):
    path = _notebook(tmp_path, "x = 1", "def f():\n    return 1 / 0\nf()", "x + 1", name="01-broken.ipynb")
    before = path.read_text()
    monkeypatch.setattr(notebooks, "find_notebooks_dir", lambda: tmp_path)
    assert notebooks.main(["--execute", "01"]) == 1
    out = capsys.readouterr().out
    assert "FAIL 01-broken.ipynb" in out
    assert "--- cell 1 ---" in out and "return 1 / 0" in out
    assert "ZeroDivisionError" in out
    assert path.read_text() == before  # a failed run writes nothing

    result = notebooks.run_notebook(path)
    assert not result.ok and result.cell_index == 1 and "ZeroDivisionError" in result.error


def test_list_notebooks_by_prefix(tmp_path):
    a = _notebook(tmp_path, "1", name="00-a.ipynb")
    b = _notebook(tmp_path, "1", name="01-b.ipynb")
    assert notebooks.list_notebooks(folder=tmp_path) == [a, b]
    assert notebooks.list_notebooks(["01"], folder=tmp_path) == [b]
    assert notebooks.list_notebooks(["00-a.ipynb", "00"], folder=tmp_path) == [a]
    with pytest.raises(FileNotFoundError, match="no notebook matches '07'"):
        notebooks.list_notebooks(["07"], folder=tmp_path)


def test_missing_notebooks_folder_is_explained(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(notebooks, "__file__", str(tmp_path / "site-packages" / "minae" / "notebooks.py"))
    with pytest.raises(FileNotFoundError, match="ship with the repository"):
        notebooks.find_notebooks_dir()
    assert notebooks.main([]) == 2
    assert "ship with the repository" in capsys.readouterr().err


def test_execute_records_the_sources_and_check_finds_them_stale(tmp_path, monkeypatch, capsys):
    """The record names the minae files the kernel imported; changing one makes the notebook stale."""
    root = tmp_path / "repo"
    shutil.copytree(FOLDER.parent / "minae", root / "minae", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    path = _notebook(root / "notebooks", "import minae.io\nprint('hi')", name="00-t.ipynb")
    monkeypatch.setattr(notebooks, "__file__", str(root / "minae" / "notebooks.py"))
    assert notebooks.stale_reason(path).startswith("00-t.ipynb has no record")

    result = notebooks.run_notebook(path, fast=False, write=True)
    assert result.ok, result.describe()
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) == 1 and nb.cells[0].outputs[0]["text"] == "hi\n"  # the report cell is not saved
    record = notebooks.executed_with(nb)
    assert record["settings"] == "full"
    assert {"minae/__init__.py", "minae/io.py", "minae/backend.py"} <= set(record["sources"])
    assert "minae/notebooks.py" not in record["sources"]  # imported by the runner, not by the kernel
    assert notebooks.stale_reason(path, root=root) is None
    assert notebooks.main(["--check"]) == 0

    io = (root / "minae" / "io.py").read_text()
    (root / "minae" / "io.py").write_text('"""Another docstring."""\n# a comment\n' + io.split('"""', 2)[2])
    assert notebooks.stale_reason(path, root=root) is None  # docstrings and comments do not change outputs
    (root / "minae" / "io.py").write_text(io + "\nCHANGED = 1\n")
    reason = notebooks.stale_reason(path, root=root)
    assert "minae/io.py" in reason and "minae/backend.py" not in reason
    assert "python -m minae.notebooks --execute 00" in reason
    capsys.readouterr()
    assert notebooks.main(["--check"]) == 1
    assert "minae/io.py" in capsys.readouterr().out

    notebooks.run_notebook(path, fast=True, write=True)
    assert "'fast' settings" in notebooks.stale_reason(path, root=root)


def test_runner_refuses_outputs_from_another_minae(tmp_path, monkeypatch):
    path = _notebook(tmp_path, "import minae")
    elsewhere = tmp_path / "other" / "minae"
    elsewhere.mkdir(parents=True)
    monkeypatch.setattr(notebooks, "__file__", str(elsewhere / "notebooks.py"))
    monkeypatch.setattr(notebooks, "_repo_root", lambda: FOLDER.parent)  # the kernel imports the real one
    result = notebooks.run_notebook(path, write=True)
    assert not result.ok and "the kernel imported minae from" in result.error and str(elsewhere) in result.error
    assert "executed_with" not in path.read_text()


def test_adjacent_prints_are_saved_as_one_output():
    """The kernel flushes a cell's prints in chunks that vary from run to run; the saved file must not."""
    from minae.notebooks import _merged_streams

    out = nbformat.v4.new_output
    cell = [
        out("stream", name="stdout", text="a\n"),
        out("stream", name="stdout", text="b\n"),
        out("stream", name="stderr", text="c\n"),
        out("display_data", data={"text/plain": "x"}),
        out("stream", name="stdout", text="d\n"),
    ]
    merged = _merged_streams(cell)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in merged] == [
        ("stream", "stdout", "a\nb\n"),
        ("stream", "stderr", "c\n"),
        ("display_data", None, None),
        ("stream", "stdout", "d\n"),
    ]


def test_no_notebook_shows_a_docstring():
    """The staleness record hashes the code without its docstrings (``notebooks.code_digest``): a notebook that
    printed one would go stale unseen when it changed."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert not re.search(r"\bhelp\(|__doc__|getdoc|getsource|^\s*[\w.]+\?\??\s*$", cell.source, re.M), (
                    path.name,
                    cell.source[:80],
                )
