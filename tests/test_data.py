"""Tests for minae.data: the IDX reader, the MNIST downloader (against a local server only),
the bundled subset, the toy data sets and the DataLoader."""

import contextlib
import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import minae
import minae.data as mdata
from minae import backend
from minae.data import mnist as mnist_mod

# ------------------------------------------------------------------ helpers ---
_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array) -> bytes:
    """An IDX file's bytes for ``array`` (written here independently of the reader)."""
    array = np.asarray(array)
    code = _CODES[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def fake_mnist(n_train=6, n_test=4, seed=0):
    """Small IDX .gz files shaped like MNIST: {name: gz bytes} and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    blobs = {name: gzip.compress(idx_bytes(a)) for name, a in arrays.items()}
    return blobs, arrays


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------- IDX reader ---
@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([[-1, 2], [300, -40000]], dtype=np.int32),
        np.array([1.5, -2.25], dtype=np.float32),
        np.array([[1e300]], dtype=np.float64),
        np.array([-3, 7], dtype=np.int16),
    ],
)
def test_idx_round_trip(tmp_path, array, gz):
    path = write(tmp_path / ("f.idx.gz" if gz else "f.idx"), idx_bytes(array), gz=gz)
    out = mdata.read_idx(path)
    assert out.dtype == array.dtype.newbyteorder("=") and out.dtype.isnative
    assert out.shape == array.shape
    np.testing.assert_array_equal(out, array)
    out[...] = 0  # writable, not a view of a bytes object


def test_idx_gzip_detected_by_magic_and_raw_with_gz_name(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    # gzip content under a name without .gz
    np.testing.assert_array_equal(mdata.read_idx(write(tmp_path / "labels", idx_bytes(a), gz=True)), a)
    # raw content under a .gz name (someone ran gunzip -c and kept the name)
    np.testing.assert_array_equal(mdata.read_idx(write(tmp_path / "labels.gz", idx_bytes(a))), a)


def test_idx_expected_shape(tmp_path):
    path = write(tmp_path / "img.idx", idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    assert mdata.read_idx(path, shape=(None, 28, 28)).shape == (3, 28, 28)
    with pytest.raises(mdata.DataError, match=r"img\.idx: wrong dimensions.*\(N, 32, 32\)"):
        mdata.read_idx(path, shape=(None, 32, 32))
    with pytest.raises(mdata.DataError, match="wrong dimensions"):
        mdata.read_idx(path, shape=(None,))


GOOD = idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5))


@pytest.mark.parametrize(
    "data, problem",
    [
        (b"", "empty file"),
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated header"),
        (b"\x08\x00\x00\x03" + GOOD[4:], "bad magic"),
        (b"\x00\x00\x07\x03" + GOOD[4:], "bad magic"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (GOOD[:-7], "truncated: expected 60 bytes of data.*found 53"),
        (GOOD + b"\x00\x01", "2 trailing bytes"),
        (b"\x00\x00\x08\x02" + GOOD[8:], "trailing bytes"),  # ndim 2 where the data has 3 dims
        (b"\x00\x00\x08\x04" + GOOD[4:], "truncated"),  # ndim 4: the first data bytes read as a size
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_bad_files(tmp_path, data, problem, gz):
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = write(tmp_path / name, data, gz=gz)
    with pytest.raises(mdata.DataError, match=problem) as info:
        mdata.read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_idx_bad_gzip(tmp_path):
    blob = gzip.compress(GOOD)
    cut = write(tmp_path / "cut.gz", blob[: len(blob) // 2])
    with pytest.raises(mdata.DataError, match=r"cut\.gz: truncated gzip"):
        mdata.read_idx(cut)
    garbled = write(tmp_path / "garbled.gz", blob[:10] + b"\xff" * 20 + blob[30:])
    with pytest.raises(mdata.DataError, match=r"garbled\.gz"):
        mdata.read_idx(garbled)
    not_gz = write(tmp_path / "text.gz", b"hello world")
    with pytest.raises(mdata.DataError, match=r"text\.gz: not a gzip file"):
        mdata.read_idx(not_gz)


def test_idx_missing_file(tmp_path):
    path = tmp_path / "nope-idx1-ubyte.gz"
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte.gz"):
        mdata.read_idx(path)


# ---------------------------------------------------------------- full MNIST ---
def test_load_mnist_from_files(tmp_path):
    blobs, arrays = fake_mnist()
    for i, (name, blob) in enumerate(blobs.items()):
        if i % 2:  # half gzipped, half raw: both are accepted
            (tmp_path / name[:-3]).write_bytes(gzip.decompress(blob))
        else:
            (tmp_path / name).write_bytes(blob)
    (xtr, ytr), (xte, yte) = mdata.load_mnist(tmp_path)
    assert xtr.dtype == np.uint8 and xtr.shape == (6, 28, 28) and xte.shape == (4, 28, 28)
    assert ytr.dtype == np.int64 and ytr.shape == (6,) and yte.shape == (4,)
    np.testing.assert_array_equal(xtr, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(yte, arrays["t10k-labels-idx1-ubyte.gz"])


def test_load_mnist_count_mismatch_and_bad_dims(tmp_path):
    blobs, _ = fake_mnist()
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(5, np.uint8))))
    with pytest.raises(mdata.DataError, match="6 images but .*train-labels-idx1-ubyte.gz has 5 labels"):
        mdata.load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 27), np.uint8))))
    with pytest.raises(mdata.DataError, match=r"train-images-idx3-ubyte.gz: wrong dimensions"):
        mdata.load_mnist(tmp_path)


def test_load_mnist_missing_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        mdata.load_mnist(tmp_path)
    text = str(info.value)
    assert "train-images-idx3-ubyte.gz" in text and str(tmp_path) in text
    assert "download=True" in text and "load_bundled_mnist" in text


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MINAE_DATA", str(tmp_path / "x"))
    assert mdata.default_root() == tmp_path / "x"
    monkeypatch.delenv("MINAE_DATA")
    assert mdata.default_root() == Path.home() / ".cache" / "minae" / "mnist"


def test_published_checksums_table():
    assert (
        set(mdata.MNIST_FILES)
        == set(mdata.MNIST_SIZES)
        == {
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        }
    )
    for digest in mdata.MNIST_FILES.values():
        assert len(digest) == 64 and int(digest, 16) >= 0
    assert mdata.MNIST_FILES["train-images-idx3-ubyte.gz"].startswith("440fcabf")
    assert all(m.startswith("https://") for m in mdata.MIRRORS[:2])


# ------------------------------------------------------- downloader (local) ---
class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}  # path -> (status, body, announced length or None)

    def do_GET(self):
        status, body, announced = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if announced is None else announced))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _local_server(monkeypatch, handler):
    """An HTTP server on 127.0.0.1 (never anywhere else), with no proxy in the way; ``.base`` is its URL."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def server(monkeypatch):
    """A local server serving _Handler.routes."""
    handler = type("Handler", (_Handler,), {"routes": {}})
    with _local_server(monkeypatch, handler) as httpd:
        httpd.routes = handler.routes
        yield httpd


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_success_then_load(server, tmp_path):
    blobs, arrays = fake_mnist()
    for name, blob in blobs.items():
        server.routes[f"/good/{name}"] = (200, blob, None)
    files = {name: sha(blob) for name, blob in blobs.items()}
    root = mdata.download_mnist(tmp_path / "mnist", mirrors=[server.base + "/good"], files=files, verbose=False)
    assert sorted(p.name for p in root.iterdir()) == sorted(blobs)
    for name, blob in blobs.items():
        assert (root / name).read_bytes() == blob
    (xtr, ytr), _ = mdata.load_mnist(root)
    np.testing.assert_array_equal(xtr, arrays["train-images-idx3-ubyte.gz"])
    # a second call finds everything in place and fetches nothing
    server.routes.clear()
    mdata.download_mnist(root, mirrors=[server.base + "/good"], files=files, verbose=False)


def test_download_falls_through_to_next_mirror(server, tmp_path):
    blobs, _ = fake_mnist()
    name = "train-labels-idx1-ubyte.gz"
    blob = blobs[name]
    server.routes[f"/bad/{name}"] = (200, blob[:-3] + b"xyz", None)  # corrupted, same length
    server.routes[f"/good/{name}"] = (200, blob, None)
    mirrors = [_closed_port_url(), server.base + "/missing/", server.base + "/bad/", server.base + "/good/"]
    mdata.download_mnist(tmp_path, mirrors=mirrors, files={name: sha(blob)}, verbose=False)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).read_bytes() == blob


def test_download_replaces_corrupt_existing_file(server, tmp_path):
    blobs, _ = fake_mnist()
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / name).write_bytes(b"old and wrong")
    server.routes[f"/m/{name}"] = (200, blobs[name], None)
    mdata.download_mnist(tmp_path, mirrors=[server.base + "/m/"], files={name: sha(blobs[name])}, verbose=False)
    assert (tmp_path / name).read_bytes() == blobs[name]


def test_download_all_mirrors_fail(server, tmp_path):
    blobs, _ = fake_mnist()
    name = "t10k-images-idx3-ubyte.gz"
    blob = blobs[name]
    server.routes[f"/bad/{name}"] = (200, b"\x1f\x8b" + blob[2:-1], None)
    server.routes[f"/short/{name}"] = (200, blob[: len(blob) // 2], len(blob))  # connection drops mid-body
    refused = _closed_port_url()
    mirrors = [server.base + "/bad", server.base + "/short", server.base + "/missing", refused]
    root = tmp_path / "root"
    with pytest.raises(mdata.DownloadError) as info:
        mdata.download_mnist(root, mirrors=mirrors, files={name: sha(blob)}, verbose=False)
    text = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert name in text and "load_bundled_mnist" in text
    assert f"{server.base}/bad/{name}: checksum mismatch" in text
    assert f"{server.base}/short/{name}: connection closed after {len(blob) // 2} of {len(blob)} bytes" in text
    assert f"{server.base}/missing/{name}: HTTP 404" in text
    assert refused + name in text
    assert list(root.iterdir()) == []  # no final file, no temporary file


def test_download_failure_mid_write_leaves_nothing(server, tmp_path, monkeypatch):
    blobs, _ = fake_mnist()
    name = "train-images-idx3-ubyte.gz"
    server.routes[f"/m/{name}"] = (200, blobs[name], None)
    seen = []

    def broken_copy(response, fh, hasher, *bounds):
        fh.write(response.read(100))
        fh.flush()
        seen.extend(p.name for p in tmp_path.iterdir())
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mnist_mod, "_copy_stream", broken_copy)
    with pytest.raises(mdata.DownloadError, match="No space left on device"):
        mdata.download_mnist(tmp_path, mirrors=[server.base + "/m"], files={name: sha(blobs[name])}, verbose=False)
    assert len(seen) == 1 and seen[0].startswith(".") and seen[0] != name  # it really was writing a temporary file
    assert list(tmp_path.iterdir()) == []

    def interrupted(response, fh, hasher, *bounds):
        fh.write(response.read(100))
        raise KeyboardInterrupt

    monkeypatch.setattr(mnist_mod, "_copy_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):  # not swallowed as one mirror's failure
        mdata.download_mnist(tmp_path, mirrors=[server.base + "/m"], files={name: sha(blobs[name])}, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_load_mnist_download_true(server, tmp_path, monkeypatch):
    blobs, arrays = fake_mnist()
    for name, blob in blobs.items():
        server.routes[f"/m/{name}"] = (200, blob, None)
    monkeypatch.setattr(mnist_mod, "MNIST_FILES", {name: sha(blob) for name, blob in blobs.items()})
    (_, _), (xte, yte) = mdata.load_mnist(tmp_path, download=True, mirrors=[server.base + "/m/"])
    np.testing.assert_array_equal(yte, arrays["t10k-labels-idx1-ubyte.gz"])


# ------------------------------------------------------------ bundled subset ---
def test_bundled_subset():
    (xtr, ytr), (xte, yte) = mdata.load_bundled_mnist()
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28)
    assert xtr.dtype == xte.dtype == np.uint8
    assert ytr.dtype == yte.dtype == np.int64 and ytr.shape == (4000,) and yte.shape == (1000,)
    np.testing.assert_array_equal(np.bincount(ytr, minlength=10), np.full(10, 400))
    np.testing.assert_array_equal(np.bincount(yte, minlength=10), np.full(10, 100))
    assert xtr.min() == 0 and xtr.max() == 255
    train_rows = {row.tobytes() for row in xtr}
    assert len(train_rows) == 4000
    assert not any(row.tobytes() in train_rows for row in xte)
    # shuffled: the source is sorted by label
    assert np.any(np.diff(ytr) < 0) and len(set(ytr[:50].tolist())) >= 8 and len(set(yte[:50].tolist())) >= 8
    # real digits: ink covers roughly 10-25% of a typical MNIST image, mostly near the centre
    ink = xtr > 128
    assert 0.08 < ink.mean() < 0.3
    assert ink[:, 8:20, 8:20].mean() > 3 * ink[:, :4, :].mean()


def test_bundled_missing_or_corrupt(monkeypatch, tmp_path):
    class Fake:
        def __init__(self, path):
            self.path = path

    monkeypatch.setattr(mnist_mod, "_bundled_path", lambda: tmp_path / "mnist_subset.npz")
    with pytest.raises(FileNotFoundError, match=r"mnist_subset\.npz.*reinstall"):
        mdata.load_bundled_mnist()
    (tmp_path / "mnist_subset.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(mdata.DataError, match=r"mnist_subset\.npz: corrupt"):
        mdata.load_bundled_mnist()
    np.savez(tmp_path / "mnist_subset.npz", train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(mdata.DataError, match=r"mnist_subset\.npz: corrupt.*train_labels"):
        mdata.load_bundled_mnist()
    z = np.zeros((2, 28, 28), np.uint8)
    np.savez(tmp_path / "mnist_subset.npz", train_images=z, train_labels=np.zeros(3), test_images=z, test_labels=z)
    with pytest.raises(mdata.DataError, match="train_labels is float64"):
        mdata.load_bundled_mnist()


@pytest.mark.parametrize("scale, low, high", [("01", 0.0, 1.0), ("pm1", -1.0, 1.0)])
def test_mnist_arrays(scale, low, high):
    (x, y), (xt, yt) = mdata.mnist_arrays("bundled", scale=scale)
    assert x.shape == (4000, 784) and xt.shape == (1000, 784) and x.dtype == np.float32
    assert x.min() == low and x.max() == high
    (raw, _), _ = mdata.load_bundled_mnist()
    np.testing.assert_allclose(x[7].reshape(28, 28), (raw[7] / 255.0) * (high - low) + low, rtol=1e-6, atol=1e-6)
    assert y.dtype == np.int64
    (x3, _), _ = mdata.mnist_arrays(flatten=False, dtype=np.float64)
    assert x3.shape == (4000, 28, 28) and x3.dtype == np.float64
    with pytest.raises(ValueError, match="scale"):
        mdata.mnist_arrays(scale="0-1")
    with pytest.raises(ValueError, match="source"):
        mdata.mnist_arrays(source="cifar")


# ------------------------------------------------------------------ toy data ---
def test_ellipse():
    y = mdata.ellipse(2000, seed=0)
    assert y.shape == (2000, 2) and y.dtype == np.float64
    exact = mdata.ellipse(50, rho=(3.0, 0.5), noise=0.0, seed=1)
    np.testing.assert_allclose((exact[:, 0] / 3.0) ** 2 + (exact[:, 1] / 0.5) ** 2, 1.0)
    # noise: E[(y1/ρ1)² + (y2/ρ2)²] = 1 + σ²(1/ρ1² + 1/ρ2²); the residual off the noiseless curve has std σ
    r = (y[:, 0] / 2.0) ** 2 + (y[:, 1] / 1.5) ** 2
    assert abs(r.mean() - (1 + (1 / 20) ** 2 * (1 / 4 + 1 / 1.5**2))) < 0.02
    # distance to the curve, to first order (r - 1) / |∇r|: the normal part of ε, std = noise
    dist = (r - 1) / np.hypot(2 * y[:, 0] / 2.0**2, 2 * y[:, 1] / 1.5**2)
    assert abs(dist.std() / (1 / 20) - 1) < 0.1 and abs(dist.mean()) < 0.01
    assert abs(np.abs(y).max(axis=0)[0] - 2.0) < 0.25 and abs(np.abs(y).max(axis=0)[1] - 1.5) < 0.25
    # the angle is uniform: each quadrant holds about a quarter of the points
    quadrants = np.bincount((y[:, 0] > 0) * 2 + (y[:, 1] > 0), minlength=4) / len(y)
    assert np.all(np.abs(quadrants - 0.25) < 0.05)
    assert mdata.ellipse(seed=0).shape == (24, 2)


def test_toy_reproducible():
    np.testing.assert_array_equal(mdata.ellipse(10, seed=3), mdata.ellipse(10, seed=3))
    assert not np.allclose(mdata.ellipse(10, seed=3), mdata.ellipse(10, seed=4))
    backend.manual_seed(11)
    a = mdata.horn(20)
    backend.manual_seed(11)
    b = mdata.horn(20)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = mdata.horn(20)  # the global generator moved on
    assert not np.allclose(a[1], c[1])
    gen = np.random.default_rng(5)
    assert mdata.manifold_2d(5, seed=gen).shape == (5, 2)
    with pytest.raises(ValueError, match="seed"):
        mdata.ellipse(5, seed=-1)
    with pytest.raises(ValueError, match="n must be"):
        mdata.ellipse(2.5)


def test_horn():
    alpha, beta = 1.5, 2.0
    x, y = mdata.horn(500, alpha=alpha, beta=beta, noise=0.0, seed=2)
    assert x.shape == (500,) and y.shape == (500, 2) and x.dtype == y.dtype == np.float64
    assert 0 <= x.min() and x.max() <= 1
    rho = np.stack([alpha * x + beta * (1 - x), beta * x + alpha * (1 - x)], axis=1) * np.exp(2 * x)[:, None]
    np.testing.assert_allclose(((y / rho) ** 2).sum(axis=1), 1.0)
    xn, yn = mdata.horn(4000, seed=3)
    small = xn < 0.05  # near x = 0 the section is about the ellipse with radii (β, α)
    assert np.abs(yn[small, 0]).max() < beta * np.exp(0.1) + 0.2 and np.abs(yn[small, 0]).max() > 1.8
    assert np.abs(yn[xn > 0.95]).max() > 10  # and it widens like exp(2x)


@pytest.mark.parametrize("curve", ["sine", "arc", "spiral"])
def test_manifold_2d(curve):
    y = mdata.manifold_2d(300, curve=curve, seed=0)
    assert y.shape == (300, 2) and y.dtype == np.float64 and np.all(np.abs(y) <= 1.0 + 1e-12)
    if curve == "arc":
        np.testing.assert_allclose(np.hypot(y[:, 0], y[:, 1]), 1.0)
        assert y[:, 1].min() >= -1e-12
    if curve == "sine":
        np.testing.assert_allclose(y[:, 1], 0.5 * np.sin(np.pi * y[:, 0]))
    noisy = mdata.manifold_2d(300, curve=curve, noise=0.05, seed=0)
    assert 0.01 < np.abs(noisy - y).mean() < 0.1
    with pytest.raises(ValueError, match="curve"):
        mdata.manifold_2d(10, curve="circle")


# -------------------------------------------------------------------- loader ---
def test_array_dataset():
    x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    ds = mdata.ArrayDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, [6.0, 7.0])
    assert yi == 3
    with pytest.raises(ValueError, match=r"same first dimension.*\[10, 9\]"):
        mdata.ArrayDataset(x, y[:9])
    with pytest.raises(ValueError, match="at least one"):
        mdata.ArrayDataset()


def _epoch(loader):
    return [b if isinstance(b, tuple) else (b,) for b in loader]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_covers_data(shuffle, drop_last):
    n, bs = 23, 5
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n)
    loader = mdata.DataLoader(mdata.ArrayDataset(x, y), batch_size=bs, shuffle=shuffle, drop_last=drop_last, seed=0)
    assert len(loader) == (4 if drop_last else 5)
    loader.as_numpy = True
    batches = _epoch(loader)
    assert len(batches) == len(loader)
    sizes = [len(b[1]) for b in batches]
    assert sizes == ([5, 5, 5, 5] if drop_last else [5, 5, 5, 5, 3])
    seen = np.concatenate([b[1] for b in batches])
    assert len(set(seen.tolist())) == len(seen)  # no sample twice
    if not drop_last:
        np.testing.assert_array_equal(np.sort(seen), y)
    if not shuffle:
        np.testing.assert_array_equal(seen, y[: len(seen)])
    for bx, by in batches:  # rows stay paired
        np.testing.assert_array_equal(bx, x[by])


def test_loader_shuffle_seeded():
    data = np.arange(100)

    def order(loader):
        return np.concatenate(list(loader))

    a = mdata.DataLoader(data, batch_size=7, shuffle=True, seed=5, as_numpy=True)
    b = mdata.DataLoader(data, batch_size=7, shuffle=True, seed=5, as_numpy=True)
    a1, a2 = order(a), order(a)
    np.testing.assert_array_equal(a1, np.random.Generator(np.random.PCG64(5)).permutation(100))  # the documented source
    assert not np.array_equal(a1, data) and not np.array_equal(a1, a2)  # shuffled, and differently each epoch
    np.testing.assert_array_equal(a1, order(b))
    np.testing.assert_array_equal(a2, order(b))
    c = mdata.DataLoader(data, batch_size=7, shuffle=True, seed=6, as_numpy=True)
    assert not np.array_equal(a1, order(c))
    # unseeded: the global generator, reproducible with manual_seed
    backend.manual_seed(3)
    g1 = order(mdata.DataLoader(data, batch_size=10, shuffle=True, as_numpy=True))
    backend.manual_seed(3)
    g2 = order(mdata.DataLoader(data, batch_size=10, shuffle=True, as_numpy=True))
    np.testing.assert_array_equal(g1, g2)


def test_loader_state_dict_resume():
    import json

    data = np.arange(50)
    a = mdata.DataLoader(data, batch_size=8, shuffle=True, seed=1, as_numpy=True)
    for _ in range(3):
        list(a)
    state = json.loads(json.dumps(a.state_dict()))  # plain data, survives JSON
    assert state["epoch"] == 3
    expected = [np.concatenate(list(a)) for _ in range(2)]
    b = mdata.DataLoader(data, batch_size=8, shuffle=True, seed=1, as_numpy=True)
    b.load_state_dict(state)
    assert b.epoch == 3
    for want in expected:
        np.testing.assert_array_equal(np.concatenate(list(b)), want)
    with pytest.raises(ValueError, match="seed"):
        mdata.DataLoader(data, shuffle=True, seed=2).load_state_dict(state)


def test_loader_errors():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        mdata.DataLoader(np.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        mdata.DataLoader(np.zeros(3), batch_size=2.5)
    with pytest.raises(TypeError, match="__len__"):
        mdata.DataLoader(42)
    with pytest.raises(ValueError, match="seed"):
        mdata.DataLoader(np.zeros(3), seed=-4)
    with pytest.raises(ValueError, match="invalid device"):
        mdata.DataLoader(np.zeros(3), device="tpu")


def test_loader_generic_dataset_and_transform():
    class Squares:
        def __len__(self):
            return 9

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), np.int64(i % 2)

    seen = []

    def transform(x, y):
        seen.append(x.shape)
        return x * 2, y

    loader = mdata.DataLoader(Squares(), batch_size=4, transform=transform, as_numpy=True)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (1, 2)] and seen == [(4, 2), (4, 2), (1, 2)]
    np.testing.assert_array_equal(batches[2][0], [[16.0, 128.0]])
    np.testing.assert_array_equal(batches[0][1], [0, 1, 0, 1])


def test_loader_yields_tensors(device):
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    y = np.arange(6)
    loader = mdata.DataLoader(mdata.ArrayDataset(x, y), batch_size=4, device=device)
    bx, by = next(iter(loader))
    assert isinstance(bx, minae.Tensor) and isinstance(by, minae.Tensor)
    assert bx.device == device and by.device == device and not bx.requires_grad
    np.testing.assert_array_equal(bx.numpy(), x[:4])
    np.testing.assert_array_equal(by.numpy(), y[:4])
    assert bx.numpy().dtype == np.float32 and by.numpy().dtype == np.int64
    single = list(mdata.DataLoader(mdata.ArrayDataset(x), batch_size=4, device=device))
    assert len(single) == 2 and all(isinstance(b, minae.Tensor) for b in single)  # a Tensor, not a 1-tuple
    np.testing.assert_array_equal(single[1].numpy(), x[4:])
    noisy = mdata.DataLoader(x, batch_size=6, transform=lambda a: a + 100, device=device)
    np.testing.assert_array_equal(next(iter(noisy)).numpy(), x + 100)


def test_loader_bundled_mnist_speed():
    (x, y), _ = mdata.mnist_arrays()
    loader = mdata.DataLoader(mdata.ArrayDataset(x, y), batch_size=256, shuffle=True, seed=0, as_numpy=True)
    total = sum(len(b[1]) for b in loader)
    assert total == 4000 and len(loader) == 16


# ------------------------------------------------------- untrusted files, bounded ---
def _gzip_zeros(path: Path, header: bytes, n: int) -> None:
    """A gzip file of ``header`` then ``n`` zero bytes, written in chunks (a small file that unpacks large)."""
    import zlib

    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(z.compress(header))
        chunk = bytes(1 << 20)
        for start in range(0, n, 1 << 20):
            fh.write(z.compress(chunk[: min(1 << 20, n - start)]))
        fh.write(z.flush())


def test_gzip_bomb_is_bounded_by_the_known_mnist_sizes(tmp_path, peak_bytes):
    """train-images claiming 100,000 images (78 MB unpacked, over MNIST's 60,000): refused before unpacking."""
    blobs, _ = fake_mnist()
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    _gzip_zeros(bomb, bytes([0, 0, 8, 3]) + struct.pack(">III", 100_000, 28, 28), 100_000 * 784)
    assert bomb.stat().st_size < 200_000
    errors = []

    def attempt():
        with pytest.raises(mdata.DataError, match=r"train-images-idx3-ubyte\.gz.*100000, 28, 28.*refused") as info:
            mdata.load_mnist(tmp_path)
        errors.append(info.value)

    assert peak_bytes(attempt) < 4 * 2**20, "nothing past the header may be unpacked"
    assert errors


def test_idx_max_bytes_and_a_header_claiming_more_than_the_file_holds(tmp_path):
    path = write(tmp_path / "small.gz", idx_bytes(np.zeros((2, 28, 28), np.uint8)), gz=True)
    assert mdata.read_idx(path, max_bytes=16 + 2 * 784).shape == (2, 28, 28)
    with pytest.raises(mdata.DataError, match=r"small\.gz.*more than the 100 bytes"):
        mdata.read_idx(path, max_bytes=100)
    # 50,000 images claimed, 2 present: an error, and the claim is not allocated
    liar = write(tmp_path / "liar", bytes([0, 0, 8, 3]) + struct.pack(">III", 50_000, 28, 28) + bytes(2 * 784))
    liar_gz = write(tmp_path / "liar.gz", liar.read_bytes(), gz=True)
    for path in (liar, liar_gz):
        with pytest.raises(mdata.DataError, match=r"liar.*truncated: expected 39200000 bytes of data"):
            mdata.read_idx(path)


def test_idx_fifo_is_refused_not_waited_on(fifo_error, tmp_path):
    error = fifo_error(mdata.read_idx, "train-images-idx3-ubyte")
    assert isinstance(error, mdata.DataError), error
    assert "FIFO" in str(error) and str(tmp_path / "train-images-idx3-ubyte") in str(error)


def test_zero_training_images_is_a_data_error_saying_the_set_is_empty(tmp_path, monkeypatch):
    blobs, _ = fake_mnist(n_train=0)
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
    with pytest.raises(mdata.DataError, match=r"train-images-idx3-ubyte\.gz: the train set is empty"):
        mdata.load_mnist(tmp_path)
    empty = (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64))
    monkeypatch.setattr(mnist_mod, "load_bundled_mnist", lambda: (empty, empty))
    with pytest.raises(mdata.DataError, match="training set .* is empty"):
        mdata.mnist_arrays("bundled")


class _Trickle(http.server.BaseHTTPRequestHandler):
    """/slow: 20 announced bytes, one every 0.25 s; /huge: a body without a length, 60 MiB long."""

    body = b"x" * 20

    def do_GET(self):
        import time

        self.send_response(200)
        if self.path == "/slow/f.bin":
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            if self.path == "/slow/f.bin":
                for i in range(len(self.body)):
                    self.wfile.write(self.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(0.25)
            else:
                chunk = b"x" * 65536
                for _ in range(60 * 16):
                    self.wfile.write(chunk)
        except OSError:  # the client stopped reading: what we want
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle_server(monkeypatch):
    with _local_server(monkeypatch, _Trickle) as httpd:
        yield httpd.base


def test_download_time_bounds_the_whole_transfer(trickle_server, tmp_path):
    """A server trickling a byte every 0.25 s never trips a per-read timeout; the whole-download bound (1 s) does."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(mdata.DownloadError, match="took too long"):
        mdata.download_mnist(
            tmp_path, mirrors=[trickle_server + "/slow"], files={"f.bin": sha(_Trickle.body)}, timeout=1, verbose=False
        )
    assert time.perf_counter() - t0 < 3
    assert list(tmp_path.iterdir()) == []


def test_download_stops_reading_past_the_expected_size(trickle_server, tmp_path):
    import time

    t0 = time.perf_counter()
    with pytest.raises(mdata.DownloadError, match="more than the expected 11 bytes"):
        mdata.download_mnist(
            tmp_path, mirrors=[trickle_server + "/huge"], files={"f.bin": (sha(b"hello world"), 11)}, verbose=False
        )
    assert time.perf_counter() - t0 < 3
    assert list(tmp_path.iterdir()) == []


class _HeaderTrickle(http.server.BaseHTTPRequestHandler):
    """A status line, then one header byte every 0.1 s for up to 10 s: each read gets a byte in time."""

    def do_GET(self):
        import time

        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            self.wfile.flush()
            for _ in range(100):
                time.sleep(0.1)
                self.wfile.write(b"a")
                self.wfile.flush()
        except OSError:  # the client gave up: what we want
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("where", ["headers", "connect"])
def test_one_deadline_covers_the_headers_too(where, monkeypatch, tmp_path):
    """A server trickling its header line is cut off at the deadline, as a trickling body is (issue 18)."""
    import time

    if where == "connect":  # a server that accepts connections and never answers
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        context = contextlib.closing(listener)
    else:
        context = _local_server(monkeypatch, _HeaderTrickle)
    with context as httpd:
        if where == "headers":
            base = httpd.base
        t0 = time.perf_counter()
        with pytest.raises(mdata.DownloadError, match="took too long"):
            mdata.download_mnist(tmp_path, mirrors=[base + "/h"], files={"f.bin": "0" * 64}, timeout=1, verbose=False)
        assert time.perf_counter() - t0 < 3
    assert list(tmp_path.iterdir()) == []
