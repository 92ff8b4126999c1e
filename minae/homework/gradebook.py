"""``minae-homework grade-all``: a class's submissions graded into one CSV gradebook.

Each submission is graded as ``grade`` grades one copy: staged on its own and
run in its own sandbox, which shows it no other submission (several at a time
with bubblewrap; one at a time with the fallback user, whose processes are all
killed between two copies), all with the same seed, so the reference is
computed once. A zipped submission is checked before anything is extracted
(entries, sizes, links, paths). A submission that cannot be graded is a row of
zeros with the reason, and the summary counts them.
"""

from __future__ import annotations

import csv
import os
import stat
import sys
import tempfile
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .assignments import assignment_of

__all__ = ["grade_all"]

MAX_UNZIPPED = 200 * 2**20  # bytes a zipped submission may unpack to
MAX_ENTRY = 32 * 2**20  # bytes of one file in it
MAX_ENTRIES = 5000  # files and folders in it
MAX_RATIO = 200  # unpacked bytes per packed byte of an entry (a zip bomb's is in the thousands)


def _unzip(path: Path, into: Path) -> Path:
    """Extract a zipped submission after checking its table of contents: counts, sizes, links, paths."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise ValueError(f"{path.name} holds {len(infos)} entries (more than {MAX_ENTRIES})")
        if sum(i.file_size for i in infos) > MAX_UNZIPPED:
            raise ValueError(f"{path.name} unpacks to more than {MAX_UNZIPPED // 2**20} MB")
        base = into.resolve()
        for info in infos:
            if info.file_size > MAX_ENTRY or info.file_size > MAX_RATIO * max(info.compress_size, 1024):
                raise ValueError(f"{path.name}: {info.filename} unpacks to {info.file_size} bytes")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ValueError(f"{path.name}: {info.filename} is a symbolic link (refused)")
            target = (into / info.filename).resolve()
            if not target.is_relative_to(base):
                raise ValueError(f"{path.name} holds a path outside the archive: {info.filename}")
        for info in infos:  # sizes are checked again while writing: a lying header cannot write more
            target = into / info.filename
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                left = info.file_size
                while chunk := src.read(min(65536, left + 1)):
                    left -= len(chunk)
                    if left < 0:
                        raise ValueError(f"{path.name}: {info.filename} is larger than its header says")
                    dst.write(chunk)
    return into


def _grade_one(submission: Path, number: int, seed: int, timeout: float, test_timeout: float, no_sandbox=False):
    from .grade import grade

    with tempfile.TemporaryDirectory(prefix="minae-gradebook-") as tmp:
        folder = submission
        if submission.is_file() and submission.suffix == ".zip":
            folder = _unzip(submission, Path(tmp) / "unzipped")
        if not folder.is_dir():
            raise FileNotFoundError(f"{submission} is neither a folder nor a .zip")
        for candidate in [folder] + sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()):
            if (candidate / "minae" / "__init__.py").is_file():
                folder = candidate
                break
        else:
            raise FileNotFoundError(f"{submission} holds no copy of minae (no minae/__init__.py)")
        return grade(
            folder, number, stream=False, seed=seed, timeout=timeout, test_timeout=test_timeout, no_sandbox=no_sandbox
        )


def grade_all(
    submissions, assignment, csv_path, jobs=None, seed=None, timeout=300, test_timeout=60, stream=None, no_sandbox=False
):
    """Grade every submission (folders or .zip files) for ``assignment``; write ``csv_path``; returns the rows."""
    import secrets

    from . import sandbox
    from .grade import _reference_events, clean, has_reference

    a = assignment_of(assignment)
    which = sandbox.mode()
    if which == "none" and has_reference() and not no_sandbox:
        raise ValueError(
            f"no sandbox can run here ({sandbox.why_not()}): grading students' copies needs one. "
            "Install bubblewrap, or say --no-sandbox to run their code as yourself"
        )
    seed = secrets.randbelow(10**6) if seed is None else int(seed)
    if has_reference():
        for t in a.tasks:  # computed once, here, before the submissions run in parallel
            _reference_events(t.id, seed)
    subs = [Path(s) for s in submissions]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(subs) or 1))

    def one(path):
        try:
            return path, _grade_one(path, a.number, seed, timeout, test_timeout, no_sandbox), None
        except Exception as e:  # a broken submission is a row of zeros, never a crash of the run
            return path, None, clean(f"{type(e).__name__}: {e}")[:500]

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
    part = csv_path.with_name(csv_path.name + ".part")
    with open(part, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["submission", *[t.id for t in a.tasks], "total", "reason"])
        writer.writeheader()
        writer.writerows(row for row, _ in rows)
    os.replace(part, csv_path)  # written whole, by the grader, after every child has ended
    out = sys.stdout if stream is None else stream
    if out:
        broken = [row for row, r in rows if r is None]
        print(
            f"Assignment {a.number}: {len(rows)} submissions, {len(rows) - len(broken)} graded, "
            f"{len(broken)} could not be graded (seed {seed}, sandbox: {which}), gradebook in {csv_path}",
            file=out,
        )
        for row, r in rows:
            total = f"{row['total']}/{a.points}" if r is not None else "not graded"
            print(f"  {clean(row['submission'])}: {total}", file=out)
        for t in a.tasks:
            done = [r.task(t.id) for _, r in rows if r is not None]
            complete = sum(x.complete for x in done)
            failures = Counter(x.failure for x in done if not x.complete and x.failure).most_common()
            line = f"  {t.id} {t.title}: {complete}/{len(rows)} complete"
            if failures:
                tied = [f for f, n in failures if n == failures[0][1]]
                if len(tied) > 1:
                    line += f"; {len(tied)} first failures tie ({failures[0][1]}× each): " + " | ".join(
                        clean(f) for f in tied[:3]
                    )
                else:
                    line += f"; most common first failure ({failures[0][1]}×): {clean(failures[0][0])}"
            print(line, file=out)
        for row in broken:
            print(f"  could not grade {clean(row['submission'])}: {row['reason']}", file=out)
    return [row for row, _ in rows]
