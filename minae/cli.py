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
import json
import math
import os
import sys
import time

import minae

from . import backend, viz
from .data import ArrayDataset, DataLoader, toy
from .data.mnist import mnist_arrays
from .io import CheckpointError, atomic_write
from .train import TrainingError, fit, load_checkpoint

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

# Per model: its data ("01": pixels in [0, 1], "pm1": in [−1, 1], "ellipse": the toy set) and defaults.
MODELS = {
    "vae": {"data": "01", "epochs": 50, "lr": 1e-3, "batch_size": 256, "hidden": 400, "latent_dim": 20, "beta": 1.0},
    "ae": {"data": "pm1", "epochs": 20, "lr": 1e-3, "batch_size": 256, "hidden": 30},
    "dae": {"data": "pm1", "epochs": 20, "lr": 1e-3, "batch_size": 256, "hidden": 500, "noise": 0.5},
    # tied weights (W_y = W_hᵀ, as Rifai et al.): untied, the encoder shrinks and the decoder grows to
    # dodge the penalty; λ = 5: smaller weights leave the penalty negligible next to C ≈ 200;
    # lr 1e-2: at 1e-3 the sigmoid decoder sits on the mean digit for dozens of epochs
    "cae": {"data": "01", "epochs": 20, "lr": 1e-2, "batch_size": 256, "hidden": 30, "lambda": 5.0},
    "targetprop": {"data": "pm1", "epochs": 5, "lr": 1e-3, "batch_size": 256, "hidden": 256, "latent_dim": 8},
    "ebm": {"data": "ellipse", "epochs": 200, "lr": 0.05, "batch_size": 24, "beta": None},
}


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
    p = argparse.ArgumentParser(prog="minae", description="minae: the autoencoders lecture, from scratch.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,info}")
    t = sub.add_parser(
        "train", help="train one of the lecture's models", description="Train one of the lecture's models."
    )
    t.add_argument("model", choices=sorted(MODELS), help="which model")
    t.add_argument("--epochs", type=_nonneg_int, help="number of epochs (total, when resuming)")
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
    t.add_argument("--seed", type=_nonneg_int, default=None, help="random seed (default 0)")
    t.add_argument("--out", default=None, help="output folder (default: runs/MODEL)")
    t.add_argument("--resume", default=None, metavar="PATH", help="continue from this checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out (its files are removed)")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    sub.add_parser("info", help="version, backend, devices, BLAS threads")
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
_nonneg_int = _typed(int, lambda v: v >= 0, "a non-negative integer")
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
        cfg["epochs"] = min(cfg["epochs"], 2 if cfg["data"] != "ellipse" else 20)
    cfg["model"] = args.model
    cfg["source"] = args.data or cfg.get("source") or "bundled"
    return cfg


def _saved_settings(path, name: str) -> dict | None:
    """The command-line settings a checkpoint's run used (None for a checkpoint fit() wrote directly)."""
    state = minae.load(path, map_location="cpu")
    extra = state.get("extra") if isinstance(state, dict) else None
    saved = extra.get("config") if isinstance(extra, dict) else None
    if saved is None:
        return None
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: the field 'extra.config' is not a dict of settings")
    if saved.get("model") != name:
        model = state.get("model")
        saved_class = model.get("class") if isinstance(model, dict) else "?"
        raise TrainingError(
            f"{path}: the checkpoint is for a {saved_class} (`minae train {saved.get('model')}`), "
            f"not a {CLASSES[name]} (`minae train {name}`)"
        )
    return saved


def _prepare_out(out: str, args) -> list:
    """Refuse a folder holding a run this command was not asked to continue or replace; the files to remove."""
    existing = [f for f in RUN_FILES if os.path.lexists(os.path.join(out, f))]
    if not existing:
        return []
    checkpoint = os.path.join(out, "checkpoint.npz")
    continuing = args.resume is not None and os.path.exists(checkpoint) and os.path.samefile(args.resume, checkpoint)
    if args.overwrite:  # the old run's files go, except the checkpoint this run continues from
        return [f for f in existing if not (continuing and f == "checkpoint.npz")]
    if continuing:
        return []
    how = f"continue it with --resume {checkpoint}, " if "checkpoint.npz" in existing else ""
    raise TrainingError(
        f"{out} already holds a run ({', '.join(existing)}); {how}replace it with --overwrite, or choose another --out"
    )


def _memory_needed(name: str, cfg: dict) -> tuple[int, str]:
    """(bytes, how) the settings need, estimated from the layer sizes before anything is allocated.

    Each parameter is kept four times (weights, gradients, Adam's two moments); each activation
    about four times (outputs, pre-activations, their gradients) for the larger of a training and
    a test batch (1000); 4 bytes each (float32).
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
    total = 4 * 4 * params + 4 * 4 * max(cfg["batch_size"], 1000) * widths
    return total, f"{params:,} parameters"


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
    if cfg["data"] == "ellipse":
        y = toy.ellipse(24, seed=cfg["seed"]).astype("float32")
        data = ArrayDataset(y)
        return DataLoader(data, cfg["batch_size"], shuffle=True, seed=cfg["seed"], device=dev), None, y
    (xtr, _), (xte, yte) = mnist_arrays(cfg["source"], root=args.data_root, download=args.download, scale=cfg["data"])
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


def train_command(args) -> int:
    out = args.out or os.path.join("runs", args.model)
    saved = _saved_settings(args.resume, args.model) if args.resume is not None else None
    cfg = _config(args, saved)
    to_remove = _prepare_out(out, args)
    dev = backend.device(args.device)
    need, what = _memory_needed(args.model, cfg)
    available = _available_memory() if dev.type == "cpu" else None
    if available is not None and need > available:
        raise MemoryError(
            f"these settings need about {_gb(need)} of memory ({_settings_text(args.model, cfg)}: {what}), "
            f"but {_gb(available)} is available; lower --hidden, --latent-dim or --batch-size"
        )
    try:
        return _train(args, cfg, out, dev, to_remove)
    except MemoryError as e:
        if str(e).startswith("these settings"):
            raise
        raise MemoryError(
            f"out of memory: these settings need about {_gb(need)} ({_settings_text(args.model, cfg)}: {what}); "
            "lower --hidden, --latent-dim or --batch-size"
        ) from None


def _train(args, cfg, out, dev, to_remove) -> int:
    minae.manual_seed(cfg["seed"])
    train_loader, test_loader, test_data = _loaders(cfg, args, dev)
    model = build_model(args.model, cfg).to(dev)
    optimizer = minae.optim.Adam(model.parameters(), lr=cfg["lr"])
    checkpoint = os.path.join(out, "checkpoint.npz")
    state = None
    if args.resume is not None:
        state = load_checkpoint(args.resume, model, optimizer, train_loader)
        if args.lr is not None:  # given on the resume: used from now on (the history records each epoch's lr)
            for group in optimizer.param_groups:
                group["lr"] = args.lr
        cfg["lr"] = optimizer.param_groups[0]["lr"]
    os.makedirs(out, exist_ok=True)
    for name in to_remove:  # --overwrite: the old run goes before the new one writes anything
        os.remove(os.path.join(out, name))
    log = None if args.quiet else (lambda line: print(line, flush=True))
    if log:
        log(
            f"training {type(model).__name__} on {cfg['source']} data, {cfg['epochs']} epochs, device {dev}; "
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
        # list only what this run wrote or kept: with --epochs 0 there is no checkpoint and no curve
        files = [f for f in ["checkpoint.npz"] if os.path.exists(checkpoint)] + ["metrics.json"]
        if history:
            viz.save_figure(
                viz.loss_curves(history, title=f"{args.model}: loss per epoch"), os.path.join(out, "loss.png")
            )
            files.append("loss.png")
        files += _pictures(args.model, model, test_data, out, dev)
    except KeyboardInterrupt:
        print(f"minae: interrupted; {_on_disk(args, cfg, out, state, progress)}", file=sys.stderr)
        return 130
    final = history[-1] if history else None
    metrics = {
        "minae_version": minae.__version__,
        "model": args.model,
        "config": cfg,
        "resumed_from": args.resume,
        "device": str(dev),
        "history": history,
        "final_test_loss": (final["test"] or {}).get("loss") if final else None,
        "final_train_loss": final["train"].get("loss") if final else None,
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
    print(f"CUDA devices: {n}" + ("" if n else ' (pip install "minae[cuda]" on a machine with an NVIDIA GPU)'))
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
    args = parser.parse_args(argv)
    _check_combinations(parser, args)
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
