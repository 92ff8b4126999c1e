"""A wrong solution is told the idea it missed, also when it crashes (issue 22).

Each case: a student copy with the task's reference solution put back, then one plausible mistake edited in,
graded against the reference. The task loses points, and the one-line message names the idea the failing test
checks (declared by the test: ``@idea`` or the file's ``IDEA``); a crash adds the exception's type and the
student's file:line, never a bare NumPy message alone.
"""

import shutil

import pytest

from minae.homework import build, grade, put_back

SEEDS = (12345, 7)

# name -> (assignment, task, file, the reference's text, the wrong text, most points it may keep, words of the
# failure line: the idea's, and for a crash the exception's type and the student's file)
WRONG = {
    "SumTo aligned from the left": (
        1,
        "1.2",
        "minae/ops.py",
        "        lead = x.ndim - len(self.shape)\n"
        "        axes = tuple(range(lead)) + tuple(\n"
        "            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1\n"
        "        )\n"
        "        y = x.sum(axis=axes, keepdims=True) if axes else x\n"
        "        return y.reshape(self.shape) if lead else y\n",
        "        axes = tuple(i for i, n in enumerate(self.shape) if n == 1 and x.shape[i] != 1)\n"
        "        axes += tuple(range(len(self.shape), x.ndim))\n"
        "        y = x.sum(axis=axes, keepdims=True) if axes else x\n"
        "        return y.reshape(self.shape)\n",
        15,
        ("new axes in front", "ValueError", "minae/ops.py:"),
    ),
    "MatMul backward without a transpose (ga = gy @ b)": (
        1,
        "1.3",
        "minae/ops.py",
        "gy2 @ _swap_last(b2)",
        "gy2 @ b2",
        15,
        ("one entry y_ij", "ValueError", "minae/ops.py:"),
    ),
    "MatMul backward without a transpose (gb = a @ gy)": (
        1,
        "1.3",
        "minae/ops.py",
        "_swap_last(a2) @ gy2",
        "a2 @ gy2",
        15,
        ("one entry y_ij", "ValueError", "minae/ops.py:"),
    ),
    "MatMul backward forgets the batch reduction": (
        1,
        "1.3",
        "minae/ops.py",
        "            ga = reshape(sum_to(gy2 @ _swap_last(b2), a2.shape), a.shape)\n",
        "            ga = reshape(gy2 @ _swap_last(b2), a.shape)\n",
        17,
        ("batch axes", "ValueError", "minae/ops.py:"),
    ),
    "expand_back without the reshape": (
        1,
        "1.4",
        "minae/ops.py",
        "    if not keepdims and axis is not None:\n        gy = reshape(gy, _kept_shape(shape, axis))\n",
        "",
        17,
        ("which output element", "ValueError", "minae/ops.py:"),
    ),
    "GradientQueue's heap without a tie-break": (
        1,
        "1.5",
        "minae/autograd.py",
        ("            heapq.heappush(self.heap, (-f.generation, next(_tiebreak), f))\n", "heappop(self.heap)[2]"),
        ("            heapq.heappush(self.heap, (-f.generation, f))\n", "heappop(self.heap)[1]"),
        17,
        ("whose turn comes first", "TypeError", "minae/autograd.py:"),
    ),
    "GradientQueue pushes on every add": (
        1,
        "1.5",
        "minae/autograd.py",
        "        if f in self.pending:\n"
        "            self.pending[f] = self.pending[f] + g\n"
        "        else:\n"
        "            self.pending[f] = g\n"
        "            heapq.heappush(self.heap, (-f.generation, next(_tiebreak), f))\n",
        "        self.pending[f] = self.pending[f] + g if f in self.pending else g\n"
        "        heapq.heappush(self.heap, (-f.generation, next(_tiebreak), f))\n",
        17,
        ("runs once", "KeyError", "minae/autograd.py:"),
    ),
    "Linear backward with gx = gy @ Wᵀ": (
        2,
        "2.1",
        "minae/ops.py",
        "        return (gy @ w if nx else None,",
        "        return (gy @ w.T if nx else None,",
        12,
        ("∂L/∂x", "ValueError", "minae/ops.py:"),
    ),
    "Exp backward forgets gy": (
        1,
        "1.1",
        "minae/ops.py",
        "        return gy * y  # d e^x = e^x\n",
        "        return y\n",
        18,
        ("the chain rule",),
    ),
    "Log backward forgets gy": (
        1,
        "1.1",
        "minae/ops.py",
        "        return gy / x\n",
        "        return 1 / x\n",
        18,
        ("the chain rule",),
    ),
    "DAE compares with a second corruption of y": (
        3,
        "3.3",
        "minae/models/autoencoders.py",
        "        cost = self.reconstruction_cost(y, h)\n",
        "        cost = self.reconstruction_cost(self.corrupt(y), h)\n",
        12,
        ("corrupts more than once",),
    ),
    "DAE never corrupts its input": (
        3,
        "3.3",
        "minae/models/autoencoders.py",
        "        h = self.encode(self.corrupt(y))\n",
        "        h = self.encode(y)\n",
        12,
        ("never corrupts",),
    ),
}


def _folder_name(name):
    return "".join(c if c.isalnum() else "-" for c in name)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(name, seed) -> the task's result for the copy with that wrong solution (its task put back, then edited)."""
    base = tmp_path_factory.mktemp("ideas")
    built = {n: base / f"assignment{n}" for n in sorted({case[0] for case in WRONG.values()})}
    for n, folder in built.items():
        build(n, folder)
    done = {}
    for name, (n, task, path, old, new, _, _) in WRONG.items():
        folder = base / _folder_name(name)
        shutil.copytree(built[n], folder)
        put_back(folder, task)
        target = folder / path
        text = target.read_text(encoding="utf-8")
        for a, b in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
            assert text.count(a) == 1, (name, a)
            text = text.replace(a, b)
        target.write_text(text, encoding="utf-8")
        for seed in SEEDS:
            done[(name, seed)] = grade(folder, n, stream=False, seed=seed).task(task)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_solution_is_told_the_idea_it_missed(results, name):
    _, task, _, _, _, most, words = WRONG[name]
    for seed in SEEDS:
        got = results[(name, seed)]
        assert got.earned <= most and got.earned < got.points, (name, seed, got.earned, got.failure)
        assert all(word in (got.failure or "") for word in words), (name, seed, got.failure)


# ------------------------------------------------------------ the mechanism, fast ---
def _test_files():
    from minae.homework.build import reference_root

    return sorted((reference_root() / "minae" / "homework" / "tests").glob("assignment*/test_task_*.py"))


def test_every_task_s_test_file_declares_its_idea():
    """Each graded test file names the idea its tests check (IDEA, a plain string), and every ``idea(...)`` in it
    is given a plain string: the grader's failure line starts with it."""
    import ast

    from minae.homework.assignments import TASKS

    files = _test_files()
    assert len(files) == len(TASKS)
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        ideas = [
            node.value
            for node in tree.body
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["IDEA"]
        ]
        assert len(ideas) == 1, path.name
        value = ast.literal_eval(ideas[0])
        assert isinstance(value, str) and 40 <= len(value) <= 200, (path.name, value)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "idea":
                (arg,) = node.args
                assert isinstance(ast.literal_eval(arg), str), (path.name, node.lineno)


def test_a_crash_is_told_as_the_idea_with_its_type_and_the_students_line():
    from minae.homework.grade import judge_test

    crash = {
        "type": "ValueError",
        "message": "operands could not be broadcast together with remapped shapes " + "x" * 1000,
        "frames": [["minae/autograd.py", 120, "Function.__call__"], ["minae/ops.py", 963, "expand_back"]],
        "idea": "a reduction's backward: which output element did each input element go into?",
    }
    got = {"checks": [], "error": crash, "ended": True}
    line = judge_test({"checks": [], "error": None, "ended": True}, got, ["expand_back"])
    assert line.startswith("a reduction's backward: which output element"), line
    assert "your code raised ValueError at minae/ops.py:963 in expand_back" in line and len(line) <= 400, line
    local = dict(crash, frames=[], local=True, type="TypeError")
    line = judge_test(None, {"checks": [], "error": local, "ended": True}, [])
    assert line.startswith("a reduction's backward") and "could not use what your code returned (TypeError" in line
    # without an idea (an older test file), the line is what it was
    bare = {k: v for k, v in crash.items() if k != "idea"}
    bare["message"] = "operands could not be broadcast"
    line = judge_test(None, {"checks": [], "error": bare, "ended": True}, ["expand_back"])
    assert line.startswith("ValueError: operands") and "(at minae/ops.py:963 in expand_back)" in line, line


def test_a_wrong_value_is_told_as_the_idea_and_in_the_students_words():
    """A check's failure starts with the idea in force where it was made; its words are those the test chose for
    the student's values (the reverted 3.3 message: the reference's choice told a loss that corrupts twice that it
    never corrupts), while the verdict is still the reference's."""
    from minae.homework.grade import judge_test

    ref = {
        "checks": [{"kind": "equal", "actual": 1, "expected": 1, "message": "corrupts more ({actual})", "idea": "I"}]
    }
    student = {"kind": "equal", "actual": 0, "expected": 1, "message": "never corrupts ({actual} calls)", "idea": "I"}
    line = judge_test(ref, {"checks": [student], "error": None, "ended": True}, [])
    assert line == "I: never corrupts (0 calls)", line
    fooled = dict(student, actual=1, expected=0)  # the student's record's own expectation is never used
    assert judge_test(ref, {"checks": [fooled], "error": None, "ended": True}, []) is None
    braces = dict(student, message="F at β = 1 is {0} {'a': 1}")  # a value of the student's run, quoted
    assert "{'a': 1}" in judge_test(ref, {"checks": [braces], "error": None, "ended": True}, [])
    fooled = dict(student, actual=0, expected=0)
    assert judge_test(ref, {"checks": [fooled], "error": None, "ended": True}, []) is not None
    ref = {"checks": [{"kind": "close", "what": "F_β", "actual": [1.0], "expected": [1.0], "rtol": 0, "atol": 0}]}
    got = {"kind": "close", "what": "F_β", "actual": [2.0], "expected": [2.0], "rtol": 1, "atol": 1, "idea": "J"}
    line = judge_test(ref, {"checks": [got], "error": None, "ended": True}, [])
    assert line.startswith("J: F_β: expected 1 at index (0,), got 2"), line


def test_idea_names_the_innermost_idea_where_the_test_failed():
    """``idea`` as a decorator and as a with-block: the innermost one in force is recorded with each check and on
    an exception; run by hand, the exception carries it as a note that pytest prints."""
    from minae.homework import testing

    outer, inner = testing.idea("outer"), testing.idea("inner")

    @outer
    def test_something():
        """Doc."""
        with inner:
            raise ValueError("shapes")

    assert test_something.__name__ == "test_something" and test_something.idea == "outer"
    with pytest.raises(ValueError) as caught:
        test_something()
    assert caught.value.minae_idea == "inner" and "the idea this checks: inner" in caught.value.__notes__
    records = []
    testing.recorder = records.append
    try:
        with outer:
            testing.assert_equal(1, 2, "m")
            with inner:
                testing.assert_equal(1, 2, "m")
        testing.assert_equal(1, 2, "m")
    finally:
        testing.recorder = None
    assert [r.get("idea") for r in records] == ["outer", "inner", None]
