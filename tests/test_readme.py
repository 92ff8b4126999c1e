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


def _fresh_python(code: str):
    """Run ``code`` in a new interpreter (nothing imported yet) with this checkout's minae."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(README.parent), MINAE_QUIET="1")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_tours_ebm_lines_run_on_their_own():
    """Pasted alone after `import minae` (and the model's import), the EBM lines run: minae.data loads on use."""
    lines = _tour().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ebm = "))
    code = "import minae\nfrom minae.models import LatentEBM\n" + "\n".join(lines[start:])
    code += "\nassert float(ebm.free_energy(y).mean()) >= 0\n"
    result = _fresh_python(code)
    assert result.returncode == 0, result.stderr


def test_homework_check_works_after_a_plain_import():
    """The README's `minae.homework.check("1.3")` needs nothing but `import minae`."""
    assert 'minae.homework.check("1.3")' in README.read_text(encoding="utf-8")
    result = _fresh_python('import minae\nassert minae.homework.check("1.3") is True\n')
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
