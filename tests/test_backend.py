"""The array backend: the only module that imports NumPy or CuPy, device names, dtypes."""

import ast
from pathlib import Path

import numpy as np
import pytest

import minae
from minae import backend

PACKAGE = Path(minae.__file__).resolve().parent
ARRAY_LIBRARIES = ("numpy", "cupy")


def _is_array_library(name: str) -> bool:
    return name.split(".")[0] in ARRAY_LIBRARIES


def array_library_imports(source: str) -> list:
    """(line, what) for every import of numpy or cupy in ``source``: statements, and
    importlib.import_module("numpy") / __import__("cupy") calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if _is_array_library(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.level == 0 and _is_array_library(node.module):
                found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and _is_array_library(arg.value):
                    found.append((node.lineno, f"{name}({arg.value!r})"))
    return found


def test_the_import_detector_finds_every_form():
    source = "\n".join(
        [
            "import numpy as np",
            "import os, cupy",
            "from numpy.linalg import norm",
            "from cupy import asnumpy",
            "import importlib",
            "m = importlib.import_module('numpy')",
            "c = __import__('cupy.random')",
            "from . import backend",  # relative: fine
            "import numbers",  # not numpy
            "x = 'numpy'",  # a mere string: fine
        ]
    )
    assert [line for line, _ in array_library_imports(source)] == [1, 2, 3, 4, 6, 7]


def test_only_backend_imports_numpy_or_cupy():
    offenders = []
    modules = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "autograd.py" in modules and PACKAGE / "ops.py" in modules
    for path in modules:
        if path == PACKAGE / "backend.py":
            continue
        for line, what in array_library_imports(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {what}")
    assert not offenders, "only minae/backend.py may import numpy or cupy (use backend.np / get_array_module):\n" + (
        "\n".join(offenders)
    )


def test_backend_does_import_numpy():
    assert any("numpy" in what for _, what in array_library_imports((PACKAGE / "backend.py").read_text()))


# ------------------------------------------------------------------ devices ---
def test_parse_cpu():
    for spec in ("cpu", "CPU", " cpu "):
        d = minae.device(spec)
        assert d.type == "cpu" and d.index is None and str(d) == "cpu"
    assert minae.device(None) == minae.get_default_device()
    assert minae.device(minae.device("cpu")) == "cpu"


def test_parse_cuda_names(monkeypatch):
    asked = []
    monkeypatch.setattr(backend, "_require_cuda", asked.append)  # pretend GPUs exist
    d = minae.device("cuda")
    assert (d.type, d.index, str(d)) == ("cuda", 0, "cuda:0")
    d = minae.device("cuda:1")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 1, "cuda:1", "device(type='cuda', index=1)")
    assert asked == [0, 1]  # every CUDA name is checked at the point of asking


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "", "cpu:0", "tpu"])
def test_bad_device_strings_raise_naming_the_string(spec):
    with pytest.raises(ValueError, match=f"invalid device {spec!r}"):
        minae.device(spec)


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="int"):
        minae.device(0)


def test_device_equality_with_strings():
    cpu = minae.device("cpu")
    assert cpu == "cpu" and cpu == "CPU" and cpu == backend.Device("cpu")
    assert cpu != "cuda" and cpu != "cuda:0"  # unequal, not an error, on a machine without a GPU
    assert cpu != "nonsense" and cpu != 3
    gpu1 = backend.Device("cuda", 1)
    assert gpu1 == "cuda:1" and gpu1 != "cuda:0" and gpu1 != "cuda" and gpu1 != cpu
    assert hash(backend.Device("cuda", 1)) == hash(gpu1)
    assert len({cpu, backend.Device("cpu"), gpu1}) == 2


def test_cuda_helpers_agree():
    assert minae.cuda.is_available() == backend.cuda_available()
    assert (minae.cuda.device_count() > 0) == minae.cuda.is_available()
    if not minae.cuda.is_available():
        with pytest.raises(RuntimeError, match=r'pip install "minae\[cuda\]"|no (CUDA device|GPU)'):
            minae.device("cuda")


# ------------------------------------------------------------ arrays, dtypes ---
def test_array_module_and_device_of_arrays(device):
    a = minae.zeros(2, device=device).data
    xp = backend.get_array_module(a)
    assert backend.is_array(a) and backend.array_device(a) == device
    assert (xp is np) == (device == "cpu")
    assert backend.get_array_module(3.0) is np and not backend.is_array([1.0])
    h = backend.to_numpy(a)
    assert isinstance(h, np.ndarray) and backend.to_device(h, backend.device(device)).shape == (2,)


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, np.float32),
        (minae.float32, np.float32),
        (minae.float64, np.float64),
        (np.float64, np.float64),
        ("float64", np.float64),
        ("int64", np.int64),
        (bool, np.bool_),
    ],
)
def test_as_dtype(spec, expected):
    assert backend.as_dtype(spec) == np.dtype(expected)


def test_as_array_rules():
    assert backend.as_array([1.0, 2.0]).dtype == np.float32
    assert backend.as_array([1, 2]).dtype == np.int64
    assert backend.as_array(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert backend.as_array(np.float64(1.5)).dtype == np.float64
    assert backend.as_array([1, 2], dtype="float64").dtype == np.float64
    assert isinstance(backend.as_weak_scalar(np.float64(2.0)), float)


def test_rng_state_round_trip():
    minae.manual_seed(5)
    state = backend.get_rng_state()
    first = minae.randn(4).tolist()
    backend.set_rng_state(state)
    assert minae.randn(4).tolist() == first
