"""Before and after a change, on one machine: the overhead and model benchmarks of two commits, interleaved.

The ratio to PyTorch moves with the host's BLAS and with the machine's state, so a change is judged
only against the code before it, measured in the same run: each round runs ``bench/overhead.py``
and ``bench/compare_torch.py`` of the *before* commit, then of the *after* tree (alternating
which goes first), each in a fresh process, and the table gives the median over the rounds with
the range (the run-to-run spread) in brackets. The host's float32 GEMM rate of NumPy and of
PyTorch is printed first, since it sets what the model benchmarks can reach.

Run: python bench/before_after.py --before a55d887 [--rounds 3] [--threads 2] [--clock cpu]
     [--models vae,ae] [--epochs 3] [--seeds 1]

``--before`` is any git revision of this repository (checked out into a temporary worktree, removed
at the end); the *after* side is this working tree. ``--clock cpu`` times CPU seconds instead of
elapsed seconds (fairer on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ROW = re.compile(r"^\|\s*([^|]+?)\s*\|(.+)\|\s*$")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def gemm_rates(threads: int, n: int = 1024, repeats: int = 7) -> dict:
    """GF/s of one n×n float32 matrix product, best of ``repeats``, in NumPy and (if installed) PyTorch."""
    code = f"""
import os, time
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "{threads}"
import numpy as np
a = np.random.default_rng(0).standard_normal(({n}, {n})).astype(np.float32)
def best(f):
    f()
    t = min((lambda t0: (f(), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range({repeats}))
    return 2 * {n}**3 / t / 1e9
print("numpy", best(lambda: a @ a))
try:
    import torch
    torch.set_num_threads({threads})
    b = torch.from_numpy(a)
    print("torch", best(lambda: b @ b))
except ImportError:
    pass
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


def table_rows(text: str) -> dict:
    """``{case: [numbers of the row]}`` for each markdown table row of a benchmark's output."""
    rows = {}
    lines = text.splitlines()
    for line, below in zip(lines, [*lines[1:], ""]):
        m = ROW.match(line)
        if not m or set(m.group(2)) <= set("|-: ") or set(below) <= set("|-: ") and below:
            continue  # a separator, or the header above one
        cells = [c.strip() for c in m.group(2).split("|")]
        words = [c for c in cells if not NUMBER.search(c)]  # "minae", "PyTorch": part of the row's name
        numbers = [float(x) for c in cells for x in NUMBER.findall(c.split("(")[0])]
        if numbers:
            rows[" / ".join([m.group(1), *words])] = numbers
    return rows


def run_bench(tree: str, script: str, args: list, threads: int) -> str:
    env = dict(os.environ, BENCH_THREADS=str(threads), PYTHONPATH=tree)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, os.path.join(tree, "bench", script), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    if done.returncode:
        raise SystemExit(f"before_after.py: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", required=True, help="git revision of the code before the change")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    p.add_argument("--models", default="vae,ae")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5, help="repeats of each overhead case per round")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", args.before], capture_output=True, text=True)
    if rev.returncode:
        p.error(f"--before {args.before!r} is not a revision of {ROOT}: {rev.stderr.strip()}")
    before = tempfile.mkdtemp(prefix=f"minae-before-{rev.stdout.strip()}-")
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", "-f", before, args.before], check=True,
                   capture_output=True)  # fmt: skip
    try:
        rates = gemm_rates(args.threads)
        print(f"host: float32 GEMM 1024³, {args.threads} threads: "
              + ", ".join(f"{k} {v:.0f} GF/s" for k, v in rates.items()))  # fmt: skip
        compare_args = ["--models", args.models, "--epochs", str(args.epochs), "--seeds", str(args.seeds),
                        "--threads", str(args.threads), "--clock", args.clock]  # fmt: skip
        jobs = [("overhead.py", ["--repeats", str(args.repeats)]), ("compare_torch.py", compare_args)]
        results = {side: {} for side in ("before", "after")}
        t0 = time.time()
        for r in range(args.rounds):
            order = [("before", before), ("after", ROOT)]
            if r % 2:
                order.reverse()
            for script, script_args in jobs:
                for side, tree in order:
                    for case, numbers in table_rows(run_bench(tree, script, script_args, args.threads)).items():
                        results[side].setdefault((script, case), []).append(numbers)
            print(f"round {r + 1}/{args.rounds} done ({time.time() - t0:.0f} s)", file=sys.stderr)
    finally:
        subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", before], capture_output=True)
    print(f"\nbefore = {args.before}, after = this tree; medians over {args.rounds} rounds [min–max]; "
          "columns as the benchmark prints them\n")  # fmt: skip
    for key in results["after"]:
        script, case = key
        b, a = results["before"].get(key), results["after"][key]
        if not b:
            continue
        cols = []
        for i in range(min(len(b[0]), len(a[0]))):
            bs, as_ = [x[i] for x in b], [x[i] for x in a]
            cols.append(f"{statistics.median(bs):.4g} [{min(bs):.4g}–{max(bs):.4g}] → "
                        f"{statistics.median(as_):.4g} [{min(as_):.4g}–{max(as_):.4g}]")  # fmt: skip
        print(f"| {script} | {case} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
