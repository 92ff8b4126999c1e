"""bench/before_after.py: the parser that reads the benchmarks' tables, and its refusal of a bad revision."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "before_after.py"


@pytest.fixture(scope="module")
def before_after():
    spec = importlib.util.spec_from_file_location("before_after", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_are_named_by_their_words_and_read_before_the_bracketed_range(before_after):
    text = """minae 0.1, numpy 2.4
| model | framework | peak memory of training | resident after epochs 1–5 |
|---|---|---|---|
| VAE | minae | 21.5 MiB | 21.0, 21.4 MiB |
| VAE | PyTorch | 107.0 MiB | 106.8, 107.0 MiB |
| model | minae test loss | ratio |
|---|---|---|
| VAE | 150.20 (149.5–152.2) | 0.79 |
"""
    assert before_after.table_rows(text) == {
        "VAE / minae": [21.5, 21.0, 21.4],
        "VAE / PyTorch": [107.0, 106.8, 107.0],
        "VAE": [150.20, 0.79],
    }


def test_a_revision_that_does_not_exist_is_refused_by_name():
    done = subprocess.run([sys.executable, str(SCRIPT), "--before", "no-such-rev-xyz"], capture_output=True, text=True)
    assert done.returncode == 2 and "no-such-rev-xyz" in done.stderr and "Traceback" not in done.stderr
