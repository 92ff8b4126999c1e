"""The read-along notebooks run top to bottom, and minae.notebooks (their runner) behaves.

Every ``notebooks/*.ipynb`` is executed in a fresh Jupyter kernel with ``MINAE_FAST=1`` (small
settings) and its HTTP(S) proxies pointed at a closed port (no network); a failure shows the
cell's source and the error. New notebooks are picked up by file name.
"""

import json
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
