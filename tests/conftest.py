"""Shared fixtures: every device-aware test takes ``device`` and runs once per device.

The CUDA cases, cuda:0 and cuda:1, run on real GPUs where CuPy finds them, and on the
two GPUs of tests/fake_cupy.py (CuPy's rules on NumPy) everywhere else, CI included.
"""

import os

import pytest

os.environ.setdefault("MINAE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import minae  # noqa: E402

try:
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "minae",
        deadline=None,
        # bench/gpu_check.py cuts the examples (MINAE_HYPOTHESIS_EXAMPLES=3): a fresh GPU compiles a kernel per new op
        max_examples=int(os.environ.get("MINAE_HYPOTHESIS_EXAMPLES", "25")),
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    settings.load_profile("minae")
except ImportError:  # hypothesis is in the `test` extra
    pass

# Two GPUs: every op must run on its tensors' GPU, which need not be the first (nor the current) one
DEVICES = ["cpu", pytest.param("cuda:0", marks=pytest.mark.cuda), pytest.param("cuda:1", marks=pytest.mark.cuda)]


def _real_cuda_skip_reason(index):
    from minae import backend

    if backend.cupy_module() is None:
        return 'CuPy is not installed (pip install "minae[cuda]")'
    n = backend.cuda_device_count()
    if n <= index:
        return f"cuda:{index} needs {index + 1} CUDA GPUs, this machine has {n}"
    return None


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    """The device name a test runs on: "cpu", "cuda:0" and "cuda:1".

    The CUDA cases run on real GPUs where CuPy finds them, and otherwise on tests/fake_cupy.py, a
    NumPy-backed stand-in with CuPy's rules and two GPUs (set MINAE_REAL_CUDA_ONLY=1 to skip them instead).
    """
    if request.param == "cpu":
        return request.param
    from minae import backend

    index = int(request.param[5:])
    if backend.cuda_available():
        reason = _real_cuda_skip_reason(index)
        if reason:
            pytest.skip(reason)
        return request.param
    if os.environ.get("MINAE_REAL_CUDA_ONLY"):
        pytest.skip(_real_cuda_skip_reason(index) or "no CUDA GPU found")
    import fake_cupy

    monkeypatch.setattr(backend, "_cupy", fake_cupy)
    # each test starts with GPU 0 current in every thread, as a process does
    monkeypatch.setattr(fake_cupy, "_current", fake_cupy._CurrentDevice())
    minae.manual_seed(0)  # the fake's generators, dropped again by _seed_and_defaults
    return request.param


@pytest.fixture(autouse=True)
def _seed_and_defaults():
    """Each test starts from the same seed and the default dtype/device."""
    minae.manual_seed(0)
    yield
    minae.set_default_dtype(minae.float32)
    minae.set_default_device("cpu")
    minae.manual_seed(0)  # no generator of a stand-in GPU outlives its test


@pytest.fixture
def fifo_error(tmp_path):
    """``fifo_error(read, name)``: the exception ``read(path)`` raises for a FIFO called ``name``.

    A reader that opens a FIFO waits for a writer; it runs in a thread, and a test that finds it
    still waiting after 5 s unblocks it (one writer that closes at once) and fails."""
    import threading

    def run(read, name):
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs on this system")
        fifo = tmp_path / name
        os.mkfifo(fifo)
        outcome = []

        def attempt():
            try:
                read(fifo)
            except Exception as e:  # noqa: BLE001 - returned and checked by the test
                outcome.append(e)

        thread = threading.Thread(target=attempt, daemon=True)
        thread.start()
        thread.join(5)
        if thread.is_alive():
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(5)
            pytest.fail(f"{read.__qualname__} waited on a FIFO instead of refusing it")
        assert len(outcome) == 1, outcome
        return outcome[0]

    return run


@pytest.fixture
def peak_bytes():
    """``peak_bytes(fn)``: the most memory Python allocated while ``fn()`` ran (tracemalloc)."""
    import tracemalloc

    def run(fn):
        tracemalloc.start()
        try:
            fn()
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        return peak

    return run


@pytest.fixture
def leaf64():
    """``leaf64(values, device="cpu", requires_grad=True)``: a float64 tensor, a leaf that requires grad by default
    (what a gradient check wants)."""

    def make(values, device="cpu", requires_grad=True):
        return minae.tensor(values, dtype=minae.float64, device=device, requires_grad=requires_grad)

    return make


from pathlib import Path  # noqa: E402

from minae.homework import grade as _grade  # noqa: E402
from minae.homework import sandbox as _sandbox  # noqa: E402

# the grader's minae (the reference), which the fallback user must not read
_GRADERS_PACKAGE = Path(_grade.__code__.co_filename).resolve().parents[1]


@pytest.fixture
def fallback(monkeypatch):
    """MINAE_SANDBOX=user (as where bubblewrap cannot run), with the grader's package private to its owner.

    The fallback refuses to run where another user could read the teacher's files (a checkout is world-
    readable by default): the teacher makes the project private, as its refusal says, and so does this
    fixture (restored after). Where the fallback still cannot run (not root, no Python with NumPy another
    user can reach: .ci/run installs Debian's python3-numpy) the test skips, unless MINAE_REQUIRE_FALLBACK=1
    (set by .ci/run), where it fails.
    """
    monkeypatch.setenv("MINAE_SANDBOX", "user")
    # the project too: it may be graded
    mode, top = _GRADERS_PACKAGE.stat().st_mode, _GRADERS_PACKAGE.parent.stat().st_mode
    _GRADERS_PACKAGE.chmod(mode & ~0o007)
    _GRADERS_PACKAGE.parent.chmod(top & ~0o007)
    _sandbox._user_runtime.cache_clear()
    try:
        reason = _sandbox._user_ok(_sandbox.teacher_paths())
        if reason is not None:
            if os.environ.get("MINAE_REQUIRE_FALLBACK") == "1":
                pytest.fail(f"the fallback user cannot run here: {reason}")
            pytest.skip(f"the fallback user cannot run here: {reason}")
        yield _sandbox._user_runtime(_sandbox.teacher_paths())
    finally:
        _GRADERS_PACKAGE.chmod(mode)
        _GRADERS_PACKAGE.parent.chmod(top)
        _sandbox._user_runtime.cache_clear()
