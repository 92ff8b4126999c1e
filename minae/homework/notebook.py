"""In a student copy's notebook: a cell that needs an unwritten task says so, and Run All goes on.

``skip_unwritten_tasks()`` (the notebook's first cell calls it) adds an AST
transformer to the IPython shell: each later cell runs inside a ``try`` that
turns a stub's ``NotImplementedError("task 1.5: …")`` into one printed line, and
so does an error in a later cell (most likely a result the stub never made).
Before any stub was met, an exception stops the cell as usual. The value of a
cell's last expression is still displayed.
"""

from __future__ import annotations

import ast

__all__ = ["skip_unwritten_tasks", "report_unwritten", "exercise_not_written"]


_unwritten: list = []  # the tasks whose stubs a cell has met in this kernel
_exercises: list = []  # the tasks whose emptied exercise cells have run in this kernel


def report_unwritten(error: BaseException) -> None:
    """Print one line for a stub's error, or for an error after one (a result the stub never made); else raise.

    A task's hint (the stub's message) is printed once, in the first cell that needs the task; every later
    cell that needs it says so in a few words, so that one unwritten task does not fill the notebook with
    copies of the same paragraph.
    """
    message = str(error)
    if isinstance(error, NotImplementedError) and message.startswith("task "):
        task = message.split(":", 1)[0]
        if task not in _unwritten:
            _unwritten.append(task)
            print(f"this cell needs {task}, which is not written yet ({message})")
        else:
            print(f"this cell needs {task} (not written yet; its hint is above, where it was first needed)")
    elif _unwritten or _exercises:
        tasks = _unwritten + [t for t in _exercises if t not in _unwritten]
        print(f"this cell needs {', '.join(tasks)} (not written yet; here it raised {type(error).__name__})")
    else:
        raise error


def exercise_not_written(message: str) -> None:
    """An emptied exercise cell's line: print ``message`` ("not written yet: task 4.5: …") and note the task as
    unwritten, so that a later cell that needs the exercise's results says so instead of stopping Run All."""
    task = message.split("not written yet: ", 1)[-1].split(":", 1)[0]
    if task.startswith("task ") and task not in _exercises:
        _exercises.append(task)
    print(message)


class _Guard(ast.NodeTransformer):
    def visit_Module(self, node):
        body, last = list(node.body), None
        if body and isinstance(body[-1], ast.Expr):  # kept outside, so that its value is displayed
            last = body.pop()
            body.append(ast.Assign([ast.Name("_minae_last", ast.Store())], last.value))
            last = ast.Expr(ast.Name("_minae_last", ast.Load()))
        handler = ast.ExceptHandler(
            type=ast.Name("Exception", ast.Load()),
            name="_minae_error",
            body=[
                ast.Expr(
                    ast.Call(
                        ast.Name("_minae_report_unwritten", ast.Load()), [ast.Name("_minae_error", ast.Load())], []
                    )
                )
            ],
        )
        guarded = [ast.Assign([ast.Name("_minae_last", ast.Store())], ast.Constant(None))] if last else []
        guarded.append(ast.Try(body=body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[]))
        node.body = guarded + ([last] if last else [])
        return ast.fix_missing_locations(node)


def skip_unwritten_tasks(shell=None) -> bool:
    """Install the guard in the running IPython shell; False outside IPython (nothing to do)."""
    if shell is None:
        try:
            shell = get_ipython()  # noqa: F821 (defined by IPython)
        except NameError:
            return False
    if not any(isinstance(t, _Guard) for t in shell.ast_transformers):
        shell.ast_transformers.append(_Guard())
    shell.user_ns["_minae_report_unwritten"] = report_unwritten
    return True
