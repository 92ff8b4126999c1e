"""Homework built from the library's own code, graded locally.

The reference code marks the pieces a student writes as solution blocks, grouped
into numbered tasks (``task 1.3``); ``assignments.py`` gives the tasks their titles
and points, in lecture order. From the one code base:

- ``build(assignment, out)`` writes a student copy of the project in which that
  assignment's blocks raise ``NotImplementedError("task 1.3: hint")``;
- ``grade(root, assignment)`` runs the assignment's tests (``tests/assignmentN/``,
  one file per task) against a copy in child processes that hand back data only,
  and judges it against the reference ``minae`` (see grade.py);
- ``check("1.3")`` runs one task's tests in this process: quick feedback, not the grade;
- ``grade_all`` grades many copies into a gradebook; ``write_autograder`` writes a
  Gradescope autograder.

The command line is ``minae-homework`` (or ``python -m minae.homework``); the
README's Homework section walks through it.
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
