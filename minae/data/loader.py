"""Datasets and a DataLoader that turns host arrays into batches of minae Tensors.

The data stays in NumPy arrays on the host; each batch is gathered with one fancy-indexing
call per array, optionally transformed, then wrapped as Tensors on the chosen device.
"""

from __future__ import annotations

import math
import numbers

from .. import backend
from ..backend import np

__all__ = ["ArrayDataset", "DataLoader"]


class ArrayDataset:
    """Arrays that share their first dimension: sample i is ``(a[i], b[i], …)``.

    ``ArrayDataset(x, y)``: ``len(ds) == len(x)``, ``ds[i] == (x[i], y[i])``. Arrays may be
    NumPy arrays or anything ``numpy.asarray`` accepts; CuPy arrays are copied to the host.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        self.arrays = tuple(backend.to_numpy(a) for a in arrays)
        for i, a in enumerate(self.arrays):
            if a.ndim == 0:
                raise ValueError(f"ArrayDataset: array {i} is a scalar; each array needs a first (sample) dimension")
        lengths = [len(a) for a in self.arrays]
        if len(set(lengths)) > 1:
            shapes = ", ".join(f"array {i}: {a.shape}" for i, a in enumerate(self.arrays))
            raise ValueError(
                f"ArrayDataset: all arrays must have the same first dimension (number of samples), "
                f"got lengths {lengths} ({shapes})"
            )

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def __repr__(self):
        shapes = ", ".join(f"{a.dtype}{list(a.shape)}" for a in self.arrays)
        return f"ArrayDataset({shapes})"


class DataLoader:
    """Iterate over a dataset in batches of minae Tensors.

    ``DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, device=None,
    transform=None)``

    - ``dataset``: an ``ArrayDataset`` (fast path: one gather per array per batch), a NumPy
      array (wrapped in one), or any object with ``__len__`` and ``__getitem__(i)`` returning an
      array or a tuple of arrays (gathered item by item and stacked).
    - Each epoch visits every sample exactly once; ``len(loader)`` is the number of batches,
      ⌈N / batch_size⌉, or ⌊N / batch_size⌋ with ``drop_last=True`` (the short last batch dropped).
    - ``shuffle=True`` draws a new order every epoch: from its own generator
      ``numpy.random.Generator(PCG64(seed))`` when ``seed`` is given (reproducible, and resumable
      with ``state_dict()``/``load_state_dict()``), else from minae's global CPU generator
      (``minae.manual_seed``).
    - ``transform(*arrays)``: an optional function applied to each batch's NumPy arrays before
      they become Tensors; it returns an array or a tuple of arrays (e.g. adding noise for a DAE).
    - ``device``: where the Tensors go (the default device if None).
    - ``as_numpy=True`` yields the NumPy arrays instead of Tensors (for plotting, or sklearn).

    A batch is a tuple of Tensors, one per dataset array, or a single Tensor when the dataset
    has one array. Shapes: (B, *sample_shape), B = batch_size except maybe the last batch.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed=None,
        device=None,
        transform=None,
        as_numpy: bool = False,
    ):
        if backend.is_array(dataset):
            dataset = ArrayDataset(dataset)
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(
                f"DataLoader: dataset must have __len__ and __getitem__ (e.g. ArrayDataset(x, y)), "
                f"got {type(dataset).__name__}"
            )
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0):
            raise ValueError(f"DataLoader: seed must be None or a non-negative integer, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be a function, got {type(transform).__name__}")
        if device is not None:
            backend.device(device)  # fail here, at construction, if the device cannot be used
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = None if seed is None else int(seed)
        self.device = device
        self.transform = transform
        self.as_numpy = bool(as_numpy)
        self.epoch = 0  # epochs started so far
        self._generator = None if seed is None else np.random.Generator(np.random.PCG64(self.seed))

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        gen = self._generator if self._generator is not None else backend.cpu_generator()
        return gen.permutation(n)

    def _gather(self, index):
        """The batch's arrays (a tuple, or one array) for the sample indices ``index``."""
        if isinstance(self.dataset, ArrayDataset):
            arrays = tuple(np.take(a, index, axis=0) for a in self.dataset.arrays)
            return arrays if len(arrays) > 1 else arrays[0]
        items = [self.dataset[int(i)] for i in index]
        if isinstance(items[0], (tuple, list)):
            arrays = tuple(np.stack([backend.to_numpy(x) for x in column]) for column in zip(*items))
            return arrays if len(arrays) > 1 else arrays[0]
        return np.stack([backend.to_numpy(x) for x in items])

    def __iter__(self):
        order = self._order()
        self.epoch += 1
        n_batches = len(self)
        dev = None if self.as_numpy else backend.device(self.device)
        wrap = None if self.as_numpy else _tensor_maker(dev)
        for b in range(n_batches):
            batch = self._gather(order[b * self.batch_size : (b + 1) * self.batch_size])
            if self.transform is not None:
                batch = self.transform(*batch) if isinstance(batch, tuple) else self.transform(batch)
            if wrap is not None:
                batch = tuple(wrap(a) for a in batch) if isinstance(batch, (tuple, list)) else wrap(batch)
            yield batch

    def state_dict(self) -> dict:
        """The epoch counter and the shuffling generator's state: plain, JSON-able data.

        Saved between epochs, it makes ``load_state_dict`` resume with the same next epoch.
        An unseeded loader draws from the global generator, which ``minae.get_rng_state`` saves.
        """
        state = {"epoch": self.epoch, "seed": self.seed}
        if self._generator is not None:
            state["generator"] = self._generator.bit_generator.state
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``'s epoch counter and generator state."""
        if state.get("seed") != self.seed:
            raise ValueError(
                f"DataLoader.load_state_dict: the state was saved with seed={state.get('seed')!r}, "
                f"this loader has seed={self.seed!r}"
            )
        self.epoch = int(state["epoch"])
        if self._generator is not None:
            if "generator" not in state:
                raise ValueError("DataLoader.load_state_dict: the state has no 'generator' entry")
            self._generator.bit_generator.state = state["generator"]

    def __repr__(self):
        return (
            f"DataLoader({self.dataset!r}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, batches={len(self)})"
        )


def _tensor_maker(dev):
    """A function array -> Tensor on ``dev`` (autograd is imported here, when a batch is made)."""
    from ..tensor import Tensor

    return lambda array: Tensor(backend.to_device(array, dev))
