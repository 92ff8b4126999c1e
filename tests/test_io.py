"""minae.save / minae.load: round trips, devices, atomic writes, refusing bad files, resuming training."""

import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import minae
from minae import backend
from minae.io import MANIFEST, CheckpointError


def nested_tree():
    return {
        "model": {
            "encoder.0.weight": minae.randn(4, 3),
            "encoder.0.bias": minae.zeros(4, dtype=minae.float64),
            "steps": minae.tensor([1, 2, 3]),
            "mask": minae.tensor([True, False]),
        },
        "optimizer": {
            "state": {0: {"step": 7, "exp_avg": minae.randn(4, 3)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}],
        },
        "raw": np.arange(6, dtype=np.int16).reshape(2, 3),
        "raw_f32_fortran": np.asfortranarray(np.ones((2, 3), np.float32)),
        "empty": np.zeros((0, 5), np.float32),
        "scalar0d": minae.tensor(2.5),
        "np_scalar": np.float32(1.5),
        "np_float64": np.float64(0.1),
        "epoch": 3,
        "big": 2**100 + 1,
        "loss": 0.123456789012345,
        "specials": [float("nan"), float("inf"), -float("inf")],
        "name": "vae ✓",
        "flags": (True, False, None),
        "history": [[1.0, 2.0], []],
        "rng": backend.get_rng_state(),
        (1, "a"): "tuple key",
        2.5: "float key",
        None: "none key",
    }


def assert_same(a, b, where="top"):
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, minae.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device, where
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert b != b, where
    else:
        assert a == b, where


def test_round_trip_nested_tree(tmp_path):
    tree = nested_tree()
    path = tmp_path / "ckpt.npz"
    minae.save(tree, path)
    back = minae.load(path)
    assert_same(tree, back)
    assert back["raw_f32_fortran"].flags.f_contiguous
    assert isinstance(back["model"]["encoder.0.weight"], minae.Tensor)
    assert isinstance(back["raw"], np.ndarray) and not isinstance(back["raw"], minae.Tensor)
    # the file is a plain npz whose arrays numpy can read without pickle
    with np.load(path, allow_pickle=False) as npz:
        manifest = json.loads(npz[MANIFEST].tobytes())
        assert manifest["format"] == "minae.checkpoint" and manifest["version"] == 1
        assert sorted(n for n in npz.files if n != MANIFEST) == sorted(f"arr_{i}" for i in range(len(npz.files) - 1))


def test_requires_grad_is_kept_and_path_used_as_given(tmp_path):
    p = minae.randn(3, requires_grad=True)
    path = tmp_path / "weights.ckpt"  # no suffix is added
    minae.save({"p": p, "d": p.detach()}, str(path))
    assert os.listdir(tmp_path) == ["weights.ckpt"]
    back = minae.load(path)
    assert back["p"].requires_grad and not back["d"].requires_grad and back["p"].is_leaf


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        minae.save({"a": 1}, tmp_path / "no" / "such" / "c.npz")


def test_unsupported_objects_are_refused_with_their_place(tmp_path):
    with pytest.raises(TypeError, match=r"set.*\['a'\]\[1\]"):
        minae.save({"a": [1, {2, 3}]}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="object array"):
        minae.save({"a": np.array([1, "x"], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dict key"):
        minae.save({object(): 1}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_map_location(tmp_path, device):
    path = tmp_path / "t.npz"
    t = minae.randn(2, 3, device=device)
    minae.save({"t": t, "a": t.data}, path)
    for target in ("cpu", minae.device("cpu"), {str(t.device): "cpu"}):
        back = minae.load(path, map_location=target)
        assert back["t"].device == minae.device("cpu")
        assert backend.array_device(back["a"]) == minae.device("cpu")
        np.testing.assert_array_equal(back["t"].numpy(), t.numpy())
    back = minae.load(path)  # back where it was saved
    assert back["t"].device == t.device
    if device == "cpu" and backend.cuda_available():
        assert minae.load(path, map_location="cuda")["t"].device.type == "cuda"


def test_cuda_checkpoint_without_cuda_says_use_map_location(tmp_path, monkeypatch):
    path = tmp_path / "gpu.npz"
    minae.save({"w": minae.randn(3)}, path)
    # rewrite the manifest as if the tensor had been saved on a GPU
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    manifest = json.loads(arrays[MANIFEST].tobytes())
    manifest["tree"]["items"][0][1]["device"] = "cuda:0"
    arrays[MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    np.savez(path, **arrays)
    monkeypatch.setattr(backend, "_cupy", None)  # as on a machine without CuPy
    with pytest.raises(RuntimeError, match=r"gpu\.npz.*cuda:0.*map_location=\"cpu\""):
        minae.load(path)
    assert minae.load(path, map_location="cpu")["w"].device.type == "cpu"


# ------------------------------------------------------------------ atomic ---
def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    path = tmp_path / "ckpt.npz"
    minae.save({"v": 1}, path)
    minae.save({"v": 2}, path)
    assert minae.load(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("where", ["mid_write", "fsync", "replace", "interrupt"])
def test_crash_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, where):
    import minae.io as mio

    path = tmp_path / "ckpt.npz"
    old = {"w": minae.randn(50, 50), "epoch": 1}
    minae.save(old, path)
    before = path.read_bytes()

    class Crash(Exception):
        pass

    if where in ("mid_write", "interrupt"):
        exc = Crash if where == "mid_write" else KeyboardInterrupt

        def half_write(file, arrays):
            file.write(b"PK\x03\x04" + b"\0" * 5000)  # half an archive reaches the disk …
            raise exc("killed while writing")  # … then the process dies

        monkeypatch.setattr(mio, "_write_archive", half_write)
    elif where == "fsync":
        monkeypatch.setattr(mio.os, "fsync", lambda fd: (_ for _ in ()).throw(Crash("disk gone")))
    else:
        monkeypatch.setattr(mio.os, "replace", lambda a, b: (_ for _ in ()).throw(Crash("rename failed")))
    with pytest.raises((Crash, KeyboardInterrupt)):
        minae.save({"w": minae.randn(50, 50), "epoch": 2}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"], "the temporary file must be removed"
    assert path.read_bytes() == before
    back = minae.load(path)
    assert back["epoch"] == 1
    np.testing.assert_array_equal(back["w"].numpy(), old["w"].numpy())


# ---------------------------------------------------------------- bad files ---
def good_checkpoint(tmp_path):
    path = tmp_path / "good.npz"
    minae.save({"w": minae.randn(64, 64), "epoch": 3}, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        minae.load(tmp_path / "nope.npz")


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_refused(tmp_path, cut):
    data = good_checkpoint(tmp_path).read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="truncated.npz"):
        minae.load(bad)


def test_corrupted_array_bytes_are_refused(tmp_path):
    path = good_checkpoint(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("arr_0.npy")
    # flip bytes in the middle of the array's data: the zip CRC no longer matches
    middle = info.header_offset + 30 + len(info.filename) + info.file_size // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"corrupt\.npz.*arr_0"):
        minae.load(bad)


def test_corrupted_start_is_refused(tmp_path):
    data = bytearray(good_checkpoint(tmp_path).read_bytes())
    data[:4] = b"XXXX"
    bad = tmp_path / "header.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header.npz"):
        minae.load(bad)


def test_other_formats_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("epoch 3, loss 0.1\n")
    with pytest.raises(CheckpointError, match=r"notes\.txt.*not an \.npz"):
        minae.load(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.npz.*empty"):
        minae.load(empty)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain\.npz.*manifest"):
        minae.load(plain)
    npy = tmp_path / "single.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(CheckpointError, match=r"single\.npy.*\.npy array"):
        minae.load(npy)
    with pytest.raises(IsADirectoryError):
        minae.load(tmp_path)


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > should_not_exist",))


def test_pickle_file_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"w": Boom()}))
    with pytest.raises(CheckpointError, match=r"model\.pt.*pickle"):
        minae.load(path)
    assert not (tmp_path / "should_not_exist").exists()


def test_torch_save_file_is_refused(tmp_path):
    path = tmp_path / "model.pth"
    try:
        import torch

        torch.save({"w": torch.zeros(3)}, path)
    except ImportError:  # the same layout: a zip whose payload is a pickle
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("model/data.pkl", pickle.dumps({"w": [0.0, 0.0, 0.0]}))
            z.writestr("model/version", "3\n")
    with pytest.raises(CheckpointError, match=r"model\.pth.*PyTorch.*pickle"):
        minae.load(path)


def test_object_array_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = good_checkpoint(tmp_path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["arr_0"] = np.array([Boom()], dtype=object)  # np.savez pickles object arrays
    bad = tmp_path / "objects.npz"
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match=r"objects\.npz.*arr_0.*(pickle|Python objects)"):
        minae.load(bad)
    assert not (tmp_path / "should_not_exist").exists()
    # a plain npz holding only an object array: refused as well
    np.savez(tmp_path / "obj_only.npz", **{MANIFEST: np.array([Boom()], dtype=object)})
    with pytest.raises(CheckpointError, match="obj_only.npz"):
        minae.load(tmp_path / "obj_only.npz")
    assert not (tmp_path / "should_not_exist").exists()


@pytest.mark.parametrize(
    "manifest,match",
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"format": "other", "version": 1, "tree": 1}).encode(), "format"),
        (json.dumps({"format": "minae.checkpoint", "version": 99, "tree": 1}).encode(), "version 99"),
        (json.dumps({"format": "minae.checkpoint", "version": 1}).encode(), "no tree"),
        (
            json.dumps(
                {
                    "format": "minae.checkpoint",
                    "version": 1,
                    "tree": {"kind": "tensor", "array": "arr_9", "device": "cpu"},
                }
            ).encode(),
            "arr_9",
        ),
        (json.dumps({"format": "minae.checkpoint", "version": 1, "tree": {"kind": "weird"}}).encode(), "cannot read"),
        (json.dumps({"format": "minae.checkpoint", "version": 1, "tree": {"kind": "dict"}}).encode(), "malformed"),
        (b'{"format": "minae.checkpoint", "version": 1, "tree": ' + b"[" * 100000 + b"]" * 100000 + b"}", "JSON"),
    ],
    ids=["json", "format", "version", "no_tree", "missing_array", "unknown_kind", "malformed", "deep"],
)
def test_bad_manifests_are_refused(tmp_path, manifest, match):
    bad = tmp_path / "bad.npz"
    np.savez(bad, arr_0=np.ones(2), **{MANIFEST: np.frombuffer(manifest, np.uint8)})
    with pytest.raises(CheckpointError, match=match) as info:
        minae.load(bad)
    assert "bad.npz" in str(info.value)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# ------------------------------------------------------------------- resume ---
def make_model():
    """A two-layer model: minae.nn.Linear where it exists, else raw parameters."""
    try:
        from minae import nn

        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2))
        return model, list(model.parameters()), model.state_dict, model.load_state_dict, model
    except (ImportError, AttributeError):
        params = [minae.randn(8, 5, requires_grad=True), minae.randn(8, requires_grad=True)]
        params += [minae.randn(2, 8, requires_grad=True), minae.randn(2, requires_grad=True)]

        def forward(x):
            return ((x @ params[0].T + params[1]).tanh()) @ params[2].T + params[3]

        def state_dict():
            return {str(i): p.detach() for i, p in enumerate(params)}

        def load_state_dict(sd):
            for i, p in enumerate(params):
                p.data[...] = sd[str(i)].data

        return forward, params, state_dict, load_state_dict, None


def train_steps(model, params, opt, sched, n):
    x_data = np.linspace(-1, 1, 40, dtype=np.float32).reshape(8, 5)
    for _ in range(n):
        x = minae.tensor(x_data) + 0.1 * minae.randn(8, 5)  # noise from minae's RNG: its state matters
        loss = ((model(x) - 1.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def test_resume_is_bit_for_bit(tmp_path):
    minae.manual_seed(123)
    model, params, state_dict, _, _ = make_model()
    opt = minae.optim.Adam(params, lr=1e-2, amsgrad=True)
    sched = minae.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    train_steps(model, params, opt, sched, 5)
    path = tmp_path / "ckpt.npz"
    minae.save(
        {
            "model": state_dict(),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": backend.get_rng_state(),
            "epoch": 5,
        },
        path,
    )
    train_steps(model, params, opt, sched, 7)  # the uninterrupted run
    expected = [p.numpy().copy() for p in params]

    minae.manual_seed(999)  # a fresh process: other weights, other RNG state
    model2, params2, _, load_model, _ = make_model()
    opt2 = minae.optim.Adam(params2, lr=1.0)
    sched2 = minae.optim.lr_scheduler.StepLR(opt2, step_size=3, gamma=0.5)
    ckpt = minae.load(path)
    load_model(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    backend.set_rng_state(ckpt["rng"])
    assert ckpt["epoch"] == 5
    train_steps(model2, params2, opt2, sched2, 7)
    for p, e in zip(params2, expected):
        assert p.dtype == minae.float32
        np.testing.assert_array_equal(p.numpy(), e)


def test_resume_without_rng_state_differs(tmp_path):
    """The resume test can fail: without the RNG state the runs part ways."""
    minae.manual_seed(123)
    model, params, state_dict, _, _ = make_model()
    opt = minae.optim.Adam(params, lr=1e-2)
    sched = minae.optim.lr_scheduler.StepLR(opt, step_size=3)
    train_steps(model, params, opt, sched, 3)
    minae.save({"model": state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "c")
    train_steps(model, params, opt, sched, 3)
    minae.manual_seed(5)
    model2, params2, _, load_model, _ = make_model()
    opt2 = minae.optim.Adam(params2)
    sched2 = minae.optim.lr_scheduler.StepLR(opt2, step_size=3)
    ckpt = minae.load(tmp_path / "c")
    load_model(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    sched2.load_state_dict(ckpt["scheduler"])
    train_steps(model2, params2, opt2, sched2, 3)
    assert not all(np.array_equal(p.numpy(), q.numpy()) for p, q in zip(params, params2))


def test_atomic_write_gives_usual_permissions_and_cleans_up(tmp_path):
    import os
    import stat

    from minae.io import atomic_write

    mask = os.umask(0o022)
    try:
        minae.save({"x": minae.ones(2)}, tmp_path / "ck.npz")
        with atomic_write(tmp_path / "a.json", "w") as fh:
            fh.write("{}")
        for name in ("ck.npz", "a.json"):
            assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644
        with pytest.raises(RuntimeError):
            with atomic_write(tmp_path / "a.json", "w") as fh:
                fh.write("half")
                raise RuntimeError("crash")
        assert (tmp_path / "a.json").read_text() == "{}"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "ck.npz"]
    finally:
        os.umask(mask)


# ----------------------------------------------- the CUDA paths (issue 13) ---
def _trained(device):
    minae.manual_seed(0)
    model = minae.nn.Sequential(minae.nn.Linear(4, 3), minae.nn.ReLU(), minae.nn.Linear(3, 2)).to(device)
    opt = minae.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        model(minae.randn(5, 4, device=device)).pow(2).mean().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("saved_on", ["device", "cpu"])
def test_checkpoints_move_between_devices(tmp_path, device, saved_on):
    """A model and optimizer saved on one device load onto the other and carry on identically."""
    src, dst = (device, "cpu") if saved_on == "device" else ("cpu", device)
    model, opt = _trained(src)
    path = tmp_path / "ck.npz"
    minae.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    assert all(v.device == src for v in minae.load(path)["model"].values())  # back where it was saved

    state = minae.load(path, map_location=dst)
    other, other_opt = _trained(dst)
    other.load_state_dict(state["model"])
    other_opt.load_state_dict(state["optimizer"])
    assert all(p.device == dst for p in other.parameters())
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    x = minae.randn(5, 4)
    for m, o in ((model, opt), (other, other_opt)):
        dev = next(iter(m.parameters())).device
        o.zero_grad()
        m(x.to(dev)).pow(2).mean().backward()
        o.step()
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


# ------------------------------------------------------- untrusted files, bounded ---
def test_stale_temporary_of_a_killed_save_is_removed_by_the_next_save(tmp_path):
    """A save killed mid-write (SIGKILL: no cleanup runs) leaves its temporary; the next save removes it."""
    import subprocess
    import sys

    path = tmp_path / "ckpt.npz"
    minae.save({"epoch": 1, "w": minae.ones(100)}, path)
    before = path.read_bytes()
    code = (
        "import os, minae, minae.io as mio\n"
        "def killed(f, arrays):\n"
        "    f.write(b'PK\\x03\\x04' + bytes(4000)); f.flush(); os._exit(9)\n"
        "mio._write_archive = killed\n"
        f"minae.save({{'epoch': 2}}, {str(path)!r})\n"
    )
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # this checkout's minae
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 9
    stale = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(stale) == 1 and stale[0].startswith(".ckpt.npz."), stale
    assert path.read_bytes() == before  # the killed save did not touch the previous checkpoint
    assert minae.load(path)["epoch"] == 1
    (tmp_path / ".other.npz.abcd1234.tmp").write_bytes(b"another target's temporary")
    minae.save({"epoch": 3}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.npz.abcd1234.tmp", "ckpt.npz"]
    assert minae.load(path)["epoch"] == 3


def _archive(path, members, compress=zipfile.ZIP_STORED):
    """A zip of raw .npy members {name: bytes or an iterable of byte chunks}."""
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, chunks in members.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
                    f.write(chunk)


def _npy_header(shape, descr="|u1") -> bytes:
    import io as _io

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic string, version 1.0 and the padded header


def test_manifest_bomb_is_refused_before_it_is_read(tmp_path, peak_bytes):
    """A small file whose compressed manifest unpacks to 20 MiB (over the 16 MiB cap): refused, cheaply."""
    n = 20 * 2**20
    head = b'{"format": "minae.checkpoint", "version": 1, "tree": "'
    tail = b'"}'
    body = n - len(head) - len(tail)
    chunks = [_npy_header((n,)), head]
    chunks += [b"a" * 2**20] * (body // 2**20) + [b"a" * (body % 2**20), tail]
    bomb = tmp_path / "bomb.npz"
    _archive(bomb, {MANIFEST: chunks}, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 100_000
    errors = []

    def attempt():
        with pytest.raises(CheckpointError, match=r"bomb\.npz.*manifest.*MiB") as info:
            minae.load(bomb)
        errors.append(info.value)

    assert peak_bytes(attempt) < 2 * 2**20, "the manifest must be refused before it is inflated"
    assert errors


def test_total_size_cap_and_max_bytes(tmp_path):
    path = tmp_path / "big.npz"
    minae.save({"w": np.zeros(300_000, np.float32)}, path)
    with pytest.raises(CheckpointError, match=r"big\.npz.*max_bytes"):
        minae.load(path, max_bytes=1_000_000)
    assert minae.load(path, max_bytes=2_000_000)["w"].shape == (300_000,)


def test_array_header_claiming_more_than_its_member_is_refused_before_allocating(tmp_path, peak_bytes):
    """An .npy header claiming 512 MiB over a few bytes of data: refused without allocating it."""
    manifest = json.dumps(
        {"format": "minae.checkpoint", "version": 1, "tree": {"kind": "array", "array": "arr_0", "device": "cpu"}}
    ).encode()
    liar = tmp_path / "liar.npz"
    _archive(
        liar, {MANIFEST: _npy_header((len(manifest),)) + manifest, "arr_0": _npy_header((2**26,), "<f8") + bytes(64)}
    )
    errors = []

    def attempt():
        with pytest.raises(CheckpointError, match=r"liar\.npz.*arr_0.*before allocating") as info:
            minae.load(liar)
        errors.append(info.value)

    assert peak_bytes(attempt) < 16 * 2**20
    assert errors


def test_fifo_is_refused_not_waited_on(fifo_error):
    error = fifo_error(minae.load, "pipe.npz")
    assert isinstance(error, CheckpointError), error
    assert "pipe.npz" in str(error) and "FIFO" in str(error)


@pytest.mark.parametrize(
    "tree,field",
    [
        ({"kind": "dict", "items": [["epoch", "BIGINT"]]}, r"tree\['epoch'\].*5000 digits"),
        ({"kind": "dict", "items": [["lr", {"kind": "float", "value": "0.5"}]]}, r"tree\['lr'\]\.value"),
        (
            {"kind": "dict", "items": [["w", {"kind": "tensor", "array": "arr_0", "device": "tpu"}]]},
            r"tree\['w'\]\.device.*tpu",
        ),
        (
            {
                "kind": "dict",
                "items": [["w", {"kind": "tensor", "array": "arr_0", "device": "cpu", "requires_grad": "yes"}]],
            },
            r"tree\['w'\]\.requires_grad",
        ),
    ],
    ids=["5000_digit_int", "float_as_string", "device_tpu", "requires_grad_string"],
)
def test_malformed_manifest_values_name_the_file_and_the_field(tmp_path, tree, field):
    text = json.dumps({"format": "minae.checkpoint", "version": 1, "tree": tree}).replace('"BIGINT"', "9" * 5000)
    bad = tmp_path / "values.npz"
    np.savez(bad, arr_0=np.ones(2), **{MANIFEST: np.frombuffer(text.encode(), np.uint8)})
    with pytest.raises(CheckpointError, match=r"values\.npz.*" + field):
        minae.load(bad)


# ------------------------------------------------ two writers, crafted files (issue 18) ---
_WRITER = """
import sys, numpy as np, minae
path, tag, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    minae.save({"writer": tag, "i": i, "w": np.full(20_000, tag, np.float32)}, path)
"""


def test_concurrent_saves_to_one_path_all_succeed_and_the_file_is_always_whole(tmp_path):
    """Two processes save to one path 60 times each while this one reads it: no save fails, every read is whole."""
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "ck.npz"
    minae.save({"writer": 0, "i": 0, "w": np.zeros(20_000, np.float32)}, path)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(tag), "60"], env=env, stderr=subprocess.PIPE)
        for tag in (1, 2)
    ]
    reads = 0
    while any(p.poll() is None for p in procs):
        state = minae.load(path)  # never a half-written or missing file
        assert np.all(state["w"] == state["writer"]) and state["w"].shape == (20_000,)
        reads += 1
    errors = [p.stderr.read().decode() for p in procs]
    for p in procs:
        p.stderr.close()
    assert [p.returncode for p in procs] == [0, 0], errors
    assert reads > 0 and minae.load(path)["i"] == 59
    assert sorted(os.listdir(tmp_path)) == ["ck.npz"]  # each writer's temporaries went with its rename


def test_only_temporaries_whose_writer_is_gone_are_cleaned_up(tmp_path):
    from minae import io as mio

    path = tmp_path / "ck.npz"
    prefix = mio._temporary_prefix("ck.npz")
    alive = tmp_path / f"{prefix}{mio._HOST}-{os.getppid()}-0123abcd.tmp"  # our parent: running
    other_host = tmp_path / f"{prefix}{'0' * 8 if mio._HOST != '0' * 8 else '1' * 8}-1-0123abcd.tmp"
    dead = subprocess_pid_that_ended()
    gone = tmp_path / f"{prefix}{mio._HOST}-{dead}-0123abcd.tmp"
    old = tmp_path / f"{prefix}{'0' * 8 if mio._HOST != '0' * 8 else '1' * 8}-2-0123abcd.tmp"
    for p in (alive, other_host, gone, old):
        p.write_bytes(b"in flight")
    os.utime(old, (1, 1))  # 1970: older than STALE_SECONDS
    minae.save({"x": 1}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", alive.name, other_host.name])


def subprocess_pid_that_ended() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def test_save_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    import stat

    path = tmp_path / "private.npz"
    minae.save({"x": 1}, path)
    os.chmod(path, 0o600)
    minae.save({"x": 2}, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and minae.load(path)["x"] == 2
    os.chmod(path, 0o640)
    from minae.io import atomic_write

    with atomic_write(path) as fh:
        fh.write(b"x")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


def test_save_through_a_symlink_writes_its_target_and_keeps_the_link(tmp_path):
    target_dir = tmp_path / "store"
    target_dir.mkdir()
    target = target_dir / "real.npz"
    minae.save({"x": 1}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    minae.save({"x": 2}, link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert minae.load(target)["x"] == 2 and minae.load(link)["x"] == 2
    dangling = tmp_path / "next.npz"
    dangling.symlink_to(target_dir / "new.npz")
    minae.save({"x": 3}, dangling)
    assert dangling.is_symlink() and minae.load(target_dir / "new.npz")["x"] == 3
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "next.npz", "store"]


@pytest.mark.parametrize("length", [200, 242, 250, 255])
def test_long_file_names_save_and_load(tmp_path, length):
    for stem_char in ("a", "é"):  # one byte and two bytes per character in UTF-8
        width = len(stem_char.encode())
        name = stem_char * ((length - 4) // width) + "a" * ((length - 4) % width) + ".npz"
        assert len(name.encode()) == length
        path = tmp_path / name
        minae.save({"x": np.arange(3)}, path)
        minae.save({"x": np.arange(4)}, path)  # over an existing file, cleaning up as it goes
        assert minae.load(path)["x"].tolist() == [0, 1, 2, 3]
    assert all(not n.endswith(".tmp") for n in os.listdir(tmp_path))


@pytest.mark.parametrize("digits", [1, 999, 1000, 1001, 2000, 4299, 5000])
def test_an_int_that_saves_loads(tmp_path, digits):
    value = 7 * (10**digits - 1) // 9  # digits sevens (str() of over 4300 digits is refused by Python)
    try:
        minae.save({"n": value, "m": [-value], "k": {value: 1}}, tmp_path / "i.npz")
    except ValueError as e:  # refused at save, with the reason: fine
        assert digits > 1000 and "digits" in str(e)
        return
    state = minae.load(tmp_path / "i.npz")
    assert state == {"n": value, "m": [-value], "k": {value: 1}}


def test_nesting_that_saves_loads(tmp_path):
    from minae.io import MAX_DEPTH

    deep = 1
    for _ in range(MAX_DEPTH):
        deep = [deep]
    minae.save(deep, tmp_path / "d.npz")
    assert minae.load(tmp_path / "d.npz") == deep
    with pytest.raises(ValueError, match="nested"):
        minae.save([deep], tmp_path / "e.npz")


def test_every_reference_to_a_member_counts_against_the_budget(tmp_path, peak_bytes):
    """A 10 MiB array named 100 times in the manifest would load to 1 GiB: refused before reading any of it."""
    ref = {"kind": "array", "array": "arr_0", "device": "cpu"}
    manifest = json.dumps(
        {"format": "minae.checkpoint", "version": 1, "tree": {"kind": "list", "items": [ref] * 100}}
    ).encode()
    crafted = tmp_path / "refs.npz"
    np.savez_compressed(crafted, arr_0=np.zeros(10 * 2**20, np.uint8), **{MANIFEST: np.frombuffer(manifest, np.uint8)})
    assert crafted.stat().st_size < 100_000
    errors = []

    def attempt():
        with pytest.raises(CheckpointError, match=r"refs\.npz.*100 array references.*max_bytes") as info:
            minae.load(crafted, max_bytes=200 * 2**20)
        errors.append(info.value)

    assert peak_bytes(attempt) < 4 * 2**20
    assert errors
    # three references to a 1 MB member need 3 MB: refused under that, loaded (as three arrays) over it
    small = tmp_path / "three.npz"
    text = json.dumps({"format": "minae.checkpoint", "version": 1, "tree": {"kind": "list", "items": [ref] * 3}})
    np.savez(small, arr_0=np.zeros(10**6, np.uint8), **{MANIFEST: np.frombuffer(text.encode(), np.uint8)})
    with pytest.raises(CheckpointError, match="3 array references"):
        minae.load(small, max_bytes=2_500_000)
    assert [a.shape for a in minae.load(small, max_bytes=3_500_000)] == [(10**6,)] * 3


try:
    from hypothesis import given
    from hypothesis import strategies as st
except ImportError:  # hypothesis is in the `test` extra
    given = None

if given is not None:
    _keys = st.one_of(
        st.text(max_size=8),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
        st.tuples(st.integers(), st.text(max_size=3)),
    )
    _leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**999) + 1, max_value=10**999 - 1),
        st.floats(),
        st.text(),
        st.builds(
            lambda shape, kind: np.ones(shape, dtype=kind),
            st.lists(st.integers(0, 3), max_size=3).map(tuple),
            st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "complex64"]),
        ),
    )
    _trees = st.recursive(
        _leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(_keys, inner, max_size=4),
        ),
        max_leaves=20,
    )

    def _same(a, b):
        if isinstance(a, np.ndarray):
            return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
        if isinstance(a, float):
            return isinstance(b, float) and (a == b or (a != a and b != b)) and str(a) == str(b)
        if isinstance(a, dict):
            return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)):
            return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        return type(a) is type(b) and a == b

    @given(_trees)
    def test_whatever_saves_loads_back_the_same(tree):
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "t.npz")
            minae.save(tree, path)
            assert _same(tree, minae.load(path))
