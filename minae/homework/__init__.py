"""Homework built from the library's own code, graded so that the graded code cannot write its grade.

The reference code marks the pieces a student writes as solution blocks, grouped
into numbered tasks (``task 1.3``); ``assignments.py`` gives the tasks their titles
and points, in lecture order. From the one code base:

- ``build(assignment, out)`` writes a student copy of the project in which that
  assignment's blocks raise ``NotImplementedError("task 1.3: hint")``;
- ``grade(root, assignment)`` grades a copy (grade.py): the copy's ``minae``
  package is staged (regular files only, bounded, no link leaving it) and
  imported in a sandboxed child process (sandbox.py: bubblewrap, else a fresh
  unprivileged uid; per-process limits, and totals for all the task's processes
  by a cgroup or a watchdog) that sees its copy and the Python runtime, not the
  grader's files. The tests themselves run in the grader (runner.py): their
  control flow, expected values and checks live here and reach the student's
  code over a framed, bounded pipe protocol (protocol.py, _child.py) that
  carries inputs the grader chose and answers that are data or handles. The
  same tests run against the grader's own ``minae`` (the reference) with the
  same seed, and each check is judged against the reference's;
- ``check("1.3")`` runs one task's tests in this process, against the copy
  itself: quick feedback for the student, not the grade;
- ``grade_all`` grades many copies (each in its own sandbox) into a gradebook;
  ``write_autograder`` writes a Gradescope autograder whose results file is
  written by the grader after the sandboxed code has ended.

The command line is ``minae-homework`` (or ``python -m minae.homework``); the
README's Homework section walks through it, and says what the sandbox guarantees
where.
"""

from .assignments import ASSIGNMENTS, TASKS, Assignment, Task
from .autograder import write_autograder
from .build import build, problems, put_back, scan
from .grade import GradeResult, TaskResult, grade
from .gradebook import grade_all
from .quick import check

__all__ = [
    "ASSIGNMENTS",
    "TASKS",
    "Assignment",
    "Task",
    "build",
    "grade",
    "grade_all",
    "write_autograder",
    "check",
    "problems",
    "put_back",
    "scan",
    "GradeResult",
    "TaskResult",
]
