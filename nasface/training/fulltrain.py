"""``nasface train RECIPE``: full training of an exported spec, resumable, with recursive distillation.

The run, top to bottom:

1. ``prepare_training`` reads the recipe (plus any overrides), and checks everything before a byte
   is written: the spec, the data source, the verification ``.bin`` files, the teacher (a
   checkpoint of the right kind, ``auto`` or ``none``), the device, and the output folder (a run
   already there is continued only with ``resume`` and only with the same recipe and spec).
2. ``run_training`` decodes the training faces once into a memory-mapped cache, then trains the
   *stages* in order with the proxy's loop (``nasface.training.loop.train_loop``) under the papers' step
   decay: the teacher first when the recipe says ``teacher: auto``, then generations 1..N of the
   student, generation k+1 distilling from generation k (VarGFaceNet's recursive knowledge
   distillation; generation 1 distils from the recipe's teacher).
3. Every ``checkpoint_every`` steps the model, margin head, distiller, optimiser, step and RNG
   state go to ``checkpoint.pt`` (atomically); a killed run continues from there with
   ``resume`` and ends at the same step count, on CPU with the same weights.  Every
   ``eval_every`` steps, and at the end of each stage, the network is verified on the ``.bin``
   files.  A finished stage leaves ``<stage>.safetensors``; the last one is copied to
   ``model.safetensors``, with ``spec.yaml`` beside it.

Over 400 lines on purpose: the run reads top to bottom in one file, as arcface_torch's training
does; what it shows and logs is apart (``nasface.training.events``, ``nasface.ui.training_progress``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nasface.core.keys import json_digest
from nasface.core.atomic import atomic_dir, atomic_path, write_atomic
from nasface.arch.checkpoint import (load_checkpoint, load_training_state, read_metadata, save_training_state,
                                     save_weights)
from nasface.data import FaceSet, PairSet, open_source, read_bin
from nasface.data.base import FACE_SHAPE, FACE_SIZE, FaceSourceBase, file_fingerprint
from nasface.core.errors import NasfaceError
from nasface.training.evaluate import embed, evaluate_pairs
from nasface.training.recipe import DATA_PLACEHOLDER, TEACHER_PLACEHOLDER, Recipe, load_recipe
from nasface.arch.model import build_model
from nasface.training.events import FINAL_LOSS_STEPS, TrainingEvents
from nasface.core.stages import SILENT, Stages
from nasface.arch.spec import ArchSpec, load_spec, save_spec, spec_to_dict
from nasface.training.teacher import (TEACHER_EMBEDDING, add_to_centres, default_teacher_spec, head_centres,
                                      normalised_centres)
from nasface.training.loop import CandidateFailed, LoopState, loop_checkpoint, make_loop_state, restore_loop, train_loop
from nasface.training.settings import LoopSettings, StepDecaySchedule, TeacherNetwork, check_device, resolve_device

RUN_FILE = "run.json"              # what the run is (recipe, spec, data, teacher): checked on resume
CHECKPOINT_FILE = "checkpoint.pt"  # the resumable state of the stage in progress
FINAL_WEIGHTS = "model.safetensors"
RESULT_FILE = "result.json"
LOG_FILE = "log.jsonl"
TEACHER_STAGE = "teacher"
TEACHER_SUFFIXES = (".safetensors", ".pt", ".pth")
# Bump when the decoded-faces cache layout changes, so old caches are not reused.
FACES_CACHE_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class TrainingPlan(LoopSettings):
    """What the shared loop needs for one stage: full training's counterpart of ``ProxyBudget``."""

    schedule: StepDecaySchedule


def plan_from_recipe(recipe: Recipe, images: int) -> TrainingPlan:
    """The recipe's schedule in steps: ``epochs`` over ``images`` faces, unless ``steps`` is set.

    Decay points and warm-up are placed at the same fraction of the run either way, so
    ``--steps 200`` keeps the papers' lr / 10 at 9/16, 13/16 and 15/16 of the run.
    """
    steps = recipe.steps or max(1, math.ceil(recipe.epochs * images / recipe.batch_size))
    steps_per_epoch = steps / recipe.epochs
    schedule = StepDecaySchedule(decay_steps=tuple(round(epoch * steps_per_epoch) for epoch in recipe.lr_steps),
                                 warmup_steps=round(recipe.warmup_epochs * steps_per_epoch))
    return TrainingPlan(steps=steps, batch_size=recipe.batch_size, schedule=schedule, seed=recipe.seed,
                        **recipe.optimisation())


@dataclass(frozen=True)
class Stage:
    """One network the run trains: the ``auto`` teacher, or a generation of the student.

    ``teacher`` is None (no distillation), the name of an earlier stage, or a checkpoint path.
    """

    name: str
    spec: ArchSpec
    teacher: str | None
    seed: int


@dataclass(frozen=True)
class TrainingRun:
    """A checked full-training run, ready for ``run_training``; nothing has been written yet."""

    recipe: Recipe
    spec: ArchSpec
    source: FaceSourceBase
    images: int
    identities: int
    val_pairs: tuple[PairSet, ...]
    stages: tuple[Stage, ...]
    plan: TrainingPlan
    output: Path
    cache_dir: Path
    device: torch.device
    fingerprint: dict

    def stage_plan(self, stage: Stage) -> TrainingPlan:
        return dataclasses.replace(self.plan, seed=stage.seed,
                                   distill=self.plan.distill if stage.teacher is not None else "none")

    def weights_path(self, stage_name: str) -> Path:
        return self.output / f"{stage_name}.safetensors"

    def centres_path(self, teacher: str) -> Path:
        """Class centres of a teacher (a stage, or the recipe's checkpoint), which margin distillation
        copies into the student's head."""
        name = teacher if teacher in {stage.name for stage in self.stages} else TEACHER_STAGE
        return self.output / f"{name}.centres.npy"


@dataclass(frozen=True)
class TrainingResult:
    output: Path
    weights: Path
    spec: Path
    stages: list[dict]          # per stage: name, steps, final_loss, verification {bin: metrics}
    wall_seconds: float


# -- checking the inputs: nothing is written before all of them are right ----------------------------
def _open_training_source(recipe: Recipe, data: FaceSourceBase | None) -> FaceSourceBase:
    if data is not None:
        return data
    if recipe.data == DATA_PLACEHOLDER:
        raise NasfaceError("recipe.data: fill in the training data (a RecordIO folder, an image folder, orl or "
                           "synthetic), or pass --data")
    return open_source(recipe.data)


def _teacher_spec_of_checkpoint(path: str, teacher_spec: str | None) -> ArchSpec:
    """Load the recipe's teacher once to prove it is a checkpoint nasface can run (one line if not)."""
    if not Path(path).is_file():
        raise NasfaceError(f"teacher {path}: no such checkpoint (use auto, none, or the path of a "
                           f".safetensors / .pt checkpoint)")
    if Path(path).suffix not in TEACHER_SUFFIXES:
        raise NasfaceError(f"teacher {path}: not a checkpoint ({' / '.join(TEACHER_SUFFIXES)}); use auto, none, "
                           f"or a network's weights")
    spec, _ = load_checkpoint(path, teacher_spec)
    return spec


def _check_full_size(spec: ArchSpec, role: str) -> None:
    if spec.input_size != FACE_SIZE:
        raise NasfaceError(f"the {role} {spec.name} is built for {spec.input_size}x{spec.input_size} input; full "
                           f"training feeds {FACE_SIZE}x{FACE_SIZE} faces: use its spec with input_size "
                           f"{FACE_SIZE}")


def _stages(recipe: Recipe, spec: ArchSpec, device: torch.device) -> tuple[Stage, ...]:
    """The teacher (``auto``) and every generation, each knowing whom it distils from."""
    if recipe.distill != "none" and recipe.teacher == TEACHER_PLACEHOLDER:
        raise NasfaceError("recipe.teacher: fill in a teacher checkpoint, auto or none, or pass --teacher")
    stages: list[Stage] = []
    first_teacher: str | None = None
    if recipe.distill != "none" and recipe.teacher == "auto":
        teacher_spec = load_spec(recipe.teacher_spec or default_teacher_spec(device))
        _check_full_size(teacher_spec, "teacher")
        stages.append(Stage(TEACHER_STAGE, teacher_spec, None, recipe.seed))
        first_teacher = TEACHER_STAGE
    elif recipe.distill != "none" and recipe.teacher != "none":
        teacher_spec = _teacher_spec_of_checkpoint(recipe.teacher, recipe.teacher_spec)
        _check_full_size(teacher_spec, "teacher")
        first_teacher = recipe.teacher
    else:
        teacher_spec = None
    if recipe.distill == "margin":
        if recipe.margin != "arcface":
            raise NasfaceError("recipe.distill: margin distillation sets ArcFace's margin per sample; "
                               "use margin: arcface")
    for generation in range(1, recipe.generations + 1):
        teacher = first_teacher if generation == 1 else f"generation-{generation - 1}"
        stages.append(Stage(f"generation-{generation}", spec, teacher, recipe.seed + len(stages)))
    return tuple(stages)


def _fingerprint(recipe: Recipe, spec: ArchSpec, source: FaceSourceBase, plan: TrainingPlan,
                 stages: tuple[Stage, ...]) -> dict:
    """Everything that decides the weights; a run is resumed only when all of it is unchanged.

    Device, checkpoint and evaluation intervals and the ``.bin`` files may change between kill and
    resume: they do not change what is trained.
    """
    teacher = recipe.teacher if recipe.teacher in ("auto", "none") else file_fingerprint(recipe.teacher)
    names = {stage.name for stage in stages}
    fingerprint = {"spec": spec_to_dict(spec), "plan": dataclasses.asdict(plan),
                   "generations": recipe.generations, "teacher": teacher,
                   # a checkpoint teacher is named by its file (above), however its path was written
                   "stages": [{"name": stage.name, "spec": spec_to_dict(stage.spec),
                               "teacher": stage.teacher if stage.teacher in names | {None} else "checkpoint"}
                              for stage in stages],
                   "data": json_digest(source.fingerprint(), 64, default=str)}
    return json.loads(json.dumps(fingerprint))  # tuples as lists: the form run.json reads back


def _first_difference(old, new, where: str = "") -> str:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(key for key in old if key not in new)]:
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{where}.{key}" if where else key)
    return f"{where}: {json.dumps(old)[:60]} there, {json.dumps(new)[:60]} now"


def _check_output(output: Path, fingerprint: dict, resume: bool) -> None:
    run_file = output / RUN_FILE
    if not run_file.is_file():
        return
    if not resume:
        raise NasfaceError(f"{output} already holds a training run; pass --resume to continue it, or choose "
                           f"another output folder")
    try:
        started = json.loads(run_file.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError) as err:
        raise NasfaceError(f"{run_file}: unreadable ({err}); choose another output folder") from None
    if started != fingerprint:
        difference = _first_difference(started, fingerprint)
        raise NasfaceError(f"{output} was trained with another recipe or spec ({difference}); resume with the "
                           f"same recipe and options, or choose another output folder")


def prepare_training(recipe: Recipe | str | os.PathLike, *, output: str | os.PathLike | None = None,
                     resume: bool = False, data: str | FaceSourceBase | None = None,
                     cache_dir: str | os.PathLike | None = None, progress: Stages = SILENT,
                     **overrides) -> TrainingRun:
    """Check a full-training run without writing anything.

    ``recipe`` is a ``recipe.yaml`` path or a ``Recipe``; ``overrides`` replace recipe fields
    (``steps=200``, ``batch_size=32``, ``teacher="none"``, ``device="cpu"``, ``val_bins=[...]``...;
    None means "as the recipe says").  ``data`` is a source name or path (``"orl"``), or a face
    source object (``nasface.data.open_source("synthetic", num_identities=50)``).  ``output``
    defaults to ``run/`` beside the recipe file; decoded faces are cached in ``cache_dir``
    (default ``.cache/`` beside the output folder).  An aligned source's photos are aligned (once,
    cached) as a stage of ``progress``.
    """
    if isinstance(recipe, Recipe):
        if output is None:
            raise NasfaceError("give an output folder for a recipe that is not read from a file")
    else:
        recipe_path = Path(recipe)
        recipe = load_recipe(recipe_path)
        output = recipe_path.parent / "run" if output is None else output
    if isinstance(data, str):
        overrides["data"], data = data, None
    if overrides.get("val_bins") is not None:
        overrides["val_bins"] = tuple(overrides["val_bins"])
    recipe = dataclasses.replace(recipe, **{key: value for key, value in overrides.items() if value is not None})
    recipe.check()
    check_device(recipe.device)
    device = resolve_device(recipe.device)
    spec = load_spec(recipe.spec)
    _check_full_size(spec, "spec")
    source = _open_training_source(recipe, data)
    source.prepare(progress)
    counts = [len(images) for _, images in source.plan(None, None, 0)]
    if len(counts) < 2:
        raise NasfaceError(f"data source '{source.name}' has {len(counts)} identity; a margin softmax needs "
                           f"at least 2")
    source.load(identities=[0], per_identity=1)  # a face decodes as training will decode them all
    val_pairs = tuple(read_bin(path) for path in recipe.val_bins)
    stages = _stages(recipe, spec, device)
    plan = plan_from_recipe(recipe, sum(counts))
    fingerprint = _fingerprint(recipe, spec, source, plan, stages)
    output = Path(output)
    _check_output(output, fingerprint, resume)
    return TrainingRun(recipe=recipe, spec=spec, source=source, images=sum(counts), identities=len(counts),
                       val_pairs=val_pairs, stages=stages, plan=plan, output=output,
                       cache_dir=Path(cache_dir) if cache_dir is not None else output.parent / ".cache",
                       device=device, fingerprint=fingerprint)


# -- the training faces, decoded once -------------------------------------------------------------------
def training_faces(source: FaceSourceBase, cache_dir: Path, reporter: "TrainingEvents") -> FaceSet:
    """Every face of ``source``, decoded once into ``cache_dir`` and memory-mapped from then on.

    A batch then costs a memory read, not ``batch_size`` JPEG decodes, and a resumed run does not
    decode again.  Decoded faces take 112 x 112 x 3 bytes each (3.8 GB per 100k faces).
    """
    key = json_digest({"version": FACES_CACHE_VERSION, "source": source.fingerprint()}, 20, default=str)
    folder = Path(cache_dir) / f"faces-{key}"
    if not (folder / "manifest.json").is_file():
        _decode_faces(source, folder, reporter)
    return FaceSet(np.load(folder / "images.npy", mmap_mode="r"), np.load(folder / "labels.npy"))


def _decode_faces(source: FaceSourceBase, folder: Path, reporter: "TrainingEvents") -> None:
    """Decode into a staging folder renamed into place (``atomic_dir``): a kill never leaves half a cache."""
    plan = source.plan(None, None, 0)
    total = sum(len(images) for _, images in plan)
    reporter.message(f"{source.making} {total:,} training faces of {len(plan):,} identities once into {folder}")
    with atomic_dir(folder, "manifest.json", "the decoded-faces cache") as staging:
        images = np.lib.format.open_memmap(staging / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=(total, *FACE_SHAPE))
        labels = np.empty(total, np.int64)
        with reporter.stages.stage(f"{source.making} training faces", total, "faces") as stage:
            source.write_plan(plan, images, labels, on_rows=stage.update)
        images.flush()
        del images
        np.save(staging / "labels.npy", labels)
        (staging / "manifest.json").write_text(json.dumps({"images": total, "identities": len(plan),
                                                           "source": source.name}) + "\n")


# -- one stage --------------------------------------------------------------------------------------------
def _class_centres(model: torch.nn.Module, faces: FaceSet, dim: int, device: torch.device, stages: Stages,
                   chunk: int = 4096) -> np.ndarray:
    """The normalised mean teacher embedding of each identity (a loaded teacher has no head for ours)."""
    sums = np.zeros((faces.num_identities, dim), np.float64)
    with stages.stage(TEACHER_EMBEDDING, len(faces.labels), "faces") as stage:
        for start in range(0, len(faces.labels), chunk):
            embeddings = embed(model, np.asarray(faces.images[start:start + chunk]), batch_size=256, device=device,
                               flip=False, on_batch=lambda done, first=start: stage.update(first + done))
            add_to_centres(sums, embeddings, faces.labels[start:start + chunk])
    return normalised_centres(sums)


def _load_teacher(run: TrainingRun, stage: Stage, faces: FaceSet, stages: Stages) -> TeacherNetwork | None:
    if stage.teacher is None or run.plan.distill == "none":
        return None
    from_stage = stage.teacher in {earlier.name for earlier in run.stages}
    path = run.weights_path(stage.teacher) if from_stage else Path(stage.teacher)
    spec, model = load_checkpoint(path, None if from_stage else run.recipe.teacher_spec)
    teacher = TeacherNetwork(model, spec.embedding.size).to(run.device)
    if run.plan.distill == "margin":
        centres_path = run.centres_path(stage.teacher)
        if not centres_path.is_file():  # a loaded teacher: centres from its embeddings, computed once
            _save_array(centres_path, _class_centres(teacher.model, faces, spec.embedding.size, run.device, stages))
        teacher.centres = np.load(centres_path)
    return teacher


def _save_array(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array)


def _checkpoint_state(state: LoopState, stage: Stage, fingerprint: dict) -> dict:
    """The loop's state, and which stage of which run it belongs to."""
    return {"stage": stage.name, "fingerprint": json.dumps(fingerprint, sort_keys=True), **loop_checkpoint(state)}


def _verify(run: TrainingRun, state: LoopState, stage: Stage, reporter: "TrainingEvents") -> dict:
    results = {}
    for pairs in run.val_pairs:
        metrics = evaluate_pairs(state.model, pairs, batch_size=256, device=run.device)
        results[pairs.name] = {key: metrics[key] for key in ("accuracy", "accuracy_std", "tar_at_far", "far")}
        reporter.verified(stage.name, state.step, pairs.name, results[pairs.name])
    return results


def _next_stop(step: int, steps: int, *intervals: int) -> int:
    return min([steps] + [(step // every + 1) * every for every in intervals])


def _train_stage(run: TrainingRun, stage: Stage, faces: FaceSet, saved: dict | None,
                 reporter: "TrainingEvents") -> dict:
    plan = run.stage_plan(stage)
    teacher = _load_teacher(run, stage, faces, reporter.stages)
    torch.manual_seed(stage.seed)
    model = build_model(stage.spec)
    state = make_loop_state(model, faces.num_identities, stage.spec.embedding.size, plan, teacher, run.device)
    if saved is not None:
        restore_loop(state, saved)
    reporter.stage_started(stage.name, state.step, plan.steps)
    verification: dict = {}
    try:
        while state.step < plan.steps:
            stop = _next_stop(state.step, plan.steps, run.recipe.checkpoint_every, run.recipe.eval_every)
            train_loop(state, faces, plan, teacher, run.device, until=stop,
                       on_step=lambda current: reporter.stepped(stage.name, current, plan))
            if state.step % run.recipe.checkpoint_every == 0 and state.step < plan.steps:
                save_training_state(run.output / CHECKPOINT_FILE, _checkpoint_state(state, stage, run.fingerprint))
                reporter.checkpointed(stage.name, state.step)
            if state.step % run.recipe.eval_every == 0 or state.step == plan.steps:
                verification = _verify(run, state, stage, reporter)
    except CandidateFailed as failure:
        raise NasfaceError(f"{stage.name} {failure}; lower the recipe's lr and train into a new output folder "
                           f"(the last checkpoint is kept)") from None
    except torch.cuda.OutOfMemoryError:
        raise NasfaceError(f"{stage.name}: out of GPU memory at batch size {plan.batch_size}; lower it "
                           f"(--batch) and train into a new output folder") from None
    final_loss = float(np.mean(state.losses[-FINAL_LOSS_STEPS:])) if state.losses else None
    summary = {"name": stage.name, "spec": stage.spec.name, "teacher": stage.teacher, "steps": state.step,
               "final_loss": final_loss, "verification": verification}
    if run.plan.distill == "margin":  # the next generation distils with this stage's centres
        _save_array(run.centres_path(stage.name), head_centres(state.head))
    save_weights(run.weights_path(stage.name), state.model, stage.spec,
                 metadata={"stage": stage.name, "step": state.step, "steps": plan.steps,
                           "summary": json.dumps(summary)})
    reporter.stage_finished(summary)
    return summary


# -- the run --------------------------------------------------------------------------------------------
def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def run_training(run: TrainingRun, reporter: "TrainingEvents | None" = None) -> TrainingResult:
    """Train every stage of ``run`` (continuing a killed run when it was prepared with ``resume``)."""
    reporter = reporter or TrainingEvents()
    started = time.perf_counter()
    try:
        faces = training_faces(run.source, run.cache_dir, reporter)
        run.output.mkdir(parents=True, exist_ok=True)
        reporter.log_to(run.output / LOG_FILE)
        if not (run.output / RUN_FILE).is_file():
            write_atomic(run.output / RUN_FILE, json.dumps({"fingerprint": run.fingerprint,
                                                            "recipe": dataclasses.asdict(run.recipe)},
                                                           indent=1, default=str) + "\n")
        spec_path = save_spec(run.spec, run.output / "spec.yaml")
        checkpoint = run.output / CHECKPOINT_FILE
        saved = load_training_state(checkpoint) if checkpoint.is_file() else None
        if saved is not None and saved.get("fingerprint") != json.dumps(run.fingerprint, sort_keys=True):
            raise NasfaceError(f"{checkpoint} belongs to another run than {run.output / RUN_FILE}; delete it to "
                               f"train from the start")
        finished = [stage.name for stage in run.stages if run.weights_path(stage.name).is_file()]
        if saved is not None:
            where = f"resuming {saved['stage']} at step {int(saved['step']):,}"
        else:
            where = f"resuming after {finished[-1]}" if finished else "from the start"
        reporter.run_started(run, where)
        summaries = []
        for stage in run.stages:
            stage_weights = run.weights_path(stage.name)
            if stage_weights.is_file():  # trained before the run was killed
                summaries.append(json.loads(read_metadata(stage_weights)["summary"]))
                reporter.skipped(stage.name, run.plan.steps)
                continue
            resume_from = saved if saved is not None and saved["stage"] == stage.name else None
            summaries.append(_train_stage(run, stage, faces, resume_from, reporter))
        weights = run.output / FINAL_WEIGHTS
        _copy_atomic(run.weights_path(run.stages[-1].name), weights)
        checkpoint.unlink(missing_ok=True)  # the run is complete: nothing is left to resume
        result = TrainingResult(output=run.output, weights=weights, spec=spec_path, stages=summaries,
                                wall_seconds=time.perf_counter() - started)
        write_atomic(run.output / RESULT_FILE, json.dumps(
            {"weights": str(weights), "spec": str(spec_path), "stages": summaries}, indent=1) + "\n")
        reporter.finished(result)
        return result
    finally:
        reporter.close()


def train_recipe(recipe: Recipe | str | os.PathLike, *, output: str | os.PathLike | None = None,
                 resume: bool = False, data: FaceSourceBase | None = None,
                 cache_dir: str | os.PathLike | None = None, reporter: "TrainingEvents | None" = None,
                 **overrides) -> TrainingResult:
    """``prepare_training`` then ``run_training``: what ``nasface train`` does."""
    run = prepare_training(recipe, output=output, resume=resume, data=data, cache_dir=cache_dir, **overrides)
    return run_training(run, reporter)
