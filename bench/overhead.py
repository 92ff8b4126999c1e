"""Autodiff overhead: minae against PyTorch (when installed), interleaved, medians.

1. A chain of 10,000 tiny elementwise ops (shapes (1,) and (64,)), forward + backward:
   what each op costs in Python bookkeeping, the arithmetic being negligible.
2. One training step of a 3-layer MLP (784 → 256 → 256 → 10, ReLU, cross-entropy,
   SGD) at batch 256, float32: bookkeeping plus real work.

Run: python bench/overhead.py [--repeats 7] [--device cuda]   (set OMP/BLAS threads before, if wanted)
On CUDA both frameworks run on the GPU and every timed block ends with a device synchronize.

Both frameworks live in one process here, and importing torch leaves ~170,000 Python objects
on the heap that every full garbage collection walks; the ops of a long chain trigger such
collections, for minae's Python objects far more than for torch's C++ graph. So the heap as it
is after the imports is frozen (gc.freeze) before timing: neither framework pays for scanning
the other's modules, as it would not in a program that imports only one of them.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import minae  # noqa: E402
from minae import nn  # noqa: E402
from minae.backend import np  # noqa: E402

try:
    import torch
except ImportError:  # the comparison is optional
    torch = None

CHAIN = 10_000


DEVICE = "cpu"  # set by --device


def sync():
    """Wait for the GPU (both frameworks), so that a timing covers the work and not only its launch."""
    if DEVICE != "cpu":
        minae.cuda.synchronize(DEVICE)
        if torch is not None:
            torch.cuda.synchronize()


def chain_minae(shape):
    x = minae.tensor(np.full(shape, 0.5, dtype=np.float32), device=DEVICE, requires_grad=True)

    def run():
        x.grad = None
        y = x
        for _ in range(CHAIN // 2):
            y = (y * 0.9999).sin()  # two ops a round
        y.sum().backward()

    return run


def chain_torch(shape):
    x = torch.full(shape, 0.5, dtype=torch.float32, device=DEVICE, requires_grad=True)

    def run():
        x.grad = None
        y = x
        for _ in range(CHAIN // 2):
            y = (y * 0.9999).sin()
        y.sum().backward()

    return run


def mlp_minae(batch):
    rng = np.random.default_rng(0)
    xb = minae.tensor(rng.standard_normal((batch, 784), dtype=np.float32), device=DEVICE)
    yb = minae.tensor(rng.integers(0, 10, batch), device=DEVICE)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    model.to(DEVICE)
    opt = minae.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

    return run


def mlp_torch(batch):
    rng = np.random.default_rng(0)
    xb = torch.from_numpy(rng.standard_normal((batch, 784), dtype=np.float32)).to(DEVICE)
    yb = torch.from_numpy(rng.integers(0, 10, batch)).to(DEVICE)
    tnn = torch.nn
    model = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(), tnn.Linear(256, 10))
    model.to(DEVICE)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run():
        opt.zero_grad()
        loss = tnn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()

    return run


def timed(fn, inner):
    sync()
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    sync()
    return (time.perf_counter() - t0) / inner


def compare(name, ours, theirs, repeats, inner, per):
    ours(), theirs and theirs()  # warm up
    a, b = [], []
    for _ in range(repeats):  # interleaved, so both see the same machine state
        a.append(timed(ours, inner))
        if theirs:
            b.append(timed(theirs, inner))
    ma = statistics.median(a) / per * 1e6
    mb = statistics.median(b) / per * 1e6 if b else float("nan")
    unit = "µs/op" if per > 1 else "ms/step"
    if per == 1:
        ma, mb = ma / 1000, mb / 1000
    ratio = ma / mb if b else float("nan")
    print(f"| {name:<28} | {ma:9.2f} {unit} | {mb:9.2f} {unit} | {ratio:5.2f} |")
    return ma, mb


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]: where both frameworks run")
    args = p.parse_args(argv)
    global DEVICE
    try:
        DEVICE = str(minae.device(args.device))  # raises, saying why, where CUDA cannot run
    except (RuntimeError, ValueError) as e:
        sys.exit(f"overhead.py: --device {args.device}: {e}")
    if DEVICE != "cpu" and torch is not None and not torch.cuda.is_available():
        p.error(f"--device {args.device}: PyTorch here has no CUDA; run without PyTorch or on the CPU")
    if torch is not None:
        torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    print(f"minae {minae.__version__}, numpy {np.__version__} ({minae.backend.blas_info()})", end="")
    print(
        f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else ", torch not installed", end=""
    )
    print(f", device {DEVICE}")
    gc.collect()
    gc.freeze()
    print("| case                         |        minae      |      PyTorch      | ratio |")
    print("|------------------------------|-------------------|-------------------|-------|")
    for shape in [(1,), (64,)]:
        compare(
            f"chain of {CHAIN} ops, {shape}",
            chain_minae(shape),
            chain_torch(shape) if torch else None,
            args.repeats,
            1,
            CHAIN,
        )
    compare("MLP step, batch 256", mlp_minae(256), mlp_torch(256) if torch else None, args.repeats, 10, 1)


if __name__ == "__main__":
    main()
