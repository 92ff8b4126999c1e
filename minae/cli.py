"""The ``minae`` command: ``minae train MODEL [options]`` and ``minae info``.

``minae train vae`` with no options trains the course's VAE on the bundled MNIST
subset and writes, into ``--out`` (default runs/vae): checkpoint.npz,
metrics.json, loss.png and the model's pictures. Every file is written
atomically, so an interrupted run never leaves a half-written one.

A run is never overwritten without asking: a folder that holds one is refused
unless the command continues it (``--resume FOLDER/checkpoint.npz``) or replaces
it (``--overwrite``, which removes the old run's files first, so an interrupted
run never leaves files of two runs mixed). On a resume, the settings not given
are the checkpoint's; those given are used (``--epochs``, ``--lr``,
``--batch-size``, ``--device``, the data) or, where they would change the model
or its random streams, refused; metrics.json records what was used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

try:
    import fcntl
except ImportError:  # Windows: run folders are not locked there
    fcntl = None

import minae

from . import backend, schema, viz
from .data import ArrayDataset, DataLoader, toy
from .data.mnist import mnist_arrays
from .io import CheckpointError, atomic_write
from .train import CHECKPOINT_FORMAT, TrainingError, fit, load_checkpoint

# What a run writes into its folder: a folder holding any of these holds a run.
RUN_FILES = (
    "checkpoint.npz",
    "metrics.json",
    "loss.png",
    "reconstructions.png",
    "samples.png",
    "interpolation.png",
    "energy.png",
)
CLASSES = {
    "vae": "VAE",
    "ae": "Autoencoder",
    "dae": "DenoisingAutoencoder",
    "cae": "ContractiveAutoencoder",
    "targetprop": "TargetProp",
    "ebm": "LatentEBM",
}
# Settings a resumed run cannot change: they define the model (load_checkpoint would refuse it) or its random streams.
FIXED_ON_RESUME = ("hidden", "latent_dim", "beta", "lambda", "noise", "corruption", "seed")
_FLAGS = {"latent_dim": "--latent-dim", "batch_size": "--batch-size", "lambda": "--lambda", "source": "--data"}

# Per model: its data set ("mnist", with pixels scaled to [0, 1] or [-1, 1], or the toy "ellipse") and defaults.
_MNIST01 = {"dataset": "mnist", "pixel_scale": "[0, 1]"}
_MNISTPM1 = {"dataset": "mnist", "pixel_scale": "[-1, 1]"}
MODELS = {
    "vae": {**_MNIST01, "epochs": 50, "lr": 1e-3, "batch_size": 256, "hidden": 400, "latent_dim": 20, "beta": 1.0},
    "ae": {**_MNISTPM1, "epochs": 20, "lr": 1e-3, "batch_size": 256, "hidden": 30},
    "dae": {**_MNISTPM1, "epochs": 20, "lr": 1e-3, "batch_size": 256, "hidden": 500, "noise": 0.5},
    # tied weights (W_y = W_hᵀ, as Rifai et al.): untied, the encoder shrinks and the decoder grows to
    # dodge the penalty; λ = 5: smaller weights leave the penalty negligible next to C ≈ 200;
    # lr 1e-2: at 1e-3 the sigmoid decoder sits on the mean digit for dozens of epochs
    "cae": {**_MNIST01, "epochs": 20, "lr": 1e-2, "batch_size": 256, "hidden": 30, "lambda": 5.0},
    "targetprop": {**_MNISTPM1, "epochs": 5, "lr": 1e-3, "batch_size": 256, "hidden": 256, "latent_dim": 8},
    "ebm": {"dataset": "ellipse", "epochs": 200, "lr": 0.05, "batch_size": 24, "beta": None},
}
# The ellipse is not read from anywhere: 24 points drawn from the run's seed (minae.data.toy.ellipse).
ELLIPSE_SOURCE = "generated: minae.data.toy.ellipse(24, seed)"
_PIXEL_SCALES = {"[0, 1]": "01", "[-1, 1]": "pm1"}  # mnist_arrays' names for them
# --data's choices and what metrics.json calls them
_SOURCES = {"bundled": "bundled", "mnist": "full"}
# The options each model uses beyond the common ones (--epochs, --batch-size, --lr, --seed, --device, …);
# any other model option is refused, so nothing is recorded that did not shape the run.
MODEL_OPTIONS = {
    "vae": ("hidden", "latent_dim", "beta"),
    "ae": ("hidden",),
    "dae": ("hidden", "noise", "corruption"),
    "cae": ("hidden", "lambda"),
    "targetprop": ("hidden", "latent_dim"),
    "ebm": ("beta",),
}
_ALL_MODEL_OPTIONS = ("hidden", "latent_dim", "beta", "lambda", "noise", "corruption")


def build_model(name: str, cfg: dict):
    """The model ``name`` with the settings of ``cfg`` (the merged defaults and options)."""
    from .models import VAE, Autoencoder, ContractiveAutoencoder, DenoisingAutoencoder, LatentEBM, TargetProp

    if name == "vae":
        return VAE(hidden=cfg["hidden"], latent_dim=cfg["latent_dim"], beta=cfg["beta"])
    if name == "ae":
        return Autoencoder(hidden=cfg["hidden"])
    if name == "dae":
        return DenoisingAutoencoder(
            hidden=cfg["hidden"], corruption=cfg.get("corruption") or "masking", level=cfg["noise"]
        )
    if name == "cae":
        return ContractiveAutoencoder(hidden=cfg["hidden"], lam=cfg["lambda"], tied=True)
    if name == "targetprop":
        return TargetProp(hidden=cfg["hidden"], latent_dim=cfg["latent_dim"])
    if name == "ebm":
        return LatentEBM(w1=1.0, w2=1.0, beta=cfg.get("beta"))
    raise ValueError(name)


def _parser():
    # allow_abbrev=False: `--epoch 3` must not quietly mean --epochs (argparse's prefix matching)
    p = argparse.ArgumentParser(
        prog="minae", description="minae: the autoencoders lecture, from scratch.", allow_abbrev=False
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,info}")
    t = sub.add_parser(
        "train",
        help="train one of the lecture's models",
        description="Train one of the lecture's models.",
        allow_abbrev=False,
    )
    p.train_parser = t
    t.add_argument("model", choices=sorted(MODELS), help="which model")
    t.add_argument("--epochs", type=_pos_int, help="number of epochs (total, when resuming)")
    t.add_argument("--batch-size", type=_pos_int)
    t.add_argument("--lr", type=_pos_float, help="Adam's learning rate")
    t.add_argument("--latent-dim", type=_pos_int, help="size of z (vae, targetprop)")
    t.add_argument("--hidden", type=_pos_int, help="hidden units")
    t.add_argument("--beta", type=_nonneg_float, help="β: the KL weight (vae) or the inverse temperature (ebm)")
    t.add_argument("--lambda", dest="lambda_", type=_nonneg_float, help="λ: the contractive penalty's weight (cae)")
    t.add_argument("--noise", type=_nonneg_float, help="corruption level (dae)")
    t.add_argument("--corruption", choices=["masking", "gaussian", "salt_and_pepper"], help="corruption kind (dae)")
    t.add_argument("--device", default=None, help="cpu or cuda[:N] (default: $MINAE_DEVICE or cpu)")
    t.add_argument(
        "--data", choices=["bundled", "mnist"], default=None, help="bundled 5,000-digit subset (default) or full MNIST"
    )
    t.add_argument(
        "--data-root", default=None, help="folder of the MNIST IDX files (default: $MINAE_DATA or ~/.cache/minae/mnist)"
    )
    t.add_argument("--download", action="store_true", help="download full MNIST if missing (with --data mnist)")
    t.add_argument("--seed", type=_seed, default=None, help="random seed (default 0)")
    t.add_argument(
        "--out", default=None, help="output folder (default: runs/MODEL, or the folder of the --resume checkpoint)"
    )
    t.add_argument("--resume", default=None, metavar="PATH", help="continue from this checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its files are removed)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.info_parser = sub.add_parser("info", help="version, backend, devices, BLAS threads", allow_abbrev=False)
    return p


def _typed(kind, check, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {what}")
        return value

    return parse


_pos_int = _typed(int, lambda v: v > 0, "a positive integer")
# seeds as PyTorch's manual_seed takes them (64 bits): a longer one trained an epoch, then could not be saved
MAX_SEED = 2**64 - 1
_seed = _typed(int, lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, 2**64 - 1 = {MAX_SEED}]")
_pos_float = _typed(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
_nonneg_float = _typed(float, lambda v: v >= 0 and math.isfinite(v), "a non-negative number")


def _given(args) -> dict:
    """The settings given on the command line (not their defaults)."""
    given = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "latent_dim": args.latent_dim,
        "hidden": args.hidden,
        "beta": args.beta,
        "lambda": args.lambda_,
        "noise": args.noise,
        "corruption": args.corruption,
        "seed": args.seed,
    }
    return {k: v for k, v in given.items() if v is not None}


def _config(args, saved=None) -> dict:
    """The run's settings: the defaults (or, on a resume, the checkpoint's ``saved`` ones) and the options given."""
    given = _given(args)
    if saved is not None:
        for key in FIXED_ON_RESUME:
            if key in given and key in saved and given[key] != saved[key]:
                flag = _FLAGS.get(key, "--" + key)
                raise TrainingError(
                    f"{flag} {given[key]}: the checkpoint's run used {saved[key]!r}, and a resumed run keeps "
                    f"its model and random streams; drop {flag}, or start a new run (another --out, or --overwrite)"
                )
        cfg = {**MODELS[args.model], **saved}
    else:
        cfg = dict(MODELS[args.model])
        cfg["seed"] = 0
    cfg.update(given)
    if os.environ.get("MINAE_FAST") and args.epochs is None and saved is None:
        cfg["epochs"] = min(cfg["epochs"], 2 if cfg["dataset"] != "ellipse" else 20)
    cfg["model"] = args.model
    if cfg["dataset"] == "ellipse":
        cfg["source"] = ELLIPSE_SOURCE
    else:
        cfg["source"] = _SOURCES[args.data] if args.data else cfg.get("source") or "bundled"
    return cfg


def config_schema() -> schema.Spec:
    """The settings a checkpoint's "extra.config" may hold (what ``_config`` writes), each with its type."""
    count, rate = schema.Int(low=1), schema.Real(positive=True)
    weight = schema.Real(low=0)
    fields = schema.Record(
        {
            "model": schema.Str(sorted(MODELS)),
            "dataset": schema.Str(["mnist", "ellipse"]),
            "pixel_scale": schema.Str(sorted(_PIXEL_SCALES)),
            "source": schema.Str([*_SOURCES.values(), ELLIPSE_SOURCE]),
            "epochs": count,
            "lr": rate,
            "batch_size": count,
            "hidden": count,
            "latent_dim": count,
            "beta": schema.Optional(weight),
            "lambda": weight,
            "noise": weight,
            "corruption": schema.Optional(schema.Str(["masking", "gaussian", "salt_and_pepper"])),
            "seed": schema.Int(0, MAX_SEED),
        },
        optional=["pixel_scale", "hidden", "latent_dim", "beta", "lambda", "noise", "corruption"],
    )
    return schema.All(fields, _ConsistentData())


class _ConsistentData(schema.Spec):
    """The data fields agree with the model: its data set, its pixel scale, a source that data set has."""

    def validate(self, value, field):
        defaults = MODELS[value["model"]]
        for key in ("dataset", "pixel_scale"):
            if value.get(key) != defaults.get(key):
                raise schema.Invalid(
                    f"{field}.{key}", f"is {value.get(key)!r}, but {value['model']} trains on {defaults.get(key)!r}"
                )
        unused = [k for k in _ALL_MODEL_OPTIONS if k in value and k not in MODEL_OPTIONS[value["model"]]]
        if unused:  # it would be recorded in metrics.json as if it had shaped the run
            takes = ", ".join(MODEL_OPTIONS[value["model"]]) or "none"
            raise schema.Invalid(
                f"{field}.{unused[0]}", f"is a setting {value['model']} does not use (its model settings: {takes})"
            )
        sources = [ELLIPSE_SOURCE] if defaults["dataset"] == "ellipse" else list(_SOURCES.values())
        if value["source"] not in sources:
            raise schema.Invalid(f"{field}.source", f"is {value['source']!r}, not a source of {defaults['dataset']}")


def _upgrade_settings(saved: dict) -> dict:
    """Settings written before issue 18 named "data" what is now "dataset" and "pixel_scale"."""
    if isinstance(saved, dict) and "data" in saved and "dataset" not in saved:
        saved = dict(saved)
        data = saved.pop("data")
        if data == "ellipse":
            saved.update(dataset="ellipse", source=ELLIPSE_SOURCE)
        else:
            scale = {v: k for k, v in _PIXEL_SCALES.items()}.get(data, data)
            saved.update(dataset="mnist", pixel_scale=scale, source=_SOURCES.get(saved.get("source"), "bundled"))
        # those runs recorded options their model took no notice of (`ae --beta 2`): they shaped nothing
        for key in set(_ALL_MODEL_OPTIONS) - set(MODEL_OPTIONS.get(saved.get("model"), _ALL_MODEL_OPTIONS)):
            saved.pop(key, None)
    return saved


def _saved_settings(path, name: str):
    """(settings, epochs done) of a checkpoint's run; the settings are None for a checkpoint fit() wrote directly.

    The settings are checked against ``config_schema`` (a mistyped one is a CheckpointError naming the
    file and the field) and the model against ``name`` before anything else is done.
    """
    state = minae.load(path, map_location="cpu")
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a minae training checkpoint")
    epoch = state.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"{path}: the training checkpoint's field 'epoch' must be an integer at least 0")
    extra = state.get("extra")
    saved = _upgrade_settings(extra.get("config")) if isinstance(extra, dict) else None
    if saved is None:
        return None, epoch
    try:
        schema.check(saved, config_schema(), "extra.config")
    except schema.Invalid as e:
        raise CheckpointError(f"{path}: the training checkpoint's field {e.field!r} {e.problem}") from None
    if saved.get("model") != name:
        model = state.get("model")
        saved_class = model.get("class") if isinstance(model, dict) else "?"
        raise TrainingError(
            f"{path}: the checkpoint is for a {saved_class} (`minae train {saved.get('model')}`), "
            f"not a {CLASSES[name]} (`minae train {name}`)"
        )
    return saved, epoch


def _prepare_out(out: str, args) -> list:
    """Refuse a folder holding a run this command was not asked to continue or replace; the files to remove."""
    existing = [f for f in RUN_FILES if os.path.lexists(os.path.join(out, f))]
    if not existing:
        return []
    checkpoint = os.path.join(out, "checkpoint.npz")
    continuing = args.resume is not None and os.path.exists(checkpoint) and os.path.samefile(args.resume, checkpoint)
    # A run's files live in its folder, which the run holds (_owning): a run file that is a symbolic link would
    # be written through, into a file the lock does not cover (another run's, perhaps running now). Only
    # --overwrite's removal touches such a link (it removes the link, not what it points to).
    kept = [f for f in existing if not (args.overwrite and not (continuing and f == "checkpoint.npz"))]
    for f in kept:
        link = os.path.join(out, f)
        if os.path.islink(link):
            raise TrainingError(
                f"{link} is a symbolic link (to {os.readlink(link)}): a run writes its files only into its own "
                "folder, and writing through the link would change a file outside it; replace the link by a copy "
                "of its file, or choose another --out"
                + ("" if continuing else ", or --overwrite (which removes the link)")
            )
    if args.overwrite:  # the old run's files go, except the checkpoint this run continues from
        return [f for f in existing if not (continuing and f == "checkpoint.npz")]
    if continuing:
        return []
    how = f"continue it with --resume {checkpoint}, " if "checkpoint.npz" in existing else ""
    raise TrainingError(
        f"{out} already holds a run ({', '.join(existing)}); {how}replace it with --overwrite, or choose another --out"
    )


@contextlib.contextmanager
def _owning(out: str):
    """Hold the run folder ``out`` (created if needed) for this process alone while the block runs.

    An exclusive ``flock`` on the folder itself: the kernel drops it when the process ends, however it
    ends (a kill -9 leaves no stale lock), and it leaves no file behind. Taken before anything in the
    folder is written or removed, so two commands never mix their files; the second is refused.
    (Where there is no fcntl, on Windows, the folder is not locked.)
    """
    if os.path.lexists(out) and not os.path.isdir(out):
        raise TrainingError(f"--out {out}: there is a file there, not a folder; choose another --out")
    os.makedirs(out, exist_ok=True)
    if fcntl is None:
        yield
        return
    fd = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingError(
                f"{out} already holds a run (another `minae train` is writing it now); wait for it to finish, "
                "or choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _memory_needed(name: str, cfg: dict, n_train: int, n_test: int) -> tuple[int, str]:
    """(bytes, how) the settings need, estimated from the layer sizes before the model is built.

    Each parameter is kept four times (weights, gradients, Adam's two moments); each activation
    about four times (outputs, pre-activations, their gradients) for the larger of a training
    batch and a test batch as the loaders make them: min(batch size, samples), min(1000, test samples);
    4 bytes each (float32).
    """
    d, h, z = 784, cfg.get("hidden", 0), cfg.get("latent_dim", 0)
    if name == "vae":
        layers = [(d, h), (h, 2 * z), (z, h), (h, d)]
    elif name == "targetprop":
        layers = [(d, h), (h, z), (z, h), (h, d)]
    elif name == "cae":
        layers = [(d, h), (0, d)]  # tied: the decoder adds only its bias
    elif name in ("ae", "dae"):
        layers = [(d, h), (h, d)]
    else:
        return 0, ""
    params = sum(a * b + b for a, b in layers)
    widths = d + sum(b for _, b in layers)
    batch = max(min(cfg["batch_size"], n_train), min(1000, n_test))
    total = 4 * 4 * params + 4 * 4 * batch * widths
    return total, f"{params:,} parameters, batches of {batch:,}"


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable), else the physical memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB"


def _settings_text(name: str, cfg: dict) -> str:
    keys = [k for k in ("hidden", "latent_dim", "batch_size") if k in cfg]
    return f"{name} with " + ", ".join(f"{_FLAGS.get(k, '--' + k)} {cfg[k]}" for k in keys)


def _loaders(cfg, args, dev):
    if cfg["dataset"] == "ellipse":
        y = toy.ellipse(24, seed=cfg["seed"]).astype("float32")
        data = ArrayDataset(y)
        return DataLoader(data, cfg["batch_size"], shuffle=True, seed=cfg["seed"], device=dev), None, y
    source = {v: k for k, v in _SOURCES.items()}[cfg["source"]]
    scale = _PIXEL_SCALES[cfg["pixel_scale"]]
    (xtr, _), (xte, yte) = mnist_arrays(source, root=args.data_root, download=args.download, scale=scale)
    train = DataLoader(ArrayDataset(xtr), cfg["batch_size"], shuffle=True, seed=cfg["seed"], device=dev)
    test = DataLoader(ArrayDataset(xte), 1000, device=dev)
    return train, test, (xte, yte)


def _write_json(path, obj) -> None:
    with atomic_write(path, "w") as fh:
        json.dump(obj, fh, indent=2, default=str)


def _pictures(name, model, test_data, out, dev):
    """The model's own figures: reconstructions; VAE samples and interpolation; the EBM's energy."""
    model.eval()
    written = []
    if name == "ebm":
        written.append(("energy.png", _ebm_figure(model, test_data)))
    else:
        xte, yte = test_data
        y = minae.tensor(xte[:10], device=dev)
        rows = {"input": y}
        if name == "dae":  # the denoising picture: clean y, corrupted ŷ, and ỹ reconstructed from ŷ
            with minae.no_grad():
                rows["corrupted"] = model.train().corrupt(y)
                model.eval()
            y = rows["corrupted"]
        with minae.no_grad():
            if name == "vae":
                recon = model.reconstruct(y)
            elif name == "targetprop":
                recon = None
            else:
                recon = model(y)
        if recon is None:
            with minae.enable_grad():
                recon = model(y).detach()
        rows["reconstruction"] = recon
        written.append(("reconstructions.png", viz.image_rows(rows)))
        if name == "vae":
            written.append(("samples.png", viz.image_grid(model.sample(16), nrow=8, title="samples from the prior")))
            # from the first digit to the first one of another class (or the last digit, if all agree)
            i, j = 0, next((k for k in range(len(yte)) if yte[k] != yte[0]), len(yte) - 1)
            path = model.interpolate(minae.tensor(xte[i], device=dev), minae.tensor(xte[j], device=dev), 10)
            written.append(("interpolation.png", viz.image_grid(path, nrow=10, title="latent interpolation")))
    for fname, fig in written:
        viz.save_figure(fig, os.path.join(out, fname))
    return [f for f, _ in written]


def _ebm_figure(model, y):
    y1, y2 = minae.linspace(-3, 3, 25), minae.linspace(-2, 2, 17)
    grid = minae.stack([y1.reshape(1, -1).expand(17, 25), y2.reshape(-1, 1).expand(17, 25)], dim=-1).reshape(-1, 2)
    with minae.no_grad():
        free = model.free_energy(grid.to(model.w1.device)).reshape(17, 25)
        manifold = model.decode(minae.linspace(0, 2 * math.pi, 100, device=model.w1.device))
    fig = viz.heatmap(free, extent=(-3, 3, -2, 2), points=y, title="zero-temperature free energy F∞(y)", label="F∞(y)")
    m = manifold.numpy()
    fig.axes[0].plot(m[:, 0], m[:, 1], "w-", lw=1)
    return fig


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _device(name):
    """backend.device(name), with the install hint for a clone as well as for pip."""
    try:
        return backend.device(name)
    except RuntimeError as e:
        if 'pip install "minae[cuda]"' in str(e):
            raise RuntimeError(f'{e} From a clone of the repository: pip install -e ".[cuda]".') from None
        raise


def train_command(args) -> int:
    done = 0
    if args.resume is not None:
        saved, done = _saved_settings(args.resume, args.model)
    else:
        saved = None
    # a resume continues in its checkpoint's own folder unless --out says otherwise
    if args.out is not None:
        out = args.out
    else:
        out = os.path.dirname(os.path.abspath(args.resume)) if args.resume else os.path.join("runs", args.model)
    cfg = _config(args, saved)
    _check_data_options(args, cfg)
    # finishing a stopped run trains nothing: a training setting given for it would be recorded, never used
    if (
        args.resume is not None
        and cfg["epochs"] <= done
        and not (args.lr is None and args.batch_size is None and _unfinished(out, args.resume, cfg["epochs"], done))
    ):
        given = f"--epochs {cfg['epochs']}" if args.epochs is not None else f"its {_count(cfg['epochs'], 'epoch')}"
        raise TrainingError(
            f"{args.resume} already holds {_count(done, 'epoch')}, so the run is already complete for {given}; "
            f"nothing was trained or written (to train further, ask for more: --epochs {done + 1} or more)"
        )
    _prepare_out(out, args)  # a quick refusal before the data is read; checked again once the folder is ours
    dev = _device(args.device)
    train_loader, test_loader, test_data = _loaders(cfg, args, dev)
    n_train = len(train_loader.dataset)
    n_test = len(test_loader.dataset) if test_loader is not None else 0
    need, what = _memory_needed(args.model, cfg, n_train, n_test)
    available = _available_memory() if dev.type == "cpu" else None
    if available is not None and need > available:
        raise MemoryError(
            f"these settings need about {_gb(need)} of memory ({_settings_text(args.model, cfg)}: {what}), "
            f"but {_gb(available)} is available; {_lower_hint(args)}"
        )
    try:
        with _owning(out):
            to_remove = _prepare_out(out, args)
            return _train(args, cfg, out, dev, to_remove, (train_loader, test_loader, test_data), (saved, done))
    except MemoryError as e:
        if str(e).startswith("these settings"):
            raise
        raise MemoryError(
            f"out of memory: these settings need about {_gb(need)} ({_settings_text(args.model, cfg)}: {what}); "
            f"{_lower_hint(args)}"
        ) from None


def _unfinished(out: str, resume: str, epochs: int, done: int) -> bool:
    """Whether the checkpoint's run trained all its epochs but stopped before writing its metrics.json (Ctrl-C
    or a kill during the last pictures): then a resume for exactly those epochs writes the metrics and the
    pictures, training nothing. Only in the checkpoint's own folder, and only when its metrics.json is missing
    or describes fewer epochs (unreadable counts as missing: the run's own file, rewritten whole)."""
    checkpoint = os.path.join(out, "checkpoint.npz")
    if epochs != done or not (os.path.exists(checkpoint) and os.path.samefile(resume, checkpoint)):
        return False
    metrics = os.path.join(out, "metrics.json")
    if not os.path.lexists(metrics):
        return True
    if not os.path.isfile(metrics) or os.path.islink(metrics) or os.path.getsize(metrics) > 2**26:
        return False  # a FIFO would hang the read, a link is refused later, 64 MiB is no metrics.json
    try:
        with open(metrics, encoding="utf-8") as fh:
            history = json.load(fh)["history"]
        return not isinstance(history, list) or len(history) != done
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return True


def _lower_hint(args) -> str:
    """What to lower: a resumed run's model settings are its checkpoint's (FIXED_ON_RESUME), only its batch is not."""
    if args.resume is None:
        return "lower --hidden, --latent-dim or --batch-size"
    return (
        f"the model's sizes are those saved in {args.resume} (its field 'extra.config'), which a resume keeps: "
        "lower --batch-size, or start a new run"
    )


def _check_data_options(args, cfg) -> None:
    """--data, --data-root and --download only where they choose the data: refused where they would do nothing."""
    if cfg["dataset"] == "ellipse":
        given = [flag for flag, v in (("--data", args.data), ("--data-root", args.data_root)) if v is not None]
        given += ["--download"] if args.download else []
        if given:
            raise TrainingError(
                f"{args.model} trains on the ellipse generated from the seed, not on MNIST: drop {', '.join(given)}"
            )
    elif cfg["source"] != "full":
        given = [flag for flag, v in (("--data-root", args.data_root), ("--download", args.download)) if v]
        if given:
            raise TrainingError(f"{', '.join(given)} apply to the full MNIST only: add --data mnist, or drop them")


class _SavedSettings(schema.Spec):
    """A checkpoint's "extra" field as the command line wrote it (older names upgraded first)."""

    def validate(self, value, field):
        schema.check(value, schema.Mapping(schema.Str(), schema.Anything()), field)
        if "config" in value:
            schema.check(_upgrade_settings(value["config"]), config_schema(), f"{field}.config")


def _train(args, cfg, out, dev, to_remove, data, planned=(None, 0)) -> int:
    minae.manual_seed(cfg["seed"])
    train_loader, test_loader, test_data = data
    try:
        model = build_model(args.model, cfg).to(dev)
    except (ValueError, TypeError) as e:
        if args.resume is None:  # the command line's own values, checked by _check_combinations
            raise
        # the schema checks each setting alone; the model's constructor checks them together (dae: masking
        # needs noise < 1), and on a resume they are the checkpoint's
        raise CheckpointError(
            f"{args.resume}: the training checkpoint's field 'extra.config' holds settings that do not make a "
            f"{CLASSES[args.model]} ({e}); nothing was changed"
        ) from None
    optimizer = minae.optim.Adam(model.parameters(), lr=cfg["lr"])
    checkpoint = os.path.join(out, "checkpoint.npz")
    state = None
    if args.resume is not None:
        state = load_checkpoint(args.resume, model, optimizer, train_loader, extra=_SavedSettings())
        # The settings and the epochs done were read before this process held the folder (to choose the
        # data and the model); another run may have written the file since. Train only what was planned.
        extra = state.get("extra")
        now = _upgrade_settings(extra.get("config")) if isinstance(extra, dict) else None
        if (now, state["epoch"]) != planned:
            raise TrainingError(
                f"{args.resume} changed while this command was starting (another run wrote it; it now holds "
                f"{_count(state['epoch'], 'epoch')}, not {planned[1]}); nothing was trained or written: run the "
                "command again"
            )
        if args.lr is not None:  # given on the resume: used from now on (the history records each epoch's lr)
            for group in optimizer.param_groups:
                group["lr"] = args.lr
        cfg["lr"] = optimizer.param_groups[0]["lr"]
    for name in to_remove:  # --overwrite: the old run goes before the new one writes anything
        os.remove(os.path.join(out, name))
    log = None if args.quiet else (lambda line: print(line, flush=True))
    if log:
        data_text = "the ellipse" if cfg["dataset"] == "ellipse" else f"{cfg['source']} MNIST"
        log(
            f"training {type(model).__name__} on {data_text}, {_count(cfg['epochs'], 'epoch')}, device {dev}; "
            f"writing to {out}/"
        )
    progress = {"saved": None, "trained": False}  # what this call has put on disk, for an interruption's message

    def saved_epoch(epoch, record):
        progress["saved"] = epoch

    try:
        t0 = time.perf_counter()
        history = fit(
            model,
            train_loader,
            optimizer,
            cfg["epochs"],
            test_loader=test_loader,
            checkpoint=checkpoint,
            resume=state,
            progress=False if args.quiet else None,
            log=log,
            on_epoch_end=saved_epoch,
            extra={"config": cfg},
        )
        progress["trained"] = True
        wall = time.perf_counter() - t0
        files = ["checkpoint.npz", "metrics.json", "loss.png"]
        viz.save_figure(viz.loss_curves(history, title=f"{args.model}: loss per epoch"), os.path.join(out, "loss.png"))
        files += _pictures(args.model, model, test_data, out, dev)
    except KeyboardInterrupt:
        print(f"minae: interrupted; {_on_disk(args, cfg, out, state, progress)}", file=sys.stderr)
        return 130
    final = history[-1]
    metrics = {
        "minae_version": minae.__version__,
        "model": args.model,
        "config": cfg,
        "resumed_from": args.resume,
        "device": str(dev),
        "history": history,
        "final_test_loss": (final["test"] or {}).get("loss"),
        "final_train_loss": final["train"].get("loss"),
        "wall_seconds": wall,
        "files": files,
    }
    _write_json(os.path.join(out, "metrics.json"), metrics)
    if log:
        log(f"done in {wall:.1f} s: " + ", ".join(os.path.join(out, f) for f in files))
    return 0


def _on_disk(args, cfg, out, state, progress) -> str:
    """What an interrupted run leaves on disk, said plainly."""
    checkpoint = os.path.join(out, "checkpoint.npz")
    continue_with = f"continue with: minae train {args.model} --resume {checkpoint} --out {out}"
    if progress["saved"] is not None:
        text = f"{checkpoint} holds epoch {progress['saved']} of {cfg['epochs']} (complete); "
        if os.path.exists(os.path.join(out, "metrics.json")):  # only when continuing a run in its own folder
            text += f"metrics.json and the pictures are still those of epoch {state['epoch']}; "
        else:
            text += "metrics.json and the pictures were not written; "
        return text + continue_with
    if state is not None:
        return (
            f"no epoch finished in this run, so nothing was written; {args.resume} is unchanged (epoch "
            f"{state['epoch']})"
        )
    if progress["trained"]:
        return "no epoch was trained; metrics.json and the pictures were not written"
    return f"no epoch finished, so no checkpoint was written in {out}"


def info_command() -> int:
    """Everything about this installation; a bad setting is reported on its line (exit 1), the rest still printed."""
    print(f"minae {minae.__version__}")
    print(f"python {sys.version.split()[0]}, numpy {backend.np.__version__}")
    print(f"BLAS: {backend.blas_info()}")
    cupy = backend.cupy_module()
    print(f"cupy: {cupy.__version__ if cupy is not None else 'not installed'}")
    n = backend.cuda_device_count()
    hint = ' (pip install "minae[cuda]", or pip install -e ".[cuda]" from a clone, on a machine with an NVIDIA GPU)'
    print(f"CUDA devices: {n}" + ("" if n else hint))
    try:
        print(f"default device: {backend.default_device()}")
    except (ValueError, RuntimeError) as e:
        setting = os.environ.get("MINAE_DEVICE")
        print(f"default device: unusable: $MINAE_DEVICE={setting!r}: {e}")
        print(f"minae: error: $MINAE_DEVICE={setting!r} is not usable here: {e}", file=sys.stderr)
        return 1
    return 0


def _check_combinations(parser, args) -> None:
    """What argparse cannot check one option at a time, reported the same way (exit 2) before any work."""
    if args.command == "train":
        used = MODEL_OPTIONS[args.model]
        given = _given(args)
        unused = [_FLAGS.get(k, "--" + k) for k in _ALL_MODEL_OPTIONS if k in given and k not in used]
        if unused:
            takes = ", ".join(_FLAGS.get(k, "--" + k) for k in used)
            parser.error(
                f"argument {unused[0]}: {args.model} does not use {' or '.join(unused)}; "
                f"the model options {args.model} takes are {takes}"
            )
    if args.command == "train" and args.model == "dae" and args.noise is not None:
        corruption = args.corruption or "masking"
        if corruption == "masking" and args.noise >= 1:
            parser.error(
                f"argument --noise: masking drops a fraction p of the pixels: p must be below 1, got {args.noise}"
            )
        if corruption == "salt_and_pepper" and args.noise > 1:
            parser.error(f"argument --noise: salt_and_pepper's fraction of pixels must be at most 1, got {args.noise}")


def main(argv=None) -> int:
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    # an unknown option is reported with the usage of the command it was given to
    command_parser = parser.train_parser if args.command == "train" else parser.info_parser
    if unknown:
        command_parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    _check_combinations(command_parser, args)
    try:
        if args.command == "info":
            return info_command()
        return train_command(args)
    except (TrainingError, OSError, ValueError, RuntimeError, TypeError, MemoryError) as e:
        # OSError: --out unwritable, disk full; MemoryError: settings too large for this machine
        if os.environ.get("MINAE_DEBUG"):
            raise
        print(f"minae: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # before training started (training's own interruptions say what is on disk)
        print("minae: interrupted before training started; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
