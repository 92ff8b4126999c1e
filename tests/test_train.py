"""fit(): history, per-term means, checkpoints every epoch, exact resume, stops on NaN, refusals, atomic saves."""

import os
import re

import numpy as np
import pytest

import minae
from minae import backend, io, nn
from minae.data import ArrayDataset, DataLoader
from minae.models import VAE, Autoencoder, DenoisingAutoencoder
from minae.train import TrainingError, evaluate, fit, load_checkpoint, save_checkpoint


class Probe(nn.Module):
    """A one-parameter model whose loss terms are known functions of the batch."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(minae.tensor([0.0]))
        self.modes = []

    def config(self):
        return {"kind": "probe"}

    def loss(self, batch):
        self.modes.append(self.training)
        mean = batch.mean() + 0 * self.w.sum()
        return {"loss": mean, "largest": batch.max()}


def numbers(n):
    return DataLoader(ArrayDataset(np.arange(n, dtype=np.float32)), batch_size=4)


def tiny_data(n=96, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(n, d)).astype(np.float32)


def loaders(seed=0, device=None):
    """The tiny train and test loaders, their batches on ``device`` (the default device if None)."""
    train = DataLoader(ArrayDataset(tiny_data()), batch_size=20, shuffle=True, seed=seed, device=device)
    test = DataLoader(ArrayDataset(tiny_data(40, seed=1)), batch_size=16, device=device)
    return train, test


# ------------------------------------------------------------------ history ---
def test_history_structure_and_per_term_means():
    model = Probe()
    opt = minae.optim.SGD(model.parameters(), lr=0.1)
    sched = minae.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    lines, ends = [], []
    # 10 samples in batches of 4, 4, 2: the means must weight each batch by its size
    history = fit(
        model,
        numbers(10),
        opt,
        epochs=3,
        test_loader=numbers(6),
        scheduler=sched,
        log=lines.append,
        on_epoch_end=lambda e, r: ends.append((e, r)),
    )
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for r in history:
        assert set(r) == {"epoch", "train", "test", "lr", "seconds"}
        assert r["train"]["loss"] == pytest.approx(4.5)  # mean of 0 … 9
        assert r["train"]["largest"] == pytest.approx((3 * 4 + 7 * 4 + 9 * 2) / 10)
        assert r["test"]["loss"] == pytest.approx(2.5)  # mean of 0 … 5
        assert r["test"]["largest"] == pytest.approx((3 * 4 + 5 * 2) / 6)
        assert r["seconds"] >= 0
    assert [r["lr"] for r in history] == pytest.approx([0.1, 0.05, 0.025])  # the rate each epoch ran with
    assert len(lines) == 3 and "epoch 2/3" in lines[1] and "4.5" in lines[1]
    assert [e for e, _ in ends] == [1, 2, 3] and ends[-1][1] is history[-1]
    # 3 training batches in training mode, then 2 test batches in eval mode, each epoch
    assert model.modes == ([True] * 3 + [False] * 2) * 3
    assert model.training


def test_history_without_test_data_and_zero_epochs():
    model = Probe()
    opt = minae.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, numbers(8), opt, epochs=2)
    assert [r["test"] for r in history] == [None, None]
    assert fit(model, numbers(8), opt, epochs=0) == []
    with pytest.raises(ValueError, match="epochs"):
        fit(model, numbers(8), opt, epochs=-1)


def test_vae_history_has_each_term_and_loss_goes_down():
    minae.manual_seed(0)
    model = VAE(12, 16, 2)
    train, test = loaders()
    history = fit(model, train, minae.optim.Adam(model.parameters(), lr=1e-2), epochs=4, test_loader=test)
    for r in history:
        assert set(r["train"]) == set(r["test"]) == {"loss", "reconstruction", "kl"}
        # the loss is the sum of its terms (β = 1) in every epoch's means
        assert r["train"]["loss"] == pytest.approx(r["train"]["reconstruction"] + r["train"]["kl"], rel=1e-5)
        assert r["test"]["loss"] == pytest.approx(r["test"]["reconstruction"] + r["test"]["kl"], rel=1e-5)
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    assert history[-1]["test"]["loss"] == pytest.approx(evaluate(model, test)["loss"], rel=1e-6)


# -------------------------------------------------------------- checkpoints ---
def test_checkpoint_every_epoch(tmp_path):
    path = tmp_path / "ck.npz"
    model = Autoencoder(12, 4, output_activation="sigmoid")
    train, test = loaders()
    seen = []

    def check(epoch, record):
        state = io.load(path)
        seen.append(state["epoch"])
        assert len(state["history"]) == epoch
        assert state["history"][-1]["train"]["loss"] == pytest.approx(record["train"]["loss"])
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(state["model_state"][key].numpy(), value.numpy())

    fit(model, train, minae.optim.Adam(model.parameters()), 3, test_loader=test, checkpoint=path, on_epoch_end=check)
    assert seen == [1, 2, 3]
    assert os.listdir(tmp_path) == ["ck.npz"]


def make_run(kind, seed):
    """Model, loaders, optimizer and scheduler, built after ``manual_seed(seed)``."""
    minae.manual_seed(seed)
    model = VAE(12, 8, 2) if kind == "vae" else DenoisingAutoencoder(12, 16, output_activation="sigmoid")
    train, test = loaders()
    opt = minae.optim.Adam(model.parameters(), lr=5e-3)
    sched = minae.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, train, test, opt, sched


def strip_times(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


@pytest.mark.parametrize("kind", ["vae", "dae"])
def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(kind, tmp_path):
    # the uninterrupted run: 5 epochs
    model, train, test, opt, sched = make_run(kind, 0)
    full = fit(model, train, opt, 5, test_loader=test, scheduler=sched)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    # the interrupted run: 2 epochs, then a fresh process (other seed, other init) resumes to 5
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run(kind, 0)
    fit(model, train, opt, 2, test_loader=test, scheduler=sched, checkpoint=ck)
    minae.rand(7)  # the global generator moves on, as it would in another process
    model, train, test, opt, sched = make_run(kind, 123)
    resumed = fit(model, train, opt, 5, test_loader=test, scheduler=sched, checkpoint=ck, resume=ck)

    assert strip_times(resumed) == strip_times(full)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), expected[key], err_msg=key)
    assert io.load(ck)["epoch"] == 5


def test_resume_at_the_end_trains_no_more(tmp_path):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    first = fit(model, train, opt, 2, checkpoint=ck)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    model, train, test, opt, sched = make_run("vae", 1)
    again = fit(model, train, opt, 2, resume=ck)
    assert strip_times(again) == strip_times(first)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])


# ----------------------------------------------------------------- failures ---
def test_nan_loss_stops_naming_epoch_and_batch(tmp_path):
    model = Probe()
    calls = {"n": 0}

    def loss_fn(m, batch):
        terms = m.loss(batch)
        if m.training:
            calls["n"] += 1
            if calls["n"] == 3 + 2:  # epoch 2 (3 batches per epoch), batch 2
                terms["loss"] = terms["loss"] * float("nan")
        return terms

    ck = tmp_path / "ck.npz"
    opt = minae.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingError, match=r"nan at epoch 2, batch 2") as info:
        fit(model, numbers(10), opt, 4, loss_fn=loss_fn, checkpoint=ck)
    assert "learning rate" in str(info.value)
    assert io.load(ck)["epoch"] == 1  # the last complete checkpoint is kept


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point
def test_diverging_training_stops_with_a_training_error():
    minae.manual_seed(0)
    model = VAE(12, 8, 2)  # exp(log v) overflows once the weights explode
    train, _ = loaders()
    with pytest.raises(TrainingError, match=r"(inf|nan) at epoch \d+, batch \d+"):
        fit(model, train, minae.optim.SGD(model.parameters(), lr=1e30), epochs=3)


def test_checkpoint_from_another_model_is_refused_by_name(tmp_path):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 1, checkpoint=ck)
    other = Autoencoder(12, 8)
    with pytest.raises(TrainingError, match="VAE.*Autoencoder|Autoencoder.*VAE"):
        fit(other, train, minae.optim.Adam(other.parameters()), 2, resume=ck)
    bigger = VAE(12, 16, 2)
    with pytest.raises(TrainingError, match=r"hidden: checkpoint 8, model 16"):
        load_checkpoint(ck, bigger, minae.optim.Adam(bigger.parameters()))
    # nothing was loaded into the refused models
    assert np.abs(bigger.encoder[0].weight.numpy()).max() > 0


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    model = VAE(12, 8, 2)
    minae.save(model.state_dict(), path)
    with pytest.raises(TrainingError, match="not a minae training checkpoint"):
        load_checkpoint(path, model)
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="junk.npz"):
        load_checkpoint(tmp_path / "junk.npz", model)


def test_a_failed_save_leaves_nothing_partial(tmp_path, monkeypatch):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 1, checkpoint=ck)
    good = ck.read_bytes()
    real = io._write_archive
    state = {"saves": 0}

    def breaking(file, arrays):
        real(file, arrays)  # a whole archive reaches the temporary file …
        state["saves"] += 1
        raise OSError(28, "No space left on device")  # … then the disk fills up

    monkeypatch.setattr(io, "_write_archive", breaking)
    with pytest.raises(OSError, match="No space"):
        fit(model, train, opt, 3, checkpoint=ck, resume=ck)
    assert state["saves"] == 1
    assert os.listdir(tmp_path) == ["ck.npz"]  # no temporary file left
    assert ck.read_bytes() == good  # the previous checkpoint is untouched


def test_save_checkpoint_round_trip(tmp_path):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 1)
    save_checkpoint(ck, model, opt, 1, [{"epoch": 1}], train, sched, extra={"note": "hi"})
    state = io.load(ck)
    assert state["model"] == {"class": "VAE", "config": model.config()}
    assert state["extra"] == {"note": "hi"} and state["epoch"] == 1


# ----------------------------------------------- the CUDA paths (issue 13) ---
def make_device_run(kind, seed, device):
    """make_run on ``device``: the model moved there before its optimizer is made, as a GPU user does."""
    minae.manual_seed(seed)
    model = {
        "vae": lambda: VAE(12, 8, 2),
        "dae": lambda: DenoisingAutoencoder(12, 16, output_activation="sigmoid"),  # masking: dropout draws
        "dae_sp": lambda: DenoisingAutoencoder(12, 16, corruption="salt_and_pepper", level=0.3),
    }[kind]().to(device)
    train, test = loaders(device=device)  # the batches where the model is
    opt = minae.optim.Adam(model.parameters(), lr=5e-3)
    sched = minae.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    return model, train, test, opt, sched


@pytest.mark.parametrize("kind", ["vae", "dae", "dae_sp"])
def test_fit_with_checkpoints_resumes_bit_for_bit_on_device(kind, device, tmp_path):
    model, train, test, opt, sched = make_device_run(kind, 0, device)
    full = fit(model, train, opt, 3, test_loader=test, scheduler=sched)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    assert all(v.device == device for v in model.state_dict().values())

    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_device_run(kind, 0, device)
    fit(model, train, opt, 1, test_loader=test, scheduler=sched, checkpoint=ck)
    minae.rand(7, device=device)  # both generators move on, as they would in another process
    minae.rand(7)
    model, train, test, opt, sched = make_device_run(kind, 123, device)
    resumed = fit(model, train, opt, 3, test_loader=test, scheduler=sched, checkpoint=ck, resume=ck)

    assert strip_times(resumed) == strip_times(full)
    for key, value in model.state_dict().items():
        assert value.device == device, key
        np.testing.assert_array_equal(value.numpy(), expected[key], err_msg=key)


def test_a_device_checkpoint_resumes_on_the_cpu(device, tmp_path):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_device_run("vae", 0, device)
    fit(model, train, opt, 1, test_loader=test, scheduler=sched, checkpoint=ck)
    on_device = evaluate(model, test)
    cpu_model, train, test, opt, sched = make_device_run("vae", 5, "cpu")
    load_checkpoint(ck, cpu_model, opt, train, sched)
    assert all(p.device == "cpu" for p in cpu_model.parameters())
    on_cpu = evaluate(cpu_model, test)
    assert on_cpu.keys() == on_device.keys()
    for term in on_cpu:
        assert on_cpu[term] == pytest.approx(on_device[term], rel=1e-5, abs=1e-6), term
    history = fit(cpu_model, train, opt, 2, test_loader=test, scheduler=sched, resume=ck)
    assert [r["epoch"] for r in history] == [1, 2]


# ------------------------------------------------------------- all or nothing ---
def _snapshot(model, opt, loader):
    return (
        {k: v.numpy().copy() for k, v in model.state_dict().items()},
        opt.state_dict(),
        loader.state_dict(),
        backend.get_rng_state(),
    )


def _plain(value):
    return value.numpy() if isinstance(value, minae.Tensor) else value


@pytest.mark.parametrize("misfit", ["optimizer", "loader"])
def test_a_failed_load_checkpoint_changes_nothing(tmp_path, misfit):
    """The optimizer (or the loader) refuses its state after the model's would have been loaded: all is kept."""
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 2, checkpoint=ck)
    minae.manual_seed(1)
    fresh = VAE(12, 8, 2)  # same architecture, other weights
    params = list(fresh.parameters())
    fresh_opt = minae.optim.Adam(params[:2] if misfit == "optimizer" else params, lr=1e-3)
    fresh_loader = DataLoader(
        ArrayDataset(tiny_data()), batch_size=20, shuffle=True, seed=0 if misfit == "optimizer" else 7
    )
    fit(fresh, fresh_loader, fresh_opt, 1)  # an optimizer with state of its own
    weights, opt_state, loader_state, rng = _snapshot(fresh, fresh_opt, fresh_loader)
    with pytest.raises((TrainingError, ValueError), match=r"ck\.npz.*nothing was changed"):
        load_checkpoint(ck, fresh, fresh_opt, fresh_loader)
    after_weights, after_opt, after_loader, after_rng = _snapshot(fresh, fresh_opt, fresh_loader)
    for k in weights:
        np.testing.assert_array_equal(after_weights[k], weights[k], err_msg=k)
    assert after_opt["param_groups"] == opt_state["param_groups"]
    assert after_opt["state"].keys() == opt_state["state"].keys()
    for i, buffers in opt_state["state"].items():
        for name, value in buffers.items():
            np.testing.assert_array_equal(np.asarray(_plain(after_opt["state"][i][name])), np.asarray(_plain(value)))
    assert after_loader == loader_state
    assert repr(after_rng) == repr(rng)


@pytest.mark.parametrize(
    "field,value,match",
    [("epoch", "3", "epoch"), ("epoch", -1, "epoch"), ("history", {"a": 1}, "history"), ("model", "VAE", "model")],
)
def test_malformed_checkpoint_fields_name_the_file_and_the_field(tmp_path, field, value, match):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 1, checkpoint=ck)
    state = io.load(ck)
    state[field] = value
    io.save(state, tmp_path / "bad.npz")
    with pytest.raises(io.CheckpointError, match=rf"bad\.npz.*'{match}'"):
        fit(model, train, opt, 2, resume=tmp_path / "bad.npz")


def test_resume_from_a_restored_state_uses_a_changed_learning_rate(tmp_path):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 1, checkpoint=ck)
    model2, train2, _, opt2, _ = make_run("vae", 0)
    state = load_checkpoint(ck, model2, opt2, train2)
    for group in opt2.param_groups:
        group["lr"] = 0.5
    history = fit(model2, train2, opt2, 2, resume=state)
    assert [r["lr"] for r in history] == [5e-3, 0.5]


def test_nan_check_over_a_window_names_the_first_bad_batch():
    """On a GPU the loss is looked at once per window of batches; a bad window still names its first bad batch."""
    from minae.train import _check_finite

    window = [np.array(v, dtype=np.float32) for v in (1.0, 2.0, np.inf, np.nan, 3.0)]
    with pytest.raises(TrainingError, match=r"inf at epoch 3, batch 8"):
        _check_finite(window, epoch=2, last_batch=9)  # batches 6 … 10 (from 1)
    assert _check_finite(window[:2], epoch=0, last_batch=1) == pytest.approx(1.5)
    assert _check_finite([], epoch=0, last_batch=0) is None


# --------------------------------------------- the whole file checked first (issue 18) ---
def _set(path):
    """A function state -> None that puts ``value`` at ``path`` (a list of keys) in the state."""

    def change(value):
        def apply(state):
            node = state
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value

        return apply

    return change


CRAFTED = [
    ("rng", _set(["rng"])([1, 2, 3])),
    ("rng", _set(["rng"])("seeded")),
    ("rng.cpu", _set(["rng", "cpu"])({"bit_generator": "PCG64", "state": {"state": "x", "inc": 1}})),
    ("rng.cpu", _set(["rng", "cpu"])({"bit_generator": "MT19937", "state": 1})),
    ("rng.gpu.key", _set(["rng", "gpu", "key"])(-5)),
    ("optimizer.state", _set(["optimizer", "state"])([])),
    ("optimizer.state[0].exp_avg", _set(["optimizer", "state", 0, "exp_avg"])(np.zeros((3, 3), np.float32))),
    ("optimizer.state[0].exp_avg", _set(["optimizer", "state", 0, "exp_avg"])("zeros")),
    ("optimizer.state[0].step", _set(["optimizer", "state", 0, "step"])(1.5)),
    ("optimizer.state", lambda s: s["optimizer"]["state"][0].pop("exp_avg_sq")),
    ("optimizer.state key 99", lambda s: s["optimizer"]["state"].__setitem__(99, {})),
    ("optimizer.param_groups[0].lr", _set(["optimizer", "param_groups", 0, "lr"])("fast")),
    ("optimizer.param_groups[0].betas", _set(["optimizer", "param_groups", 0, "betas"])((0.9,))),
    ("optimizer.param_groups", _set(["optimizer", "param_groups", 0, "params"])([0, 0, 1, 2, 3, 4, 5, 6])),
    # right types, values the rule refuses (reviewer): its constructor's checks, its update's arithmetic
    ("optimizer.param_groups[0]", _set(["optimizer", "param_groups", 0, "betas"])((1.5, 0.999))),
    ("optimizer.param_groups[0]", _set(["optimizer", "param_groups", 0, "eps"])(-1.0)),
    ("optimizer.param_groups[0]", _set(["optimizer", "param_groups", 0, "weight_decay"])(-0.5)),
    ("optimizer.state[0]", _set(["optimizer", "state", 0, "step"])(10**400)),
    ("optimizer.state[0]", _set(["optimizer", "param_groups", 0, "lr"])(1e308)),
    ("scheduler.gamma", _set(["scheduler", "gamma"])("half")),
    ("scheduler.base_lrs", _set(["scheduler", "base_lrs"])([1.0, 2.0])),
    ("loader.generator", _set(["loader", "generator"])([1])),
    ("loader.epoch", _set(["loader", "epoch"])("2")),
    ("loader.seed", _set(["loader", "seed"])(5)),
    ("history", _set(["history"])([])),
    ("history[0].train", _set(["history", 0, "train"])([1.0])),
    ("history[0].test", _set(["history", 0, "test"])({"loss": "low"})),
    ("history[0].lr", _set(["history", 0, "lr"])(None)),
    ("history[1].epoch", _set(["history", 1, "epoch"])(7)),
    ("model_state", lambda s: s["model_state"].pop(next(iter(s["model_state"])))),
    ("model_state", lambda s: s["model_state"].__setitem__("extra.weight", np.zeros(2, np.float32))),
    ("epoch", _set(["epoch"])("many")),
    ("extra", _set(["extra"])([1])),
]


@pytest.mark.parametrize("field,change", CRAFTED, ids=[f"{i}-{f}" for i, (f, _) in enumerate(CRAFTED)])
def test_a_crafted_field_is_refused_naming_the_file_and_the_field_before_anything_changes(tmp_path, field, change):
    ck = tmp_path / "ck.npz"
    model, train, test, opt, sched = make_run("vae", 0)
    fit(model, train, opt, 2, checkpoint=ck, scheduler=sched)
    state = io.load(ck)
    change(state)
    io.save(state, tmp_path / "crafted.npz")
    minae.manual_seed(1)
    fresh, fresh_train, _, fresh_opt, fresh_sched = make_run("vae", 1)
    fit(fresh, fresh_train, fresh_opt, 1, scheduler=fresh_sched)  # state of its own, to be kept
    weights, opt_state, loader_state, rng = _snapshot(fresh, fresh_opt, fresh_train)
    sched_state = fresh_sched.state_dict()
    with pytest.raises(io.CheckpointError, match=r"crafted\.npz.*'" + re.escape(field)) as info:
        load_checkpoint(tmp_path / "crafted.npz", fresh, fresh_opt, fresh_train, fresh_sched)
    assert "nothing was changed" in str(info.value)
    after_weights, after_opt, after_loader, after_rng = _snapshot(fresh, fresh_opt, fresh_train)
    for k in weights:
        np.testing.assert_array_equal(after_weights[k], weights[k], err_msg=k)
    assert after_opt["param_groups"] == opt_state["param_groups"] and after_loader == loader_state
    assert repr(after_rng) == repr(rng) and fresh_sched.state_dict() == sched_state
    with pytest.raises(io.CheckpointError, match=r"crafted\.npz"):  # and fit(resume=...) says the same
        fit(fresh, fresh_train, fresh_opt, 3, scheduler=fresh_sched, resume=tmp_path / "crafted.npz")


def test_an_untouched_checkpoint_passes_the_whole_check(tmp_path):
    """The schema is not stricter than what fit writes: every kind of run resumes, with or without a scheduler."""
    from minae import schema
    from minae.train import checkpoint_schema

    for kind in ("vae", "dae"):
        ck = tmp_path / f"{kind}.npz"
        model, train, test, opt, sched = make_run(kind, 0)
        fit(model, train, opt, 2, test_loader=test, checkpoint=ck, scheduler=sched)
        schema.check(io.load(ck), checkpoint_schema(model, opt, train, sched))
        for optimizer in (
            minae.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
            minae.optim.RMSprop(model.parameters()),
        ):
            ck2 = tmp_path / f"{kind}-{type(optimizer).__name__}.npz"
            fit(model, train, optimizer, 1, checkpoint=ck2)
            load_checkpoint(ck2, model, optimizer, train)


def test_a_hyper_parameter_saved_as_a_float_loads_where_the_live_one_is_an_int(tmp_path):
    """Adam's weight_decay defaults to the int 0; a run saved with 0.01 loads into it (the rule checks values)."""
    ck = tmp_path / "ck.npz"
    model, train, _, _, _ = make_run("vae", 0)
    fit(model, train, minae.optim.Adam(model.parameters(), weight_decay=0.01), 1, checkpoint=ck)
    fresh, fresh_train, _, _, _ = make_run("vae", 1)
    opt = minae.optim.Adam(fresh.parameters())
    load_checkpoint(ck, fresh, opt, fresh_train)
    assert opt.param_groups[0]["weight_decay"] == 0.01


def test_an_optimizer_whose_constructor_takes_other_arguments_still_loads(tmp_path):
    """The rule's constructor checks values when it can be called with a group's hyper-parameters alone."""

    class Scaled(minae.optim.SGD):
        def __init__(self, params, scale, lr=0.1):
            super().__init__(params, lr=lr * scale, momentum=0.9)

    ck = tmp_path / "ck.npz"
    model, train, _, _, _ = make_run("vae", 0)
    fit(model, train, Scaled(model.parameters(), 0.5), 1, checkpoint=ck)
    fresh, fresh_train, _, _, _ = make_run("vae", 1)
    opt = Scaled(fresh.parameters(), 0.5)
    load_checkpoint(ck, fresh, opt, fresh_train)
    assert opt.state  # the momentum buffers came back
