"""The one-call GPU check: everything issue 13 asks a GPU to prove, in one run, into one results file.

Run from the repository root on a machine with an NVIDIA GPU, CuPy for its CUDA (cupy-cuda13x),
PyTorch with CUDA and pytest (hypothesis optional); nothing is installed or downloaded:

    python bench/gpu_check.py                 # results in $OUT/gpu_check.md, else ./gpu_check.md

Stages, each with its own time limit inside a total budget (default 330 s, under 6 minutes):

1. environment: GPU, driver, CUDA runtime, CuPy, PyTorch, minae;
2. cases: one targeted check per defect of issue 13 (in a child process, one result line each);
3. tests: the CUDA-marked tests (``pytest -m cuda``) of every test file but test_ops.py;
4. compare: the course VAE and the pytorch/examples-style VAE, CuPy against PyTorch CUDA
   (bench/compare_torch.py --device cuda: epoch time ratio and test loss);
5. overhead: bench/overhead.py --device cuda;
6. ops tests: test_ops.py's CUDA cases, hypothesis examples cut to MINAE_HYPOTHESIS_EXAMPLES=3
   (CuPy compiles a kernel per new op and dtype on first use, so these cost time on a fresh machine).

The results file is rewritten after every stage, so a run cut short still leaves what it found.
Exit status: 0 all passed; 1 something failed or ran out of time; 3 no usable GPU (the file says
why). ``--allow-cpu`` runs the same stages on the CPU, pytest only collecting, and the cases on the
second GPU of the stand-in tests/fake_cupy.py, to try the script where no GPU is: its file says in
its title that it is not a GPU check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import minae  # noqa: E402
from minae import backend  # noqa: E402
from minae.backend import np  # noqa: E402

# the names bench/compare_torch.py gives the course VAE and the pytorch/examples VAE (--models)
COMPARE_MODELS = "vae,examples"
NO_GPU_STATUS = 3


# ---------------------------------------------------------------- the cases ---
# One function per defect of issue 13. Each runs on ``dev`` and raises (AssertionError or the
# library's own error) when the defect is there; what it returns is shown next to PASS.
def case_1_refined_latents_stay_on_the_gpu(dev):
    from minae.models import LatentEBM, TargetProp

    tp = TargetProp(20, 16, 4, steps=3).to(dev)
    y = minae.rand(5, 20, device=dev)
    z_check, z_tilde = tp.infer(y)
    assert z_check.device == z_tilde.device == dev, (z_check.device, z_tilde.device)
    tp.loss(y)["loss"].backward()
    z = LatentEBM(n_z=12).to(dev).argmin_z(minae.rand(4, 2, device=dev), refine_steps=3)
    assert z.device == dev, z.device
    from minae import cli

    with tempfile.TemporaryDirectory() as out:
        argv = ["train", "targetprop", "--epochs", "1", "--hidden", "8", "--batch-size", "512", "--quiet"]
        rc = cli.main(argv + ["--device", str(dev), "--out", out])
        assert rc == 0, f"minae train targetprop --device {dev}: exit status {rc}"
    return "TargetProp.infer, LatentEBM.argmin_z(refine_steps=3), minae train targetprop"


def case_2_host_values_assigned_into_a_gpu_tensor(dev):
    t = minae.zeros(5, device=dev)
    t[0] = 5.0
    t[1:3] = np.array([1.0, 2.0])
    t[[3]] = [7.0]
    t[4:] = minae.tensor([9.0])  # a CPU tensor
    assert t.tolist() == [5.0, 1.0, 2.0, 7.0, 9.0], t.tolist()
    return "scalar, NumPy array, list and CPU tensor values"


def case_3_cpu_tensor_indexed_by_a_gpu_index(dev):
    cpu = minae.arange(5)
    assert cpu[minae.tensor([4, 1], device=dev)].tolist() == [4, 1]
    gpu = minae.arange(5, device=dev)
    assert gpu[minae.tensor([0, 3])].tolist() == [0, 3]
    return "both ways"


def case_4_python_lists_as_operands(dev):
    t = minae.tensor([1.0, 2.0], device=dev)
    assert (t + [1.0, 2.0]).tolist() == [2.0, 4.0]
    assert (t == [1, 3]).tolist() == [True, False]
    assert ([3.0, 3.0] - t).tolist() == [2.0, 1.0]
    return "t + list, t == list, list - t"


def case_5_random_numbers(dev):
    try:
        minae.set_default_dtype("float16")
        u, n = minae.rand(64, device=dev), minae.randn(64, device=dev)
        assert u.dtype == n.dtype == np.dtype("float16") and u.device == dev
    finally:
        minae.set_default_dtype(minae.float32)
    from minae import nn

    minae.manual_seed(11)
    drop = nn.Dropout(0.5).to(dev)
    ones = minae.ones(4, 8, device=dev)
    drop(ones)
    state = json.loads(json.dumps(backend.get_rng_state()))  # as a checkpoint stores it
    expected = [drop(ones).tolist(), minae.randn(6, device=dev).tolist()]
    minae.manual_seed(99)
    drop(ones)
    backend.set_rng_state(state)
    assert [drop(ones).tolist(), minae.randn(6, device=dev).tolist()] == expected, "the GPU stream did not resume"
    return "float16 rand/randn; dropout mask and randn resume exactly from a saved state"


def case_6_optimizer_after_module_to(dev):
    from minae import nn

    model = nn.Linear(4, 3)
    opt = minae.optim.Adam(model.parameters(), lr=0.1)
    for step in range(3):
        if step == 1:
            model.to(dev)
        here = model.weight.device
        opt.zero_grad()
        model(minae.randn(2, 4, device=here)).sum().backward()
        opt.step()
    bad = [k for s in opt.state.values() for k, v in s.items() if isinstance(v, minae.Tensor) and v.device != dev]
    assert not bad, f"optimizer state left behind: {bad}"
    return "Adam step, Module.to, Adam step"


def case_7_out_of_range_indices(dev):
    """As documented: an integer index out of range raises everywhere; an integer-array index raises on the
    CPU and wraps around on a GPU (CuPy's rule: checking it would read the index back), except under
    detect_anomaly, where it raises there too."""
    t = minae.arange(3, device=dev)
    try:
        t[5]
    except IndexError:
        pass
    else:
        raise AssertionError("t[5] of a size-3 tensor did not raise")
    index = minae.tensor([5], device=dev)
    try:
        got = t[index].tolist()
    except IndexError:
        assert dev.type == "cpu", "an integer-array index raised on a GPU, where CuPy wraps it"
        wrapped = "raises"
    else:
        assert dev.type != "cpu" and got == [2], f"t[[5]] of a size-3 tensor gave {got}: wrapped to [2] expected"
        wrapped = "reads t[2]"
    with minae.detect_anomaly():
        try:
            t[index]
        except IndexError:
            pass
        else:
            raise AssertionError("t[[5]] did not raise under detect_anomaly")
    return f"t[5] raises; t[[5]] {wrapped}; under detect_anomaly t[[5]] raises"


def case_8_host_syncs_per_batch(dev):
    """Count minae's reads of values back to the host during one epoch of fit (fewer than batches)."""
    from minae.data import ArrayDataset, DataLoader
    from minae.models import VAE
    from minae.train import fit

    reads = {"n": 0, "depth": 0}
    originals = {}

    def counting(original):
        def wrapper(*args, **kwargs):  # only the outermost read counts (item() may call to_numpy())
            reads["n"] += reads["depth"] == 0
            reads["depth"] += 1
            try:
                return original(*args, **kwargs)
            finally:
                reads["depth"] -= 1

        return wrapper

    model = VAE(64, 32, 4).to(dev)
    x = np.random.default_rng(0).random((32 * 16, 64)).astype(np.float32)
    loader = DataLoader(ArrayDataset(x), batch_size=32, device=dev)  # the batches where the model is
    opt = minae.optim.Adam(model.parameters())
    names = ("item", "tolist", "numpy", "__float__", "__bool__")
    for name in names:
        originals[name] = getattr(minae.Tensor, name)
        setattr(minae.Tensor, name, counting(originals[name]))
    to_numpy = backend.to_numpy
    stand_in_reads = getattr(backend.cupy_module(), "host_reads", None)  # tests/fake_cupy.py sees every read
    if stand_in_reads is not None:
        stand_in_reads.clear()
    try:
        backend.to_numpy = counting(to_numpy)
        fit(model, loader, opt, 1, progress=False)
    finally:
        backend.to_numpy = to_numpy
        for name in names:
            setattr(minae.Tensor, name, originals[name])
    if dev.type != "cpu":  # on the CPU fit looks at every batch's loss: a read costs nothing there
        assert reads["n"] < len(loader), f"{reads['n']} host reads in one epoch of {len(loader)} batches"
        if stand_in_reads is not None:  # every read of the array module, minae's internal ones included
            assert len(stand_in_reads) < len(loader), f"{len(stand_in_reads)} device reads in {len(loader)} batches"
    counted = "" if stand_in_reads is None else f"; {len(stand_in_reads)} device reads seen by the stand-in"
    return (
        f"{reads['n']} host reads (Tensor.item/tolist/numpy/float/bool, backend.to_numpy) in {len(loader)} "
        f"batches{counted}"
    )


def case_9_smaller(dev):
    from minae import nn
    from minae.homework.testing import as_numpy

    model = nn.Linear(3, 2).to(dev)
    norm = minae.optim.clip_grad_norm_(model.parameters(), 1.0)  # no gradients yet
    assert norm.device == dev, f"clip_grad_norm_ without gradients returned a {norm.device} tensor"
    if dev.type == "cuda":
        minae.cuda.synchronize(dev)  # the whole device, every stream
    raw = minae.tensor([1.5, 2.5], device=dev).data
    assert as_numpy(raw).tolist() == [1.5, 2.5] and backend.to_numpy([raw[0], raw[1]]).tolist() == [1.5, 2.5]
    import matplotlib

    matplotlib.use("Agg")
    from minae import viz

    values = minae.rand(50, device=dev)
    with backend.on(dev):  # a raw array's mean: CuPy reduces on the current GPU, which must be the array's
        mean = values.data.mean()
    fig = viz.energy_histogram({"a": values.data}, marks={"mean": mean})  # raw device arrays
    import matplotlib.pyplot as plt

    plt.close(fig)
    from minae.models import salt_and_pepper

    assert salt_and_pepper(minae.rand(8, 8, device=dev), 0.3).device == dev
    return "clip_grad_norm_ device, synchronize, as_numpy/to_numpy of raw arrays, viz marks, salt-and-pepper"


def case_cross_entropy_and_scatter_add_match_the_cpu(dev):
    import minae.nn.functional as F

    rng = np.random.default_rng(0)
    logits, target = rng.normal(0, 4, (64, 10)), rng.integers(0, 10, 64)
    idx = rng.integers(0, 8, 100)  # many repeats
    w0 = rng.normal(size=(8, 3))
    results = []
    for d in (backend.CPU, dev):
        x = minae.tensor(logits, device=d, requires_grad=True)
        loss = F.cross_entropy(x, minae.tensor(target, device=d))
        loss.backward()
        w = minae.tensor(w0, device=d, requires_grad=True)
        (w[minae.tensor(idx, device=d)] ** 2).sum().backward()
        results.append((loss.item(), x.grad.numpy(), w.grad.numpy()))
    (l0, g0, s0), (l1, g1, s1) = results
    assert abs(l0 - l1) <= 1e-12 * abs(l0), (l0, l1)
    np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s1, s0, rtol=1e-12)
    return "float64: loss, ∂/∂logits, scatter-add of 100 indices into 8 rows"


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


# where no GPU is, --allow-cpu runs the cases on the second GPU of tests/fake_cupy.py (CuPy's rules on NumPy)
STAND_IN_DEVICE = "cuda:1"


def run_cases(device: str, stand_in: bool = False) -> int:
    """Child process: one JSON line per case."""
    if stand_in:
        sys.path.insert(0, os.path.join(ROOT, "tests"))
        import fake_cupy

        backend._cupy = fake_cupy
    dev = minae.device(device)
    for case in CASES:
        minae.manual_seed(0)
        t0 = time.perf_counter()
        try:
            detail, ok = case(dev), True
        except Exception as e:  # a case reports its failure; the others still run
            detail, ok = f"{type(e).__name__}: {e}".strip() + "\n" + traceback.format_exc(limit=-3), False
        line = {"case": case.__name__[5:], "ok": ok, "seconds": round(time.perf_counter() - t0, 2), "detail": detail}
        print("CASE " + json.dumps(line), flush=True)
    return 0


# ------------------------------------------------------------------- stages ---
class Report:
    def __init__(self, path, title):
        self.path, self.title, self.sections, self.failed = path, title, [], False

    def add(self, heading, status, body):
        self.sections.append(f"## {heading}: {status}\n\n{body.rstrip()}\n")
        self.failed |= status not in ("ok", "passed", "skipped")
        self.write()

    def write(self):
        text = f"# {self.title}\n\n" + "\n".join(self.sections)
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)


def fenced(text, last=80):
    lines = text.rstrip().splitlines()
    if len(lines) > last:
        lines = [f"[… {len(lines) - last} earlier lines left out]"] + lines[-last:]
    return "```\n" + "\n".join(lines) + "\n```"


def run_child(cmd, limit, env_extra=None):
    """(status, seconds, output) of a command run from the repository root with minae on PYTHONPATH."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    env.update(env_extra or {})
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=limit
        )
        status, out = ("ok" if p.returncode == 0 else f"exit status {p.returncode}"), p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        status = f"timed out after {limit:.0f} s"
    return status, time.perf_counter() - t0, out


def environment(dev) -> str:
    lines = [f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}"]
    lines.append(f"- minae {minae.__version__} from {os.path.dirname(minae.__file__)}")
    lines.append(f"- python {platform.python_version()}, numpy {np.__version__}, BLAS {backend.blas_info()}")
    cupy = backend.cupy_module()
    if cupy is not None:
        lines.append(f"- cupy {cupy.__version__}")
        try:
            rt = cupy.cuda.runtime
            props = rt.getDeviceProperties(dev.index if dev.type == "cuda" else 0)
            name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
            lines.append(f"- GPU: {name}, {props['totalGlobalMem'] / 2**30:.0f} GiB; {rt.getDeviceCount()} device(s)")
            lines.append(f"- CUDA runtime {rt.runtimeGetVersion()}, driver {rt.driverGetVersion()}")
        except Exception as e:
            lines.append(f"- GPU properties unavailable: {e}")
    try:
        import torch

        lines.append(f"- torch {torch.__version__}, CUDA available to torch: {torch.cuda.is_available()}")
    except ImportError:
        lines.append("- torch not installed (the comparisons run minae only)")
    try:
        import hypothesis

        lines.append(f"- hypothesis {hypothesis.__version__}")
    except ImportError:
        lines.append("- hypothesis not installed: test_ops.py cannot be collected")
    return "\n".join(lines)


def pytest_stage(report, heading, files, limit, dry, env_extra=None):
    cmd = [sys.executable, "-m", "pytest", *files, "-m", "cuda", "-q", "-p", "no:cacheprovider"]
    cmd += ["-rfEs" if not dry else "-rfE", "--durations=10", "--continue-on-collection-errors"]
    if dry:
        cmd += ["--collect-only", "-qq"]
    status, secs, out = run_child(cmd, limit, env_extra)
    summary = [ln for ln in out.splitlines() if " passed" in ln or " failed" in ln or " error" in ln]
    if status == "ok" and not dry:
        status = "passed"
    head = f"`{' '.join(cmd[1:])}` ({secs:.0f} s)" + (f"\n\n**{summary[-1].strip('= ')}**" if summary else "")
    report.add(heading, status, head + "\n\n" + fenced(out, 120))


def course_vae_goal(out: str) -> str:
    """The course VAE's epoch time ratio read off compare_torch.py's table, against 1.5.

    The row is the one labelled "VAE" (compare_torch.py's label for ``--models vae``; the
    "pytorch/examples VAE" row is another model), the column the one headed "time ratio" (the
    last if no header is found). "" where there is no such row or its ratio is not a number
    (no PyTorch: "–").
    """
    column = -1
    for line in out.splitlines():
        if not line.strip().startswith("|"):
            continue
        cells = [c.strip().strip("*`").strip() for c in line.strip().strip("|").split("|")]
        names = [c.lower() for c in cells]
        if "time ratio" in names:
            column = names.index("time ratio")
        elif len(cells) > 2 and names[0] in ("vae", "course vae"):
            try:
                ratio = float(cells[column])
            except (ValueError, IndexError):
                return ""
            verdict = "met" if ratio <= 1.5 else "NOT met"
            return f"\n\n**course VAE: minae/PyTorch epoch time {ratio:.2f}, goal at most 1.5: {verdict}**"
    return ""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_out = os.path.join(os.environ["OUT"], "gpu_check.md") if os.environ.get("OUT") else "gpu_check.md"
    p.add_argument("--out", default=default_out, help="the results file (default: $OUT/gpu_check.md or ./gpu_check.md)")
    p.add_argument("--device", default="cuda", help="the GPU to check (default cuda, i.e. cuda:0)")
    p.add_argument("--budget", type=float, default=330.0, help="seconds for everything (default 330)")
    p.add_argument("--allow-cpu", action="store_true", help="no GPU: run the stages on the CPU to try the script")
    p.add_argument("--compare-models", default=COMPARE_MODELS, help="compare_torch.py's model names")
    p.add_argument("--skip", default="", help="comma-separated stages to leave out: cases,tests,compare,overhead,ops")
    p.add_argument("--cases", metavar="DEVICE", help=argparse.SUPPRESS)  # the child process
    p.add_argument("--stand-in", action="store_true", help=argparse.SUPPRESS)  # the child: on tests/fake_cupy.py
    args = p.parse_args(argv)
    if args.cases:
        return run_cases(args.cases, args.stand_in)

    start = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    try:
        dev = minae.device(args.device)
        dry = False
    except (RuntimeError, ValueError) as e:
        if not args.allow_cpu:
            Report(args.out, "GPU check: not run, no usable GPU").add("reason", "no GPU", str(e))
            print(f"gpu_check: no usable GPU ({e}); nothing checked. Results: {args.out}", file=sys.stderr)
            return NO_GPU_STATUS
        dev, dry = backend.CPU, True
    if dev.type == "cpu" and not dry:
        dry = True  # --device cpu: a trial, never a GPU check
    title = "GPU check" if not dry else "GPU check: CPU TRIAL RUN (no GPU; not a GPU check)"
    report = Report(args.out, f"{title} — minae on {dev}")
    left = lambda: args.budget - (time.perf_counter() - start)  # noqa: E731

    report.add("environment", "ok", environment(dev))

    if "cases" not in skip:
        cases_on = [str(dev)] if not dry else [STAND_IN_DEVICE, "--stand-in"]
        status, secs, out = run_child([sys.executable, __file__, "--cases", *cases_on], min(120, left()))
        rows, failures = [], []
        for line in out.splitlines():
            if line.startswith("CASE "):
                r = json.loads(line[5:])
                first = r["detail"].splitlines()[0] if r["detail"] else ""
                rows.append(f"| {r['case']} | {'PASS' if r['ok'] else 'FAIL'} | {r['seconds']} | {first} |")
                if not r["ok"]:
                    failures.append(f"### {r['case']}\n\n" + fenced(r["detail"]))
        if len(rows) < len(CASES) or status != "ok":
            failures.append(f"### the cases process: {status}\n\n" + fenced(out, 40))
        table = "| case | result | s | detail |\n|---|---|---|---|\n" + "\n".join(rows)
        where = "" if not dry else f", on {STAND_IN_DEVICE} of the stand-in tests/fake_cupy.py"
        report.add(
            f"targeted cases ({secs:.0f} s{where})",
            "passed" if not failures else "FAILED",
            table + "\n\n" + "\n\n".join(failures),
        )

    tests = sorted(
        os.path.join("tests", f)
        for f in os.listdir(os.path.join(ROOT, "tests"))
        if f.startswith("test_")
        and f.endswith(".py")
        and f not in ("test_ops.py", "test_notebooks.py", "test_readme.py")
    )
    if "tests" not in skip:
        pytest_stage(
            report, "CUDA-marked tests (all files but test_ops.py)", tests, max(10, min(150, left() - 60)), dry
        )

    if "compare" not in skip:
        cmd = [sys.executable, "bench/compare_torch.py", "--device", str(dev), "--models", args.compare_models]
        cmd += ["--epochs", "3" if not dry else "1", "--seeds", "1", "--no-memory"]
        status, secs, out = run_child(cmd, max(10, min(100, left() - 50)))
        note = "epoch time ratio = minae / PyTorch (goal for the course VAE on CUDA: at most 1.5)"
        goal = course_vae_goal(out)
        report.add(
            "CuPy against PyTorch CUDA", status, f"`{' '.join(cmd[1:])}` ({secs:.0f} s); {note}{goal}\n\n" + fenced(out)
        )

    if "overhead" not in skip:
        cmd = [sys.executable, "bench/overhead.py", "--device", str(dev), "--repeats", "3" if not dry else "1"]
        status, secs, out = run_child(cmd, max(10, min(60, left() - 30)))
        report.add("overhead benchmark", status, f"`{' '.join(cmd[1:])}` ({secs:.0f} s)\n\n" + fenced(out))

    if "ops" not in skip:
        limit = left() - 5
        if limit < 20:
            report.add("test_ops.py CUDA cases", "not run", f"{limit:.0f} s of the budget left")
        else:
            env = {"MINAE_HYPOTHESIS_EXAMPLES": "3"}
            pytest_stage(
                report, "test_ops.py CUDA cases (3 hypothesis examples)", ["tests/test_ops.py"], limit, dry, env
            )

    total = time.perf_counter() - start
    report.sections.append(f"Total {total:.0f} s of a {args.budget:.0f} s budget.\n")
    report.write()
    print(f"gpu_check: {'FAILURES' if report.failed else 'all passed'} in {total:.0f} s; results: {args.out}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
