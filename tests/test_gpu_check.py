"""bench/gpu_check.py, where no GPU is: it refuses clearly, and its targeted cases run on the CPU."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from minae import backend

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(backend.cuda_available(), reason="a GPU is here: the refusal cannot be shown")
def test_without_a_gpu_it_says_so_and_exits_3(tmp_path):
    out = tmp_path / "sub" / "gpu_check.md"
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert p.returncode == 3, p.stderr
    assert "no usable GPU" in p.stderr and str(out) in p.stderr
    text = out.read_text()
    assert text.startswith("# GPU check: not run, no usable GPU") and ("CuPy" in text or "GPU" in text)


# case 1 trains targetprop through the CLI (slow on a CPU; test_cli runs it)
FAST = ["2_", "3_", "4_", "5_", "6_", "7_", "8_", "9_", "cross_entropy"]


@pytest.mark.parametrize("prefix", FAST)
def test_targeted_cases_pass_on_the_cpu(gpu_check, prefix):
    (case,) = [c for c in gpu_check.CASES if c.__name__[5:].startswith(prefix)]
    assert isinstance(case(backend.CPU), str)


@pytest.mark.parametrize("prefix", FAST)
def test_targeted_cases_pass_on_the_second_gpu_of_the_stand_in(gpu_check, prefix, monkeypatch):
    """What --allow-cpu runs: the cases on cuda:1 of tests/fake_cupy.py, whose current GPU is cuda:0."""
    import fake_cupy

    import minae

    monkeypatch.setattr(backend, "_cupy", fake_cupy)
    monkeypatch.setattr(fake_cupy, "_current", fake_cupy._CurrentDevice())
    minae.manual_seed(0)
    (case,) = [c for c in gpu_check.CASES if c.__name__[5:].startswith(prefix)]
    try:
        assert isinstance(case(minae.device(gpu_check.STAND_IN_DEVICE)), str)
    finally:
        minae.manual_seed(0)


def test_the_host_read_count_runs_on_the_cpu(gpu_check):
    (case,) = [c for c in gpu_check.CASES if c.__name__.startswith("case_8_")]
    detail = case(backend.CPU)  # counted, not limited: on the CPU fit reads every batch's loss
    assert "host reads" in detail and "16 batches" in detail


def test_every_defect_of_issue_13_has_a_case(gpu_check):
    numbered = sorted(int(c.__name__.split("_")[1]) for c in gpu_check.CASES if c.__name__[5].isdigit())
    assert numbered == list(range(1, 10))


# compare_torch.py's real output (--epochs 1 --seeds 1 --models examples,vae --no-memory, on the CPU)
COMPARE_OUTPUT = """minae 0.1.0 vs torch 2.13.0+cpu
1 epochs, batch 256, Adam 0.001, 2 threads, wall clock, bundled MNIST (4,000 train / 1,000 test); test loss ...
| model | minae test loss | PyTorch test loss | loss ratio | minae s/epoch | PyTorch s/epoch | time ratio |
|---|---|---|---|---|---|---|
| VAE | 258.95 (258.9–258.9) | 263.45 (263.5–263.5) | 0.983 | 0.220 | 0.389 | 0.57 |
| pytorch/examples VAE | 244.89 (244.9–244.9) | 245.90 (245.9–245.9) | 0.996 | 1.268 | 2.927 | 1.62 |

(this run took 3 s)
"""


def test_the_course_vae_goal_is_read_off_the_comparison_table(gpu_check):
    assert "vae" in gpu_check.COMPARE_MODELS.split(",") and "examples" in gpu_check.COMPARE_MODELS.split(",")
    # the "VAE" row, not the pytorch/examples one; the "time ratio" column
    assert "epoch time 0.57, goal at most 1.5: met" in gpu_check.course_vae_goal(COMPARE_OUTPUT)
    assert gpu_check.course_vae_goal(COMPARE_OUTPUT.replace("| VAE |", "| AE |")) == ""  # never the examples row
    slow = COMPARE_OUTPUT.replace("| 0.389 | 0.57 |", "| 0.389 | 1.62 |")
    assert "1.62, goal at most 1.5: NOT met" in gpu_check.course_vae_goal(slow)
    minae_only = "| model | … | time ratio |\n|---|---|---|\n| VAE | 258.95 (258.9–258.9) | – | – | 0.220 | – | – |"
    assert gpu_check.course_vae_goal(minae_only) == ""
    assert gpu_check.course_vae_goal("usage: compare_torch.py [-h]") == ""


def test_the_model_names_are_compare_torchs(gpu_check):
    labels = (SCRIPT.parent / "compare_torch.py").read_text().split("\nLABELS = ", 1)[1].splitlines()[0]
    for name in gpu_check.COMPARE_MODELS.split(","):
        assert f'"{name}": ' in labels, (name, labels)


@pytest.mark.skipif(backend.cuda_available(), reason="a GPU is here: the refusal cannot be shown")
@pytest.mark.parametrize("script", ["compare_torch.py", "overhead.py"])
def test_the_benchmarks_refuse_cuda_without_a_gpu_in_one_line(script):
    cmd = [sys.executable, str(SCRIPT.parent / script), "--device", "cuda"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and p.stdout == "", p.stdout
    assert p.stderr.strip().count("\n") == 0 and p.stderr.startswith(f"{script}: --device cuda: "), p.stderr
