"""``minae-homework grade-all``: a class's submissions graded into one CSV gradebook.

Each submission is graded as ``grade`` grades one copy (children that hand back
data, per-test and per-task time limits, the reference's verdict), several at a
time (up to the CPU count), all with the same seed, so the reference is computed
once. A submission that cannot be graded is a row of zeros with the reason.
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .assignments import assignment_of

__all__ = ["grade_all"]

MAX_UNZIPPED = 200 * 2**20  # bytes a zipped submission may unpack to


def _unzip(path: Path, into: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        if sum(i.file_size for i in zf.infolist()) > MAX_UNZIPPED:
            raise ValueError(f"{path.name} unpacks to more than {MAX_UNZIPPED // 2**20} MB")
        for info in zf.infolist():
            target = (into / info.filename).resolve()
            if not target.is_relative_to(into.resolve()):
                raise ValueError(f"{path.name} holds a path outside the archive: {info.filename}")
        zf.extractall(into)
    return into


def _grade_one(submission: Path, number: int, seed: int, timeout: float, test_timeout: float):
    from .grade import grade

    with tempfile.TemporaryDirectory(prefix="minae-gradebook-") as tmp:
        folder = submission
        if submission.is_file() and submission.suffix == ".zip":
            folder = _unzip(submission, Path(tmp) / "unzipped")
        if not folder.is_dir():
            raise FileNotFoundError(f"{submission} is neither a folder nor a .zip")
        for candidate in [folder] + sorted(p for p in folder.iterdir() if p.is_dir()):
            if (candidate / "minae" / "__init__.py").is_file():
                folder = candidate
                break
        else:
            raise FileNotFoundError(f"{submission} holds no copy of minae (no minae/__init__.py)")
        return grade(folder, number, stream=False, seed=seed, timeout=timeout, test_timeout=test_timeout)


def grade_all(submissions, assignment, csv_path, jobs=None, seed=None, timeout=300, test_timeout=60, stream=None):
    """Grade every submission (folders or .zip files) for ``assignment``; write ``csv_path``; returns the rows."""
    import secrets

    from .grade import _reference_events, has_reference

    a = assignment_of(assignment)
    seed = secrets.randbelow(10**6) if seed is None else int(seed)
    if has_reference():
        for t in a.tasks:  # computed once, here, before the submissions run in parallel
            _reference_events(t.id, seed)
    subs = [Path(s) for s in submissions]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))

    def one(path):
        try:
            return path, _grade_one(path, a.number, seed, timeout, test_timeout), None
        except Exception as e:  # a broken submission is a row of zeros, never a crash of the run
            return path, None, f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = list(pool.map(one, subs))
    rows = []
    for path, result, reason in graded:
        row = {"submission": str(path)}
        for t in a.tasks:
            row[t.id] = result.task(t.id).earned if result is not None else 0
        row["total"] = result.earned if result is not None else 0
        row["reason"] = reason or ""
        rows.append((row, result))
    csv_path = Path(csv_path)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", *[t.id for t in a.tasks], "total", "reason"])
        writer.writeheader()
        writer.writerows(row for row, _ in rows)
    out = sys.stdout if stream is None else stream
    if out:
        print(f"Assignment {a.number}: {len(rows)} submissions graded (seed {seed}), gradebook in {csv_path}", file=out)
        for t in a.tasks:
            done = [r.task(t.id) for _, r in rows if r is not None]
            complete = sum(x.complete for x in done)
            failures = Counter(x.failure for x in done if not x.complete and x.failure)
            common = failures.most_common(1)
            line = f"  {t.id} {t.title}: {complete}/{len(rows)} complete"
            if common:
                line += f"; most common first failure ({common[0][1]}×): {common[0][0]}"
            print(line, file=out)
        broken = [row for row, r in rows if r is None]
        for row in broken:
            print(f"  could not grade {row['submission']}: {row['reason']}", file=out)
    return [row for row, _ in rows]
