"""Shared fixtures: every device-aware test takes ``device`` and runs once per device.

CUDA cases run where CuPy and a GPU are present and are skipped, with the reason
shown, everywhere else.
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

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _cuda_skip_reason():
    from minae import backend

    if backend.cupy_module() is None:
        return 'CuPy is not installed (pip install "minae[cuda]")'
    if not backend.cuda_available():
        return "no CUDA GPU found"
    return None


@pytest.fixture(params=DEVICES)
def device(request):
    """The device name a test runs on: "cpu", and "cuda" where a GPU is usable."""
    if request.param == "cuda":
        reason = _cuda_skip_reason()
        if reason:
            pytest.skip(reason)
    return request.param


@pytest.fixture(autouse=True)
def _seed_and_defaults():
    """Each test starts from the same seed and the default dtype/device."""
    minae.manual_seed(0)
    yield
    minae.set_default_dtype(minae.float32)
    minae.set_default_device("cpu")


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
