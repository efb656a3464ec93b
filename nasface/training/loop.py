"""The training loop: SGD with a margin softmax and a distiller on a ``FaceSet``, resumable to the bit.

One loop serves the proxy (``nasface.training.proxy``) and full training (``nasface.fulltrain``,
with its own ``TrainingPlan``: the papers' step decay, a teacher network run on every batch, and
checkpoints).  Read top to bottom: state -> checkpoint -> steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasface.data import FaceSet
from nasface.training.evaluate import to_input_tensor
from nasface.training.losses import make_distiller, margin_loss
from nasface.training.settings import LoopSettings, Teacher

class CandidateFailed(Exception):
    """A candidate that cannot finish (diverged, out of memory): recorded, not fatal."""


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
    schedule = budget.schedule
    state.model.train()
    # Denormal floats make CPU backward passes crawl (measured: 40 % of a MobileFaceNet step).
    # The flag is process-wide, so it is set for the loop only and put back to torch's default.
    flush = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
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
    finally:
        if flush:
            torch.set_flush_denormal(False)
    return state
