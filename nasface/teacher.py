"""The teacher: trained or loaded once, its view of the proxy images cached with the study.

``--teacher none | auto | PATH``

- ``auto`` trains a teacher spec (``--teacher-spec``; by default ``mobilefacenet`` on a CPU,
  ``iresnet50`` on a GPU) on the proxy training data with the same loop as the candidates, for several times
  their steps;
- ``PATH`` loads a checkpoint safely (``nasface.checkpoint``).

Either way the teacher's embeddings of every proxy training image (and of its mirror image) and
its class centres are computed **once** and written to ``CACHE/teacher-<key>/``; candidates read
those arrays and never run the teacher.  The class centres are the trained head's (auto) or the
normalised mean embedding of each identity (a loaded teacher, trained on other identities).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from nasface.atomic import atomic_dir
from nasface.checkpoint import load_checkpoint, save_weights
from nasface.data import FaceSet
from nasface.data.base import file_fingerprint
from nasface.errors import NasfaceError
from nasface.evaluate import embed
from nasface.spec import load_spec, spec_to_dict
from nasface.train import ProxyBudget, TeacherTargets, build_student, make_loop_state, train_loop

TEACHER_STEPS_FACTOR = 4
ARRAYS = ("embeddings", "flipped", "centres")
HELD_OUT = "held_out"


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


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


def _targets_of(model: torch.nn.Module, train: FaceSet, device: torch.device,
                centres: np.ndarray | None = None, held_out: np.ndarray | None = None) -> TeacherTargets:
    """Embeddings of every training image and of its mirror; centres default to the class means;
    flip-summed embeddings of the ``held_out`` faces where given."""
    images = np.asarray(train.images)
    embeddings = embed(model, images, batch_size=128, device=device, flip=False)
    if centres is None:
        centres = mean_centres(embeddings, np.asarray(train.labels), train.num_identities)
    return TeacherTargets(
        embeddings=embeddings,
        flipped=embed(model, images[:, :, ::-1].copy(), batch_size=128, device=device, flip=False),
        centres=centres,
        held_out=None if held_out is None else embed(model, np.asarray(held_out), batch_size=128, device=device),
    )


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


def teacher_targets(teacher: str, train: FaceSet, data_key: str, cache_dir: str | os.PathLike,
                    budget: ProxyBudget, teacher_spec: str | None = None,
                    teacher_steps: int | None = None, log=print,
                    held_out: np.ndarray | None = None) -> TeacherTargets | None:
    """The cached teacher targets for ``--teacher`` (None for ``none``), built on first use.

    ``held_out``: the distinct verification faces of the same proxy data (``data_key``), whose
    teacher embeddings the teacher-agreement signal compares candidates with.
    """
    if teacher == "none":
        return None
    cache_dir = Path(cache_dir)
    device = budget.torch_device()
    if teacher == "auto":
        name, steps = auto_teacher(budget, teacher_spec, teacher_steps)
        spec = load_spec(name)
        teacher_budget = dataclasses.replace(budget, steps=steps, distill="none")
        folder = cache_dir / f"teacher-{_key(data_key, spec_to_dict(spec), dataclasses.asdict(teacher_budget))}"
        if (folder / "teacher.json").is_file():
            return read_teacher(folder)
        log(f"training the teacher ({spec.name}, {steps} steps) once for this data; cached in {folder}")
        torch.manual_seed(budget.seed)
        model = build_student(spec, budget.resolution)
        state = make_loop_state(model, train.num_identities, spec.embedding.size, teacher_budget, None, device)
        train_loop(state, train, teacher_budget, None, device)
        targets = _targets_of(state.model, train, device, head_centres(state.head), held_out)
        info = {"teacher": "auto", "spec": spec.name, "steps": steps, "data": data_key,
                "final_loss": float(np.mean(state.losses[-10:]))}
        return _write_targets(folder, targets, info,
                              lambda staging: save_weights(staging / "teacher.safetensors", model, spec))
    path = Path(teacher)
    if not path.exists():
        raise NasfaceError(f"--teacher {teacher}: no such checkpoint (use auto, none, or the path of a "
                           f".safetensors / .pt checkpoint)")
    # path, size, mtime: the key the cache had before file_fingerprint was shared, so caches stay valid
    folder = cache_dir / f"teacher-{_key(data_key, *file_fingerprint(path).values())}"
    if (folder / "teacher.json").is_file():
        return read_teacher(folder)
    spec, model = load_checkpoint(path, teacher_spec)
    model.to(device)
    log(f"embedding the proxy images with the teacher {path} ({spec.name}) once; cached in {folder}")
    targets = _targets_of(model, train, device, held_out=held_out)
    return _write_targets(folder, targets, {"teacher": str(path), "spec": spec.name, "data": data_key})
