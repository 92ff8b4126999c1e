"""The ``minae-homework`` command (also ``python -m minae.homework``).

::

    minae-homework list                          the assignments, their tasks and where they are marked
    minae-homework check                         the marking, and each solution put back alone earns its task
    minae-homework build 1 --out hw1             write the student copy of assignment 1 into hw1/
    minae-homework grade hw1                     grade it (the assignment comes from hw1/.minae-homework.json)
    minae-homework grade . --assignment 1        grade the reference project itself (full marks)
    minae-homework autograder 1 --out a1.zip     a Gradescope autograder for assignment 1
    minae-homework grade-all sub/* --assignment 1 --csv grades.csv    a gradebook of many copies

``grade`` exits with status 0 only when every task passes; ``build`` and
``check`` exit with 1 when the marking has a problem.
"""

from __future__ import annotations

import argparse
import os
import sys

from .assignments import ASSIGNMENTS, TASKS


def _parser():
    p = argparse.ArgumentParser(
        prog="minae-homework", description="Homework built from minae's reference code, graded locally."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{build,grade,grade-all,autograder,list,check}")

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

    g = sub.add_parser("grade", help="grade a copy: its code runs in child processes, the verdict is the grader's")
    g.add_argument("root", nargs="?", default=".", help="the student copy's folder (default: .)")
    g.add_argument(
        "--assignment",
        type=int,
        choices=sorted(ASSIGNMENTS),
        help="which assignment to grade (required with a reference; a student's own copy may leave it out)",
    )
    _limits(g)
    g.add_argument("--seed", type=int, help="repeat the inputs of an earlier run (default: fresh ones, printed)")
    g.add_argument("--fresh-tests", action="store_true", help=argparse.SUPPRESS)  # always so now
    g.add_argument("-v", "--verbose", action="store_true", help="also print what the tests printed (truncated)")

    ga = sub.add_parser("grade-all", help="grade many copies (folders or .zip files) into a CSV gradebook")
    ga.add_argument("submissions", nargs="+", help="the students' copies: folders or .zip files")
    ga.add_argument("--assignment", type=int, required=True, choices=sorted(ASSIGNMENTS))
    ga.add_argument("--csv", required=True, help="the gradebook to write")
    ga.add_argument("--jobs", type=int, help="copies graded at once (default: the CPU count)")
    ga.add_argument("--seed", type=int, help="default: a fresh one, printed (the same for every copy)")
    _limits(ga)

    ag = sub.add_parser("autograder", help="write a Gradescope autograder zip for one assignment")
    ag.add_argument("assignment", type=int, choices=sorted(ASSIGNMENTS))
    ag.add_argument("--out", required=True, help="the zip to write, e.g. autograder.zip")
    ag.add_argument("--source", help="the reference project (default: the one this minae is installed from)")

    gs = sub.add_parser("gradescope", help=argparse.SUPPRESS)  # what the autograder's run_autograder calls
    gs.add_argument("--assignment", type=int, required=True, choices=sorted(ASSIGNMENTS))
    gs.add_argument("--root", default=os.environ.get("AUTOGRADER_ROOT", "/autograder"))
    gs.add_argument("--copy", required=True)
    _limits(gs)

    sub.add_parser("list", help="the assignments and their tasks, with where each is marked")
    c = sub.add_parser("check", help="check the marking, and that each solution put back alone earns its task")
    c.add_argument("--source", help="the reference project (default: the one this minae is installed from)")
    c.add_argument("--assignment", type=int, choices=sorted(ASSIGNMENTS), help="put back only this one's tasks")
    c.add_argument("--markers-only", action="store_true", help="skip the put-back pass (it grades a copy per task)")
    return p


def _limits(parser) -> None:
    parser.add_argument("--timeout", type=float, default=300, help="seconds per task, all its tests (default 300)")
    parser.add_argument("--test-timeout", type=float, default=60, help="seconds per test (default 60; 0: none)")
    parser.add_argument(
        "--no-sandbox",
        action="store_true",
        help="where no sandbox can run (no bubblewrap, not root): run the student's code as yourself anyway",
    )


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
                seed=args.seed,
                no_sandbox=args.no_sandbox,
            )
            return 0 if result.ok else 1
        if args.command == "grade-all":
            from .gradebook import grade_all

            grade_all(
                args.submissions,
                args.assignment,
                args.csv,
                jobs=args.jobs,
                seed=args.seed,
                timeout=args.timeout,
                test_timeout=args.test_timeout,
                no_sandbox=args.no_sandbox,
            )
            return 0
        if args.command == "autograder":
            from .autograder import write_autograder

            out = write_autograder(args.assignment, args.out, source=args.source)
            print(f"wrote {out}: upload it as the Gradescope autograder of assignment {args.assignment}")
            return 0
        if args.command == "gradescope":
            from .autograder import gradescope_run

            data = gradescope_run(
                args.assignment, args.root, args.copy, args.timeout, args.test_timeout, no_sandbox=args.no_sandbox
            )
            print(f"score {data['score']}; results in {args.root}/results/results.json")
            return 0
        if args.command == "list":
            return _list()
        if args.command == "check":
            return _check(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as e:
        from .grade import clean

        print(f"minae-homework {args.command}: {clean(e)}", file=sys.stderr)
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
    if blocks:
        print(
            "line numbers: the reference's (this project's files, with the solutions in them); a student copy's "
            "HOMEWORK.md and its stubs give the copy's own line numbers"
        )
    unknown = sorted({b.task for b in blocks} - set(TASKS))
    if unknown:
        print(f"marked but not registered: {', '.join(unknown)}")
    return 0


def _check(args) -> int:
    from .build import problems, reference_root, scan

    src = args.source or reference_root()
    print(f"checking the reference tree {src}")
    issues = problems(src)
    if issues:
        print("the homework marking has problems:")
        for issue in issues:
            print(f"  {issue}")
        return 1
    blocks = scan(src)
    print(f"markers ok: {len(blocks)} solution blocks for {len(TASKS)} tasks in {len(ASSIGNMENTS)} assignments")
    for a in ASSIGNMENTS.values():
        if a.points != 100:
            print(
                f"note: assignment {a.number}'s points add up to {a.points}, not 100 "
                f"(allowed: graded out of {a.points})"
            )
    if args.markers_only:
        return 0
    from .verify import put_back_problems

    numbers = [args.assignment] if args.assignment else list(ASSIGNMENTS)
    found = []
    for n in numbers:
        print(f"assignment {n}: each solution put back alone into a built copy")
        found += put_back_problems(n, src, stream=sys.stdout)
    if found:
        print("the put-back pass found problems:")
        for issue in found:
            print(f"  {issue}")
        return 1
    print("ok: no test passes against a stub, and each solution alone earns exactly its task")
    return 0


if __name__ == "__main__":
    sys.exit(main())
