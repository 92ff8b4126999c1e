"""Wrong solutions, each one edit away from the reference, lose points on their task and are told the idea.

Each case: a student copy with the task's reference solution put back, then one plausible mistake edited
in; graded against the reference with two seeds. The task must lose points (an amount that reflects the
idea missed), every other task of the copy keeps what it had, and the first failure line names the idea.
"""

import shutil
from pathlib import Path

import pytest

from minae.homework import build, grade, put_back
from minae.homework.build import leaked_lines, reference_root
from minae.homework.markers import MarkerError, find_sections, strip_sections

ROOT = reference_root()
SEEDS = (12345, 7)

# name -> (assignment, task, file, the reference's text, the wrong text, most points it may keep, words of the
# failure line that name the idea)
WRONG = {
    "Mul.backward sums only the leading axes": (
        1,
        "1.1",
        "minae/ops.py",
        "        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)\n",
        "        def lead(g, x):\n"
        "            return g.sum(axis=tuple(range(g.ndim - x.ndim))) if g.ndim > x.ndim else g\n\n"
        "        return (lead(gy * b, a) if na else None, lead(gy * a, b) if nb else None)\n",
        11,
        ("over every axis it was stretched along",),
    ),
    "Mul.backward forgets the broadcast reduction": (
        1,
        "1.1",
        "minae/ops.py",
        "        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)\n",
        "        return (gy * b if na else None, gy * a if nb else None)\n",
        8,
        ("the sum of its copies' gradients",),
    ),
    "Mul.backward ignores needs_grad": (
        1,
        "1.1",
        "minae/ops.py",
        "        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)\n",
        "        return (sum_to(gy * b, a.shape), sum_to(gy * a, b.shape))\n",
        15,
        ("needs_grad says which inputs want a gradient",),
    ),
    "Mul.backward reduces with NumPy's .sum(axis=…), which tensors under create_graph lack": (
        1,
        "1.1",
        "minae/ops.py",
        "        return (sum_to(gy * b, a.shape) if na else None, sum_to(gy * a, b.shape) if nb else None)\n",
        "        def reduce(g, shape):\n"
        "            lead = g.ndim - len(shape)\n"
        "            axes = tuple(range(lead)) + tuple(\n"
        "                lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1\n"
        "            )\n"
        "            return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g\n\n"
        "        return (reduce(gy * b, a.shape) if na else None, reduce(gy * a, b.shape) if nb else None)\n",
        18,
        ("under create_graph=True", "tensor ops"),
    ),
    "Log.backward through np.reciprocal (its result leaves the graph)": (
        1,
        "1.1",
        "minae/ops.py",
        "        return gy / x\n",
        "        return gy * __import__('numpy').reciprocal(x)\n",
        18,
        ("under create_graph=True", "tensor ops"),
    ),
    "Exp.backward recomputes np.exp of the saved input": (
        1,
        "1.1",
        "minae/ops.py",
        "        return gy * y  # d e^x = e^x\n",
        "        return gy * __import__('numpy').exp(self.saved()[0])\n",
        18,
        ("under create_graph=True", "tensor ops"),
    ),
    "MatMul.backward transposes with np.swapaxes (the gradient's graph loses the other factor)": (
        1,
        "1.3",
        "minae/ops.py",
        "            ga = reshape(sum_to(gy2 @ _swap_last(b2), a2.shape), a.shape)\n",
        "            ga = reshape(sum_to(gy2 @ __import__('numpy').swapaxes(b2, -1, -2), a2.shape), a.shape)\n",
        16,
        ("under create_graph=True", "tensor ops"),
    ),
    "MatMul.backward sums only the first batch axis of b's gradient": (
        1,
        "1.3",
        "minae/ops.py",
        "            gb = reshape(sum_to(_swap_last(a2) @ gy2, b2.shape), b.shape)\n",
        "            gb = _swap_last(a2) @ gy2\n"
        "            gb = reshape(gb.sum(0) if gb.ndim > b2.ndim else gb, b.shape)\n",
        16,
        ("summed over the batch axes it was stretched along",),
    ),
    "expand_back with NumPy's reshape and broadcast_to": (
        1,
        "1.4",
        "minae/ops.py",
        "    if not keepdims and axis is not None:\n        gy = reshape(gy, _kept_shape(shape, axis))\n"
        "    return broadcast_to(gy, shape)\n",
        "    import numpy\n\n    if not keepdims and axis is not None:\n"
        "        gy = numpy.reshape(gy, _kept_shape(shape, axis))\n    return numpy.broadcast_to(gy, shape)\n",
        16,
        ("under create_graph=True", "tensor ops"),
    ),
    "GradientQueue sums a function's gradients in place (+=), into an array another function was sent": (
        1,
        "1.5",
        "minae/autograd.py",
        "            self.pending[f] = self.pending[f] + g\n",
        "            self.pending[f] += g\n",
        17,
        ("never into one of them in place",),
    ),
    "GradientQueue.pop leaves the gradient in pending (right values, every gradient kept to the end)": (
        1,
        "1.5",
        "minae/autograd.py",
        "        return f, self.pending.pop(f)\n",
        "        return f, self.pending[f]\n",
        17,
        ("takes the function's gradient out of pending",),
    ),
    "BCE with logits as log(1 + e^x) − x·t (overflows for large x)": (
        2,
        "2.2",
        "minae/ops.py",
        "    loss = xp.maximum(x, 0)  # max(x, 0) − x·t first: exact for t in {0, 1}, then the small term\n"
        "    loss -= x * t\n"
        "    loss += array_log1p(e)\n",
        "    with xp.errstate(over='ignore'):\n        loss = xp.log1p(xp.exp(x)) - x * t\n",
        15,  # 2 of 2.2's 8 tests (the tiny-loss one passes: log1p(e^x) keeps a tiny loss's digits)
        ("a stable form",),
    ),
    "BCE with logits by the definition, through σ(x)": (
        2,
        "2.2",
        "minae/ops.py",
        "    loss = xp.maximum(x, 0)  # max(x, 0) − x·t first: exact for t in {0, 1}, then the small term\n"
        "    loss -= x * t\n"
        "    loss += array_log1p(e)\n",
        "    with xp.errstate(over='ignore', divide='ignore', invalid='ignore'):\n"
        "        s = 1 / (1 + xp.exp(-x))\n"
        "        loss = -(t * xp.log(s) + (1 - t) * xp.log(1 - s))\n",
        11,
        ("a stable form",),
    ),
    "SGD's momentum buffer aliases .grad": (
        2,
        "2.5",
        "minae/optim/sgd.py",
        "        b = g.copy()  # a buffer of its own: g is the .grad array, which zero_grad() and backward reuse\n",
        "        b = g\n",
        10,
        ("zero_grad(set_to_none=False)", "an array of its own, not the .grad array"),
    ),
    "SGD with the textbook's momentum (v = μv − γg)": (
        2,
        "2.5",
        "minae/optim/sgd.py",
        "    if b is None:\n"
        "        b = g.copy()  # a buffer of its own: g is the .grad array, which zero_grad() and backward reuse\n"
        "    else:\n"
        "        b *= momentum\n"
        "        b += g\n"
        "    w -= xp.multiply(b, lr, out=tmp)\n",
        "    if b is None:\n        b = -lr * g\n    else:\n        b *= momentum\n        b -= lr * g\n    w += b\n",
        5,
        ("lr changed to", "holds gradients, not steps"),
    ),
    "Adam without the bias corrections": (
        2,
        "2.6",
        "minae/optim/adam.py",
        "    c2 = math.sqrt(1.0 - beta2**t)  # θ ← θ − γ c₂/(1 − β₁ᵗ) · m / (√v + ε c₂), one pass fewer\n"
        "    denom = xp.sqrt(v, out=tmp)\n"
        "    denom += eps * c2\n"
        "    step = xp.divide(m, denom, out=tmp)\n"
        "    step *= lr * c2 / (1.0 - beta1**t)\n",
        "    step = xp.divide(m, xp.sqrt(v) + eps, out=tmp)  # no bias corrections\n    step *= lr\n",
        10,
        ("bias corrections",),
    ),
    "Adam squares the gradient in place (g *= g), into p.grad": (
        2,
        "2.6",
        "minae/optim/adam.py",
        "    xp.multiply(g, 1.0 - beta2, out=tmp)\n    v += xp.multiply(tmp, g, out=tmp)\n",
        "    g *= g\n    v += xp.multiply(g, 1.0 - beta2, out=tmp)\n",
        18,
        ("p.grad after the steps (Adam's step", "never in g"),
    ),
    "Adam with ε inside the square root": (
        2,
        "2.6",
        "minae/optim/adam.py",
        "    denom = xp.sqrt(v, out=tmp)\n    denom += eps * c2\n",
        "    denom = xp.sqrt(v + eps * c2 * c2, out=tmp)\n",
        16,
        ("outside the square root",),
    ),
    "Adam with ε added before the bias correction": (
        2,
        "2.6",
        "minae/optim/adam.py",
        "    denom += eps * c2\n",
        "    denom += eps\n",
        16,
        ("outside the square root",),
    ),
    "Gaussian noise, uniform with the same σ": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "    return y + minae.randn_like(y) * sigma\n",
        "    return y + (minae.rand_like(y) - 0.5) * (sigma * 12**0.5)\n",
        8,
        ("more than 2σ",),
    ),
    "Gaussian noise, one ε per image": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "    return y + minae.randn_like(y) * sigma\n",
        "    return y + minae.randn(y.shape[0], 1) * sigma\n",
        8,
        (),
    ),
    "CAE jacobian_norm from a detached h": (
        3,
        "3.5",
        "minae/models/autoencoders.py",
        '        return F.contractive_penalty(h, self.encoder[0].weight, self.activation, reduction="none")\n',
        '        return F.contractive_penalty(h.detach(), self.encoder[0].weight, self.activation, reduction="none")\n',
        14,
        ("jacobian_norm(y) as a function of W and b",),
    ),
    "Autoencoder.loss reports C + R as the 'reconstruction' term": (
        3,
        "3.3",
        "minae/models/autoencoders.py",
        '        terms = {"loss": total, "reconstruction": cost}\n',
        '        terms = {"loss": total, "reconstruction": total}\n',
        14,
        ("C alone",),
    ),
    "Gaussian noise added into y in place (the clean target is corrupted too)": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "    return y + minae.randn_like(y) * sigma\n",
        "    y.data += (minae.randn_like(y) * sigma).data\n    return y\n",
        8,
        ("leaves the clean input as it was",),
    ),
    "Salt-and-pepper written into y.data in place": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "        noisy = xp.where(hit, xp.where(salt, high, low), y.data).astype(y.dtype, copy=False)\n",
        "        noisy = y.data\n        noisy[hit] = xp.where(salt, high, low)[hit]\n",
        9,
        ("leaves the clean input as it was",),
    ),
    "VAE.sample decodes the prior's mean in eval mode (as reparameterise would)": (
        4,
        "4.3",
        "minae/models/vae.py",
        "        z = minae.randn(n, self.latent_dim, dtype=param.dtype, device=param.device)\n",
        "        draw = minae.randn if self.training else minae.zeros\n"
        "        z = draw(n, self.latent_dim, dtype=param.dtype, device=param.device)\n",
        7,
        ("in eval mode",),
    ),
    "Masking noise drops exactly p of the pixel positions, the same ones in every image": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "    return F.dropout(y, p, training=True)\n",
        "    import numpy\n\n    d = y.shape[-1]\n    keep = numpy.ones(d)\n"
        "    keep[numpy.random.permutation(d)[: round(p * d)]] = 0\n"
        "    return y * minae.tensor(keep, dtype=y.dtype) / (1 - p)\n",
        8,
        ("none shared by the images of the batch",),
    ),
    "Salt-and-pepper hits exactly p of the pixel positions, the same ones in every image": (
        3,
        "3.4",
        "minae/models/autoencoders.py",
        "        hit = u < p\n        salt = u < p / 2  # among the hit pixels, half go high\n",
        "        col = xp.zeros(y.shape[-1], dtype=bool)\n        col[: round(p * y.shape[-1])] = True\n"
        "        hit = xp.broadcast_to(col, y.shape)\n        salt = u < 0.5\n",
        8,
        ("none shared by the images of the batch",),
    ),
    "VAE.reparameterise with a uniform ε of unit variance": (
        4,
        "4.1",
        "minae/models/vae.py",
        "        eps = minae.randn_like(mu)\n",
        "        eps = (minae.rand_like(mu) - 0.5) * 12**0.5\n",
        13,
        ("more than two standard deviations",),
    ),
    "VAE.sample draws a uniform z of unit variance": (
        4,
        "4.3",
        "minae/models/vae.py",
        "        z = minae.randn(n, self.latent_dim, dtype=param.dtype, device=param.device)\n",
        "        z = (minae.rand(n, self.latent_dim, dtype=param.dtype, device=param.device) - 0.5) * 12**0.5\n",
        7,
        ("beyond ±2",),
    ),
    "VAE.interpolate mixes the two images in pixel space": (
        4,
        "4.3",
        "minae/models/vae.py",
        "        return self.decode((1 - t) * mu_a + t * mu_b)\n",
        "        return (1 - t) * y_a.reshape(1, -1) + t * y_b.reshape(1, -1)\n",
        7,
        ("decoded no latent codes",),
    ),
    "Target propagation's latent descent on the batch mean of E (steps N times too small)": (
        3,
        "3.6",
        "minae/models/targetprop.py",
        "                (gz,) = minae.grad(self.energy(y, z, z_tilde).sum(), z)\n",
        "                (gz,) = minae.grad(self.energy(y, z, z_tilde).mean(), z)\n",
        7,  # the two updates, tested with the right ž, keep their points
        ("one step z ← z̃ − η ∂E/∂z",),
    ),
    "F_∞ takes the min over the last axis, whatever dim": (
        3,
        "3.1",
        "minae/nn/functional.py",
        "        free = _ops.min(energies, dim).values\n",
        "        free = _ops.min(energies, -1).values\n",
        13,
        ("the limit reduces dim",),
    ),
    "Linear.backward ignores needs_grad": (
        2,
        "2.1",
        "minae/ops.py",
        "        return (gy @ w if nx else None, gy.T @ x if nw else None, sum(gy, 0) if nb else None)\n",
        "        return (gy @ w, gy.T @ x, sum(gy, 0))\n",
        12,
        ("needs_grad says which inputs",),
    ),
    "BCE with logits: the create_graph branch forgets −t": (
        2,
        "2.2",
        "minae/ops.py",
        "                gx = sum_to(gy * (sigmoid(x) - t), x.shape)\n",
        "                gx = sum_to(gy * sigmoid(x), x.shape)\n",
        17,
        ("create_graph=True",),
    ),
    "BCE with logits: log(1 + e) where log1p keeps the digits": (
        2,
        "2.2",
        "minae/ops.py",
        "    loss += array_log1p(e)\n",
        "    loss += xp.log(1 + e)\n",
        17,
        ("the loss is tiny",),
    ),
    "VAE KL on μ.detach()": (
        4,
        "4.2",
        "minae/models/vae.py",
        '        kl = F.gaussian_kl(mu, logvar=logvar, reduction="none")\n        terms',
        '        kl = F.gaussian_kl(mu.detach(), logvar=logvar, reduction="none")\n        terms',
        25,
        ("∂KL/∂μ", "no detach"),
    ),
    "VAE KL on log v.detach()": (
        4,
        "4.2",
        "minae/models/vae.py",
        '        kl = F.gaussian_kl(mu, logvar=logvar, reduction="none")\n        terms',
        '        kl = F.gaussian_kl(mu, logvar=logvar.detach(), reduction="none")\n        terms',
        25,
        ("∂KL/∂log v", "no detach"),
    ),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(name, seed) -> the grading of the copy with that wrong solution (its task put back, then edited).

    One at a time: the other tasks are stubs, so each grading is short. (That each task's reference solution
    alone earns exactly its task is what `minae-homework check` proves, in test_homework.py.)
    """
    base = tmp_path_factory.mktemp("wrong")
    built = {n: base / f"assignment{n}" for n in sorted({case[0] for case in WRONG.values()})}
    for n, folder in built.items():
        build(n, folder)
    done = {}
    for name, (n, task, path, old, new, _, _) in WRONG.items():
        folder = base / name.replace(" ", "-").replace("/", "-").replace(".", "")
        shutil.copytree(built[n], folder)
        put_back(folder, task)
        target = folder / path
        text = target.read_text(encoding="utf-8")
        assert text.count(old) == 1, (name, old)
        target.write_text(text.replace(old, new), encoding="utf-8")
        for seed in SEEDS:
            done[(name, seed)] = grade(folder, n, stream=False, seed=seed)
    return done


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_solution_loses_points_and_is_told_the_idea(results, name):
    _, task, _, _, _, most, words = WRONG[name]
    for seed in SEEDS:
        got = results[(name, seed)].task(task)
        assert got.earned <= most, (name, seed, got.earned, got.failure)
        assert got.earned < got.points and got.passed > 0, (name, seed, got.passed)  # wrong, but not nothing
        assert all(word in (got.failure or "") for word in words), (name, got.failure)


# name -> (assignment, task, file, the reference's text, a different but correct text)
RIGHT = {
    "BCE with logits by logaddexp, σ(x) by where": (
        2,
        "2.2",
        "minae/ops.py",
        "    loss = xp.maximum(x, 0)  # max(x, 0) − x·t first: exact for t in {0, 1}, then the small term\n"
        "    loss -= x * t\n"
        "    loss += array_log1p(e)\n",
        "    loss = xp.logaddexp(0, x) - x * t\n",
    ),
    "Adam with the textbook's m̂ and v̂": (
        2,
        "2.6",
        "minae/optim/adam.py",
        "    c2 = math.sqrt(1.0 - beta2**t)  # θ ← θ − γ c₂/(1 − β₁ᵗ) · m / (√v + ε c₂), one pass fewer\n"
        "    denom = xp.sqrt(v, out=tmp)\n"
        "    denom += eps * c2\n"
        "    step = xp.divide(m, denom, out=tmp)\n"
        "    step *= lr * c2 / (1.0 - beta1**t)\n"
        "    w -= step\n",
        "    m_hat = m / (1.0 - beta1**t)\n"
        "    v_hat = v / (1.0 - beta2**t)\n"
        "    w -= lr * m_hat / (xp.sqrt(v_hat) + eps)\n",
    ),
}


@pytest.mark.slow
def test_a_correct_alternative_keeps_full_marks(tmp_path):
    """The tests check the idea, not the reference's arrangement of it: another right formula earns the task."""
    built = {}
    for name, (n, task, path, old, new) in RIGHT.items():
        if n not in built:
            built[n] = tmp_path / f"assignment{n}"
            build(n, built[n])
        folder = tmp_path / name.replace(" ", "-").replace(",", "")
        shutil.copytree(built[n], folder)
        put_back(folder, task)
        target = folder / path
        text = target.read_text(encoding="utf-8")
        assert text.count(old) == 1, (name, old)
        target.write_text(text.replace(old, new), encoding="utf-8")
        for seed in SEEDS:
            got = grade(folder, n, stream=False, seed=seed).task(task)
            assert got.earned == got.points, (name, seed, got.earned, got.failure)


def test_the_grader_only_lines_never_reach_a_copy(tmp_path):
    """The expected values of the A1/A2 tests that the grader keeps (NumPy bodies of the solutions) are not in
    the copy, nor are the closed forms of the tasks it cuts out; the copy's own tests still run."""
    for n in (1, 2):
        out = tmp_path / f"a{n}"
        build(n, out)
        assert leaked_lines(out, number=n) == []
        tests = sorted((ROOT / "minae" / "homework" / "tests" / f"assignment{n}").glob("test_*.py"))
        for path in tests + [ROOT / "minae" / "homework" / "_helpers.py"]:
            rel = path.relative_to(ROOT)
            text = path.read_text(encoding="utf-8")
            sections = find_sections(text, rel.as_posix())
            public = {line.strip() for line in strip_sections(text, lambda task: True)[0].splitlines()}
            shipped = (out / rel).read_text(encoding="utf-8")
            for s in sections:
                body = [line.strip() for line in s.body if len(line.strip()) >= 12 and line.strip() not in public]
                assert not [line for line in body if line in shipped], (rel, s.line)
                assert "BEGIN GRADER" not in shipped and "BEGIN FORMULA" not in shipped
    assert (tmp_path / "a2" / "minae" / "optim" / "sgd.py").is_file()


def test_the_closed_forms_leave_the_copy_and_stay_in_the_reference(tmp_path):
    out = tmp_path / "a2"
    build(2, out)
    for rel, formula in [
        ("minae/nn/functional.py", "½ Σ_i (v_i − log v_i − 1 + μ_i²)"),
        ("minae/nn/functional.py", "Σ_j (h_j(1 − h_j))² Σ_i W_ji²"),
        ("minae/ops.py", "∂L/∂W = (∂L/∂y)ᵀ · x"),
        ("minae/ops.py", "σ(x) − t"),
        ("minae/ops.py", "max(x, 0) − x·t + log(1 + e"),
    ]:
        assert formula in (ROOT / rel).read_text(encoding="utf-8"), (rel, formula)
        assert formula not in (out / rel).read_text(encoding="utf-8"), (rel, formula)
    hints = (out / "minae" / "homework" / "assignments.py").read_text(encoding="utf-8")
    for code in ("v − log v − 1 + μ²", "σ(x) − t", "expand_back, then divide", "reshape gy to _kept_shape"):
        assert code not in hints
    a3 = tmp_path / "a3"
    build(3, a3)  # a later assignment has task 2.3 solved: its closed form is back in the docstring
    assert "½ Σ_i (v_i − log v_i − 1 + μ_i²)" in (a3 / "minae" / "nn" / "functional.py").read_text(encoding="utf-8")


def test_shipped_tests_of_a_copy_pass_on_the_reference_and_fail_on_the_stubs(tmp_path):
    """The copy's own (shorter) test files are a working local check: the reference passes them."""
    import subprocess
    import sys

    out = tmp_path / "a2"
    build(2, out)
    tests = out / "minae" / "homework" / "tests" / "assignment2"
    shutil.copytree(tests, tmp_path / "shipped")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / "shipped")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(__import__("os").environ, PYTHONPATH=str(ROOT)),
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert Path(tmp_path / "shipped" / "test_task_2_5.py").read_text(encoding="utf-8").count("def test_") == 4


def test_sections_strip_as_said_and_malformed_ones_are_refused():
    text = (
        'def f():\n    """Doc.\n\n    # BEGIN FORMULA task 2.3\n    KL = secret\n    # END FORMULA\n    """\n'
        "    # BEGIN GRADER ONLY; in a copy: return 0\n    return expected()\n    # END GRADER ONLY\n"
    )
    cut, _ = strip_sections(text, lambda task: task == "2.3")
    assert "KL = secret" not in cut and "(task 2.3: derive this yourself" in cut and "return 0" in cut
    assert "expected()" not in cut and "BEGIN" not in cut
    kept, sections = strip_sections(text, lambda task: False)
    assert "KL = secret" in kept and "BEGIN" not in kept and [s.kind for s in sections] == ["FORMULA", "GRADER ONLY"]
    compile(cut, "<cut>", "exec")
    for bad in (
        "# BEGIN FORMULA task 2.1\nx\n",  # never closed
        "# BEGIN GRADER ONLY\nx\n# END FORMULA\n",  # closed by the other kind
        "# begin formula 2.1\nx\n",  # malformed
        "# END GRADER ONLY\n",  # no BEGIN
        "# BEGIN FORMULA task 2.1\n# BEGIN GRADER ONLY\n# END GRADER ONLY\n# END FORMULA\n",  # nested
    ):
        with pytest.raises(MarkerError):
            find_sections(bad)
