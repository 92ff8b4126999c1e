"""Run the read-along notebooks: the one place in minae that executes them.

::

    python -m minae.notebooks                     # run every notebooks/*.ipynb, report pass/fail
    python -m minae.notebooks --fast 01 02        # small settings (MINAE_FAST=1), two notebooks
    python -m minae.notebooks --execute           # run them and write the outputs into the files

Each notebook runs top to bottom in a fresh ``python3`` Jupyter kernel (nbclient), with the
``notebooks/`` folder as its working directory and a time limit per cell. ``--fast`` sets
``MINAE_FAST=1`` in the kernel's environment, which the notebooks read to pick small settings
(the tests run them that way); without it they use the settings of the committed pictures.
``--execute`` writes the executed notebook back over the .ipynb atomically (a temporary file,
then ``os.replace``), so an interrupted run leaves the old file intact. Without it, nothing is
written: the run only reports, for a failure, the cell's number, its source and the error.
The exit status is 0 when every notebook ran, 1 otherwise.

``--execute`` also records in the notebook's metadata (``metadata["minae"]["executed_with"]``)
what the outputs were produced by: the settings (``full`` or ``fast``) and every ``minae/``
source file the kernel imported, with a SHA-256 of each and one of them all (relative paths
and bytes). ``python -m minae.notebooks --check`` (and the tests) compare that record with the
files in the tree and name the notebooks whose outputs are stale, and the files that changed.
The kernel imports the ``minae`` next to this runner (its folder is put first on PYTHONPATH).

NAMES select notebooks by file name or prefix (``01``, ``01-latent-variable-energy``, or
the full ``.ipynb`` name). The notebooks live in the repository, next to the package; an
installed wheel has none, and the runner says so.

From Python: ``run_notebook(path, fast=True)`` returns a ``NotebookResult`` (``ok``,
``seconds``, and for a failure ``cell_index``, ``source``, ``error``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .io import atomic_write

__all__ = [
    "NotebookResult",
    "executed_with",
    "find_notebooks_dir",
    "list_notebooks",
    "main",
    "run_notebook",
    "sources_digest",
    "stale_reason",
]

RECORD_KEY = "minae"  # notebook metadata key of the record of what the outputs came from

# Run after the notebook's own cells and removed before the file is written: the minae modules
# the kernel really imported, so the record names exactly the code behind the outputs.
_REPORT_MARK = "minae-notebooks-report:"
_REPORT_CELL = f"""import sys as _sys
print({_REPORT_MARK!r} + __import__("json").dumps(sorted(
    m.__file__ for n, m in list(_sys.modules.items())
    if (n == "minae" or n.startswith("minae.")) and getattr(m, "__file__", None))))"""

# Where a notebook that reaches for the network should fail at once rather than hang: the
# kernel's HTTP(S) clients are pointed at a closed local port (the kernel's own ZeroMQ
# sockets do not use these variables).
_OFFLINE_ENV = {
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "",
    "NO_PROXY": "",
}


@dataclass
class NotebookResult:
    """The outcome of one run: ``ok``; for a failure the code cell's index (0-based, among all
    cells), its source and the error (name, value and traceback as text)."""

    path: Path
    ok: bool
    seconds: float
    cell_index: int | None = None
    source: str | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"PASS {self.path.name} ({self.seconds:.1f} s)"
        lines = [f"FAIL {self.path.name} ({self.seconds:.1f} s)"]
        if self.cell_index is not None:
            lines.append(f"--- cell {self.cell_index} ---")
            lines.append(self.source or "")
        lines.append("--- error ---")
        lines.append(self.error or "")
        return "\n".join(lines)


def find_notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder, next to the ``minae`` package."""
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {folder}: the notebooks ship with the repository, not with the "
            "installed package; clone the repository and install it with `pip install -e .`"
        )
    return folder


def list_notebooks(names=None, folder=None) -> list[Path]:
    """The notebooks in ``folder`` (sorted), or those whose file name equals or starts with one of ``names``."""
    folder = Path(folder) if folder is not None else find_notebooks_dir()
    every = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if not names:
        return every
    chosen = []
    for name in names:
        stem = Path(name).name
        hits = [p for p in every if p.name == stem or p.stem == stem or p.name.startswith(stem)]
        if not hits:
            available = ", ".join(p.name for p in every) or "none"
            raise FileNotFoundError(f"no notebook matches {name!r} in {folder} (available: {available})")
        chosen.extend(p for p in hits if p not in chosen)
    return chosen


def _failing_cell(nb):
    """(index, source, error text) of the first code cell with an error output, or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = "\n".join(out.get("traceback", []))
                return i, cell.source, _strip_ansi(tb) or f"{out.get('ename')}: {out.get('evalue')}"
    return None


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


def code_digest(path) -> str:
    """sha256 of what a source file does: for Python, its syntax tree without docstrings or positions (a comment,
    a docstring or a reformatting cannot change a notebook's outputs, and no notebook prints a docstring: a test
    checks that); any other file, or Python that does not parse, by its bytes."""
    data = Path(path).read_bytes()
    if Path(path).suffix == ".py":
        try:
            tree = ast.parse(data)
        except SyntaxError:
            return hashlib.sha256(data).hexdigest()
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
                first = body[0]
                if (
                    isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                ):
                    node.body = body[1:] or [ast.Pass()]
        return "ast:" + hashlib.sha256(ast.dump(tree).encode()).hexdigest()
    return hashlib.sha256(data).hexdigest()


def sources_digest(files, root=None) -> dict:
    """{"files": {relative path: its ``code_digest``}, "sha256": one hash of (path, digest) for all}.

    files: paths (absolute, or relative to ``root``, the folder holding the ``minae`` package).
    A file that no longer exists gets the hash ``"missing"``.
    """
    root = Path(root) if root is not None else _repo_root()
    each = {}
    for f in files:
        f = Path(f)
        rel = (f.resolve().relative_to(root.resolve()) if f.is_absolute() else f).as_posix()
        full = root / rel
        each[rel] = code_digest(full) if full.is_file() else "missing"
    total = hashlib.sha256()
    for rel in sorted(each):
        total.update(rel.encode() + b"\0" + each[rel].encode() + b"\n")
    return {"files": dict(sorted(each.items())), "sha256": total.hexdigest()}


def executed_with(nb) -> dict | None:
    """The record ``--execute`` left in a notebook (a NotebookNode, or a path), or None."""
    if isinstance(nb, (str, Path)):
        import nbformat

        nb = nbformat.read(Path(nb), as_version=4)
    return nb.get("metadata", {}).get(RECORD_KEY, {}).get("executed_with")


def stale_reason(path, root=None) -> str | None:
    """Why a committed notebook's outputs may not be what the current code produces, or None.

    Stale: no record (never executed by ``--execute``), executed with the fast settings, or any
    recorded ``minae/`` file changed (or gone) since. The message says which, and how to redo it.
    """
    path = Path(path)
    redo = f"re-execute it: `python -m minae.notebooks --execute {path.name[:2]}`"
    record = executed_with(path)
    if not record or "sources" not in record:
        return f"{path.name} has no record of what it was executed against; {redo}"
    if record.get("settings") != "full":
        return f"{path.name} was executed with the {record.get('settings')!r} settings, not the full ones; {redo}"
    now = sources_digest(record["sources"], root)
    if now["sha256"] == record.get("sha256"):
        return None
    changed = [f for f, h in now["files"].items() if record["sources"].get(f) != h]
    shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    return f"{path.name} was executed against minae sources that have changed since: {shown}; {redo}"


def _pop_report(nb):
    """Remove the report cell; return the files it printed (None if it printed nothing)."""
    cell = nb.cells.pop()
    for out in cell.get("outputs", []):
        text = out.get("text", "")
        if out.get("output_type") == "stream" and _REPORT_MARK in text:
            return json.loads(text.split(_REPORT_MARK, 1)[1])
    return None


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _merged_streams(outputs) -> list:
    """Adjacent stdout (or stderr) outputs as one: how the kernel happened to flush a cell's prints
    changes from run to run, and the committed file should not."""
    merged = []
    for out in outputs:
        last = merged[-1] if merged else None
        if out.output_type == "stream" and last is not None and last.output_type == "stream" and last.name == out.name:
            last.text += out.text
        else:
            merged.append(out)
    return merged


def _write_atomic(nb, path: Path) -> None:
    import nbformat

    with atomic_write(path, "w") as fh:
        nbformat.write(nb, fh)


def run_notebook(
    path,
    fast: bool = False,
    write: bool = False,
    timeout: int = 600,
    offline: bool = True,
    kernel_name: str = "python3",
) -> NotebookResult:
    """Execute one notebook top to bottom in a fresh kernel; with ``write`` save its outputs.

    fast: ``MINAE_FAST=1`` in the kernel (small settings). timeout: seconds allowed per cell.
    offline: point the kernel's HTTP(S) proxies at a closed port, so any download fails fast.
    The file is written (atomically) only when the whole notebook ran.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path).resolve()
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_REPORT_CELL))
    env = dict(os.environ)
    root = str(_repo_root())  # the kernel imports this minae, whatever is installed
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("MINAE_FAST", None)
    if fast:
        env["MINAE_FAST"] = "1"
    if offline:
        env.update(_OFFLINE_ENV)
    env.setdefault("MINAE_QUIET", "1")  # no progress bars in the saved outputs
    env.pop("MPLBACKEND", None)  # the kernel's inline backend draws the figures into the notebook
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,  # no timestamps in the committed files: reruns give small diffs
    )
    t0 = time.perf_counter()
    try:
        client.execute(env=env, cwd=str(path.parent))
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        seconds = time.perf_counter() - t0
        if nb.cells and nb.cells[-1].source == _REPORT_CELL:
            nb.cells.pop()
        found = _failing_cell(nb)
        if found is None:  # a timeout or a dead kernel leaves no error output: find the cell that was running
            index = next(
                (i for i, c in reversed(list(enumerate(nb.cells))) if c.cell_type == "code" and c.get("outputs")),
                None,
            )
            return NotebookResult(
                path,
                False,
                seconds,
                index,
                nb.cells[index].source if index is not None else None,
                f"{type(exc).__name__}: {_strip_ansi(str(exc))}",
            )
        index, source, error = found
        return NotebookResult(path, False, seconds, index, source, error)
    seconds = time.perf_counter() - t0
    files = _pop_report(nb)
    package = Path(__file__).resolve().parent
    foreign = [f for f in files or [] if package not in Path(f).resolve().parents]
    if files is None or foreign:
        where = foreign[0] if foreign else "nowhere (no minae module was imported)"
        return NotebookResult(
            path, False, seconds, None, None,
            f"the kernel imported minae from {where}, not from {package}: the outputs would not come from "
            "this code; run from the repository root or set PYTHONPATH to it",
        )  # fmt: skip
    if write:
        record = sources_digest(files)
        nb.metadata.setdefault(RECORD_KEY, {})["executed_with"] = {
            "settings": "fast" if fast else "full",
            "sha256": record["sha256"],
            "sources": record["files"],
        }
        nb.metadata.pop("widgets", None)  # widget state: GitHub refuses a notebook whose state is missing
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = _merged_streams(cell.outputs)
        _write_atomic(nb, path)
    return NotebookResult(path, True, seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minae.notebooks",
        description="Run the read-along notebooks top to bottom (and, with --execute, save their outputs).",
    )
    parser.add_argument("names", nargs="*", help="notebooks to run, by file name or prefix (default: all)")
    parser.add_argument("--execute", action="store_true", help="write the outputs back into the .ipynb files")
    parser.add_argument("--fast", action="store_true", help="small settings: MINAE_FAST=1 in the kernel")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument(
        "--check", action="store_true", help="run nothing: list the notebooks whose outputs are stale, and why"
    )
    args = parser.parse_args(argv)
    try:
        paths = list_notebooks(args.names)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 2
    if args.check:
        reasons = [r for r in (stale_reason(p) for p in paths) if r]
        print("\n".join(reasons) if reasons else f"all {len(paths)} notebooks are up to date")
        return 1 if reasons else 0
    failed = 0
    for path in paths:
        print(f"running {path.name} ...", flush=True)
        result = run_notebook(path, fast=args.fast, write=args.execute, timeout=args.timeout)
        print(result.describe(), flush=True)
        failed += not result.ok
    print(f"{len(paths) - failed} of {len(paths)} notebooks ran" + (", outputs written" if args.execute else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
