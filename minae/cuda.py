"""``minae.cuda``: is a GPU usable, and how many."""

from . import backend


def is_available() -> bool:
    """True when CuPy is installed and finds a CUDA GPU."""
    return backend.cuda_available()


def device_count() -> int:
    return backend.cuda_device_count()


def synchronize(device="cuda") -> None:
    """Wait until the GPU has finished the work queued so far (for timing)."""
    backend.synchronize(backend.device(device))
