"""fit(): the training loop every model of the lecture shares.

Each epoch: for every batch, the model's loss functional L (``model.loss(batch)``
returns {"loss": L, and its terms}), backward, one optimizer step; then the mean
of each term over the epoch's samples on the training and the test data, a
checkpoint (atomic) and the history. ``resume`` continues from a checkpoint
exactly as the uninterrupted run would have (bit for bit on the CPU): the
checkpoint holds the model, the optimizer, the scheduler, the data loader's
shuffling state and the random generator.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import numbers
import os
import sys
import time

from . import backend, io, schema
from .grad_mode import no_grad
from .tensor import Tensor

CHECKPOINT_FORMAT = "minae-checkpoint-1"


class TrainingError(RuntimeError):
    """Training cannot go on: the loss is not finite, or a checkpoint does not fit the model."""


def describe_model(model) -> dict:
    """The class name and constructor settings that identify an architecture in a checkpoint."""
    config = model.config() if hasattr(model, "config") else {}
    return {"class": type(model).__name__, "config": config}


def _batch_size(batch) -> int:
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    return int(first.shape[0])


def _default_loss(model, batch):
    return model.loss(batch)


def _progress(iterable, total, desc, enabled):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but a bar is not worth a crash
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True)


# On a GPU every read of a value (.item(), float()) waits for the device to finish its queue, so
# the loops add each term's batch values where they are (in float64) and read the sums once per
# epoch. The loss is looked at every batch on the CPU (a read is free there) and every
# NAN_CHECK_EVERY batches on a GPU.
NAN_CHECK_EVERY = 10


def _on_the_models_device(loop):
    """Run ``loop(model, …)`` (fit, evaluate) with the model's GPU current: the loops add and check
    raw arrays, and CuPy computes on the current GPU, which need not be the model's."""

    @functools.wraps(loop)
    def run(model, *args, **kwargs):
        param = next(iter(model.parameters()), None)
        with backend.on(backend.CPU if param is None else param.device):
            return loop(model, *args, **kwargs)

    return run


def _add_terms(sums: dict, terms: dict, n: int) -> None:
    """sums[name] += value · n for every term, without reading the values back."""
    for name, value in terms.items():
        value = value.data.astype(backend.float64) if isinstance(value, Tensor) else float(value)
        sums[name] = sums[name] + value * n if name in sums else value * n


def _means(sums: dict, count: int) -> dict:
    return {name: float(total) / max(count, 1) for name, total in sums.items()}


def _check_finite(window: list, epoch: int, last_batch: int) -> float | None:
    """The mean loss of the batches in ``window`` (arrays, the last one being batch ``last_batch``, from 0).

    One read for the window; only when it is not finite is each batch read, to name the first bad one.
    """
    if not window:
        return None
    total = float(window[0] if len(window) == 1 else sum(window[1:], window[0]))
    if not math.isfinite(total):
        for k, value in enumerate(window):
            value = float(value)
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {value} at epoch {epoch + 1}, batch {last_batch - len(window) + k + 2}: lower "
                    "the learning rate, check the data's scale, or find the op with minae.detect_anomaly()"
                )
    return total / len(window)


@_on_the_models_device
def evaluate(model, loader, loss_fn=None) -> dict:
    """Mean of each loss term over all samples of ``loader``, in eval mode and without a graph."""
    loss_fn = loss_fn or _default_loss
    was_training = model.training
    model.eval()
    sums, count = {}, 0
    try:
        with no_grad():
            for batch in loader:
                n = _batch_size(batch)
                _add_terms(sums, loss_fn(model, batch), n)
                count += n
    finally:
        model.train(was_training)
    return _means(sums, count)


def save_checkpoint(path, model, optimizer, epoch, history, loader=None, scheduler=None, extra=None) -> None:
    """Everything a later ``fit(resume=path)`` needs, written atomically."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": describe_model(model),
        "model_state": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "loader": loader.state_dict() if loader is not None and hasattr(loader, "state_dict") else None,
        "rng": backend.get_rng_state(),
        "epoch": epoch,
        "history": history,
        "extra": extra or {},
    }
    io.save(state, path)


def load_checkpoint(path, model, optimizer=None, loader=None, scheduler=None, extra=None) -> dict:
    """Restore a checkpoint into the given objects; refuse one made by another model or architecture.

    All or nothing: the whole file is first checked against what it will be loaded into (see
    ``checkpoint_schema``: every field's type, every array's shape and dtype, the random
    generators' states, the history), and any misfit is a ``CheckpointError`` naming the file
    and the field, raised before anything changes. Then the model, optimizer, scheduler,
    loader and random generator are restored; should one still refuse its state, everything
    already restored is put back as it was before the call. ``extra``: a ``schema.Spec`` the
    checkpoint's "extra" field must fit (the command line checks its settings with it).
    """
    state = io.load(path, map_location=_model_device(model))
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a minae training checkpoint")
    _validate(path, state, schema.Record({"model": _MODEL_SPEC}, others=schema.Anything()))
    saved, ours = state["model"], describe_model(model)
    if saved["class"] != ours["class"]:
        raise TrainingError(f"{path}: the checkpoint is for a {saved['class']} model, not a {ours['class']}")
    if saved["config"] != ours["config"]:
        diffs = sorted(
            f"{k}: checkpoint {saved['config'].get(k)!r}, model {ours['config'].get(k)!r}"
            for k in set(saved["config"]) | set(ours["config"])
            if saved["config"].get(k) != ours["config"].get(k)
        )
        raise TrainingError(f"{path}: the checkpoint's {saved['class']} has another architecture ({'; '.join(diffs)})")
    _validate(path, state, checkpoint_schema(model, optimizer, loader, scheduler, extra))
    steps = [(model, state["model_state"])]
    if optimizer is not None:
        steps.append((optimizer, state["optimizer"]))
    if scheduler is not None and state.get("scheduler") is not None:
        steps.append((scheduler, state["scheduler"]))
    if loader is not None and state.get("loader") is not None and hasattr(loader, "load_state_dict"):
        steps.append((loader, state["loader"]))
    # the state of everything we are about to change, copied, so a refusal half-way can be undone
    before = [_remember(obj) for obj, _ in steps]
    rng_before = backend.get_rng_state()
    what = "model"
    try:
        for obj, saved_state in steps:
            what = type(obj).__name__
            obj.load_state_dict(saved_state)
        what = "random generator"
        backend.set_rng_state(state["rng"])
    except Exception as e:  # the schema should have caught it; whatever slipped through still changes nothing
        for undo in before:
            undo()
        backend.set_rng_state(rng_before)
        raise TrainingError(f"{path}: the checkpoint does not fit the {what} ({e}); nothing was changed") from None
    return state


def _validate(path, state, spec) -> None:
    try:
        schema.check(state, spec)
    except schema.Invalid as e:
        raise io.CheckpointError(
            f"{path}: the training checkpoint's field {e.field!r} {e.problem}; nothing was changed"
        ) from None


_MODEL_SPEC = schema.Record({"class": schema.Str(), "config": schema.Mapping(schema.Str(), schema.Anything())})


def _bit_generator_spec(generator) -> schema.Spec:
    """A NumPy bit generator's state for ``generator``'s kind: tried on a scratch generator, never on the live one."""
    kind = type(generator)

    def fits(value):
        if not isinstance(value, dict) or value.get("bit_generator") != kind.__name__:
            return f"must be the state of a {kind.__name__} generator"
        try:
            kind().state = value
        except (TypeError, ValueError, KeyError, OverflowError) as e:
            return f"is not a valid {kind.__name__} state ({e})"
        return None

    return schema.Satisfies(fits)


def _history_spec() -> schema.Spec:
    terms = schema.All(
        schema.Mapping(schema.Str(), schema.Real(finite=False)),
        schema.Satisfies(lambda t: None if "loss" in t else "has no 'loss' term"),
    )
    record = schema.Record(
        {
            "epoch": schema.Int(low=1),
            "train": terms,
            "test": schema.Optional(terms),
            "lr": schema.Real(low=0),
            "seconds": schema.Real(low=0),
        }
    )

    def numbered(history):
        for i, r in enumerate(history):
            if r["epoch"] != i + 1:
                return f"[{i}].epoch", f"is {r['epoch']}, but record {i} is epoch {i + 1}"
        return None

    return schema.All(schema.Sequence(record), schema.Satisfies(numbered))


def _optimizer_spec(optimizer) -> schema.Spec:
    """The optimizer's state_dict as this optimizer would load it: its groups, parameter indices and buffers."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    n = len(params)
    # the buffers the rule keeps, found by one step of the rule on a scratch one-element parameter
    needed = set()
    for group in optimizer.param_groups:
        scratch = {}
        try:
            w = backend.np.zeros(1, dtype=backend.np.float32)
            optimizer.update(w, backend.np.ones(1, dtype=backend.np.float32), scratch, dict(group))
        except Exception:  # a rule that cannot be probed is checked by types and shapes alone
            scratch = {}
        needed |= set(scratch)

    def buffers(index):
        shape = tuple(params[index].shape) if isinstance(index, int) and 0 <= index < n else ()
        return schema.Mapping(
            schema.Str(),
            lambda name: schema.Int(low=0) if name == "step" else schema.Array(shape, "f"),
        )

    def complete(state):
        for index, bufs in state.items():
            missing = needed - set(bufs)
            if missing:
                return f"parameter {index} lacks the buffer(s) {', '.join(sorted(missing))}"
        return None

    groups = []
    for group in optimizer.param_groups:
        # a number where the live group has one (weight_decay=0 is an int, 0.01 a float): the rule's
        # own checks (_rule_accepts) say which numbers it takes
        fields = {
            k: schema.Real() if _is_number(v) else schema.like(v)
            for k, v in group.items()
            if k not in ("params", "initial_lr")
        }
        fields["lr"] = schema.Real(low=0)
        fields["initial_lr"] = schema.Real(low=0)
        fields["params"] = schema.Sequence(schema.Int(0, n - 1), length=len(group["params"]))
        groups.append(schema.Record(fields, optional=["initial_lr"]))

    def distinct(groups_value):
        indices = [i for g in groups_value for i in g["params"]]
        return None if len(set(indices)) == len(indices) else "numbers a parameter twice"

    return schema.All(
        schema.Record(
            {
                "state": schema.All(schema.Mapping(schema.Int(0, n - 1), buffers), schema.Satisfies(complete)),
                "param_groups": schema.All(schema.Sequence(groups), schema.Satisfies(distinct)),
            }
        ),
        schema.Satisfies(lambda value: _rule_accepts(optimizer, value)),
    )


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _rule_accepts(optimizer, saved: dict):
    """None, or (field, problem) for the first loaded value the optimizer's own rule refuses.

    Types and shapes are the schema's; what values a rule takes is the rule's: each loaded group's
    hyper-parameters go through the optimizer's constructor (Adam refuses β ≥ 1 or ε < 0), and each
    parameter's loaded counters (Adam's step t) through one step of its update on a scratch
    one-element parameter (β₂ᵗ of a 400-digit t overflows), which must stay finite. Nothing live is touched.
    """
    kind = type(optimizer)
    try:
        signature = inspect.signature(kind.__init__)
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        accepted = set(signature.parameters) - {"self", "params"}
    except (TypeError, ValueError):  # no signature to read: the rule's update alone is tried
        takes_any, accepted = False, set()
    np_ = backend.np
    owner = {}  # parameter index -> its loaded group
    for i, group in enumerate(saved["param_groups"]):
        hyper = {k: v for k, v in group.items() if k not in ("params", "initial_lr") and (takes_any or k in accepted)}
        try:
            kind([Tensor(np_.zeros(1, dtype=np_.float32), requires_grad=True)], **hyper)
        except (ValueError, OverflowError) as e:
            return f".param_groups[{i}]", f"holds hyper-parameters {kind.__name__} refuses ({e})"
        except TypeError:  # a constructor that takes other arguments (types are the schema's): its update decides
            pass
        for index in group["params"]:
            owner[index] = group
    for index, buffers in saved["state"].items():
        if index not in owner:
            continue
        w = np_.zeros(1, dtype=np_.float32)
        scratch = {}
        for name, value in buffers.items():
            if isinstance(value, Tensor) or backend.is_array(value):
                scratch[name] = Tensor(np_.zeros(1, dtype=np_.float32))
            else:
                scratch[name] = value
        try:
            with np_.errstate(all="ignore"):
                optimizer.update(w, np_.ones(1, dtype=np_.float32), scratch, dict(owner[index], params=[]))
        except (ArithmeticError, ValueError, TypeError) as e:
            return f".state[{index}]", f"cannot be stepped by {kind.__name__}'s rule ({type(e).__name__}: {e})"
        if not np_.isfinite(w).all():
            return f".state[{index}]", f"makes {kind.__name__}'s rule give a non-finite step"
    return None


def checkpoint_schema(model, optimizer=None, loader=None, scheduler=None, extra=None) -> schema.Spec:
    """What a training checkpoint must hold to be loaded into these objects (None: not loaded, any kind).

    Built from the live objects: the model's own state_dict (every name, shape and dtype), the
    optimizer's groups and parameter shapes, the scheduler's own state's kinds, the loader's seed and
    generator kind, the random generator's kind; the history, one record per epoch done.
    """
    anything = schema.Anything()
    model_state = schema.Record({k: schema.like(v) for k, v in model.state_dict().items()})
    optimizer_spec = _optimizer_spec(optimizer) if optimizer is not None else schema.Mapping(schema.Str(), anything)
    scheduler_spec = schema.Optional(
        schema.like(scheduler.state_dict()) if scheduler is not None else schema.Mapping(schema.Str(), anything)
    )
    loader_spec = schema.Optional(schema.Mapping(schema.Str(), anything))
    if loader is not None and hasattr(loader, "load_state_dict") and getattr(loader, "_generator", None) is not None:
        seed = loader.seed
        loader_spec = schema.Optional(
            schema.Record(
                {
                    "epoch": schema.Int(low=0),
                    "seed": schema.Satisfies(
                        lambda s: None if s == seed else f"was saved with seed {s!r}, this loader has seed {seed!r}"
                    ),
                    "generator": _bit_generator_spec(loader._generator.bit_generator),
                }
            )
        )
    rng = schema.Record(
        {
            "initial_seed": schema.Optional(schema.Int(low=0)),
            "cpu": _bit_generator_spec(backend.cpu_generator().bit_generator),
            "gpu": schema.Optional(schema.Record({"key": schema.Int(0, 2**64 - 1), "draws": schema.Int(low=0)})),
        },
        optional=["initial_seed", "gpu"],
    )

    def history_length(state):
        if len(state["history"]) != state["epoch"]:
            return f"holds {len(state['history'])} records for {state['epoch']} epochs"
        return None

    fields = schema.Record(
        {
            "format": schema.Str([CHECKPOINT_FORMAT]),
            "model": _MODEL_SPEC,
            "model_state": model_state,
            "optimizer": optimizer_spec,
            "scheduler": scheduler_spec,
            "loader": loader_spec,
            "rng": rng,
            "epoch": schema.Int(low=0),
            "history": _history_spec(),
            "extra": extra if extra is not None else schema.Mapping(schema.Str(), anything),
        },
        optional=["extra"],
    )
    return schema.All(fields, _Named("history", schema.Satisfies(history_length)))


class _Named(schema.Spec):
    """Report ``spec``'s problem with the whole value as the field ``name``'s."""

    def __init__(self, name, spec):
        self.name, self.spec = name, spec

    def validate(self, value, field):
        try:
            self.spec.validate(value, field)
        except schema.Invalid as e:
            raise schema.Invalid(self.name, e.problem) from None


def _remember(obj):
    """A function that puts ``obj`` back as it is now."""
    if hasattr(obj, "param_groups") and hasattr(obj, "state"):
        # an optimizer: its groups and buffers, restored by assignment (loading a state_dict adds keys
        # such as a scheduler's initial_lr to the groups, which a second load would not remove)
        groups = [dict(g) for g in obj.param_groups]
        buffers = copy.copy(obj.state)  # the same kind of mapping (a defaultdict keeps its factory)
        buffers.clear()
        buffers.update({p: _copied(b) for p, b in obj.state.items()})

        def undo():
            obj.param_groups = groups
            obj.state = buffers

        return undo
    saved = _copied(obj.state_dict())
    return lambda: obj.load_state_dict(saved)


def _copied(tree):
    """A deep copy of a state_dict whose arrays and tensors do not share memory with the live objects."""
    if isinstance(tree, dict):
        return {k: _copied(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_copied(v) for v in tree)
    if isinstance(tree, Tensor):
        return Tensor(tree.data.copy(), requires_grad=tree.requires_grad)
    if backend.is_array(tree):
        return tree.copy()
    return tree


def _model_device(model):
    param = next(iter(model.parameters()), None)
    return None if param is None else str(param.device)


@_on_the_models_device
def fit(
    model,
    train_loader,
    optimizer,
    epochs: int,
    test_loader=None,
    scheduler=None,
    checkpoint=None,
    resume=None,
    progress=None,
    loss_fn=None,
    on_epoch_end=None,
    log=None,
    extra=None,
) -> list:
    """Train ``model`` for ``epochs`` epochs; return the history, one dict per epoch.

    model: a Module whose ``loss(batch)`` returns {"loss": L, term: value, …}
    (or pass ``loss_fn(model, batch)``). checkpoint: a path written after every epoch.
    resume: a checkpoint path to continue from, or the dict ``load_checkpoint`` returned (to
    change a setting, e.g. the learning rate, between restoring and training). extra: a dict
    saved in every checkpoint under "extra" (the command line keeps its settings there).
    progress: a progress bar per epoch (default: only when stderr is a terminal). on_epoch_end(epoch, record) is called
    after each epoch. log: a function given one line per epoch (e.g. print).

    Each history record: {"epoch", "train": {term: mean}, "test": {…} or None,
    "lr", "seconds"}. A loss that becomes NaN or inf stops training with a
    TrainingError naming the epoch and the batch: before that batch's step on the
    CPU; on a GPU, where each look at the loss waits for the device, the loss is
    looked at every ``NAN_CHECK_EVERY`` batches, so up to that many steps may
    have been taken with it (the batch named is still the first bad one).
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be non-negative, got {epochs}")
    loss_fn = loss_fn or _default_loss
    history, start = [], 0
    if resume is not None:
        state = (
            resume if isinstance(resume, dict) else load_checkpoint(resume, model, optimizer, train_loader, scheduler)
        )
        history, start = list(state["history"]), int(state["epoch"])
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("MINAE_QUIET")

    param = next(iter(model.parameters()), None)
    check_every = 1 if param is None or param.device.type == "cpu" else NAN_CHECK_EVERY
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model.train()
        sums, count, window = {}, 0, []
        bar = _progress(train_loader, len(train_loader), f"epoch {epoch + 1}/{epochs}", progress)
        for i, batch in enumerate(bar):
            terms = loss_fn(model, batch)
            loss = terms["loss"]
            window.append(loss.data)
            if len(window) == check_every:  # before the step, so on the CPU a NaN never reaches the weights
                recent = _check_finite(window, epoch, i)
                window = []
                if progress and hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{recent:.4g}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n = _batch_size(batch)
            _add_terms(sums, terms, n)
            count += n
        _check_finite(window, epoch, i if window else 0)
        train_means = _means(sums, count)
        test_means = evaluate(model, test_loader, loss_fn) if test_loader is not None else None
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        record = {
            "epoch": epoch + 1,
            "train": train_means,
            "test": test_means,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch + 1, history, train_loader, scheduler, extra)
        if log is not None:
            test_text = f", test {test_means['loss']:.4f}" if test_means else ""
            log(
                f"epoch {epoch + 1}/{epochs}: train {train_means.get('loss', float('nan')):.4f}{test_text} "
                f"({record['seconds']:.1f} s)"
            )
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, record)
    return history
