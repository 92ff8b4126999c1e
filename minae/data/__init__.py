"""Data for the course: MNIST (full, downloaded, or the bundled subset), 2-D toy sets, and a DataLoader.

Everything here produces host (NumPy) arrays; ``DataLoader`` turns them into batches of Tensors.
"""

from .loader import ArrayDataset, DataLoader
from .mnist import (
    MIRRORS,
    MNIST_FILES,
    MNIST_SIZES,
    DataError,
    DownloadError,
    default_root,
    download_mnist,
    load_bundled_mnist,
    load_mnist,
    mnist_arrays,
    read_idx,
)
from .toy import ellipse, horn, manifold_2d

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "MNIST_SIZES",
    "ArrayDataset",
    "DataError",
    "DataLoader",
    "DownloadError",
    "default_root",
    "download_mnist",
    "ellipse",
    "horn",
    "load_bundled_mnist",
    "load_mnist",
    "manifold_2d",
    "mnist_arrays",
    "read_idx",
]
