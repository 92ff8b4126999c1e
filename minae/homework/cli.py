"""The ``minae-homework`` command (also ``python -m minae.homework``).

::

    minae-homework list                          the assignments, their tasks and where they are marked
    minae-homework check                         is the marking consistent (markers, tasks, tests)?
    minae-homework build 1 --out hw1             write the student copy of assignment 1 into hw1/
    minae-homework grade hw1                     grade it (the assignment comes from hw1/.minae-homework.json)
    minae-homework grade . --assignment 1        grade the reference project itself (full marks)

``grade`` exits with status 0 only when every task passes; ``build`` and
``check`` exit with 1 when the marking has a problem.
"""

from __future__ import annotations

import argparse
import sys

from .assignments import ASSIGNMENTS, TASKS


def _parser():
    p = argparse.ArgumentParser(
        prog="minae-homework", description="Homework built from minae's reference code, graded locally."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,grade,list,check}")

    b = sub.add_parser("build", help="write a student copy of one assignment")
    b.add_argument("assignment", type=int, choices=sorted(ASSIGNMENTS), help="the assignment's number")
    b.add_argument("--out", required=True, help="the folder to write (new, or an earlier copy with --force)")
    b.add_argument("--source", help="the reference project (default: the one this minae is installed from)")
    b.add_argument(
        "--keep-later",
        action="store_true",
        help="leave later assignments' code solved (by default it is cut out too)",
    )
    b.add_argument("--force", action="store_true", help="replace an earlier student copy in --out")

    g = sub.add_parser("grade", help="run an assignment's tests against a copy and print the scores")
    g.add_argument("root", nargs="?", default=".", help="the student copy's folder (default: .)")
    g.add_argument("--assignment", type=int, choices=sorted(ASSIGNMENTS), help="default: the copy's own")
    g.add_argument("--timeout", type=float, default=900, help="seconds for the whole run (default 900)")
    g.add_argument("--test-timeout", type=float, default=60, help="seconds per test (default 60; 0: none)")
    g.add_argument(
        "--fresh-tests",
        action="store_true",
        help="grade with this grader's own tests and test helpers, not the copy's (edited tests count for nothing)",
    )
    g.add_argument("-v", "--verbose", action="store_true", help="also print pytest's own output")

    sub.add_parser("list", help="the assignments and their tasks, with where each is marked")
    c = sub.add_parser("check", help="check the marking of the reference code")
    c.add_argument("--source", help="the reference project (default: the one this minae is installed from)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args)
        if args.command == "grade":
            from .grade import grade

            result = grade(
                args.root,
                args.assignment,
                timeout=args.timeout,
                test_timeout=args.test_timeout,
                verbose=args.verbose,
                fresh_tests=args.fresh_tests,
            )
            return 0 if result.ok else 1
        if args.command == "list":
            return _list()
        if args.command == "check":
            return _check(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"minae-homework {args.command}: {e}", file=sys.stderr)
        return 2
    return 2


def _build(args) -> int:
    from .build import build

    manifest = build(args.assignment, args.out, source=args.source, keep_later=args.keep_later, force=args.force)
    print(f"wrote the student copy of assignment {manifest['assignment']} ({manifest['title']}) to {args.out}")
    for t in manifest["tasks"]:
        where = ", ".join(f"{w['file']}:{w['line']} {w['name']}" for w in t["where"])
        print(f"  task {t['id']} ({t['points']} points) {t['title']}: {where}")
    if manifest["notebooks"]:
        print(f"  notebooks: {', '.join(manifest['notebooks'])}")
    if manifest["later_tasks_stubbed"]:
        print(f"  also cut out (later assignments): {', '.join(manifest['later_tasks_stubbed'])}")
    for warning in manifest["warnings"]:
        print(f"  warning: {warning}")
    print(f"students: pip install -e {args.out} && minae-homework grade {args.out}")
    return 0


def _list() -> int:
    from .build import scan

    try:
        blocks = scan()
    except FileNotFoundError:
        blocks = []
    for a in ASSIGNMENTS.values():
        notebooks = f"   notebooks {', '.join(a.notebooks)}" if a.notebooks else ""
        print(f"assignment {a.number}: {a.title} ({a.points} points){notebooks}")
        for t in a.tasks:
            where = ", ".join(
                f"{path}:{line}" for path, line in sorted({(b.path, b.line) for b in blocks if b.task == t.id})
            )
            print(f"  {t.id}  {t.title:<45} {t.points:>3}  {where}")
    unknown = sorted({b.task for b in blocks} - set(TASKS))
    if unknown:
        print(f"marked but not registered: {', '.join(unknown)}")
    return 0


def _check(args) -> int:
    from .build import problems, scan

    issues = problems(args.source)
    if issues:
        print("the homework marking has problems:")
        for issue in issues:
            print(f"  {issue}")
        return 1
    blocks = scan(args.source)
    print(f"ok: {len(blocks)} solution blocks for {len(TASKS)} tasks in {len(ASSIGNMENTS)} assignments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
