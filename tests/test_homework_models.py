"""Wrong models, each one edit away from the reference, must lose points on their task (issue 22).

For each: a student copy of the assignment with the task's reference solution put back, the one
edit applied, graded in the sandbox against the reference. The right solution earns the task's
points (``minae-homework check`` proves it); the wrong one must earn fewer, with a failure line that
names the idea it missed. The gradings run two at a time in one fixture.
"""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minae.homework import TASKS, build, grade, put_back

# name -> (task, file, old text, new text, words the failure line must hold)
WRONG = {
    "a denoising autoencoder that never corrupts its input": (
        "3.3",
        "minae/models/autoencoders.py",
        "h = self.encode(self.corrupt(y))",
        "h = self.encode(y)",
        "C(y, Dec(Enc(y))): the input was never corrupted",
    ),
    "a denoising autoencoder whose target is the corrupted input": (
        "3.3",
        "minae/models/autoencoders.py",
        "h = self.encode(self.corrupt(y))\n        cost = self.reconstruction_cost(y, h)",
        "y = self.corrupt(y)\n        h = self.encode(y)\n        cost = self.reconstruction_cost(y, h)",
        "the target is the corrupted input, not the clean y",
    ),
    "a contractive penalty computed on h.detach()": (
        "3.5",
        "minae/models/autoencoders.py",
        "return self.lam * F.contractive_penalty(h, ",
        "return self.lam * F.contractive_penalty(h.detach(), ",
        "gradient flows through h",
    ),
    "a VAE loss that decodes μ and never samples z": (
        "4.2",
        "minae/models/vae.py",
        "logits = self.decoder(self.reparameterise(mu, logvar))",
        "logits = self.decoder(mu)",
        "a loss that decodes μ never samples",
    ),
    "a VAE loss that passes v where reparameterise expects log v": (
        "4.2",
        "minae/models/vae.py",
        "logits = self.decoder(self.reparameterise(mu, logvar))",
        "logits = self.decoder(self.reparameterise(mu, logvar.exp()))",
        "log v, the encoder's second output (not v = exp(log v))",
    ),
    "inference that climbs E instead of descending it": (
        "3.2",
        "minae/models/ebm.py",
        "z = minae.tensor((z.detach() - lr * gz).data",
        "z = minae.tensor((z.detach() + lr * gz).data",
        "z ← z − η ∂E/∂z",
    ),
    "inference on the batch-mean energy (each step η/N too short)": (
        "3.2",
        "minae/models/ebm.py",
        "(gz,) = minae.grad(self.energy(y, z).sum(), z)",
        "(gz,) = minae.grad(self.energy(y, z).mean(), z)",
        "z ← z − η ∂E/∂z",
    ),
    "target propagation whose encoder is trained on C(y, Dec(z̃))": (
        "3.6",
        "minae/models/targetprop.py",
        "distance = self.distance(z_check, self.encoder(y)).mean()",
        "distance = self.distance(z_check, self.encoder(y).detach()).mean() + 0 * self.cost(y, self.encoder(y)).mean()",
        "the encoder learns to predict ž",
    ),
    "target propagation whose decoder reconstructs from z̃": (
        "3.6",
        "minae/models/targetprop.py",
        "cost = self.cost(y, z_check).mean()",
        "cost = self.cost(y, self.encoder(y).detach()).mean()",
        "C(y, Dec(ž))",
    ),
    "a Jacobian penalty without create_graph (not trainable)": (
        "3.7",
        "minae/nn/functional.py",
        "retain_graph=True, create_graph=create_graph, allow_unused=True",
        "retain_graph=True, create_graph=False, allow_unused=True",
        "double backprop",
    ),
    "a K-sample F̃ that reuses one draw K times": (
        "4.4",
        "minae/models/vae.py",
        "z = self.reparameterise(minae.cat([mu] * samples), minae.cat([logvar] * samples))",
        "z = minae.cat([self.reparameterise(mu, logvar)] * samples)",
        "independent",
    ),
    "a K-sample F̃ that averages across images, not over each image's draws": (
        "4.4",
        "minae/models/vae.py",
        "return cost.reshape(samples, n).mean(0) + self.beta * kl",
        "return cost.reshape(n, samples).mean(1) + self.beta * kl",
        "each image's cost averaged over its own K draws",
    ),
    "bubble radii given as the variance v": (
        "4.5",
        "minae/models/vae.py",
        "return (logvar * 0.5).exp()",
        "return logvar.exp()",
        "standard deviations",
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """name -> the TaskResult of its task, graded on a copy with that one wrong edit."""
    base = tmp_path_factory.mktemp("wrong-models")
    built = {}
    for n in sorted({TASKS[task].assignment for task, *_ in WRONG.values()}):
        built[n] = base / f"assignment{n}"
        build(n, built[n])

    def one(k, name):
        task, path, old, new, _ = WRONG[name]
        folder = base / f"wrong{k}"
        shutil.copytree(built[TASKS[task].assignment], folder)
        put_back(folder, task)
        target = Path(folder, path)
        text = target.read_text(encoding="utf-8")
        assert old in text, (name, old)
        target.write_text(text.replace(old, new, 1), encoding="utf-8")
        return grade(folder, TASKS[task].assignment, stream=False, seed=12345).task(task)

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(one, k, name) for k, name in enumerate(WRONG)}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_model_loses_points_with_a_message_naming_the_idea(graded, name):
    task, *_, words = WRONG[name]
    result = graded[name]
    assert result.earned < TASKS[task].points, f"{name}: {result.earned}/{TASKS[task].points}"
    assert words in result.failure, f"{name}: {result.failure}"
