"""The training loop, and the brief (proxy) training that scores a search candidate.

One loop serves both uses: ``train_loop`` runs SGD with a margin softmax and a distiller on a
``FaceSet``; ``score`` builds a candidate from its spec, trains it for the proxy budget and
measures verification on identities it never saw.  Full training (``nasface.fulltrain``) calls the
same loop with its own settings (``TrainingPlan``: the papers' step decay instead of the proxy's
warm-up-stable-decay), a teacher network run on every batch instead of cached targets, and checkpoints.

Read top to bottom: budget -> schedules -> model -> teachers -> head + distiller -> optimiser ->
steps -> verification.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nasface.arch.checkpoint import load_training_state, save_training_state
from nasface.data import FaceSet, PairSet
from nasface.core.errors import NasfaceError
from nasface.training.evaluate import embed_pairs, pair_metrics, to_input_tensor
from nasface.training.losses import DISTILLER_KINDS, MARGIN_KINDS, make_distiller, margin_loss
from nasface.arch.model import build_model, count, learnt_structure
from nasface.training.signals import linear_cka, loss_signals, trivial_signals, zero_cost_signals
from nasface.arch.spec import ArchSpec, dump_spec, load_spec


@dataclass(frozen=True, kw_only=True)
class Optimisation:
    """SGD and the losses, declared once for every training: the proxy (``ProxyBudget``), full
    training's plan and its recipe (``nasface.fulltrain.TrainingPlan``, ``nasface.export.Recipe``)."""

    lr: float = 0.1              # SGD, momentum 0.9, weight decay 5e-4, as all five papers
    momentum: float = 0.9
    weight_decay: float = 5e-4
    margin: str = "arcface"
    scale: float = 64.0          # ArcFace s = 64, m = 0.5 (full training; the proxy uses less)
    distill: str = "angular"
    alpha: float = 7.0

    def check_optimisation(self, where: str) -> None:
        """Raise ``NasfaceError`` naming the first field (as ``where.field``) that cannot train."""
        if not self.lr > 0 or not 0 <= self.momentum < 1 or not self.weight_decay >= 0:
            raise NasfaceError(f"{where}: needs lr > 0, 0 <= momentum < 1 and weight_decay >= 0, got "
                               f"{self.lr}, {self.momentum} and {self.weight_decay}")
        if self.margin not in MARGIN_KINDS:
            raise NasfaceError(f"{where}.margin: unknown margin loss {self.margin!r} "
                               f"(choose from {', '.join(MARGIN_KINDS)})")
        if not self.scale > 0 or not self.alpha >= 0:
            raise NasfaceError(f"{where}: needs scale > 0 and alpha >= 0, got {self.scale} and {self.alpha}")
        if self.distill not in DISTILLER_KINDS:
            raise NasfaceError(f"{where}.distill: unknown distillation {self.distill!r} "
                               f"(choose from {', '.join(DISTILLER_KINDS)})")

    def optimisation(self) -> dict:
        """This object's ``Optimisation`` fields, to hand on to another settings class."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(Optimisation)}


@dataclass(frozen=True, kw_only=True)
class LoopSettings(Optimisation):
    """What ``make_loop_state`` and ``train_loop`` read: ``ProxyBudget``, or full training's
    ``nasface.fulltrain.TrainingPlan``.  Each also has a ``schedule`` (``WarmupStableDecay`` /
    ``StepDecaySchedule``): a property of the proxy's budget, a field of full training's plan, so
    it is not declared here (a property here would become the field's default)."""

    steps: int
    batch_size: int
    seed: int = 0


@dataclass(frozen=True, kw_only=True)
class ProxyBudget(LoopSettings):
    """How briefly a candidate trains, and with what (the papers' recipe, shortened)."""

    steps: int = 150             # 0: score the untrained network (the yardstick for "it learnt")
    batch_size: int = 32
    resolution: int = 64         # the network sees faces resized to this: 64 fits a CPU, 112 is full size
    # Warm-up-stable-decay: linear warm-up over ``warmup_steps`` (default a tenth of the steps),
    # the base rate held, then a linear decay to zero over the last ``cooldown_fraction`` of the
    # steps.  Unlike cosine, the rate before the cool-down does not depend on the total, so one
    # run serves every longer budget: a shorter budget is a branch off its stable phase
    # (``nasface.fidelity``), bit for bit the run that budget would train on its own.
    warmup_steps: int | None = None
    cooldown_fraction: float = 0.2
    # s = 64 (the papers' full-training value) barely moves in 150 steps.  MobileFaceNet, 150
    # steps: synthetic s=64 54%, s=32 57%, s=16 75%, s=8 76%; ORL s=32 91%, s=16 91%, s=8 95%
    # (untrained: 53% and 91%).  BENCHMARKS.md.
    scale: float = 8.0
    device: str = "auto"

    def check(self) -> None:
        if self.steps < 0 or self.batch_size < 2:
            raise NasfaceError(f"proxy budget needs steps >= 0 and batch size >= 2, got {self.steps} and "
                               f"{self.batch_size}")
        if self.warmup_steps is not None and not 0 <= self.warmup_steps <= self.steps - self.cooldown_steps:
            raise NasfaceError(f"proxy warm-up of {self.warmup_steps} steps does not fit before the cool-down of a "
                               f"{self.steps}-step budget ({self.cooldown_steps} steps)")
        if not 0.0 < self.cooldown_fraction <= 1.0:
            raise NasfaceError(f"proxy cool-down fraction must be in (0, 1], got {self.cooldown_fraction}")
        if not 16 <= self.resolution <= 112:
            raise NasfaceError(f"proxy resolution must be between 16 and 112 pixels, got {self.resolution}")
        self.check_optimisation("proxy")
        check_device(self.device)

    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @property
    def cooldown_steps(self) -> int:
        return int(round(self.steps * self.cooldown_fraction))

    @property
    def schedule(self) -> "WarmupStableDecay":
        warmup = max(1, int(round(self.steps * 0.1))) if self.warmup_steps is None else self.warmup_steps
        return WarmupStableDecay(self.steps, warmup, self.cooldown_steps)


def check_device(device: str) -> None:
    if device not in ("auto", "cpu", "cuda"):
        raise NasfaceError(f"unknown device {device!r} (choose from auto, cpu, cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise NasfaceError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu")


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass(frozen=True)
class WarmupStableDecay:
    """The proxy's schedule: linear warm-up to the base rate over ``warmup_steps``, the base rate
    held, then a linear decay to zero over the last ``cooldown_steps`` of ``steps``."""

    steps: int
    warmup_steps: int
    cooldown_steps: int

    @property
    def decay_start(self) -> int:
        """The first step of the cool-down; before it the rate does not depend on ``steps``."""
        return self.steps - self.cooldown_steps

    def learning_rate(self, step: int, base: float) -> float:
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        if step < self.decay_start:
            return base
        return base * (self.steps - step) / (self.cooldown_steps + 1)


@dataclass(frozen=True)
class StepDecaySchedule:
    """Full training's schedule (insightface, all five papers): lr x ``factor`` at each of
    ``decay_steps``, after an optional linear warm-up over ``warmup_steps``."""

    decay_steps: tuple[int, ...]
    warmup_steps: int = 0
    factor: float = 0.1

    def learning_rate(self, step: int, base: float) -> float:
        if step < self.warmup_steps:
            return base * (step + 1) / self.warmup_steps
        return base * self.factor ** sum(1 for boundary in self.decay_steps if step >= boundary)


@dataclass(frozen=True)
class TeacherTargets:
    """A teacher's view of the proxy training images, computed once and cached with the study.

    ``embeddings[i]`` / ``flipped[i]`` are the teacher's embeddings of training image i and of its
    mirror image; ``centres`` are its class centres (one row per training identity); ``held_out``,
    where cached, its flip-summed embeddings of the distinct verification faces
    (``nasface.evaluate.distinct_faces`` order), for the teacher-agreement signal.
    """

    embeddings: np.ndarray
    flipped: np.ndarray
    centres: np.ndarray
    folder: str | None = None   # the cache folder, which workers read the arrays from
    held_out: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def batch_targets(self, index: np.ndarray, mirror: np.ndarray, images: torch.Tensor) -> torch.Tensor:
        """The cached embeddings of the batch's images (of their mirror images where mirrored)."""
        rows = np.where(mirror[:, None], self.flipped[index], self.embeddings[index])
        return torch.as_tensor(rows, dtype=torch.float32, device=images.device)


class TeacherNetwork:
    """A teacher run on every batch: full training sees too many images to cache its view.

    ``centres`` (one row per training identity) are needed by margin distillation only.
    """

    def __init__(self, model: nn.Module, dim: int, centres: np.ndarray | None = None):
        self.model = model.eval().requires_grad_(False)
        self.dim = dim
        self.centres = centres

    def to(self, device: torch.device) -> "TeacherNetwork":
        self.model.to(device)
        if device.type == "cuda":
            self.model.to(memory_format=torch.channels_last)
        return self

    def batch_targets(self, index: np.ndarray, mirror: np.ndarray, images: torch.Tensor) -> torch.Tensor:
        """The teacher's embeddings of the batch as the student sees it (already mirrored)."""
        with torch.no_grad(), torch.autocast(images.device.type, dtype=torch.bfloat16,
                                             enabled=images.device.type == "cuda"):
            return self.model(images).float()


Teacher = TeacherTargets | TeacherNetwork


class CandidateFailed(Exception):
    """A candidate that cannot finish (diverged, out of memory): recorded, not fatal."""


class ResizedInput(nn.Module):
    """Feeds a network built for ``size`` x ``size`` from 112x112 faces (the low-resolution proxy)."""

    def __init__(self, network: nn.Module, size: int):
        super().__init__()
        self.network = network
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.network(x)


def proxy_spec(spec: ArchSpec, resolution: int) -> ArchSpec:
    """The candidate as the proxy trains it: same blocks, input ``resolution``, global kernel unpinned."""
    if resolution == spec.input_size:
        return spec
    try:
        return dataclasses.replace(spec, input_size=resolution,
                                   embedding=dataclasses.replace(spec.embedding, kernel=None))
    except NasfaceError as err:
        raise NasfaceError(f"{spec.name} cannot run at the proxy resolution {resolution}: {err}") from None


def build_student(spec: ArchSpec, resolution: int) -> nn.Module:
    network = build_model(proxy_spec(spec, resolution))
    return network if resolution == spec.input_size else ResizedInput(network, resolution)


@dataclass
class LoopState:
    """Everything that changes while training; what a checkpoint holds."""

    model: nn.Module
    head: nn.Module
    distiller: nn.Module
    optimiser: torch.optim.Optimizer
    step: int = 0
    losses: list[float] = dataclasses.field(default_factory=list)


def make_loop_state(model: nn.Module, num_classes: int, embedding_size: int, budget: LoopSettings,
                    teacher: Teacher | None, device: torch.device) -> LoopState:
    head = margin_loss(budget.margin, num_classes, embedding_size, s=budget.scale)
    kind = budget.distill if teacher is not None else "none"
    distiller = make_distiller(kind, **({"alpha": budget.alpha} if kind == "angular" else {}))
    if teacher is not None:
        centres = None if teacher.centres is None else \
            torch.tensor(np.array(teacher.centres), dtype=torch.float32)  # the cache is read-only
        distiller.prepare(head, teacher_dim=teacher.dim, teacher_centres=centres)
    model.to(device)
    head.to(device)
    distiller.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    trainable = [p for module in (model, head, distiller) for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(trainable, lr=budget.lr, momentum=budget.momentum,
                                weight_decay=budget.weight_decay)
    return LoopState(model, head, distiller, optimiser)


def loop_checkpoint(state: LoopState) -> dict:
    """What a resumed loop needs to go on exactly where this one stopped (tensors and plain values)."""
    return {"step": state.step, "model": state.model.state_dict(), "head": state.head.state_dict(),
            "distiller": state.distiller.state_dict(), "optimiser": state.optimiser.state_dict(),
            "losses": torch.tensor(state.losses, dtype=torch.float64),
            # Batches are drawn from (seed, step), so the step is the sampler's whole state.
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_loop(state: LoopState, saved: dict) -> None:
    state.model.load_state_dict(saved["model"])
    state.head.load_state_dict(saved["head"])
    state.distiller.load_state_dict(saved["distiller"])
    state.optimiser.load_state_dict(saved["optimiser"])
    state.step = int(saved["step"])
    state.losses = saved["losses"].tolist()
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])


def train_loop(state: LoopState, data: FaceSet, budget: LoopSettings, teacher: Teacher | None,
               device: torch.device, until: int | None = None,
               on_step: Callable[[LoopState], None] | None = None) -> LoopState:
    """SGD from ``state.step`` to ``until`` (default: the budget's steps) on ``data``.

    The learning rate is ``budget.schedule`` (the proxy's warm-up-stable-decay, full training's step decay),
    which always spans ``budget.steps``, so stopping early and resuming trains exactly as one
    uninterrupted run; deterministic on CPU for a fixed seed.

    Batches are drawn with replacement from a generator seeded by (seed, step), so a resumed run
    sees exactly the batches the uninterrupted run would have seen.  Each face is mirrored with
    probability 1/2, and the teacher's embedding of the mirrored face is used with it.
    """
    use_bf16 = device.type == "cuda"
    until = budget.steps if until is None else until
    state.model.train()
    # Denormal floats make CPU backward passes crawl (measured: 40 % of a MobileFaceNet step).
    # The flag is process-wide, so it is set for the loop only and put back to torch's default.
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        _steps(state, data, budget, teacher, device, until, use_bf16, on_step)
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return state


def _steps(state: LoopState, data: FaceSet, budget: LoopSettings, teacher: Teacher | None,
           device: torch.device, until: int, use_bf16: bool, on_step) -> None:
    schedule = budget.schedule
    while state.step < until:
        rng = np.random.default_rng([budget.seed, state.step])
        index = rng.choice(len(data.labels), size=budget.batch_size, replace=True)
        mirror = rng.random(budget.batch_size) < 0.5
        batch = np.asarray(data.images[index])
        batch[mirror] = batch[mirror, :, ::-1]  # mirror on uint8, before the float conversion
        images = to_input_tensor(batch).to(device, non_blocking=True)
        if device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.from_numpy(np.asarray(data.labels[index])).to(device)
        teacher_batch = None if teacher is None else teacher.batch_targets(index, mirror, images)
        for group in state.optimiser.param_groups:
            group["lr"] = schedule.learning_rate(state.step, budget.lr)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            embeddings = state.model(images)
        loss = state.distiller.loss(embeddings.float(), labels, teacher_batch, state.head)
        if not torch.isfinite(loss):
            raise CandidateFailed(f"diverged: the loss became {loss.item()} at step {state.step}")
        state.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        state.optimiser.step()
        state.losses.append(float(loss.detach()))
        state.step += 1
        if on_step is not None:
            on_step(state)


def score(spec: ArchSpec | str, train_set: FaceSet, pairs: PairSet, budget: ProxyBudget = ProxyBudget(),
          teacher: TeacherTargets | None = None, signals: bool = True,
          on_step: Callable[[LoopState], None] | None = None) -> dict:
    """Train ``spec`` briefly and measure verification on held-out pairs (``on_step`` is told of each
    training step, e.g. to show how far it is).

    Returns JSON-friendly metrics and, with ``signals``, every ranking signal of
    ``nasface.signals`` under ``signals``; a candidate that diverges or runs out of memory returns
    ``status: failed`` with the reason instead of raising.
    """
    return score_budgets(spec, train_set, pairs, budget, (budget.steps,), teacher, signals, on_step=on_step)[0]


def score_budgets(spec: ArchSpec | str, train_set: FaceSet, pairs: PairSet, budget: ProxyBudget,
                  steps: Sequence[int], teacher: TeacherTargets | None = None, signals: bool = True,
                  on_result: Callable[[dict], None] | None = None, resume_from: str | Path | None = None,
                  save_to: str | Path | None = None, yardstick: np.ndarray | None = None,
                  progress_file: str | Path | None = None, progress_seconds: float = 600.0,
                  on_step: Callable[[LoopState], None] | None = None) -> list[dict]:
    """``score`` at several step budgets of ``budget``'s recipe, from one training run.

    The run trains to the largest budget; each shorter one is a branch off its stable phase at
    that budget's cool-down, cooled down on a copy and measured.  Under the warm-up-stable-decay
    schedule with a fixed ``warmup_steps`` every branch is, bit for bit on a CPU, the run that
    budget would train on its own (the tests hold ``score`` at each budget against it).  The
    result of each budget, shortest first, is passed to ``on_result`` as soon as it is measured.
    ``train_seconds`` / ``cpu_seconds`` of a budget count what training it alone would cost: the
    shared steps up to its branch plus its own cool-down.

    Successive halving continues a promoted candidate rather than training it again: ``save_to``
    keeps the run's state at the longest budget's cool-down (its stable phase, which any longer
    budget shares), and ``resume_from`` starts from such a state, so the seconds counted are the
    new steps only.  A resumed run is the same run, bit for bit on a CPU, as one from the start.

    ``yardstick`` is a second teacher's flip-summed embeddings of the distinct held-out faces (a
    ``TeacherTargets.held_out``) that the run does not learn from; the student's agreement with it
    is the ``yardstick_cka`` signal.

    ``on_step`` is told of each step of the run's trunk (the longest budget's training).

    ``progress_file`` makes a long run survive a kill: the run keeps its whole state there (the
    loop, the budgets measured so far, the seconds spent) after each budget it measures and every
    ``progress_seconds`` of training, and a run that finds the file of this same run continues from
    it, bit for bit on a CPU the uninterrupted run, losing at most ``progress_seconds`` of work.
    A file of another run (another spec, recipe, seed or list of budgets) or an unreadable one is
    ignored and overwritten; the data and the teacher's targets are not checked, so the caller
    names the file by them too (``nasface.fidelity`` uses the log's row key, which holds both) and
    deletes it once the results are safe.
    """
    spec = load_spec(spec)
    budget.check()
    steps = sorted(set(int(s) for s in steps))
    if not steps or steps[0] < 0:
        raise NasfaceError(f"step budgets must be 0 or more, got {steps}")
    longest = dataclasses.replace(budget, steps=steps[-1])
    longest.check()
    if len(steps) > 1 and budget.warmup_steps is None:
        raise NasfaceError("scoring several budgets from one run needs a fixed warmup_steps in the proxy budget")
    branch_budgets = [dataclasses.replace(budget, steps=s) for s in steps]
    for shorter in branch_budgets:
        shorter.check()  # its warm-up must fit before its own cool-down
    if teacher is not None and len(teacher.embeddings) != len(train_set.labels):
        raise NasfaceError(f"the teacher's cache holds {len(teacher.embeddings)} embeddings for "
                           f"{len(train_set.labels)} training images; rebuild it for this data")
    device = budget.torch_device()
    start = time.perf_counter()
    run_id = _run_identity(spec, budget, steps, teacher, yardstick, signals, resume_from)
    progress = _read_progress(progress_file, run_id)
    resumed = None if resume_from is None or progress is not None else load_training_state(resume_from)
    if resumed is not None and int(resumed["step"]) > min(b.schedule.decay_start for b in branch_budgets):
        raise NasfaceError(f"{resume_from}: its run is at step {int(resumed['step'])}, past the cool-down of the "
                           f"{steps[0]}-step budget; it cannot be continued to it")
    torch.manual_seed(budget.seed)
    model = build_student(spec, budget.resolution)
    base = {"spec": spec.name, "status": "ok", "reason": None, "batch_size": budget.batch_size,
            "resolution": budget.resolution, "device": device.type,
            "distill": budget.distill if teacher is not None else "none"}
    found: dict = {}
    results: list[dict] = []
    clock = _Clock()
    if progress is not None:  # this run, killed: everything it had measured and spent comes back
        found = dict(zip(progress["signal_names"], progress["signal_values"].tolist()))
        base = {**json.loads(progress["base"]), "continued_at": int(progress["step"])}
        results = json.loads(progress["results"])
        clock.wall, clock.cpu = progress["clock"].tolist()
        start -= float(progress["elapsed"])
    elif resumed is not None:  # signals at initialisation were measured when the run started
        found = dict(zip(resumed["signal_names"], resumed["signal_values"].tolist()))
        base["resumed_at"] = int(resumed["step"])
    elif signals:
        signal_start = time.perf_counter()
        found = zero_cost_signals(model, train_set.images, train_set.labels, train_set.num_identities,
                                  spec.embedding.size, budget.resolution, budget.margin, budget.scale, budget.seed)
        found.update(trivial_signals(count(spec)))
        base["zero_cost_seconds"] = time.perf_counter() - signal_start

    def measure(state: LoopState, shorter: ProxyBudget, own: _Clock) -> None:
        result = {**base, "steps": shorter.steps, "train_seconds": clock.wall + own.wall,
                  "cpu_seconds": clock.cpu + own.cpu}
        eval_start = time.perf_counter()
        faces, slot = embed_pairs(state.model, pairs, batch_size=128, device=device)
        metrics = pair_metrics(faces, slot, pairs.issame)
        final_losses = state.losses[-max(1, len(state.losses) // 10):]
        result.update(
            accuracy=metrics["accuracy"], accuracy_std=metrics["accuracy_std"], tar_at_far=metrics["tar_at_far"],
            far=metrics["far"], pairs=metrics["pairs"],
            final_loss=float(np.mean(final_losses)) if final_losses else None,
            images_per_second=shorter.steps * shorter.batch_size / result["train_seconds"] if shorter.steps else None,
            eval_seconds=time.perf_counter() - eval_start)
        if signals:
            measured = {**found, "accuracy": metrics["accuracy"], "tar_at_far": metrics["tar_at_far"],
                        **loss_signals(state.losses)}
            held_out = None if teacher is None else teacher.held_out
            if held_out is not None and len(held_out) == len(faces):
                measured["teacher_cka"] = linear_cka(faces, held_out)
            if yardstick is not None and len(yardstick) == len(faces):
                measured["yardstick_cka"] = linear_cka(faces, yardstick)
            result["signals"] = measured
        # what training decided that the deployed cost depends on (uneven FLGC groups cost more):
        # the search judges the budgets again on nasface.model.deployed_cost
        result["learnt_structure"] = learnt_structure(state.model)
        result["wall_seconds"] = time.perf_counter() - start
        results.append(result)
        if on_result is not None:
            on_result(result)

    def with_signals(state: LoopState) -> dict:
        checkpoint = loop_checkpoint(state)
        checkpoint["signal_names"] = sorted(found)  # measured at initialisation: the run cannot remeasure them
        checkpoint["signal_values"] = torch.tensor([float(found[name]) for name in checkpoint["signal_names"]],
                                                   dtype=torch.float64)
        return checkpoint

    kept_at = time.perf_counter()

    def keep_progress(state: LoopState) -> None:
        nonlocal kept_at
        checkpoint = with_signals(state)
        checkpoint.update(run=run_id, base=json.dumps(base), results=json.dumps(results),
                          clock=torch.tensor(clock.reading(), dtype=torch.float64),
                          elapsed=time.perf_counter() - start)
        save_training_state(progress_file, checkpoint)
        kept_at = time.perf_counter()

    def trunk_step(state: LoopState) -> None:
        if progress_file is not None and time.perf_counter() - kept_at >= progress_seconds:
            keep_progress(state)
        if on_step is not None:
            on_step(state)

    try:
        state = make_loop_state(model, train_set.num_identities, spec.embedding.size, longest, teacher, device)
        if progress is not None:
            restore_loop(state, progress)
        elif resumed is not None:
            restore_loop(state, resumed)
        for shorter in branch_budgets[len(results):-1]:  # a continued run measured the first ones already
            with clock:
                train_loop(state, train_set, longest, teacher, device, until=shorter.schedule.decay_start,
                           on_step=trunk_step)
            branch, own = copy.deepcopy(state), _Clock()
            with own:
                train_loop(branch, train_set, shorter, teacher, device)
            measure(branch, shorter, own)
            del branch
            if progress_file is not None:
                keep_progress(state)
        with clock:
            # past it, a continued run had kept this state before it was killed
            if save_to is not None and state.step <= longest.schedule.decay_start:
                train_loop(state, train_set, longest, teacher, device, until=longest.schedule.decay_start,
                           on_step=trunk_step)
                save_training_state(save_to, with_signals(state))
            train_loop(state, train_set, longest, teacher, device, on_step=trunk_step)
        measure(state, longest, _Clock())
    except CandidateFailed as failure:
        return [*results, {**base, "steps": steps[len(results)], "status": "failed", "reason": str(failure),
                           "wall_seconds": time.perf_counter() - start}]
    except (torch.cuda.OutOfMemoryError, MemoryError) as err:
        return [*results, {**base, "steps": steps[len(results)], "status": "failed",
                           "reason": f"out of memory: {str(err).splitlines()[0][:200]}",
                           "wall_seconds": time.perf_counter() - start}]
    return results


def _run_identity(spec: ArchSpec, budget: ProxyBudget, steps: list[int], teacher, yardstick, signals: bool,
                  resume_from) -> str:
    """What makes a kept progress file this run's: everything the results depend on."""
    return json.dumps({"spec": dump_spec(spec, "json", every_field=True), "budget": dataclasses.asdict(budget),
                       "steps": steps, "teacher": teacher is not None, "yardstick": yardstick is not None,
                       "signals": signals,
                       "resume_from": None if resume_from is None else str(resume_from)}, sort_keys=True, default=str)


def _read_progress(path: str | Path | None, run_id: str) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        progress = load_training_state(path)
    except NasfaceError:
        return None  # unreadable: the run starts again and overwrites it
    return progress if progress.get("run") == run_id else None


class _Clock:
    """Wall and CPU seconds spent inside ``with`` blocks, added up."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self._open = False

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self._open = True
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = self.reading()
        self._open = False

    def reading(self) -> tuple[float, float]:
        """The totals so far, the block in progress included."""
        if not self._open:
            return self.wall, self.cpu
        return self.wall + time.perf_counter() - self._wall, self.cpu + time.process_time() - self._cpu
