"""The README's tour is code a reader will paste: it must run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _tour() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A tour", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README's tour has no python block"
    return blocks[0]


def test_readme_tour_runs(monkeypatch):
    namespace = {}
    exec(compile(_tour(), str(README) + ":tour", "exec"), namespace)
    digits = namespace["digits"]
    assert tuple(digits.shape) == (16, 784)
    history = namespace["history"]
    assert len(history) >= 1 and history[-1]["test"]["loss"] < history[0]["train"]["loss"]


def test_readme_commands_match_ci():
    text = README.read_text(encoding="utf-8")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = re.search(r"The tests.*?```bash\n(.*?)\n```", text, flags=re.S).group(1).strip()
    assert test_command in ci, "CI must run the README's test command exactly"
    assert "minae train vae" in text
