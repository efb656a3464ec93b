"""The teacher: trained or loaded once, its view of the proxy images cached with the study.

``--teacher none | auto | dlib-resnet | PATH``

- ``auto`` trains a teacher spec (``--teacher-spec``; by default ``mobilefacenet`` on a CPU,
  ``iresnet50`` on a GPU) on the proxy training data with the same loop as the candidates, for several times
  their steps;
- ``dlib-resnet`` is dlib's pretrained ResNet face embedder (128-d, the ``nasface[dlib]`` extra): each
  112 x 112 crop is cut into dlib's 150 x 150 chip around its 5 landmarks (``nasface.data.dlib_models``);
- ``PATH`` loads a checkpoint safely (``nasface.arch.checkpoint``).

Either way the teacher's embeddings of every proxy training image (and of its mirror image) and
its class centres are computed **once** and written to ``CACHE/teacher-<key>/``; candidates read
those arrays and never run the teacher.  The class centres are the trained head's (auto) or the
normalised mean embedding of each identity (a loaded or pretrained teacher, trained on other
identities).  ``teacher.json`` beside them says what the teacher is and how well it verifies the
held-out pairs itself (``verification``), the ceiling its students are distilled towards; its
flip-summed embeddings of the distinct held-out faces (``held_out.npy``) are what the
teacher-agreement signal compares each candidate with.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from nasface.core.keys import json_digest
from nasface.core.atomic import atomic_dir
from nasface.arch.checkpoint import load_checkpoint, save_weights
from nasface.data import PairSet, ProxyData
from nasface.data.base import file_fingerprint
from nasface.core.errors import NasfaceError
from nasface.training.evaluate import distinct_faces, embed, pair_metrics
from nasface.core.stages import SILENT, Stages
from nasface.arch.spec import load_spec, spec_to_dict
from nasface.training.loop import make_loop_state, train_loop
from nasface.training.proxy import build_student
from nasface.training.settings import ProxyBudget, TeacherTargets

logger = logging.getLogger(__name__)

TEACHER_STEPS_FACTOR = 4
ARRAYS = ("embeddings", "flipped", "centres")
HELD_OUT = "held_out"
DLIB_TEACHER = "dlib-resnet"
TEACHER_CHOICES = f"auto, none, {DLIB_TEACHER}, or the path of a .safetensors / .pt checkpoint"
# Bump when the dlib teacher's crops -> chips -> embeddings change, so old caches are not reused.
DLIB_TEACHER_VERSION = 1
# The stages a teacher reports (``nasface.ui.progress``); the search times its candidates by the first.
TEACHER_TRAINING, TEACHER_EMBEDDING, DLIB_CHIPS = "teacher training", "teacher embedding", "dlib face chips"


def _key(*parts) -> str:
    return json_digest(parts, 16, default=str)


def read_teacher(folder: str | os.PathLike) -> TeacherTargets:
    """The cached teacher targets in ``folder``, memory-mapped (what every worker reads)."""
    folder = Path(folder)
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in ARRAYS}
    held_out = folder / f"{HELD_OUT}.npy"  # absent from caches written before the signal existed
    return TeacherTargets(**arrays, folder=str(folder),
                          held_out=np.load(held_out, mmap_mode="r", allow_pickle=False) if held_out.is_file() else None)


def default_teacher_spec(device: torch.device) -> str:
    """What ``teacher: auto`` trains unless told: a strong network where a GPU can train it,
    MobileFaceNet on a CPU (the proxy's teacher and full training's alike)."""
    return "iresnet50" if device.type == "cuda" else "mobilefacenet"


def _write_targets(folder: Path, targets: TeacherTargets, info: dict, write_extra=None) -> TeacherTargets:
    """Write the cache into a staging folder renamed into place (``atomic_dir``): never half written."""
    with atomic_dir(folder, "teacher.json", "the teacher cache") as staging:
        for name in (*ARRAYS, HELD_OUT):
            if getattr(targets, name) is not None:
                np.save(staging / f"{name}.npy",
                        np.ascontiguousarray(getattr(targets, name), dtype=np.float32))
        (staging / "teacher.json").write_text(json.dumps(info, indent=2) + "\n")
        if write_extra is not None:
            write_extra(staging)
    return read_teacher(folder)


def _targets_of(model: torch.nn.Module, data: ProxyData, device: torch.device, progress: Stages,
                centres: np.ndarray | None = None) -> tuple[TeacherTargets, dict]:
    """Embeddings of every training image and of its mirror (centres default to the class means),
    of the distinct held-out faces (flip-summed, as candidates are scored), and the teacher's own
    verification of the pairs: one stage, counted in forward passes of a face."""
    train = data.train
    images = np.asarray(train.images)
    pair_images = np.asarray(data.pairs.images)
    distinct, slot = distinct_faces(pair_images)
    count = len(images)
    with progress.stage(TEACHER_EMBEDDING, 2 * count + 2 * len(distinct), "faces") as stage:
        embeddings = embed(model, images, batch_size=128, device=device, flip=False, on_batch=stage.update)
        flipped = embed(model, images[:, :, ::-1].copy(), batch_size=128, device=device, flip=False,
                        on_batch=lambda done: stage.update(count + done))
        faces = embed(model, pair_images[distinct], batch_size=128, device=device,
                      on_batch=lambda done: stage.update(2 * count + 2 * done))
    if centres is None:
        centres = mean_centres(embeddings, np.asarray(train.labels), train.num_identities)
    targets = TeacherTargets(embeddings=embeddings, flipped=flipped, centres=centres, held_out=faces)
    return targets, _summary(pair_metrics(faces, slot, data.pairs.issame), data.pairs)


def _unit_rows(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def add_to_centres(sums: np.ndarray, embeddings: np.ndarray, labels: np.ndarray) -> None:
    """Add each L2-normalised embedding to its identity's row of ``sums`` (float64, classes x dim);
    called chunk by chunk where the embeddings of a whole training set do not fit in memory."""
    np.add.at(sums, labels, _unit_rows(embeddings))


def normalised_centres(sums: np.ndarray) -> np.ndarray:
    return _unit_rows(sums).astype(np.float32)


def head_centres(head: torch.nn.Module) -> np.ndarray:
    """A trained margin head's class centres: its weight rows, L2-normalised."""
    return torch.nn.functional.normalize(head.weight.detach().float(), dim=1).cpu().numpy()


def mean_centres(embeddings: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """The normalised mean of each identity's normalised embeddings."""
    sums = np.zeros((classes, embeddings.shape[1]), dtype=np.float64)
    add_to_centres(sums, embeddings, labels)
    return normalised_centres(sums)


def auto_teacher(budget: ProxyBudget, teacher_spec: str | None = None,
                 teacher_steps: int | None = None) -> tuple[str, int]:
    """What ``--teacher auto`` trains (``default_teacher_spec`` unless told), and for how many steps
    (several times the candidates')."""
    return teacher_spec or default_teacher_spec(budget.torch_device()), teacher_steps or TEACHER_STEPS_FACTOR * budget.steps


def check_teacher(teacher: str, teacher_spec: str | None = None, flag: str = "--teacher") -> None:
    """Raise NasfaceError unless ``--teacher`` (and ``--teacher-spec``) can be used; writes nothing.
    ``flag`` is the option named in the message (a fidelity study's ``--yardstick`` is a teacher too)."""
    if teacher_spec is not None and teacher in ("none", DLIB_TEACHER):
        raise NasfaceError(f"--teacher-spec {teacher_spec}: {flag} {teacher} builds no teacher from an architecture; "
                           f"drop --teacher-spec, or give {flag} auto or a checkpoint")
    if teacher == "auto":
        if teacher_spec is not None:
            load_spec(teacher_spec)
    elif teacher == DLIB_TEACHER:
        from nasface.data.dlib_models import model_versions

        model_versions()  # without the extra: one line saying what to install
    elif teacher != "none":
        if not Path(teacher).exists():
            raise NasfaceError(f"{flag} {teacher}: no such checkpoint (use {TEACHER_CHOICES})")
        load_checkpoint(teacher, teacher_spec)  # another architecture's weights fail here


def _summary(metrics: dict, pairs: PairSet) -> dict:
    return {"pairs_name": pairs.name,
            **{key: metrics[key] for key in ("accuracy", "accuracy_std", "tar_at_far", "far", "pairs")}}


def teacher_info(targets: TeacherTargets) -> dict:
    """What ``teacher.json`` says about the cached teacher (what it is; how well it verifies)."""
    return json.loads((Path(targets.folder) / "teacher.json").read_text())


def verification_line(info: dict) -> str:
    """One line on how well the teacher itself verifies the held-out pairs."""
    metrics = info["verification"]
    tar = "" if metrics["tar_at_far"] is None else f", TAR {metrics['tar_at_far']:.3f} at FAR {metrics['far']:g}"
    return (f"teacher {info['teacher']} verifies {metrics['pairs_name']} at {metrics['accuracy']:.4f} "
            f"(10-fold accuracy over {metrics['pairs']} pairs{tar})")


def teacher_targets(teacher: str, data: ProxyData, cache_dir: str | os.PathLike, budget: ProxyBudget,
                    teacher_spec: str | None = None, teacher_steps: int | None = None,
                    progress: Stages = SILENT) -> TeacherTargets | None:
    """The cached teacher targets for ``--teacher`` (None for ``none``), built on first use.

    Building them also scores the teacher itself on ``data``'s verification pairs, kept in
    ``teacher.json`` and logged (this module's logger) each time.  Training and embedding are stages of ``progress``
    (``TEACHER_TRAINING``, ``TEACHER_EMBEDDING``; dlib's teacher cuts ``DLIB_CHIPS`` first)."""
    if teacher == "none":
        return None
    targets = _cached_targets(teacher, data, Path(cache_dir), budget, teacher_spec, teacher_steps, progress)
    info = teacher_info(targets)
    if "verification" in info:  # caches written before teachers were scored lack it
        logger.info(verification_line(info))
    return targets


def _cached_targets(teacher: str, data: ProxyData, cache_dir: Path, budget: ProxyBudget,
                    teacher_spec: str | None, teacher_steps: int | None, progress: Stages) -> TeacherTargets:
    train, data_key = data.train, data.key
    device = budget.torch_device()
    if teacher == DLIB_TEACHER:
        return _dlib_targets(data, cache_dir, progress)
    if teacher == "auto":
        name, steps = auto_teacher(budget, teacher_spec, teacher_steps)
        spec = load_spec(name)
        # the teacher's own schedule (warm-up a tenth of its steps), whatever warm-up the candidates
        # share: successive halving pins theirs to its lowest rung, and --rungs must not change the teacher
        teacher_budget = dataclasses.replace(budget, steps=steps, distill="none", warmup_steps=None)
        folder = cache_dir / f"teacher-{_key(data_key, spec_to_dict(spec), dataclasses.asdict(teacher_budget))}"
        if (folder / "teacher.json").is_file():
            return read_teacher(folder)
        logger.info(f"training the teacher ({spec.name}, {steps} steps) once for this data; cached in {folder}")
        torch.manual_seed(budget.seed)
        model = build_student(spec, budget.resolution)
        state = make_loop_state(model, train.num_identities, spec.embedding.size, teacher_budget, None, device)
        with progress.stage(TEACHER_TRAINING, steps, "steps") as stage:
            train_loop(state, train, teacher_budget, None, device,
                       on_step=lambda now: stage.update(now.step, loss=float(np.mean(now.losses[-10:]))))
        targets, verification = _targets_of(state.model, data, device, progress, head_centres(state.head))
        info = {"teacher": "auto", "spec": spec.name, "steps": steps, "data": data_key,
                "final_loss": float(np.mean(state.losses[-10:])), "verification": verification}
        return _write_targets(folder, targets, info,
                              lambda staging: save_weights(staging / "teacher.safetensors", model, spec))
    path = Path(teacher)
    if not path.exists():
        raise NasfaceError(f"--teacher {teacher}: no such checkpoint (use {TEACHER_CHOICES})")
    # path, size, mtime: the key the cache had before file_fingerprint was shared, so caches stay valid
    folder = cache_dir / f"teacher-{_key(data_key, *file_fingerprint(path).values())}"
    if (folder / "teacher.json").is_file():
        return read_teacher(folder)
    spec, model = load_checkpoint(path, teacher_spec)
    model.to(device)
    logger.info(f"embedding the proxy images with the teacher {path} ({spec.name}) once; cached in {folder}")
    targets, verification = _targets_of(model, data, device, progress)
    return _write_targets(folder, targets, {"teacher": str(path), "spec": spec.name, "data": data_key,
                                            "verification": verification})


def _dlib_targets(data: ProxyData, cache_dir: Path, progress: Stages) -> TeacherTargets:
    """dlib's embeddings of every training crop and its mirror, once; see ``nasface.data.dlib_models``.

    The mirror's embedding is that of the mirrored chip: the landmarks of a mirrored face are the
    mirrored landmarks, so its chip is the mirrored chip, and dlib's detector runs once per crop.
    Cutting the chips (training crops, then the distinct held-out ones) and embedding them are two
    stages of ``progress``.
    """
    from nasface.data import dlib_models

    folder = cache_dir / f"teacher-{_key(data.key, DLIB_TEACHER, dlib_models.model_versions(), DLIB_TEACHER_VERSION)}"
    if (folder / "teacher.json").is_file():
        return read_teacher(folder)
    models = dlib_models.load_models()
    count = len(data.train.labels)
    logger.info(f"embedding the {count} proxy training faces and their mirrors with dlib's ResNet once; cached in "
        f"{folder}")
    images = np.asarray(data.pairs.images)
    distinct, slot = distinct_faces(images)
    with progress.stage(DLIB_CHIPS, count + len(distinct), "crops") as stage:
        clock = time.perf_counter()
        chips = dlib_models.face_chips(np.asarray(data.train.images), models, on_crop=stage.update)
        training_seconds = time.perf_counter() - clock  # with the training embeddings': seconds_per_face
        pair_chips = dlib_models.face_chips(images[distinct], models, on_crop=lambda done: stage.update(count + done))
    with progress.stage(TEACHER_EMBEDDING, 2 * (count + len(distinct)), "chips") as stage:
        clock = time.perf_counter()
        both = dlib_models.embed_chips(np.concatenate([chips.chips, chips.chips[:, :, ::-1]]), models,
                                       on_batch=stage.update)
        training_seconds += time.perf_counter() - clock
        mirrored = dlib_models.embed_chips(np.concatenate([pair_chips.chips, pair_chips.chips[:, :, ::-1]]),
                                           models, on_batch=lambda done: stage.update(2 * count + done))
    seconds_per_face = training_seconds / (2 * count)
    detected = int(chips.detected.sum())
    logger.info(f"dlib's detector found a face in {detected} of {count} training crops"
                + (f"; the landmarks of the other {count - detected} were sought in the box {chips.fallback_box} "
                   "(left, top, right, bottom)" if detected < count else ""))
    pair_faces = {"faces": len(distinct), "detected": int(pair_chips.detected.sum())}
    held_out = mirrored[:len(distinct)] + mirrored[len(distinct):]  # flip-summed, as candidates are scored
    metrics = pair_metrics(held_out, slot, data.pairs.issame)
    logger.info(f"dlib's detector found a face in {pair_faces['detected']} of the {pair_faces['faces']} held-out crops")
    embeddings, flipped = both[:count], both[count:]
    targets = TeacherTargets(embeddings=embeddings, flipped=flipped,
                             centres=mean_centres(embeddings, np.asarray(data.train.labels),
                                                  data.train.num_identities), held_out=held_out)
    info = {"teacher": DLIB_TEACHER, "data": data.key, "embedding_size": dlib_models.EMBEDDING_SIZE,
            "models": dlib_models.model_versions(), "training_faces": count, "detected": detected,
            "fallback_box": chips.fallback_box, "seconds_per_face": seconds_per_face,
            "verification": {**_summary(metrics, data.pairs), **pair_faces}}
    return _write_targets(folder, targets, info)
