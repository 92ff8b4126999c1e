"""The course's VAE and AE, and the pytorch/examples VAE, trained in minae and in PyTorch side by side.

Same data (the bundled MNIST subset), architecture, loss, optimizer (Adam 1e-3), batch size
(256), epochs and thread count; epochs interleaved (a minae epoch, then a PyTorch epoch), so
both see the same machine state. Prints, per model, the README's tables: test loss per sample,
the median epoch time, and (measured in a fresh process per framework) the peak memory growth
while training and the resident memory at the end of each epoch.

Models: ``examples`` is the pytorch/examples VAE (``bench/examples_vae.py``: the same code for
both frameworks, only the imports differ; its loss is summed over the batch, as there); ``vae``
and ``ae`` are ``minae.models.VAE`` and ``minae.models.Autoencoder`` against the same models
written in PyTorch.

Run: python bench/compare_torch.py [--epochs 10] [--seeds 5] [--models examples,vae,ae] [--threads 2]
     [--clock wall|cpu] [--no-memory] [--device cpu|cuda|cuda:N]

``--device cuda[:N]``: minae (default device set to that GPU: models and data batches there) against
PyTorch on the same GPU; each timed epoch ends with a device synchronize in both frameworks. The
memory table measures the process's resident memory, which says nothing of GPU memory, so it is
left out on a GPU (with a note).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _threads_from_argv(argv) -> str:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return os.environ.get("BENCH_THREADS", "2")


# NumPy's BLAS reads its thread count once, when it loads: set it before the import, so both
# frameworks get the same number (an unset OpenBLAS takes every core and spins on a busy machine)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, _threads_from_argv(sys.argv))

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from examples_vae import build as build_examples_vae  # noqa: E402

import minae  # noqa: E402
from minae.backend import np  # noqa: E402
from minae.data import ArrayDataset, DataLoader  # noqa: E402
from minae.data.mnist import mnist_arrays  # noqa: E402
from minae.models import VAE, Autoencoder  # noqa: E402

BATCH, LR = 256, 1e-3


# ------------------------------------------------------------------ minae side ---
class ExamplesVAE:
    """The pytorch/examples VAE behind the interface of the course's models: ``loss(y)`` per sample.

    The training step backpropagates the example's own loss (summed over the batch); only the
    reported number is divided by the batch size, to compare with the other rows.
    """

    def __init__(self, torch, nn, F):
        model_class, self.loss_function = build_examples_vae(torch, nn, F)
        self.model = model_class()

    def summed_loss(self, y):
        recon, mu, logvar = self.model(y)
        return self.loss_function(recon, y, mu, logvar)


def minae_model(model_name):
    if model_name == "examples":
        return ExamplesVAE(minae, minae.nn, minae.nn.functional)
    return VAE() if model_name == "vae" else Autoencoder()


def batch_loss(model, y):
    """The loss the step backpropagates: the example's sum, or the course models' batch mean."""
    if isinstance(model, ExamplesVAE):
        return model.summed_loss(y)
    return model.loss(y)


def per_sample(model, y, loss):
    return float(loss) / len(y) if isinstance(model, ExamplesVAE) else float(loss)


class MinaeRun:
    def __init__(self, model_name, xtr, xte, seed=0, device="cpu"):
        self.device = minae.device(device)
        minae.manual_seed(seed)
        self.wrapper = minae_model(model_name)
        self.model = getattr(self.wrapper, "model", self.wrapper)
        self.model.to(self.device)
        self.opt = minae.optim.Adam(self.model.parameters(), lr=LR)
        self.train = DataLoader(ArrayDataset(xtr), BATCH, shuffle=True, seed=seed, device=self.device)
        self.xte = minae.tensor(xte, device=self.device)

    def sync(self):
        """Wait for the queued GPU work (a no-op on the CPU), so that an epoch's time covers its work."""
        minae.backend.synchronize(self.device)

    def _loss(self, y):
        loss = batch_loss(self.wrapper, y)
        return loss if isinstance(self.wrapper, ExamplesVAE) else loss["loss"]

    def epoch(self):
        self.model.train()
        for y in self.train:
            loss = self._loss(y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def test_loss(self):
        self.model.eval()
        with minae.no_grad():
            return per_sample(self.wrapper, self.xte, self._loss(self.xte).item())


# ---------------------------------------------------------------- PyTorch side ---
def torch_models():
    import torch
    from torch import nn

    class TorchVAE(nn.Module):
        def __init__(self, d=20):
            super().__init__()
            self.d = d
            self.encoder = nn.Sequential(nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 2 * d))
            self.decoder = nn.Sequential(nn.Linear(d, 400), nn.ReLU(), nn.Linear(400, 784))

        def loss(self, y):
            h = self.encoder(y)
            mu, logvar = h[:, : self.d], h[:, self.d :]
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
            logits = self.decoder(z)
            bce = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none").sum(-1)
            kl = 0.5 * (logvar.exp() - logvar - 1 + mu**2).sum(-1)
            return (bce + kl).mean()

    class TorchAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(784, 30), nn.Tanh())
            self.decoder = nn.Sequential(nn.Linear(30, 784), nn.Tanh())

        def loss(self, y):
            return ((y - self.decoder(self.encoder(y))) ** 2).sum(-1).mean()

    return TorchVAE, TorchAE


class TorchRun:
    def __init__(self, model_name, xtr, xte, seed=0, device="cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        torch.manual_seed(seed)
        TorchVAE, TorchAE = torch_models()
        if model_name == "examples":
            self.wrapper = ExamplesVAE(torch, torch.nn, torch.nn.functional)
        else:
            self.wrapper = TorchVAE() if model_name == "vae" else TorchAE()
        self.model = getattr(self.wrapper, "model", self.wrapper)
        self.model.to(self.device)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.xtr, self.xte = torch.from_numpy(xtr).to(self.device), torch.from_numpy(xte).to(self.device)
        self.rng = np.random.default_rng(seed)

    def sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def epoch(self):
        self.model.train()
        order = self.torch.from_numpy(self.rng.permutation(len(self.xtr))).to(self.device)
        for i in range(0, len(order), BATCH):
            y = self.xtr[order[i : i + BATCH]]
            loss = batch_loss(self.wrapper, y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def test_loss(self):
        self.model.eval()
        with self.torch.no_grad():
            return per_sample(self.wrapper, self.xte, batch_loss(self.wrapper, self.xte))


def data_for(model_name):
    (xtr, _), (xte, _) = mnist_arrays("bundled", scale="pm1" if model_name == "ae" else "01")
    return xtr, xte


# ------------------------------------------------------------------- memory ---
def _rss_kib(field="VmRSS"):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_child(framework, model_name, epochs, threads):
    """In a fresh process: memory used by training, in MiB above the process after loading the data.

    peak: the highest resident size while building the model and training all epochs
    (parameters, optimizer state, activations, gradients, the framework's caches);
    per epoch: the resident size after each epoch (flat means nothing leaks).
    """
    xtr, xte = data_for(model_name)
    base = _rss_kib()
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to now
            fh.write("5")
    except OSError:
        pass
    run = (MinaeRun if framework == "minae" else TorchRun)(model_name, xtr, xte)
    per_epoch = []
    for _ in range(epochs):
        run.epoch()
        per_epoch.append((_rss_kib() - base) / 1024)
    peak = (_rss_kib("VmHWM") - base) / 1024
    print(json.dumps({"peak_mib": peak, "per_epoch_mib": per_epoch}))


def measure_memory(framework, model_name, epochs, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    cmd = [sys.executable, __file__, "--memory-child", framework, "--models", model_name, "--epochs", str(epochs)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# -------------------------------------------------------------------- main ---
def compare(model_name, epochs, with_torch, seeds, clock=time.perf_counter, device="cpu"):
    """Train both frameworks from each seed, epochs interleaved; mean test loss and median epoch time."""
    xtr, xte = data_for(model_name)
    losses = {"minae": [], "torch": []}
    times = {"minae": [], "torch": []}
    for seed in range(seeds):
        runs = {"minae": MinaeRun(model_name, xtr, xte, seed, device)}
        if with_torch:
            runs["torch"] = TorchRun(model_name, xtr, xte, seed, device)
        for _ in range(epochs):
            for name, run in runs.items():
                run.sync()
                t0 = clock()
                run.epoch()
                run.sync()
                times[name].append(clock() - t0)
        for name, run in runs.items():
            losses[name].append(run.test_loss())
    return {
        name: {"loss": statistics.mean(v), "spread": (min(v), max(v)), "epoch_s": statistics.median(times[name])}
        for name, v in losses.items()
        if v
    }


LABELS = {"examples": "pytorch/examples VAE", "vae": "VAE", "ae": "AE"}


def main(argv=None):
    started = time.perf_counter()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--models", default="examples,vae,ae")
    p.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", "2")))
    p.add_argument(
        "--seeds", type=int, default=5, help="runs per framework (the test loss varies by a few %% with the seed)"
    )
    p.add_argument("--no-memory", action="store_true")
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall: elapsed time (the README's); cpu: this process's CPU time, steadier on a busy machine "
        "(meaningful with --threads 1)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N: where both frameworks train (default cpu)")
    p.add_argument("--memory-child", choices=["minae", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    if args.memory_child:
        return memory_child(args.memory_child, args.models, args.epochs, args.threads)
    try:
        device = minae.device(args.device)  # raises, saying why, where CUDA cannot run
    except (RuntimeError, ValueError) as e:
        sys.exit(f"compare_torch.py: --device {args.device}: {e}")
    if device.type == "cuda":
        if torch is not None and not torch.cuda.is_available():
            sys.exit(f"compare_torch.py: --device {args.device}: this PyTorch ({torch.__version__}) has no CUDA")
        minae.set_default_device(device)
    device = str(device)
    print(f"minae {minae.__version__} vs " + (f"torch {torch.__version__}" if torch else "no torch (minae only)"))
    print(
        f"{args.epochs} epochs, batch {BATCH}, Adam {LR}, {args.threads} threads, {args.clock} clock, bundled MNIST "
        f"(4,000 train / 1,000 test); test loss per sample, mean over seeds 0…{args.seeds - 1} (range in brackets)"
        + (f"; device {device} (each epoch timed to a device synchronize)" if device != "cpu" else "")
    )
    print("| model | minae test loss | PyTorch test loss | loss ratio | minae s/epoch | PyTorch s/epoch | time ratio |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        clock = time.perf_counter if args.clock == "wall" else time.process_time
        r = compare(name, args.epochs, torch is not None, args.seeds, clock, device)
        ours = r["minae"]
        cell = f"{ours['loss']:.2f} ({ours['spread'][0]:.1f}–{ours['spread'][1]:.1f})"
        if torch is not None:
            theirs = r["torch"]
            print(
                f"| {LABELS.get(name, name)} | {cell} | {theirs['loss']:.2f} "
                f"({theirs['spread'][0]:.1f}–{theirs['spread'][1]:.1f}) | "
                f"{ours['loss'] / theirs['loss']:.3f} | {ours['epoch_s']:.3f} | {theirs['epoch_s']:.3f} | "
                f"{ours['epoch_s'] / theirs['epoch_s']:.2f} |"
            )
        else:
            print(f"| {LABELS.get(name, name)} | {cell} | – | – | {ours['epoch_s']:.3f} | – | – |")
    if not args.no_memory and device != "cpu":
        print(
            f"\n(memory table left out on {device}: it measures the process's resident memory, not GPU memory, "
            "and the two frameworks' GPU memory pools are not measured here)"
        )
    elif not args.no_memory:
        n = min(args.epochs, 5)
        print(f"\n| model | framework | peak memory of training | resident after epochs 1–{n} |")
        print("|---|---|---|---|")
        for name in args.models.split(","):
            for fw in ["minae"] + (["torch"] if torch is not None else []):
                m = measure_memory(fw, name, n, args.threads)
                per = ", ".join(f"{v:.1f}" for v in m["per_epoch_mib"])
                label = "PyTorch" if fw == "torch" else fw
                print(f"| {LABELS.get(name, name)} | {label} | {m['peak_mib']:.1f} MiB | {per} MiB |")
    print(f"\n(this run took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
