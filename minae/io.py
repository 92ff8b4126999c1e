"""Checkpoints: ``minae.save(obj, path)`` and ``minae.load(path, map_location=None)``.

What can be saved: nested dicts, lists and tuples whose leaves are tensors, NumPy
or CuPy arrays, Python numbers (big ints too: RNG states), strings, bools and
None. That covers module and optimizer ``state_dict()``\\ s, epoch counters,
histories and ``backend.get_rng_state()``.

The format is one NumPy ``.npz`` archive (a zip of ``.npy`` files):

* ``arr_0``, ``arr_1``, …: every array in the tree, in the order met;
* ``__minae_manifest__``: UTF-8 JSON bytes (a uint8 array) with the format name,
  its version and the tree, in which each array is replaced by a reference::

      {"format": "minae.checkpoint", "version": 1,
       "tree": {"kind": "dict", "items": [["epoch", 3],
                ["model", {"kind": "dict", "items": [["weight",
                  {"kind": "tensor", "array": "arr_0", "device": "cpu", "requires_grad": false}]]}]]}}

  Dict keys are nodes too, so integer keys (an optimizer's state) stay integers
  and tuples stay tuples.

No pickle anywhere: files are read with ``allow_pickle=False``, so loading a file
from someone else cannot run code. Writes are atomic: the archive goes to a
temporary file in the same folder, is flushed and fsync'ed, then renamed over
the target, so a crash mid-save leaves the previous checkpoint intact (and the
next save of the same target removes the temporary a killed save left behind, and
only such: concurrent writers never delete each other's temporaries; see
``atomic_write``). Whatever ``save`` accepts, ``load`` reads back: what load would
refuse (a 1001-digit integer, nesting deeper than ``MAX_DEPTH``) is refused at save.

Reads are bounded: a checkpoint is an untrusted file. Before anything is
allocated, ``load`` refuses a file that is not a regular file (a FIFO would hang
it), a manifest larger than ``MAX_MANIFEST_BYTES``, members whose declared sizes
add up to more than ``max_bytes`` (``MAX_BYTES`` by default), array references
that add up to more (each reference counts: a member named 100 times counts 100
times), and an array whose header claims more bytes than its member declares.
The zip reader never inflates a member past its declared size, so a compressed
"bomb" cannot grow behind these checks. Malformed values (a 5000-digit integer, a device "tpu") are refused with
a ``CheckpointError`` naming the file and the field.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import re
import secrets
import socket
import stat
import time
import zipfile

from . import backend
from .backend import np
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "minae.checkpoint"
VERSION = 1
MANIFEST = "__minae_manifest__"
# The manifest is a few kB even for a long history; 16 MiB leaves room and stops a bomb.
MAX_MANIFEST_BYTES = 16 * 2**20
# Default ceiling on what one load may read (all members, as the archive declares them).
MAX_BYTES = 4 * 2**30
# Python refuses to parse longer integers (sys.int_info.default_max_str_digits); RNG states need < 100 digits.
_MAX_INT_DIGITS = 1000
# Containers nested deeper than this are refused by save and by load alike (a state_dict nests 4 deep), so
# whatever saves also loads, and a crafted file cannot exhaust the stack.
MAX_DEPTH = 100


class CheckpointError(ValueError):
    """A file that is not a readable minae checkpoint (truncated, corrupted, another format, pickle)."""


# -------------------------------------------------------------------- save ---
def _encode(obj, arrays: dict, where: str, depth: int = 0):
    """The manifest node for ``obj``; its arrays go into ``arrays`` (name -> host array).

    What load would refuse is refused here, so every file save writes loads back: integers
    of more than ``_MAX_INT_DIGITS`` digits and containers nested more than ``MAX_DEPTH`` deep.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral) and not isinstance(obj, np.generic):
        obj = int(obj)
        # 3322 bits hold every 1000-digit number; str() is exact below Python's 4300-digit limit
        if obj.bit_length() > 3400 or len(str(abs(obj))) > _MAX_INT_DIGITS:
            raise ValueError(
                f"cannot save the integer at {where}: it has more than {_MAX_INT_DIGITS} digits, the most "
                "minae.load accepts (store it as a string, or as an array of smaller integers)"
            )
        return obj
    if isinstance(obj, float) and not isinstance(obj, np.generic):  # np.float64 is a float subclass
        if math.isfinite(obj):
            return obj
        return {"kind": "float", "value": repr(obj)}  # nan, inf: not valid JSON numbers
    if isinstance(obj, Tensor):
        name = f"arr_{len(arrays)}"
        arrays[name] = backend.to_numpy(obj.data)
        return {"kind": "tensor", "array": name, "device": str(obj.device), "requires_grad": obj.requires_grad}
    if backend.is_array(obj) or isinstance(obj, np.generic):
        if obj.dtype.hasobject:
            raise TypeError(f"cannot save the object array at {where}: minae.save stores no Python objects")
        name = f"arr_{len(arrays)}"
        arrays[name] = backend.to_numpy(obj) if backend.is_array(obj) else np.asarray(obj)
        if isinstance(obj, np.generic):
            return {"kind": "scalar", "array": name}
        return {"kind": "array", "array": name, "device": str(backend.array_device(obj))}
    if isinstance(obj, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise ValueError(f"cannot save {where}: containers nested more than {MAX_DEPTH} deep")
    if isinstance(obj, dict):
        items = [
            [_encode_key(k, where, depth + 1), _encode(v, arrays, f"{where}[{k!r}]", depth + 1)] for k, v in obj.items()
        ]
        return {"kind": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"kind": kind, "items": [_encode(v, arrays, f"{where}[{i}]", depth + 1) for i, v in enumerate(obj)]}
    raise TypeError(
        f"cannot save an object of type {type(obj).__name__} at {where}: minae.save takes nested dicts, lists "
        "and tuples of tensors, arrays, numbers, strings, bools and None (use .state_dict() for modules "
        "and optimizers)"
    )


def _encode_key(key, where: str, depth: int):
    if isinstance(key, np.generic):
        key = key.item()
    if key is None or isinstance(key, (bool, str, float)) or isinstance(key, numbers.Integral):
        return _encode(key, {}, where, depth)
    if isinstance(key, tuple):
        if depth >= MAX_DEPTH:
            raise ValueError(f"cannot save the dict key at {where}: tuples nested more than {MAX_DEPTH} deep")
        return {"kind": "tuple", "items": [_encode_key(k, where, depth + 1) for k in key]}
    raise TypeError(
        f"cannot save the dict key {key!r} ({type(key).__name__}) at {where}: keys must be str, numbers, bools, "
        f"None or tuples of them"
    )


def _write_archive(file, arrays: dict) -> None:
    """Write the npz archive into an open binary file (a separate step so tests can break it)."""
    np.savez(file, **arrays)


def save(obj, path) -> None:
    """Save ``obj`` (a nested dict/list/tuple of tensors, arrays, numbers, strings) to ``path``, atomically.

    The file is an ``.npz`` archive with a JSON manifest (see the module docstring);
    ``path`` is used as given (no suffix is added).
    """
    path = os.fspath(path)
    arrays = {}
    tree = _encode(obj, arrays, "the top level")
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, allow_nan=False)
    if len(manifest) + 1024 > MAX_MANIFEST_BYTES:  # ASCII (json escapes the rest); 1 kB for the .npy header
        raise ValueError(
            f"cannot save to {path}: the tree's manifest takes {_mib(len(manifest))}, more than the "
            f"{_mib(MAX_MANIFEST_BYTES)} minae.load accepts (keep large data in arrays, not in lists and strings)"
        )
    arrays[MANIFEST] = np.frombuffer(manifest.encode("utf-8"), dtype=np.uint8)
    with atomic_write(path) as f:
        _write_archive(f, arrays)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None):
    """Write ``path`` all at once or not at all: ``with atomic_write(p) as f: f.write(...)``.

    The data goes to a temporary file in the same folder, is flushed and fsync'ed,
    then renamed over ``path`` (an atomic step on POSIX and Windows): a crash or an
    error at any point leaves the previous file intact and no temporary file behind.

    * Permissions: a file that exists keeps its mode (a private 0600 checkpoint stays
      private); a new one gets the usual 0666 less the umask.
    * A symlink is written through: its target gets the new content and the link stays
      (the temporary lives in the target's folder, so the rename stays atomic).
    * Several writers of one path at once all succeed, and the path always holds one
      writer's whole file: each writes its own temporary, named after the target, its
      host and its process id; the clean-up of temporaries left by killed saves removes
      only those whose writer is gone (or that are more than ``STALE_SECONDS`` old).
    * The temporary's name has a bounded length whatever the target's (a 255-byte
      name works): the target's name is shortened and a hash of it keeps it apart.
    """
    path = os.fspath(path)
    if os.path.islink(path):
        path = os.path.realpath(path)  # write through the link (a dangling one: create its target)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path}: the folder {folder} does not exist")
    name = os.path.basename(path)
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        old_mode = None
    tmp, fd = _create_temporary(folder, name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else (encoding or "utf-8")) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, old_mode if old_mode is not None else 0o666 & ~_umask())  # the temporary is 0600
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
    _remove_stale_temporaries(folder, name)


# A temporary whose writer cannot be asked (another host) is stale after this long; a save takes seconds.
STALE_SECONDS = 24 * 3600
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
# Bytes kept from the target's name in its temporary's: 1 + 48 + 52 stay well under 255.
_NAME_KEPT = 48


def _temporary_prefix(name: str) -> str:
    """``.NAME.HASH.``: what every temporary of target ``name`` starts with (HASH tells apart shortened names)."""
    raw = name.encode("utf-8", "surrogateescape")
    kept = raw[:_NAME_KEPT].decode("utf-8", "ignore")  # a character cut in half is dropped
    return f".{kept}.{hashlib.sha256(raw).hexdigest()[:8]}."


def _create_temporary(folder: str, name: str):
    """A new private file ``.NAME.HASH.HOST-PID-RANDOM.tmp`` in ``folder``: (path, open descriptor)."""
    prefix = _temporary_prefix(name)
    for _ in range(100):
        tmp = os.path.join(folder, f"{prefix}{_HOST}-{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file for {name} in {folder}")


def _writer_gone(host: str, pid: int) -> bool:
    """Whether the process that wrote a temporary has ended (only a process on this host can be asked)."""
    if host != _HOST:
        return False
    if pid == os.getpid():
        return False  # another thread of this process may be writing it
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or the question cannot be asked here
    return False


def _remove_stale_temporaries(folder: str, name: str) -> None:
    """Delete the temporaries of target ``name`` that a killed save left behind.

    Called only after our own rename succeeded, so the target is intact whatever happens here.
    Only regular files named as ``_create_temporary`` names them for this target are touched, and
    of those only the ones whose writer has ended, or which are older than ``STALE_SECONDS``:
    a concurrent writer's temporary is never removed under it.
    """
    pattern = re.compile(re.escape(_temporary_prefix(name)) + r"([0-9a-f]{8})-([0-9]{1,10})-[0-9a-f]{8}\.tmp")
    try:
        entries = os.scandir(folder)
    except OSError:
        return
    now = time.time()
    with entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if not match or not entry.is_file(follow_symlinks=False):
                continue
            try:
                old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
                if old or _writer_gone(match.group(1), int(match.group(2))):
                    os.unlink(entry.path)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# -------------------------------------------------------------------- load ---
def _open_regular(path: str, error=None, what: str = "a checkpoint file"):
    """Open ``path`` for reading, refusing anything but a regular file before reading a byte.

    O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    ``error``: the exception class raised for a non-regular file (CheckpointError by default).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO (named pipe)"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "not a regular file"
            )
            raise (error or CheckpointError)(f"{path}: {kind}, not {what}; minae reads only regular files")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _sniff(path: str, f) -> None:
    """Refuse what is clearly not an npz archive, saying what it looks like."""
    head = f.read(8)
    f.seek(0)
    if not head:
        raise CheckpointError(f"{path}: the file is empty")
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return
    if head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        raise CheckpointError(
            f"{path}: this is a Python pickle (perhaps a torch.save or pickle.dump file); minae never loads "
            "pickles, because loading one can run arbitrary code"
        )
    if head.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"{path}: this is a single .npy array, not a minae checkpoint (an .npz archive)")
    raise CheckpointError(f"{path}: not a minae checkpoint: it is not an .npz (zip) archive, or its start is corrupted")


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _check_sizes(path: str, npz, max_bytes: int) -> None:
    """Refuse, from the sizes the archive declares, what would make ``load`` read too much."""
    members = npz.zip.infolist()
    total = sum(info.file_size for info in members)
    for info in members:
        if info.filename == MANIFEST + ".npy" and info.file_size > MAX_MANIFEST_BYTES:
            raise CheckpointError(
                f"{path}: the manifest declares {_mib(info.file_size)}, more than the {_mib(MAX_MANIFEST_BYTES)} "
                "a minae manifest may take; refused before reading it (a crafted or corrupted file)"
            )
    if total > max_bytes:
        raise CheckpointError(
            f"{path}: its members declare {_mib(total)} in all, more than the {_mib(max_bytes)} a load may read; "
            "refused before reading them (if you trust the file, pass a larger max_bytes= to minae.load)"
        )


def _check_references(path: str, npz, tree, max_bytes: int) -> None:
    """Every array reference in the tree counts against ``max_bytes``, checked before any array is read.

    A crafted manifest may name one large member many times; each reference would be read into its
    own array, so the budget is the sum over references of what each member declares, plus the
    manifest. (A walk with an explicit stack: the tree is untrusted, its depth is checked later.)
    """
    sizes = {info.filename[: -len(".npy")]: info.file_size for info in npz.zip.infolist()}
    total = sizes.get(MANIFEST, 0)
    count = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            name = node.get("array")
            if node.get("kind") in ("tensor", "array", "scalar") and isinstance(name, str):
                total += sizes.get(name, 0)
                count += 1
            stack.extend(node.values())
    if total > max_bytes:
        raise CheckpointError(
            f"{path}: its manifest's {count:,} array references come to {_mib(total)} in all, more than the "
            f"{_mib(max_bytes)} a load may read; refused before reading them (a member named many times counts "
            "each time; if you trust the file, pass a larger max_bytes= to minae.load)"
        )


class _TooLong:
    """An integer literal too long to be a legitimate value; refused where the tree holds it."""

    def __init__(self, digits: str):
        self.digits = len(digits)


def _parse_int(text: str):
    digits = text.lstrip("-")  # the sign is not a digit: save allows -(10**1000 - 1)
    return int(text) if len(digits) <= _MAX_INT_DIGITS else _TooLong(digits)


class _Reader:
    def __init__(self, path, npz, map_location):
        self.path = path
        self.npz = npz
        self.map_location = map_location
        self.devices = {}

    def fail(self, where: str, problem: str):
        raise CheckpointError(f"{self.path}: the manifest is malformed at {where}: {problem}")

    def _declared(self, name: str) -> None:
        """The array's own header must fit in the bytes its member declares (checked before numpy allocates)."""
        info = self.npz.zip.getinfo(name + ".npy")
        with self.npz.zip.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member, max_header_size=10000)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member, max_header_size=10000)
            else:
                raise ValueError(f"unknown .npy version {version}")
            header = member.tell()
        if dtype.hasobject:
            return  # numpy's own refusal (allow_pickle=False) says why, below
        need = math.prod(shape) * dtype.itemsize
        if need > info.file_size - header:
            raise CheckpointError(
                f"{self.path}: array {name!r} claims shape {tuple(shape)} of {dtype} ({_mib(need)}), but its member "
                f"declares {info.file_size - header:,} bytes of data; refused before allocating"
            )

    def array(self, name, manifest=False):
        if not isinstance(name, str) or (name == MANIFEST) != manifest or name not in self.npz.files:
            raise CheckpointError(f"{self.path}: the manifest refers to an array {name!r} the archive does not hold")
        try:
            self._declared(name)
            return self.npz[name]
        except ValueError as e:
            if "allow_pickle" in str(e) or "pickle" in str(e).lower():
                raise CheckpointError(
                    f"{self.path}: array {name!r} holds Python objects (pickled data); minae refuses to load it, "
                    "because unpickling can run arbitrary code"
                ) from None
            raise CheckpointError(f"{self.path}: array {name!r} is unreadable: {e}") from None
        except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile, KeyError) as e:
            raise CheckpointError(f"{self.path}: array {name!r} is corrupted or truncated: {e}") from None
        except MemoryError:
            raise CheckpointError(f"{self.path}: array {name!r} claims a size that does not fit in memory") from None

    def device(self, saved, where: str):
        if not isinstance(saved, str):
            self.fail(f"{where}.device", f"expected a device name, got {type(saved).__name__}")
        target = _map(self.map_location, saved)
        if target not in self.devices:
            try:
                self.devices[target] = backend.device(target)
            except ValueError as e:
                self.fail(f"{where}.device", str(e))
            except RuntimeError as e:
                if self.map_location is None:
                    raise RuntimeError(
                        f"{self.path} holds tensors saved on {saved}, which is not available here ({e}). "
                        'Load them onto the CPU with minae.load(path, map_location="cpu").'
                    ) from None
                raise
        return self.devices[target]

    def items(self, node, where: str):
        items = node.get("items")
        if not isinstance(items, list):
            self.fail(f"{where}.items", f"expected a list, got {type(items).__name__}")
        return items

    def decode(self, node, where: str = "tree", depth: int = 0):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, _TooLong):
            self.fail(where, f"an integer of {node.digits} digits (more than {_MAX_INT_DIGITS}); refused")
        if isinstance(node, dict):
            kind = node.get("kind")
            if kind in ("dict", "list", "tuple") and depth >= MAX_DEPTH:
                self.fail(where, f"containers nested more than {MAX_DEPTH} deep; refused")
            if kind == "dict":
                out = {}
                for i, pair in enumerate(self.items(node, where)):
                    if not isinstance(pair, list) or len(pair) != 2:
                        self.fail(f"{where}.items[{i}]", "expected a [key, value] pair")
                    key = self.decode_key(pair[0], f"{where}.items[{i}][0]", depth + 1)
                    out[key] = self.decode(pair[1], f"{where}[{key!r}]", depth + 1)
                return out
            if kind in ("list", "tuple"):
                values = [self.decode(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(self.items(node, where))]
                return values if kind == "list" else tuple(values)
            if kind == "float":
                value = node.get("value")
                # save writes only the non-finite floats this way (finite ones are JSON numbers)
                if value not in ("nan", "inf", "-inf"):
                    self.fail(f"{where}.value", f"expected 'nan', 'inf' or '-inf', got {str(value)[:40]!r}")
                return float(value)
            if kind == "tensor":
                requires_grad = node.get("requires_grad", False)
                if not isinstance(requires_grad, bool):
                    self.fail(f"{where}.requires_grad", f"expected true or false, got {str(requires_grad)[:40]!r}")
                array = backend.to_device(self.array(node.get("array")), self.device(node.get("device"), where))
                return Tensor(array, requires_grad=requires_grad)
            if kind == "array":
                return backend.to_device(self.array(node.get("array")), self.device(node.get("device"), where))
            if kind == "scalar":
                array = self.array(node.get("array"))
                if array.ndim != 0:
                    self.fail(where, f"a scalar's array has shape {array.shape}")
                return array[()]
        raise CheckpointError(f"{self.path}: the manifest holds an entry minae cannot read: {str(node)[:80]}")

    def decode_key(self, node, where: str, depth: int):
        key = self.decode(node, where, depth)
        if isinstance(key, list) or backend.is_array(key) or isinstance(key, Tensor):
            self.fail(where, f"a {type(key).__name__} cannot be a dict key")
        return key


def _map(map_location, saved: str) -> str:
    """The device a tensor saved on ``saved`` goes to."""
    if map_location is None:
        return saved
    if isinstance(map_location, dict):
        return str(map_location.get(saved, saved))
    if isinstance(map_location, (str, backend.Device)):
        return str(map_location)
    raise TypeError(f"map_location must be None, a device, a device name or a dict, got {type(map_location).__name__}")


def load(path, map_location=None, *, max_bytes: int | None = None):
    """Load what ``save`` wrote; tensors go to ``map_location`` (a device, a name like "cpu",
    or a dict {"cuda:0": "cpu"}), else back to the device they were saved from.

    ``max_bytes``: the most the archive's members may declare in all (``MAX_BYTES``, 4 GiB,
    by default); a larger file is refused before anything is read.

    Raises FileNotFoundError for a missing file and CheckpointError (a ValueError)
    naming the file and the problem for anything that is not an intact minae
    checkpoint: truncated, corrupted, another format, holding pickled data, too
    large for its declared sizes, a FIFO or other non-regular file.
    """
    path = os.fspath(path)
    max_bytes = MAX_BYTES if max_bytes is None else int(max_bytes)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint file")
    with _open_regular(path) as f:
        _sniff(path, f)
        try:
            npz = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
            raise CheckpointError(f"{path}: not a readable .npz archive (truncated or corrupted?): {e}") from None
        with npz:
            return _load_archive(path, npz, map_location, max_bytes)


def _load_archive(path: str, npz, map_location, max_bytes: int):
    if MANIFEST not in npz.files:
        if any(name.endswith(".pkl") for name in npz.files):
            raise CheckpointError(
                f"{path}: this is a PyTorch (torch.save) file: a zip holding a Python pickle; minae never "
                "loads pickles, because loading one can run arbitrary code (convert the tensors to NumPy "
                "arrays in PyTorch, then minae.save them)"
            )
        raise CheckpointError(
            f"{path}: an .npz archive without minae's manifest ({MANIFEST}): not written by minae.save "
            "(read plain archives with numpy.load)"
        )
    _check_sizes(path, npz, max_bytes)
    reader = _Reader(path, npz, map_location)
    raw = reader.array(MANIFEST, manifest=True)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise CheckpointError(f"{path}: the manifest is not a byte string")
    try:
        manifest = json.loads(raw.tobytes().decode("utf-8"), parse_int=_parse_int)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise CheckpointError(f"{path}: the manifest is not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: the manifest does not name the {FORMAT!r} format")
    version = manifest.get("version")
    if version != VERSION or isinstance(version, bool):
        shown = f"{version.digits} digits" if isinstance(version, _TooLong) else repr(version)
        raise CheckpointError(
            f"{path}: checkpoint format version {shown}; this minae reads version {VERSION} "
            "(upgrade minae to read newer files)"
        )
    if "tree" not in manifest:
        raise CheckpointError(f"{path}: the manifest has no tree")
    _check_references(path, npz, manifest["tree"], max_bytes)
    try:
        return reader.decode(manifest["tree"])
    except (KeyError, TypeError, AttributeError, RecursionError) as e:
        raise CheckpointError(f"{path}: the manifest is malformed ({type(e).__name__}: {e})") from None
