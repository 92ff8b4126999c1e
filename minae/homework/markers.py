"""Solution blocks: find them in source text, and replace them by stubs.

A solution block is a run of whole lines of the reference code between a BEGIN
line, ``# BEGIN SOLUTION task 1.1``, and an END line, ``# END SOLUTION``, each a
comment on a line of its own at the block's indentation. An optional hint line,
``# HINT: the chain rule, one input at a time``, may follow the BEGIN line. In a student copy the
block becomes one line at the BEGIN line's indentation,
``raise NotImplementedError("task 1.1: the chain rule, one input at a time")``; in the reference
code, and for the tasks a copy keeps solved, only the marker lines go. Blocks do
not nest, and a task may have any number of blocks in any number of files. (The
README's Homework section shows a marked function.)

Sections: runs of lines a student copy leaves out, of two kinds, each between a
BEGIN line and an END line of its own (comments on lines of their own, anywhere:
in code, in comments, inside a docstring):

- a closed form that a task asks the student to derive, between
  ``# BEGIN FORMULA task 2.1`` and ``# END FORMULA``: the reference keeps its
  docstring whole; a copy that cuts task 2.1 out says instead that the formula
  is the student's to derive (a copy that keeps the task solved keeps it);
- the grader's own part of a test or a helper (expected values computed in
  NumPy, a stand-in for another task's code), between ``# BEGIN GRADER ONLY``
  and ``# END GRADER ONLY``: never in a copy. ``# BEGIN GRADER ONLY; in a copy: CODE``
  puts the one line CODE in its place, at the BEGIN line's indentation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Block",
    "MarkerError",
    "enclosing_name",
    "find_blocks",
    "find_stubs",
    "has_marker",
    "strip_blocks",
    "strip_sections",
    "stub_line",
    "Section",
]

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION task (?P<task>\d+\.\d+)[ \t]*$")
_END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
_HINT = re.compile(r"^[ \t]*# HINT:[ \t]*(?P<hint>.*?)[ \t]*$")
# anything that looks like a marker, well-formed or not: a malformed one must be an error, not kept text
_ANY = re.compile(r"^[ \t]*#[ \t]*(BEGIN[ \t]+SOLUTION|END[ \t]+SOLUTION|HINT[ \t]*:)", re.IGNORECASE)
# sections: a formula to derive (a task's), or the grader's own lines
_SECTION_BEGIN = re.compile(
    r"^(?P<indent>[ \t]*)# BEGIN "
    r"(?:FORMULA task (?P<task>\d+\.\d+)|(?P<grader>GRADER ONLY)(?:; in a copy: (?P<copy>.+?))?)[ \t]*$"
)
_SECTION_END = re.compile(r"^[ \t]*# END (?P<kind>FORMULA|GRADER ONLY)[ \t]*$")
_ANY_SECTION = re.compile(r"^[ \t]*#[ \t]*(BEGIN|END)[ \t]+(FORMULA|GRADER)", re.IGNORECASE)
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?P<kind>def|class)[ \t]+(?P<name>\w+)")


class MarkerError(ValueError):
    """A solution marker is malformed, unclosed, nested or misplaced."""


@dataclass(frozen=True)
class Block:
    path: str  # as given to find_blocks (for messages)
    task: str
    begin: int  # 0-based line index of the BEGIN line
    end: int  # 0-based line index of the END line
    indent: str
    hint: str | None  # a '# HINT:' line in the code (the hints live in assignments.HINTS; this is the fallback)
    body: tuple  # the solution's lines, without the markers and the hint
    name: str = "<module>"  # the function (and class) the block is in: "MatMul.backward"
    occurrence: int = 0  # how many earlier blocks of the same task sit in the same function

    @property
    def line(self) -> int:
        """The BEGIN line's number, counting from 1."""
        return self.begin + 1


def has_marker(line: str) -> bool:
    """Whether a line is (or tries to be) a solution marker."""
    return bool(_ANY.match(line))


def find_blocks(text: str, path: str = "<text>") -> list:
    """Every solution block of ``text``, in order; MarkerError names the file and line of a mistake."""
    lines = text.splitlines()
    blocks, open_at, task, indent, hint, body = [], None, None, "", None, []
    for i, line in enumerate(lines):
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if open_at is not None:
                raise MarkerError(f"{path}:{i + 1}: BEGIN SOLUTION inside the block opened at line {open_at + 1}")
            open_at, task, indent, hint, body = i, begin["task"], begin["indent"], None, []
        elif end:
            if open_at is None:
                raise MarkerError(f"{path}:{i + 1}: END SOLUTION without a BEGIN SOLUTION")
            if not any(b.strip() for b in body):
                raise MarkerError(f"{path}:{open_at + 1}: the solution block of task {task} is empty")
            _refuse_definitions(path, open_at, task, indent, body)
            name = enclosing_name(text, open_at)
            occurrence = sum(1 for b in blocks if b.task == task and b.name == name)
            blocks.append(Block(path, task, open_at, i, indent, hint, tuple(body), name, occurrence))
            open_at = None
        elif _HINT.match(line) and open_at is not None and i == open_at + 1:
            hint = _HINT.match(line)["hint"]
        elif has_marker(line):
            raise MarkerError(
                f"{path}:{i + 1}: malformed solution marker {line.strip()!r}; the forms are "
                "'# BEGIN SOLUTION task N.M', '# HINT: …' (right after BEGIN) and '# END SOLUTION'"
            )
        elif open_at is not None:
            body.append(line)
    if open_at is not None:
        raise MarkerError(f"{path}:{open_at + 1}: the solution block of task {task} is never closed (END SOLUTION)")
    return blocks


def _refuse_definitions(path, begin, task, indent, body) -> None:
    """A block must sit inside a function, below its ``def`` line: a stub in place of the def breaks the file."""
    if indent == "":
        raise MarkerError(
            f"{path}:{begin + 1}: the solution block of task {task} is at module level; "
            "its stub would raise on import. "
            "Put BEGIN SOLUTION inside the function, below its def line and docstring"
        )
    for k, line in enumerate(body):
        m = _DEF.match(line)
        if m and len(m["indent"]) <= len(indent):
            raise MarkerError(
                f"{path}:{begin + 2 + k}: the solution block of task {task} contains the line {line.strip()!r}: "
                f"the {m['kind']} line must stay outside the block (put BEGIN SOLUTION below it and its docstring)"
            )


LINE_LENGTH = 120  # the project's (pyproject.toml): a longer stub is wrapped the way ruff format wraps it


def stub_line(indent: str, message: str) -> str:
    """``raise NotImplementedError("message")`` at ``indent``, as a double-quoted Python literal.

    One line, or three when that line would be longer than LINE_LENGTH (the form
    ``ruff format`` gives it, so that a student copy is formatted as the project is).
    """
    quote = "'" if '"' in message and "'" not in message else '"'  # ruff format's choice: the fewest escapes
    literal = quote + message.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote
    line = f"{indent}raise NotImplementedError({literal})"
    if len(line) <= LINE_LENGTH:
        return line
    return f"{indent}raise NotImplementedError(\n{indent}    {literal}\n{indent})"


_OPENING = ('"task ', "'task ")


def find_stubs(lines: list, task: str | None = None) -> list:
    """(first line, line after the last, task) of every stub in ``lines`` (of ``task`` only, if given)."""
    found, i = [], 0
    while i < len(lines):
        text = lines[i].strip()
        if text[:32] in ('raise NotImplementedError("task ', "raise NotImplementedError('task "):
            end, message = i + 1, text[27:]
        elif text == "raise NotImplementedError(" and i + 2 < len(lines) and lines[i + 1].strip()[:6] in _OPENING:
            end, message = i + 3, lines[i + 1].strip()[1:]
        else:
            i += 1
            continue
        stub_task = message[len("task ") :].split(":", 1)[0]
        if task is None or stub_task == task:
            found.append((i, end, stub_task))
        i = end
    return found


def strip_blocks(text: str, stub, path: str = "<text>") -> tuple:
    """Replace solution blocks by stubs: ``stub(block)`` gives the stub's message, or None to keep the block.

    A kept block keeps its code and loses only its markers. Returns
    ``(new_text, blocks)`` with every block found; a text without markers comes
    back unchanged.
    """
    blocks = find_blocks(text, path)
    if not blocks:
        return text, blocks
    lines = text.splitlines(keepends=True)
    out, cursor = [], 0
    for b in blocks:
        out.extend(lines[cursor : b.begin])
        message = stub(b)
        if message is not None:
            out.append(stub_line(b.indent, message) + "\n")
        else:
            out.extend(lines[b.begin + (2 if b.hint is not None else 1) : b.end])
        cursor = b.end + 1
    out.extend(lines[cursor:])
    return "".join(out), blocks


def enclosing_name(text: str, line_index: int) -> str:
    """The dotted name of the function (and class) around a line: ``MatMul.backward``, ``run_backward``."""
    lines = text.splitlines()
    indent = len(lines[line_index]) - len(lines[line_index].lstrip())
    names = []
    for line in reversed(lines[:line_index]):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#") or len(line) - len(stripped) >= indent:
            continue  # not a statement that contains the line
        indent = len(line) - len(stripped)  # an enclosing statement: def, class, if, while, try …
        m = _DEF.match(line)
        if m:
            names.append(m["name"])
        if indent == 0:
            break
    return ".".join(reversed(names)) or "<module>"


# ----------------------------------------------------------------- sections ---
@dataclass(frozen=True)
class Section:
    path: str
    kind: str  # "FORMULA" or "GRADER ONLY"
    task: str | None  # a formula's task
    begin: int  # 0-based line index of the BEGIN line
    end: int  # 0-based line index of the END line
    indent: str
    copy: str | None  # the line a copy gets in place of a grader-only section
    body: tuple

    @property
    def line(self) -> int:
        return self.begin + 1


def has_section_marker(line: str) -> bool:
    """Whether a line is (or tries to be) a section's BEGIN or END line."""
    return bool(_ANY_SECTION.match(line))


def find_sections(text: str, path: str = "<text>") -> list:
    """Every formula and grader-only section of ``text``, in order; MarkerError names a malformed one."""
    found, open_ = [], None
    for i, line in enumerate(text.splitlines()):
        begin, end = _SECTION_BEGIN.match(line), _SECTION_END.match(line)
        if begin:
            if open_ is not None:
                raise MarkerError(f"{path}:{i + 1}: a section begins inside the one opened at line {open_[0] + 1}")
            open_ = (i, begin, [])
        elif end:
            if open_ is None:
                raise MarkerError(f"{path}:{i + 1}: {line.strip()!r} without its BEGIN line")
            first, m, body = open_
            kind = "GRADER ONLY" if m["grader"] else "FORMULA"
            if end["kind"] != kind:
                raise MarkerError(f"{path}:{i + 1}: {line.strip()!r} closes the {kind} section of line {first + 1}")
            found.append(Section(path, kind, m["task"], first, i, m["indent"], m["copy"], tuple(body)))
            open_ = None
        elif has_section_marker(line):
            raise MarkerError(
                f"{path}:{i + 1}: malformed section marker {line.strip()!r}; the forms are "
                "'# BEGIN FORMULA task N.M' … '# END FORMULA' and '# BEGIN GRADER ONLY[; in a copy: CODE]' … "
                "'# END GRADER ONLY'"
            )
        elif open_ is not None:
            open_[2].append(line)
    if open_ is not None:
        raise MarkerError(f"{path}:{open_[0] + 1}: the section opened here is never closed")
    return found


def strip_sections(text: str, cut, path: str = "<text>") -> tuple:
    """A copy's text: ``cut(task)`` says whether the copy cuts a task out (its formulas go too).

    A formula of a task the copy cuts out becomes one line saying it is the
    student's to derive (a ``#`` comment where the formula was one); one of a
    task it keeps loses only its markers. A grader-only section goes, or becomes
    its ``in a copy`` line. Returns ``(new_text, sections)``.
    """
    sections = find_sections(text, path)
    if not sections:
        return text, sections
    lines = text.splitlines(keepends=True)
    out, cursor = [], 0
    for s in sections:
        out.extend(lines[cursor : s.begin])
        if s.kind == "GRADER ONLY":
            if s.copy is not None:
                out.append(f"{s.indent}{s.copy}\n")
            elif not out or not out[-1].strip():  # the blank lines around it were one gap: keep the one before
                after = s.end + 1
                while after < len(lines) and not lines[after].strip():
                    after += 1
                cursor = after
                continue
        elif cut(s.task):
            comment = "# " if any(b.strip().startswith("#") for b in s.body) else ""
            out.append(f"{s.indent}{comment}(task {s.task}: derive this yourself; HOMEWORK.md says what to show)\n")
        else:
            out.extend(lines[s.begin + 1 : s.end])
        cursor = s.end + 1
    out.extend(lines[cursor:])
    text = "".join(out)
    return (text.rstrip("\n") + "\n" if text.strip() else text), sections
