"""A strict stand-in for CuPy, NumPy underneath, to test the backend's device branches without a GPU.

It copies only the CuPy behaviour those branches depend on, and is stricter where CuPy is strict:

- ``np.asarray(fake_array)`` raises TypeError (CuPy refuses implicit device-to-host copies);
- arithmetic, comparisons and indexing refuse NumPy arrays (and lists as operands);
- the samplers draw float32 or float64 only (cuRAND makes nothing else), and a RandomState's
  state cannot be read, only re-seeded;
- ``cuda.Device(i)`` is a context that sets the current GPU; ``Device(i).synchronize()`` and
  ``Stream.null.synchronize()`` are recorded, so a test can tell which one ran.

Most of CuPy's array API is absent on purpose: a test that needs it belongs on a real GPU.
"""

import types

import numpy as np

_current = [0]  # the current GPU, as cupy.cuda.Device sets it
synchronized = []  # ("device", i) or ("null stream", i), in call order
N_GPUS = 2

float32, float64, float16, int64, int32 = np.float32, np.float64, np.float16, np.int64, np.int32


class _DeviceId:
    def __init__(self, i):
        self.id = i


def _strict(x):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (np.ndarray, list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}: a CuPy array meets only CuPy arrays and scalars")
    return x


class ndarray:
    __array_ufunc__ = None  # NumPy ufuncs with a fake operand raise instead of converting it

    def __init__(self, a, dev=None):
        self._a = np.asarray(a)
        self.device = _DeviceId(_current[0] if dev is None else dev)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct one.")

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)

    def get(self):
        return self._a.copy()

    def astype(self, dtype, copy=True):
        return ndarray(self._a.astype(dtype, copy=copy), self.device.id)

    def __getitem__(self, key):
        key = tuple(_strict(k) for k in key) if isinstance(key, tuple) else _strict(key)
        return ndarray(self._a[key], self.device.id)

    def _binary(op):
        def method(self, other):
            return ndarray(op(self._a, _strict(other)), self.device.id)

        return method

    def _inplace(op):
        def method(self, other):
            op(self._a, _strict(other), out=self._a)
            return self

        return method

    __add__, __sub__, __mul__ = _binary(np.add), _binary(np.subtract), _binary(np.multiply)
    __lt__, __eq__ = _binary(np.less), _binary(np.equal)
    __iadd__, __imul__ = _inplace(np.add), _inplace(np.multiply)
    __hash__ = None


def asarray(obj, dtype=None):
    if isinstance(obj, ndarray):  # as CuPy: an array of another GPU is copied to the current one
        if obj.device.id != _current[0]:
            obj = ndarray(obj._a.copy(), _current[0])
        return obj if dtype is None else obj.astype(dtype, copy=False)
    return ndarray(np.array(obj, dtype=dtype), _current[0])


def asnumpy(a):
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


class _Device:
    def __init__(self, i=None):
        self.id = _current[0] if i is None else i
        self._saved = []

    def __enter__(self):
        self._saved.append(_current[0])
        _current[0] = self.id
        return self

    def __exit__(self, *exc):
        _current[0] = self._saved.pop()

    def synchronize(self):
        synchronized.append(("device", self.id))


class _NullStream:
    def synchronize(self):
        synchronized.append(("null stream", _current[0]))


class RandomState:
    """Re-seedable, unreadable, float32/float64 only: CuPy's legacy generator as far as minae uses it."""

    def __init__(self, seed=None, method=100):
        self.method = method
        self.seed(seed)

    def seed(self, seed=None):
        if seed is not None and not 0 <= seed < 2**64:
            raise ValueError("Seed must be an integer between 0 and 2**64 - 1")
        self._gen = np.random.Generator(np.random.PCG64(seed))

    @staticmethod
    def _float(dtype):
        dtype = np.dtype(dtype)
        if dtype.char not in "fd":
            raise TypeError("cupy.random only supports float32 and float64")
        return dtype

    def random_sample(self, size=None, dtype=float):
        return ndarray(self._gen.random(size, dtype=self._float(dtype)))

    def standard_normal(self, size=None, dtype=float):
        return ndarray(self._gen.standard_normal(size, dtype=self._float(dtype)))

    def randint(self, low, high=None, size=None, dtype=int):
        return ndarray(self._gen.integers(low, high, size=size, dtype=dtype))

    def permutation(self, n):
        return ndarray(self._gen.permutation(n))


cuda = types.SimpleNamespace(
    Device=_Device,
    Stream=types.SimpleNamespace(null=_NullStream()),
    runtime=types.SimpleNamespace(getDeviceCount=lambda: N_GPUS),
    curand=types.SimpleNamespace(CURAND_RNG_PSEUDO_DEFAULT=100, CURAND_RNG_PSEUDO_PHILOX4_32_10=161),
)
random = types.SimpleNamespace(RandomState=RandomState)
__version__ = "0.0-fake"
