"""The ``minae`` command end to end, on tiny settings: files written, resume, refusals, argument errors.

Most runs call ``minae.cli.main`` in-process on a slice of the bundled digits (for speed);
one runs the installed console script on the whole bundled subset, one ``python -m minae info``.
Nothing here touches the network.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import minae
from minae import cli, io

PNG = b"\x89PNG\r\n\x1a\n"
PICTURES = {
    "vae": {"reconstructions.png", "samples.png", "interpolation.png"},
    "ae": {"reconstructions.png"},
    "dae": {"reconstructions.png"},
    "cae": {"reconstructions.png"},
    "targetprop": {"reconstructions.png"},
    "ebm": {"energy.png"},
}
TINY = ["--epochs", "1", "--hidden", "8", "--batch-size", "128", "--quiet"]


def tiny(model):
    """TINY without the options ``model`` does not take (the EBM has no hidden layer)."""
    return [a for a in TINY if a not in ("--hidden", "8")] if model == "ebm" else TINY


@pytest.fixture
def small_digits(monkeypatch):
    """The command's data, cut to 256 training and 100 test digits of the bundled subset."""
    real = cli.mnist_arrays

    def small(*args, **kwargs):
        (xtr, ytr), (xte, yte) = real(*args, **kwargs)
        return (xtr[:256], ytr[:256]), (xte[::10], yte[::10])

    monkeypatch.setattr(cli, "mnist_arrays", small)


def run(argv, capsys):
    """main(argv) -> (exit status, stdout, stderr); argparse's exits become statuses too."""
    try:
        rc = cli.main(argv)
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG, path
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert img[..., :3].std() > 0.01  # not a blank page


def check_run(out, model, epochs, tiny=True):
    names = set(os.listdir(out))
    assert names == {"checkpoint.npz", "metrics.json", "loss.png"} | PICTURES[model]  # no temporary files
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == model and metrics["device"] == "cpu"
    assert metrics["config"]["epochs"] == epochs and metrics["config"]["model"] == model
    # fields named for what they are (issue 18): no "data": "01"; the ellipse is not "bundled"
    config = metrics["config"]
    assert "data" not in config
    if model == "ebm":
        assert config["dataset"] == "ellipse" and "pixel_scale" not in config and "ellipse" in config["source"]
    else:
        scale = "[0, 1]" if model in ("vae", "cae") else "[-1, 1]"
        assert config["dataset"] == "mnist" and config["pixel_scale"] == scale and config["source"] == "bundled"
    assert set(config) - {"model", "dataset", "pixel_scale", "source", "epochs", "lr", "batch_size", "seed"} == set(
        cli.MODEL_OPTIONS[model]
    ) - ({"corruption"} if config.get("corruption") is None else set())
    if tiny and model != "ebm":
        assert metrics["config"]["hidden"] == 8 and metrics["config"]["batch_size"] == 128
    history = metrics["history"]
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert all(math.isfinite(r["train"]["loss"]) for r in history)
    if model == "ebm":
        assert metrics["final_test_loss"] is None and math.isfinite(metrics["final_train_loss"])
    else:
        assert metrics["final_test_loss"] == history[-1]["test"]["loss"] and math.isfinite(metrics["final_test_loss"])
    assert metrics["wall_seconds"] > 0 and metrics["minae_version"] == minae.__version__
    assert set(metrics["files"]) == names
    state = io.load(out / "checkpoint.npz")
    assert state["epoch"] == epochs and len(state["history"]) == epochs
    for name in names - {"checkpoint.npz", "metrics.json"}:
        assert_png(out / name)
    return metrics


# per model: options beyond TINY, and the settings they must give the saved model
OPTIONS = {
    "vae": (["--latent-dim", "3", "--beta", "0.5", "--lr", "0.01", "--seed", "4"], {"latent_dim": 3, "beta": 0.5}),
    "ae": ([], {"hidden": 8, "in_features": 784, "cost": "mse"}),
    "dae": (["--corruption", "gaussian", "--noise", "0.2"], {"corruption": "gaussian", "level": 0.2}),
    "cae": (["--lambda", "0.01"], {"lam": 0.01, "hidden": 8}),
    "targetprop": (["--latent-dim", "3"], {"latent_dim": 3, "hidden": 8}),
    "ebm": (["--beta", "5"], {"beta": 5.0}),
}


@pytest.mark.parametrize("model", sorted(PICTURES))
def test_train_each_model(model, tmp_path, small_digits, capsys):
    out = tmp_path / model
    extra, settings = OPTIONS[model]
    rc, stdout, err = run(["train", model, *tiny(model), *extra, "--out", str(out)], capsys)
    assert rc == 0, err
    assert stdout == "" and err == ""  # --quiet
    metrics = check_run(out, model, 1)
    state = io.load(out / "checkpoint.npz")
    config = state["model"]["config"]
    assert {k: config[k] for k in settings} == settings
    if model == "vae":
        assert state["optimizer"]["param_groups"][0]["lr"] == 0.01
        assert metrics["config"]["seed"] == 4 and metrics["config"]["source"] == "bundled"


@pytest.mark.slow  # 150 epochs, a checkpoint after each
def test_train_ebm_learns_the_ellipse(tmp_path, capsys):
    out = tmp_path / "ebm"
    rc, stdout, err = run(["train", "ebm", "--epochs", "150", "--quiet", "--out", str(out)], capsys)
    assert rc == 0, err
    state = io.load(out / "checkpoint.npz")["model_state"]
    assert abs(state["w1"].item() - 2.0) < 0.15 and abs(state["w2"].item() - 1.5) < 0.15


def test_progress_lines_without_quiet(tmp_path, small_digits, capsys):
    rc, stdout, err = run(["train", "ae", "--epochs", "2", "--hidden", "8", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[0].startswith("training Autoencoder on bundled MNIST, 2 epochs, device cpu")
    assert lines[1].startswith("epoch 1/2: train ") and ", test " in lines[1]
    assert lines[2].startswith("epoch 2/2: ")
    assert lines[-1].startswith("done in ") and "metrics.json" in lines[-1]
    assert err == ""  # stderr is not a terminal: no progress bar


def test_same_seed_same_run(tmp_path, small_digits, capsys):
    for name in ("a", "b"):
        assert run(["train", "dae", *TINY, "--out", str(tmp_path / name)], capsys)[0] == 0
    a, b = (io.load(tmp_path / name / "checkpoint.npz")["model_state"] for name in ("a", "b"))
    for key in a:
        np.testing.assert_array_equal(a[key].numpy(), b[key].numpy())


# ------------------------------------------------------------------- resume ---
def test_resume_continues(tmp_path, small_digits, capsys):
    out = tmp_path / "vae"
    assert run(["train", "vae", *TINY, "--out", str(out)], capsys)[0] == 0
    first = json.loads((out / "metrics.json").read_text())["history"]
    argv = ["train", "vae", *TINY[2:], "--epochs", "3", "--out", str(out), "--resume", str(out / "checkpoint.npz")]
    rc, _, err = run(argv, capsys)
    assert rc == 0, err
    metrics = check_run(out, "vae", 3)
    assert metrics["history"][0] == first[0]  # the first epoch is the checkpoint's, not a new one


def test_resume_refuses_another_model(tmp_path, small_digits, capsys):
    out = tmp_path / "vae"
    assert run(["train", "vae", *TINY, "--out", str(out)], capsys)[0] == 0
    ck = str(out / "checkpoint.npz")
    rc, _, err = run(["train", "ae", *TINY, "--out", str(tmp_path / "ae"), "--resume", ck], capsys)
    assert rc != 0 and rc != 2
    assert err.startswith("minae: error: ") and "VAE" in err and "Autoencoder" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    # the same model with another architecture
    argv = ["train", "vae", *TINY[2:], "--epochs", "2", "--hidden", "16", "--out", str(out), "--resume", ck]
    rc, _, err = run(argv, capsys)
    assert rc == 1 and "--hidden 16: the checkpoint's run used 8" in err and "Traceback" not in err
    assert io.load(ck)["epoch"] == 1  # the refused run did not touch the checkpoint
    rc, _, err = run(["train", "vae", *TINY, "--resume", str(tmp_path / "missing.npz")], capsys)
    assert rc == 1 and "missing.npz" in err and "Traceback" not in err


# ------------------------------------------------------------------- errors ---
@pytest.mark.parametrize(
    "argv,named",
    [
        (["train", "vae", "--epochs", "-1"], "--epochs"),
        (["train", "vae", "--epochs", "two"], "--epochs"),
        (["train", "vae", "--lr", "0"], "--lr"),
        (["train", "vae", "--lr", "nan"], "--lr"),
        (["train", "vae", "--batch-size", "0"], "--batch-size"),
        (["train", "vae", "--beta", "-1"], "--beta"),
        (["train", "vae", "--data", "cifar"], "--data"),
        (["train", "dae", "--corruption", "blur"], "--corruption"),
        (["train", "dae", "--noise", "1.5"], "--noise"),
        (["train", "dae", "--corruption", "salt_and_pepper", "--noise", "2"], "--noise"),
        (["train", "gan"], "model"),
        (["train"], "model"),
        (["train", "vae", "--learning-rate", "3"], "--learning-rate"),
        (["train", "ebm", "--seed", str(2**64)], "--seed"),  # it trained, then could not be saved (reviewer)
        (["train", "ebm", "--seed", "9" * 1500], "--seed"),
        ([], "train,info"),
    ],
)
def test_invalid_arguments_are_usage_errors(argv, named, capsys, tmp_path):
    rc, stdout, err = run([*argv, "--out", str(tmp_path / "x")] if len(argv) > 1 else argv, capsys)
    assert rc == 2
    assert "usage: minae" in err and "error:" in err and named in err.splitlines()[-1]
    assert "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cuda_without_a_gpu_says_how_to_fix_it(tmp_path, capsys):
    if minae.cuda.is_available():
        pytest.skip("this machine has a usable GPU")
    rc, _, err = run(["train", "vae", *TINY, "--device", "cuda", "--out", str(tmp_path / "x")], capsys)
    assert rc == 1
    assert len(err.strip().splitlines()) == 1 and err.startswith("minae: error: ")
    assert "pip install" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("how", ["env", "option"])
def test_full_mnist_missing_is_a_clear_error(how, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["train", "vae", *TINY, "--data", "mnist", "--out", str(tmp_path / "x")]
    if how == "env":
        monkeypatch.setenv("MINAE_DATA", str(empty))
    else:
        monkeypatch.setenv("MINAE_DATA", str(tmp_path / "elsewhere"))
        argv += ["--data-root", str(empty)]
    rc, _, err = run(argv, capsys)
    assert rc == 1 and err.startswith("minae: error: ") and "Traceback" not in err
    assert str(empty) in err and "bundled" in err and "download" in err.lower()
    assert os.listdir(empty) == []  # nothing downloaded, nothing written
    assert not (tmp_path / "x").exists() or os.listdir(tmp_path / "x") == []


def test_failed_writes_leave_nothing_partial(tmp_path, small_digits, monkeypatch, capsys):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    out = tmp_path / "a"
    monkeypatch.setattr(io, "_write_archive", full_disk)
    rc, _, err = run(["train", "ae", *TINY, "--out", str(out)], capsys)
    assert rc == 1 and "No space left" in err and "Traceback" not in err
    assert os.listdir(out) == []
    monkeypatch.undo()
    import matplotlib.figure

    out = tmp_path / "b"
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    rc, _, err = run(["train", "ae", *TINY, "--out", str(out)], capsys)
    assert rc == 1 and "No space left" in err
    assert os.listdir(out) == ["checkpoint.npz"]  # the complete checkpoint, no half picture


def test_unwritable_out_is_an_error_not_a_traceback(tmp_path, small_digits, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rc, _, err = run(["train", "ae", *TINY, "--out", str(blocker / "sub")], capsys)
    assert rc == 1 and err.startswith("minae: error: ") and "Traceback" not in err


def test_zero_epochs_is_refused_before_anything_is_written(tmp_path, small_digits, capsys):
    """--epochs 0 used to write pictures of an untrained model and no checkpoint (issue 18): refused."""
    out = tmp_path / "ae"
    rc, _, err = run(["train", "ae", "--epochs", "0", "--hidden", "8", "--quiet", "--out", str(out)], capsys)
    assert rc == 2 and "usage: minae train" in err and "--epochs" in err.splitlines()[-1]
    assert not out.exists()


# ------------------------------------------------------- the real command ---
def _command():
    exe = shutil.which("minae")
    return [exe] if exe else [sys.executable, "-m", "minae"]


@pytest.mark.slow
def test_console_script_trains_the_vae(tmp_path):
    out = tmp_path / "vae"
    argv = [*_command(), "train", "vae", "--epochs", "1", "--hidden", "8", "--batch-size", "256", "--out", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1/1" in proc.stdout and "Traceback" not in proc.stderr
    metrics = check_run(out, "vae", 1, tiny=False)
    assert metrics["config"]["hidden"] == 8


def test_python_m_minae_info():
    proc = subprocess.run([sys.executable, "-m", "minae", "info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"minae {minae.__version__}\n")
    for word in ("numpy", "BLAS", "cupy", "CUDA devices", "default device"):
        assert word in proc.stdout


# ----------------------------------------------- the CUDA paths (issue 13) ---
def test_train_every_model_on_device(device, tmp_path, small_digits, capsys):
    """``minae train MODEL --device D``: on a GPU every model; on the CPU (where test_train_each_model
    runs them all) only targetprop, whose refined latent once left the model's device."""
    for model in sorted(PICTURES) if device != "cpu" else ["targetprop"]:
        out = tmp_path / model
        extra, _ = OPTIONS[model]
        rc, _, err = run(["train", model, *tiny(model), *extra, "--device", device, "--out", str(out)], capsys)
        assert rc == 0, f"{model}: {err}"
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["device"].startswith(device), model
        assert set(os.listdir(out)) == {"checkpoint.npz", "metrics.json", "loss.png"} | PICTURES[model]
        assert all(math.isfinite(r["train"]["loss"]) for r in metrics["history"]), model
        state = io.load(out / "checkpoint.npz", map_location="cpu")["model_state"]
        assert all(v.device == "cpu" for v in state.values())
        for name in PICTURES[model]:
            assert_png(out / name)


# --------------------------------------------------------- runs never lost ---
def _interrupt_at(monkeypatch, cls, call):
    """Make the ``call``-th loss evaluation of ``cls`` raise KeyboardInterrupt (Ctrl-C mid-training)."""
    real, count = cls.loss, {"n": 0}

    def loss(self, batch):
        count["n"] += 1
        if count["n"] == call:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(cls, "loss", loss)


def test_a_second_run_into_a_run_folder_is_refused_unless_asked(tmp_path, small_digits, capsys):
    out = tmp_path / "r"
    assert run(["train", "ae", *TINY, "--out", str(out)], capsys)[0] == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    rc, _, err = run(["train", "ae", *TINY, "--out", str(out)], capsys)
    assert rc == 1 and "already holds a run" in err and "Traceback" not in err
    assert f"--resume {out / 'checkpoint.npz'}" in err and "--overwrite" in err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before  # nothing touched
    rc, _, err = run(["train", "ae", *TINY[2:], "--epochs", "2", "--overwrite", "--out", str(out)], capsys)
    assert rc == 0, err
    check_run(out, "ae", 2)


def test_an_interrupted_overwrite_never_leaves_files_of_two_runs(tmp_path, small_digits, monkeypatch, capsys):
    from minae.models import VAE

    out = tmp_path / "r"
    assert run(["train", "vae", *TINY, "--out", str(out)], capsys)[0] == 0
    _interrupt_at(monkeypatch, VAE, 4)  # epoch 1: 2 training batches and 1 test batch; then Ctrl-C
    rc, _, err = run(
        ["train", "vae", *TINY[2:], "--epochs", "2", "--lr", "0.002", "--overwrite", "--out", str(out)], capsys
    )
    assert rc == 130
    assert os.listdir(out) == ["checkpoint.npz"]  # the old run's metrics and pictures are gone, none of the new
    state = io.load(out / "checkpoint.npz")
    assert state["epoch"] == 1 and state["extra"]["config"]["lr"] == 0.002  # the new run's
    assert f"{out / 'checkpoint.npz'} holds epoch 1 of 2" in err and "--resume" in err
    assert "last complete checkpoint is kept" not in err


@pytest.mark.parametrize("resuming", [False, True])
def test_ctrl_c_says_what_is_on_disk(tmp_path, small_digits, monkeypatch, capsys, resuming):
    from minae.models import Autoencoder

    out = tmp_path / "r"
    argv = ["train", "ae", *TINY, "--out", str(out)]
    if resuming:
        assert run(argv, capsys)[0] == 0
        before = (out / "checkpoint.npz").read_bytes()
        argv = ["train", "ae", "--epochs", "3", "--quiet", "--out", str(out), "--resume", str(out / "checkpoint.npz")]
    _interrupt_at(monkeypatch, Autoencoder, 1)
    rc, _, err = run(argv, capsys)
    assert rc == 130 and "last complete checkpoint is kept" not in err
    if resuming:
        assert "nothing was written" in err and "unchanged (epoch 1)" in err
        assert (out / "checkpoint.npz").read_bytes() == before
    else:
        assert "no checkpoint was written" in err
        assert not (out / "checkpoint.npz").exists()


def test_settings_given_on_a_resume_are_used_and_recorded_or_refused(tmp_path, small_digits, capsys):
    out = tmp_path / "r"
    assert run(["train", "vae", *TINY, "--out", str(out)], capsys)[0] == 0
    ck = str(out / "checkpoint.npz")
    # --lr and --batch-size given: used from the resumed epoch on; --hidden not given: the checkpoint's 8
    argv = ["train", "vae", "--epochs", "2", "--lr", "0.5", "--batch-size", "64", "--quiet", "--out", str(out)]
    rc, _, err = run([*argv, "--resume", ck], capsys)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["lr"] == 0.5 and metrics["config"]["batch_size"] == 64 and metrics["config"]["hidden"] == 8
    assert [r["lr"] for r in metrics["history"]] == [1e-3, 0.5]
    assert metrics["resumed_from"] == ck
    state = io.load(ck)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.5 and state["epoch"] == 2
    # not given: the checkpoint's lr (0.5 now), not the default
    rc, _, err = run(["train", "vae", "--epochs", "3", "--quiet", "--out", str(out), "--resume", ck], capsys)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["lr"] == 0.5 and [r["lr"] for r in metrics["history"]] == [1e-3, 0.5, 0.5]
    # what would change the model or its random streams: refused, naming the option
    for option, value in (("--seed", "3"), ("--beta", "2"), ("--latent-dim", "5")):
        rc, _, err = run(
            ["train", "vae", "--epochs", "4", "--quiet", option, value, "--out", str(out), "--resume", ck], capsys
        )
        assert rc == 1 and f"{option} {value}" in err and "resumed run keeps" in err, err
    assert io.load(ck)["epoch"] == 3


@pytest.mark.parametrize("option,value", [("--hidden", "10000000"), ("--latent-dim", "1000000000")])
def test_settings_too_large_for_memory_say_how_much_they_need(option, value, tmp_path, capsys):
    rc, _, err = run(["train", "vae", option, value, "--quiet", "--out", str(tmp_path / "r")], capsys)
    assert rc == 1 and "Traceback" not in err
    assert "need about" in err and "GB" in err and f"{option} {value}" in err
    assert not (tmp_path / "r").exists()


def test_out_of_memory_while_training_is_reported_with_the_estimate(tmp_path, small_digits, monkeypatch, capsys):
    def no_memory(name, cfg):
        raise MemoryError("Unable to allocate 31.4 GiB")

    monkeypatch.setattr(cli, "build_model", no_memory)
    rc, _, err = run(["train", "ae", *TINY, "--out", str(tmp_path / "r")], capsys)
    assert rc == 1 and "out of memory" in err and "need about" in err and "Traceback" not in err


def test_info_reports_a_bad_device_setting_and_prints_the_rest(monkeypatch, capsys):
    from minae import backend

    monkeypatch.setenv("MINAE_DEVICE", "tpu")
    monkeypatch.setattr(backend, "_default_device", None)
    rc, out, err = run(["info"], capsys)
    assert rc == 1
    for word in ("numpy", "BLAS", "cupy", "CUDA devices"):
        assert word in out
    assert "default device: unusable: $MINAE_DEVICE='tpu'" in out and "MINAE_DEVICE" in err


def test_model_class_names_match_the_models():
    for name in cli.MODELS:
        cfg = {**cli.MODELS[name], "hidden": 4, "latent_dim": 2, "seed": 0}
        assert type(cli.build_model(name, cfg)).__name__ == cli.CLASSES[name]


def test_ctrl_c_while_continuing_a_run_says_which_files_are_older(tmp_path, small_digits, monkeypatch, capsys):
    from minae.models import Autoencoder

    out = tmp_path / "r"
    assert run(["train", "ae", *TINY, "--out", str(out)], capsys)[0] == 0
    ck = out / "checkpoint.npz"
    _interrupt_at(monkeypatch, Autoencoder, 4)  # epoch 2 completes (2 batches, 1 test batch), then Ctrl-C
    rc, _, err = run(["train", "ae", "--epochs", "3", "--quiet", "--out", str(out), "--resume", str(ck)], capsys)
    assert rc == 130
    assert f"{ck} holds epoch 2 of 3" in err and "metrics.json and the pictures are still those of epoch 1" in err
    assert io.load(ck)["epoch"] == 2
    assert json.loads((out / "metrics.json").read_text())["history"][-1]["epoch"] == 1


# ---------------------------------------------- a newcomer's habits (issue 18) ---
def test_a_resume_continues_in_the_checkpoints_own_folder(tmp_path, monkeypatch, capsys):
    """The run lives in a custom --out; runs/ebm holds another run: the resume goes to the checkpoint's folder."""
    monkeypatch.chdir(tmp_path)
    assert run(["train", "ebm", "--epochs", "1", "--quiet"], capsys)[0] == 0  # runs/ebm
    default = {f: (tmp_path / "runs" / "ebm" / f).read_bytes() for f in os.listdir(tmp_path / "runs" / "ebm")}
    elsewhere = tmp_path / "elsewhere"
    assert run(["train", "ebm", "--epochs", "1", "--seed", "3", "--quiet", "--out", str(elsewhere)], capsys)[0] == 0
    rc, _, err = run(
        ["train", "ebm", "--epochs", "2", "--quiet", "--resume", str(elsewhere / "checkpoint.npz")], capsys
    )
    assert rc == 0, err
    metrics = json.loads((elsewhere / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2] and metrics["config"]["seed"] == 3
    assert io.load(elsewhere / "checkpoint.npz")["epoch"] == 2
    assert {f: (tmp_path / "runs" / "ebm" / f).read_bytes() for f in default} == default  # untouched
    # --out still says otherwise: a new folder continues from the checkpoint
    rc, _, err = run(
        ["train", "ebm", "--epochs", "3", "--quiet", "--resume", str(elsewhere / "checkpoint.npz"), "--out", "third"],
        capsys,
    )
    assert rc == 0, err
    assert (
        io.load(tmp_path / "third" / "checkpoint.npz")["epoch"] == 3
        and io.load(elsewhere / "checkpoint.npz")["epoch"] == 2
    )


@pytest.mark.parametrize("epochs", [None, "1", "2"])
def test_a_resume_with_no_epochs_left_says_the_run_is_complete(epochs, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(["train", "ebm", "--epochs", "2", "--quiet", "--out", str(out)], capsys)[0] == 0
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    argv = ["train", "ebm", "--quiet", "--resume", str(out / "checkpoint.npz")]
    rc, stdout, err = run(argv + (["--epochs", epochs] if epochs else []), capsys)
    assert rc == 1 and "already complete" in err and "holds 2 epochs" in err and "--epochs 3" in err, err
    assert "done in" not in stdout and "Traceback" not in err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before  # nothing recorded


@pytest.mark.parametrize(
    "model,option,takes",
    [
        ("ae", ["--beta", "2"], "--hidden"),
        ("ebm", ["--hidden", "5"], "--beta"),
        ("vae", ["--lambda", "1"], "--hidden, --latent-dim, --beta"),
        ("cae", ["--latent-dim", "3"], "--hidden, --lambda"),
        ("targetprop", ["--noise", "0.1"], "--hidden, --latent-dim"),
        ("ae", ["--corruption", "gaussian"], "--hidden"),
    ],
)
def test_options_a_model_does_not_use_are_refused(model, option, takes, tmp_path, capsys):
    rc, _, err = run(["train", model, "--epochs", "1", "--quiet", *option, "--out", str(tmp_path / "x")], capsys)
    assert rc == 2 and "usage: minae train" in err
    last = err.splitlines()[-1]
    assert f"{model} does not use {option[0]}" in last and last.endswith(takes), last
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv", [["--data", "mnist"], ["--download"], ["--data-root", "somewhere"]])
def test_data_options_that_would_do_nothing_are_refused(argv, tmp_path, small_digits, capsys):
    for model in ("ebm", "ae"):
        if model == "ae" and argv[0] == "--data":
            continue  # --data mnist does choose the ae's data
        rc, _, err = run(["train", model, *tiny(model), *argv, "--out", str(tmp_path / "x")], capsys)
        assert rc == 1 and argv[0] in err and "Traceback" not in err, err
        assert not (tmp_path / "x").exists()


def test_abbreviated_and_unknown_options_show_the_train_usage(tmp_path, capsys):
    for argv in (["--epoch", "3"], ["--lat", "2"], ["--learning-rate", "3"]):
        rc, _, err = run(["train", "vae", *argv, "--out", str(tmp_path / "x")], capsys)
        assert rc == 2 and err.startswith("usage: minae train ") and argv[0] in err.splitlines()[-1], err
        assert "minae train: error: unrecognized arguments" in err
    assert not (tmp_path / "x").exists()


def test_a_batch_larger_than_the_set_is_estimated_as_the_batch_the_loader_makes(tmp_path, small_digits, capsys):
    out = tmp_path / "r"
    rc, _, err = run(["train", "ae", *TINY[:4], "--batch-size", "1000000000", "--quiet", "--out", str(out)], capsys)
    assert rc == 0, err
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 1


def test_one_epoch_is_said_in_the_singular(tmp_path, small_digits, capsys):
    rc, stdout, err = run(["train", "ae", "--epochs", "1", "--hidden", "8", "--out", str(tmp_path / "r")], capsys)
    assert rc == 0, err
    assert ", 1 epoch, device" in stdout.splitlines()[0]
    out = tmp_path / "r"
    rc, _, err = run(["train", "ae", "--quiet", "--resume", str(out / "checkpoint.npz"), "--epochs", "1"], capsys)
    assert "holds 1 epoch," in err and "1 epochs" not in err


def test_the_cuda_hints_name_the_clone_install_too(tmp_path, capsys, monkeypatch):
    from minae import backend

    monkeypatch.setattr(backend, "cuda_device_count", lambda: 0)
    rc, out, _ = run(["info"], capsys)
    assert 'pip install "minae[cuda]"' in out and 'pip install -e ".[cuda]"' in out
    if backend.cupy_module() is None:
        rc, _, err = run(["train", "vae", *TINY, "--device", "cuda", "--out", str(tmp_path / "x")], capsys)
        assert rc == 1 and 'pip install "minae[cuda]"' in err and 'pip install -e ".[cuda]"' in err


# ----------------------------------------------------- crafted settings (issue 18) ---
def _crafted(tmp_path, capsys, change):
    """A one-epoch ebm run whose checkpoint is then rewritten by ``change(state)``; the path."""
    out = tmp_path / "r"
    assert run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(out)], capsys)[0] == 0
    state = io.load(out / "checkpoint.npz")
    change(state)
    io.save(state, out / "checkpoint.npz")
    return out


@pytest.mark.parametrize(
    "field,value",
    [
        ("lr", "fast"),
        ("epochs", "many"),
        ("batch_size", 2.5),
        ("seed", -1),
        ("beta", "hot"),
        ("source", "bundled"),
        ("model", 3),
        ("hidden", 5),  # settings the ebm does not use: metrics.json would record them as if they had (reviewer)
        ("noise", 0.3),
    ],
)
def test_mistyped_saved_settings_name_the_file_and_the_field(field, value, tmp_path, capsys):
    out = _crafted(tmp_path, capsys, lambda s: s["extra"]["config"].__setitem__(field, value))
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    rc, _, err = run(["train", "ebm", "--epochs", "3", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 1 and "Traceback" not in err
    assert str(out / "checkpoint.npz") in err and f"'extra.config.{field}'" in err, err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


@pytest.mark.parametrize(
    "field,change",
    [
        ("rng", lambda s: s.__setitem__("rng", [1, 2])),
        ("rng", lambda s: s.__setitem__("rng", "state")),
        ("rng.cpu", lambda s: s["rng"].__setitem__("cpu", {"bit_generator": "PCG64", "state": 3})),
        ("optimizer.state", lambda s: s["optimizer"].__setitem__("state", [])),
        ("history[0].train", lambda s: s["history"][0].__setitem__("train", "low")),
        ("history[0].train", lambda s: s["history"][0].__setitem__("train", {"energy": 1.0})),
        ("history", lambda s: s["history"].append(dict(s["history"][0], epoch=2))),
        ("model_state.w1", lambda s: s["model_state"].__setitem__("w1", "one")),
        ("loader.generator", lambda s: s["loader"].__setitem__("generator", None)),
    ],
)
def test_a_crafted_checkpoint_is_refused_by_the_command_before_training(field, change, tmp_path, capsys):
    out = _crafted(tmp_path, capsys, change)
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    rc, _, err = run(["train", "ebm", "--epochs", "3", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(out / "checkpoint.npz") in err and f"'{field}" in err, err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


# ------------------------------------------------------ two commands, one folder ---
_RACER = """
import sys, time
from minae import cli
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))  # both processes have imported everything: now they race
sys.exit(cli.main(sys.argv[2:]))
"""


def _env():
    from pathlib import Path

    return dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), MINAE_QUIET="1")


def test_two_commands_into_one_folder_one_owns_it_the_other_is_refused(tmp_path):
    """Two `minae train` started at the same instant into one --out: one runs, one is refused; no mixed files."""
    import time

    for round_ in range(2):
        out = tmp_path / f"race{round_}"
        start = time.time() + 2.0
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, repr(start), "train", "ebm", "--epochs", "15", "--quiet",
                 "--seed", str(seed), "--out", str(out)],
                env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
            for seed in (1, 2)
        ]  # fmt: skip
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        codes = sorted(rc for rc, _ in results)
        assert codes == [0, 1], results
        refused = next(err for rc, err in results if rc == 1)
        assert "already holds a run" in refused and "Traceback" not in refused
        metrics = json.loads((out / "metrics.json").read_text())
        state = io.load(out / "checkpoint.npz")
        assert state["extra"]["config"]["seed"] == metrics["config"]["seed"]  # one run's files, not two
        assert sorted(os.listdir(out)) == ["checkpoint.npz", "energy.png", "loss.png", "metrics.json"]


def test_the_owner_of_a_folder_is_released_when_it_dies(tmp_path, capsys):
    """A process holding a run folder is killed (-9): the kernel drops its lock, the next run proceeds."""
    import signal

    out = tmp_path / "r"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from minae import cli\nwith cli._owning({str(out)!r}):\n print('held', flush=True)\n"
         " import time; time.sleep(60)"],
        env=_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        rc, _, err = run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(out)], capsys)
        assert rc == 1 and "already holds a run" in err and "writing it now" in err
        assert os.listdir(out) == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    rc, _, err = run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(out)], capsys)
    assert rc == 0, err


def test_a_run_saved_with_the_old_setting_names_resumes(tmp_path, small_digits, capsys):
    """Checkpoints written before issue 18 said "data": "pm1" (and "bundled" for the ellipse): they still resume."""
    # and they recorded options the model took no notice of (`ae --beta 2`), which are not carried on
    old_runs = (("ae", {"data": "pm1", "source": "bundled", "beta": 2.0}), ("ebm", {"data": "ellipse", "hidden": 30}))
    for model, old in old_runs:
        out = tmp_path / model
        assert run(["train", model, *tiny(model), "--out", str(out)], capsys)[0] == 0
        state = io.load(out / "checkpoint.npz")
        config = state["extra"]["config"]
        for key in ("dataset", "pixel_scale", "source"):
            config.pop(key, None)
        config.update(old)
        io.save(state, out / "checkpoint.npz")
        rc, _, err = run(["train", model, "--epochs", "2", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
        assert rc == 0, err
        check_run(out, model, 2)
        assert not {"beta", "hidden"} & set(json.loads((out / "metrics.json").read_text())["config"]) - {
            *cli.MODEL_OPTIONS[model]
        }


def test_a_history_with_test_values_for_some_epochs_only_still_draws(tmp_path, small_digits, capsys):
    """A valid but uneven history (no test values for epoch 2) reaches the pictures without crashing them."""
    out = tmp_path / "r"
    assert run(["train", "ae", *TINY[2:], "--epochs", "2", "--out", str(out)], capsys)[0] == 0
    state = io.load(out / "checkpoint.npz")
    state["history"][1]["test"] = None
    io.save(state, out / "checkpoint.npz")
    rc, _, err = run(["train", "ae", "--epochs", "3", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 0, err
    metrics = check_run(out, "ae", 3)
    assert [r["test"] is None for r in metrics["history"]] == [False, True, False]


# ------------------------------------------------------------ reviewer's cases ---
def test_a_run_file_that_links_out_of_the_folder_is_never_written_through(tmp_path, capsys):
    """--out a/ whose checkpoint.npz links to b/'s: resuming it would write b's run (which a/'s lock does not cover)."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(b)], capsys)[0] == 0
    before = {f: (b / f).read_bytes() for f in os.listdir(b)}
    a.mkdir()
    os.symlink(b / "checkpoint.npz", a / "checkpoint.npz")
    for extra in ([], ["--overwrite"], ["--out", str(a)]):
        for resume in (a / "checkpoint.npz", b / "checkpoint.npz"):
            argv = ["train", "ebm", "--epochs", "2", "--quiet", "--resume", str(resume), *extra]
            if str(resume).startswith(str(b)) and "--out" not in extra:
                continue  # b's own run, resumed in b: fine
            rc, _, err = run(argv, capsys)
            assert rc == 1 and "symbolic link" in err and str(a / "checkpoint.npz") in err, (argv, err)
            assert {f: (b / f).read_bytes() for f in os.listdir(b)} == before
            assert sorted(os.listdir(a)) == ["checkpoint.npz"]
    # a new run with --overwrite removes the link, never b's file
    assert run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(a), "--overwrite"], capsys)[0] == 0
    assert not os.path.islink(a / "checkpoint.npz")
    assert {f: (b / f).read_bytes() for f in os.listdir(b)} == before


@pytest.mark.parametrize("change", ["more epochs", "another run"])
def test_a_checkpoint_rewritten_while_the_resume_starts_is_refused(change, tmp_path, small_digits, monkeypatch, capsys):
    """The resume's plan (settings, epochs done) is read before the folder is held; another run may write the
    file in between (here: while the data is read). What is loaded must be what was planned, else nothing runs."""
    out, other = tmp_path / "r", tmp_path / "other"
    assert run(["train", "ae", *TINY, "--out", str(out)], capsys)[0] == 0
    argv = ["train", "ae", *TINY, "--out", str(other)]
    argv[3] = "2" if change == "more epochs" else "1"
    argv += ["--lr", "0.01"] if change == "another run" else []
    assert run(argv, capsys)[0] == 0
    real = cli._loaders

    def meanwhile(*args, **kwargs):  # another process finishes its write of the checkpoint now
        shutil.copyfile(other / "checkpoint.npz", out / "checkpoint.npz")
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "_loaders", meanwhile)
    rc, _, err = run(["train", "ae", "--epochs", "2", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 1 and "changed while this command was starting" in err and "Traceback" not in err, err
    assert (out / "checkpoint.npz").read_bytes() == (other / "checkpoint.npz").read_bytes()
    assert json.loads((out / "metrics.json").read_text())["history"][-1]["epoch"] == 1  # not rewritten


def test_saved_settings_the_model_refuses_name_the_file_and_the_field(tmp_path, small_digits, capsys):
    """Each setting fits the schema alone; together they may not make the model (masking with noise 1)."""
    out = tmp_path / "r"
    assert run(["train", "dae", *TINY, "--out", str(out)], capsys)[0] == 0
    state = io.load(out / "checkpoint.npz")
    state["extra"]["config"].update(noise=1.0, corruption="masking")
    io.save(state, out / "checkpoint.npz")
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    rc, _, err = run(["train", "dae", "--epochs", "2", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 1 and "Traceback" not in err
    assert str(out / "checkpoint.npz") in err and "'extra.config'" in err, err
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before


def test_a_resume_too_large_for_memory_names_the_checkpoint_not_flags_it_keeps(tmp_path, small_digits, capsys):
    """A checkpoint's hidden size is kept on a resume: the hint must not tell the user to lower --hidden."""
    out = tmp_path / "r"
    assert run(["train", "ae", *TINY, "--out", str(out)], capsys)[0] == 0
    state = io.load(out / "checkpoint.npz")
    state["extra"]["config"]["hidden"] = 10**12
    io.save(state, out / "checkpoint.npz")
    rc, _, err = run(["train", "ae", "--epochs", "2", "--quiet", "--resume", str(out / "checkpoint.npz")], capsys)
    assert rc == 1 and "need about" in err and str(out / "checkpoint.npz") in err and "lower --hidden" not in err, err


@pytest.mark.parametrize("how", ["interrupted", "killed"])
def test_a_run_stopped_after_its_last_checkpoint_can_still_write_its_metrics(how, tmp_path, monkeypatch, capsys):
    """Ctrl-C (or kill -9) while the last pictures are drawn: the checkpoint is complete, metrics.json is not
    written. The command the message gives must finish the run (its metrics and pictures), training nothing."""
    from minae import viz

    out = tmp_path / "r"
    argv = ["train", "ebm", "--epochs", "2", "--quiet", "--out", str(out)]
    if how == "interrupted":
        real = viz.save_figure

        def interrupted(fig, path):
            if str(path).endswith("loss.png"):
                raise KeyboardInterrupt
            return real(fig, path)

        monkeypatch.setattr(viz, "save_figure", interrupted)
        rc, _, err = run(argv, capsys)
        monkeypatch.setattr(viz, "save_figure", real)
        assert rc == 130 and "holds epoch 2 of 2 (complete)" in err, err
        advice = err.split("continue with: minae ")[1].split()
    else:
        assert run(argv, capsys)[0] == 0
        os.remove(out / "metrics.json")  # what a kill -9 before its write leaves
        advice = ["train", "ebm", "--resume", str(out / "checkpoint.npz")]
    checkpoint = (out / "checkpoint.npz").read_bytes()
    rc, _, err = run([*advice, "--quiet", "--lr", "0.5"], capsys)  # an lr nothing would be trained with
    assert rc == 1 and "already complete" in err and not (out / "metrics.json").exists(), err
    rc, _, err = run([*advice, "--quiet"], capsys)
    assert rc == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2] and metrics["config"]["epochs"] == 2
    assert (out / "checkpoint.npz").read_bytes() == checkpoint  # nothing trained
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "energy.png", "loss.png", "metrics.json"]
    # and once the run's files are all there, the same command is refused as before: nothing to do
    rc, _, err = run([*advice, "--quiet"], capsys)
    assert rc == 1 and "already complete" in err


@pytest.mark.parametrize("kind", ["file", "fifo", "dangling link"])
def test_an_out_that_is_not_a_folder_is_named(kind, tmp_path, capsys):
    out = tmp_path / "x"
    if kind == "file":
        out.write_bytes(b"mine")
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        os.symlink(tmp_path / "nowhere", out)
    rc, _, err = run(["train", "ebm", "--epochs", "1", "--quiet", "--out", str(out)], capsys)
    assert rc == 1 and f"--out {out}" in err and "not a folder" in err and "Traceback" not in err, err
    assert os.path.lexists(out) and not os.path.exists(tmp_path / "nowhere")
    assert kind != "file" or out.read_bytes() == b"mine"
