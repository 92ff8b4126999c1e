"""Wrong models, each one edit away from the reference, must lose points on their task (issue 22).

For each: a student copy of the assignment with the task's reference solution put back, the one
edit applied, graded in the sandbox against the reference. The right solution earns the task's
points (``minae-homework check`` proves it); the wrong one must earn fewer, with a failure line that
names the idea it missed. The gradings run two at a time in one fixture.
"""

import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minae.homework import ASSIGNMENTS, TASKS, build, grade, put_back, scan
from minae.homework.assignments import hint_for
from minae.homework.build import _duration, readme_task_table, reference_root

ROOT = reference_root()

# name -> (task, file, old text, new text, words the failure line must hold)
WRONG = {
    "a denoising autoencoder that never corrupts its input": (
        "3.3",
        "minae/models/autoencoders.py",
        "h = self.encode(self.corrupt(y))",
        "h = self.encode(y)",
        "never corrupts its input",
    ),
    "a denoising autoencoder whose target is the corrupted input": (
        "3.3",
        "minae/models/autoencoders.py",
        "h = self.encode(self.corrupt(y))\n        cost = self.reconstruction_cost(y, h)",
        "y = self.corrupt(y)\n        h = self.encode(y)\n        cost = self.reconstruction_cost(y, h)",
        "the target is the corrupted input, not the clean y",
    ),
    "a sparse denoising autoencoder whose penalty is on the clean y's code": (
        "3.3",
        "minae/models/autoencoders.py",
        "penalty = self.regulariser(h, y)",
        "penalty = self.regulariser(self.encode(y), y)",
        "the penalty is on the clean y's code",
    ),
    "a distance to the nearest bubble counted in variances, not radii": (
        "4.5",
        "minae/models/vae.py",
        "(logvar * -0.5).exp()",
        "(logvar * -1.0).exp()",
        "counted in variances v, not in radii",
    ),
    "a code sensitivity that uses h where the derivative f′(a) belongs": (
        "3.5",
        "minae/models/autoencoders.py",
        "moved = slope * (u @ self.encoder[0].weight.transpose(0, 1))",
        "moved = h * (u @ self.encoder[0].weight.transpose(0, 1))",
        "how far h moves per unit step of y along û",
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
    "a K-sample F̃ that takes a log-mean-exp of −C over the draws (the importance-weighted bound)": (
        "4.4",
        "minae/models/vae.py",
        "return cost.reshape(samples, n).mean(0) + self.beta * kl",
        "return -(-cost.reshape(samples, n)).exp().mean(0).log() + self.beta * kl",
        "a plain mean",
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


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_model_loses_points_with_a_message_naming_the_idea(graded, name):
    task, *_, words = WRONG[name]
    result = graded[name]
    assert result.earned < TASKS[task].points, f"{name}: {result.earned}/{TASKS[task].points}"
    assert words in result.failure, f"{name}: {result.failure}"


# ------------------------------------------------------- what a student reads ---
@pytest.fixture(scope="module")
def copies34(tmp_path_factory):
    base = tmp_path_factory.mktemp("copies34")
    for n in (3, 4):
        build(n, base / f"assignment{n}")
    return {n: base / f"assignment{n}" for n in (3, 4)}


PROSE = {"decoder", "encoder", "mean", "sum", "log"}  # words a hint may use as words: the model's parts, a mean


@pytest.mark.parametrize("n", sorted(ASSIGNMENTS))
def test_hints_point_at_the_idea_not_the_code(n):
    """No hint names a function or method that its solution block calls, nor spells out the block's data
    structure (a heap's tuple, a buffer's copy): a hint points at the idea, HOMEWORK.md's questions at the maths."""
    for block in scan():
        if TASKS[block.task].assignment != n:
            continue
        hint = hint_for(block.task, block.name, block.occurrence) or ""
        called = {name for name in re.findall(r"([A-Za-z_]\w{2,})\(", "\n".join(block.body))}
        named = sorted(name for name in called - PROSE if re.search(rf"\b{name}\b", hint))
        assert not named, f"task {block.task} ({block.name}): the hint names {named}: {hint}"
        recipes = ["heapq", "generation", "copy", "keepdims", "|x|", "select", "new leaf", "γ times the buffer"]
        spelled = [word for word in recipes if word in hint]
        assert not spelled, f"task {block.task} ({block.name}): the hint spells out the code ({spelled}): {hint}"


@pytest.mark.parametrize("n", [3, 4])
def test_homework_md_asks_for_derivations_and_states_the_time(copies34, n):
    text = (copies34[n] / "HOMEWORK.md").read_text(encoding="utf-8")
    assert "## Derive, then write" in text
    for k, question in enumerate(ASSIGNMENTS[n].questions, 1):
        assert f"{k}. {question}" in text
        tests = re.findall(r"test_task_\d_\d\.py", question)
        for name in tests:  # each question names a test file of this copy, whose numbers check the answer
            assert (copies34[n] / ASSIGNMENTS[n].tests_dir / name).is_file(), name
    for t in ASSIGNMENTS[n].tasks:
        assert f"| {t.id} | {t.title} | {t.points} | {_duration(t.minutes)} |" in text
    assert sum(t.points for t in ASSIGNMENTS[n].tasks) == 100


def test_the_readme_shows_the_new_tasks_and_their_time():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_task_table() in readme
    for task in ("3.6", "3.7", "4.4", "4.5"):
        t = TASKS[task]
        assert f"{t.id} {t.title} ({t.points}, {_duration(t.minutes)})" in readme


def test_shipped_tests_compute_no_closed_form_of_a_task(copies34):
    """The expected values of A3/A4 come from definitions (decimals, quadrature), not from the answers' forms."""
    forms = {
        "the Gaussian KL's closed form": re.compile(r"-\s*logvar\s*-\s*1\s*\+\s*mu"),
        "the shifted, stable F_β": re.compile(r"np\.exp\(-beta \* \(e - low\)\)"),
        "the factorised contractive norm": re.compile(r"\*\* 2\)\.sum\(axis=1\)\s*\*|row_norms"),
    }
    for n in (3, 4):
        for path in (copies34[n] / ASSIGNMENTS[n].tests_dir).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            found = [name for name, form in forms.items() if form.search(text)]
            assert not found, f"{path.name} computes {found}"


def test_notebook_06_in_the_assignment_4_copy_leaves_the_sampler_to_the_student(copies34):
    nb = json.loads((copies34[4] / "notebooks" / "06-variational-autoencoder.ipynb").read_text(encoding="utf-8"))
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert not any("logvar.exp() * minae.randn_like" in s or "(0.5 * logvar).exp()" in s for s in sources)
    exercise = next(c for c in nb["cells"] if "task 4.1" in c["metadata"].get("tags", []))
    assert "exercise" in exercise["metadata"]["tags"] and "VarianceNoiseVAE" not in "".join(exercise["source"])
    assert any("is the one you write." in s for s in sources)
    assert not any("uses $\\sqrt v = e^{\\frac12 \\log v}$" in s for s in sources)


def test_the_copies_leave_out_the_forms_their_hints_ask_for(copies34):
    """The stable F_β (3.1's hint asks which function sums exponentials safely) and √v = exp(½ log v) (4.1's
    hint asks what scales ε) are not in the copies' docstrings, nor the radii's body in a shipped test."""
    leaks = {
        3: {"minae/nn/functional.py": "logsumexp(−β E) − log n"},
        4: {
            "minae/models/vae.py": "exp(½ log v)",
            f"{ASSIGNMENTS[4].tests_dir}/test_task_4_1.py": "exp(½ log v)",
            f"{ASSIGNMENTS[4].tests_dir}/test_task_4_5.py": "np.exp(0.5 * logvar)",
        },
    }
    for n, files in leaks.items():
        for rel, form in files.items():
            assert form not in (copies34[n] / rel).read_text(encoding="utf-8"), (n, rel, form)
    reference = (ROOT / "minae/nn/functional.py").read_text(encoding="utf-8")
    assert "logsumexp(−β E) − log n" in reference  # the reference keeps its docstring whole
