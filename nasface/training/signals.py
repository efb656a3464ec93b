"""Ranking signals: what a candidate's brief training (and its untrained network) say about it.

The search needs one number per candidate that ranks architectures as longer training would.
Final verification accuracy is one candidate for that number; the literature offers others, and
``nasface fidelity`` measures which ranks best on the user's data.  Every trained candidate
records all of them (``score`` in ``nasface.training.proxy``), so a study can be re-ranked later:

- **from the training run it already does** (no second training): the loss trajectory's sum
  (Ru et al. 2021, "training speed estimation"), an exponential moving average of the loss, the
  loss at fixed fractions of the run; and, where a teacher is cached, the student's agreement with
  the teacher's embeddings of held-out faces (linear CKA, which compares embeddings of any width),
  and in a fidelity study optionally with a second, stronger teacher the student never learns
  from (a *yardstick*, e.g. dlib's pretrained ResNet), which tells agreement with a good network
  apart from agreement with the teacher the student was pulled towards;
- **zero-cost, at initialisation** (a few forward / backward passes on one or two batches):
  synflow (Tanaka et al. 2020), NASWOT (Mellor et al. 2021), ZiCo (Li et al. 2023), grad_norm and
  SNIP (as scored by Abdelfattah et al. 2021);
- **trivial baselines**: log FLOPs and log parameters.

Values are stored raw; ``SIGNALS[name].higher_is_better`` says which way each ranks, and
``oriented`` turns a value into "higher predicts better" for rank statistics.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from nasface.training.evaluate import to_input_tensor
from nasface.training.losses import margin_loss


@dataclass(frozen=True)
class Signal:
    name: str
    kind: str                # "training", "zero-cost" or "trivial"
    higher_is_better: bool
    help: str


LOSS_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
EMA_DECAY = 0.9

SIGNALS = {s.name: s for s in (
    Signal("accuracy", "training", True, "10-fold verification accuracy on held-out identities"),
    Signal("tar_at_far", "training", True, "true accepts at a false-accept rate of 1e-3"),
    Signal("loss_sum", "training", False, "sum of every step's training loss (training speed estimation)"),
    Signal("loss_ema", "training", False, f"exponential moving average of the loss (decay {EMA_DECAY}), last step"),
    *(Signal(f"loss_at_{round(f * 100)}", "training", False,
             f"mean loss over the tenth of the run ending at {round(f * 100)} % of it") for f in LOSS_FRACTIONS),
    Signal("teacher_cka", "training", True, "linear CKA of the student's and the teacher's held-out embeddings"),
    Signal("yardstick_cka", "training", True, "linear CKA of the student's held-out embeddings and those of a "
                                              "second teacher it does not learn from (nasface fidelity --yardstick)"),
    Signal("synflow", "zero-cost", True, "log10 of synaptic flow at initialisation"),
    Signal("naswot", "zero-cost", True, "log-determinant of the activation-pattern kernel of one batch"),
    Signal("zico", "zero-cost", True, "sum over layers of log(sum of mean |gradient| / std of gradient), 2 batches"),
    Signal("grad_norm", "zero-cost", True, "sum of the weight gradients' L2 norms at initialisation"),
    Signal("snip", "zero-cost", True, "sum of |weight x gradient| at initialisation"),
    Signal("log_flops", "trivial", False, "log10 of the FLOPs (fewer FLOPs ranked higher)"),
    Signal("log_params", "trivial", False, "log10 of the parameter count (fewer parameters ranked higher)"),
)}


# what a search's trials record: the yardstick exists only in a fidelity study
SEARCH_SIGNALS = tuple(name for name in SIGNALS if name != "yardstick_cka")


def oriented(name: str, value: float | None) -> float | None:
    """``value`` of signal ``name`` turned so that higher predicts a better network."""
    if value is None:
        return None
    return float(value) if SIGNALS[name].higher_is_better else -float(value)


# -- from the loss trajectory ---------------------------------------------------------------------
def loss_signals(losses: Sequence[float]) -> dict[str, float]:
    """Scores of one run's per-step training losses (empty for a run of no steps)."""
    values = np.asarray(losses, dtype=np.float64)
    if values.size == 0:
        return {}
    ema = values[0]
    for value in values[1:]:
        ema = EMA_DECAY * ema + (1.0 - EMA_DECAY) * value
    window = max(1, values.size // 10)
    result = {"loss_sum": float(values.sum()), "loss_ema": float(ema)}
    for fraction in LOSS_FRACTIONS:
        end = max(1, int(round(fraction * values.size)))
        result[f"loss_at_{round(fraction * 100)}"] = float(values[max(0, end - window):end].mean())
    return result


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two embeddings of the same N inputs (N x D1, N x D2).

    1 when one is a rotation and scaling of the other, whatever their widths; 0 for independent ones.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norm) if norm > 0 else 0.0


# -- at initialisation ------------------------------------------------------------------------------
def _weights(model: nn.Module) -> list[nn.Parameter]:
    """The convolution and fully connected weights (what the zero-cost scores sum over)."""
    return [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim >= 2]


def synflow(model: nn.Module, resolution: int) -> float | None:
    """log10 of sum(theta * dR/dtheta), R the sum of the output of the network with every parameter
    and buffer made non-negative, fed an all-ones image, in float64 (BatchNorm in eval mode: at
    initialisation its running statistics make it the identity)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in [*net.parameters(), *net.buffers()]:
            if tensor.is_floating_point():
                tensor.abs_()
    net.zero_grad(set_to_none=True)
    net(torch.ones(1, 3, resolution, resolution, dtype=torch.float64)).sum().backward()
    total = sum(float((p.detach() * p.grad).sum()) for p in _weights(net) if p.grad is not None)
    return math.log10(total) if math.isfinite(total) and total > 0 else None


def naswot(model: nn.Module, images: torch.Tensor) -> float:
    """log|det K| with K[i, j] the number of activation units on which images i and j agree
    (both positive or both not) at the input of every activation, over one batch."""
    net = copy.deepcopy(model).train()
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64)

    def record(module, inputs):  # before the module: ReLU and SiLU run in place
        codes = (inputs[0].detach().flatten(1) > 0).float()
        # agreements = both on + both off = n - r_i - r_j + 2 c_i.c_j, r the count of units on;
        # float32 is exact here (integers far below 2**24 per layer)
        on = codes.sum(dim=1)
        both_on = (codes @ codes.T).double()
        kernel.add_(codes.shape[1] - on[:, None].double() - on[None, :].double() + 2 * both_on)

    hooks = [m.register_forward_pre_hook(record) for m in net.modules() if isinstance(m, (nn.ReLU, nn.PReLU, nn.SiLU))]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for hook in hooks:
            hook.remove()
    return float(torch.linalg.slogdet(kernel)[1])


def batch_gradients(model: nn.Module, head: nn.Module,
                    batches: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[list[torch.Tensor]]:
    """The weight gradients of the margin loss on each batch, from the untrained network (a copy,
    in training mode as the proxy trains it)."""
    net, margin = copy.deepcopy(model).train(), copy.deepcopy(head)
    weights = _weights(net)
    gradients = []
    for images, labels in batches:
        net.zero_grad(set_to_none=True)
        margin.zero_grad(set_to_none=True)
        margin(net(images), labels).backward()
        gradients.append([torch.zeros_like(w) if w.grad is None else w.grad.detach().clone() for w in weights])
    return gradients


def zico(gradients: Sequence[Sequence[torch.Tensor]]) -> float | None:
    """Sum over weight tensors of log(sum of mean |g| / std g), the statistics taken element-wise
    over the batches' gradients (elements whose gradient does not vary are left out)."""
    total, layers = 0.0, 0
    for grads in zip(*gradients):
        stacked = torch.stack(grads).double()
        std = stacked.std(dim=0, unbiased=False)
        varies = std > 0
        if not bool(varies.any()):
            continue
        ratio = float((stacked.abs().mean(dim=0)[varies] / std[varies]).sum())
        if ratio > 0:
            total += math.log(ratio)
            layers += 1
    return total if layers else None


def grad_norm(gradients: Sequence[torch.Tensor]) -> float:
    """Sum of the L2 norms of the weight gradients of one batch."""
    return float(sum(float(g.norm()) for g in gradients))


def snip(model: nn.Module, gradients: Sequence[torch.Tensor]) -> float:
    """Sum of |weight x gradient| over the weights, for one batch's gradients."""
    return float(sum(float((w.detach() * g).abs().sum()) for w, g in zip(_weights(model), gradients)))


def zero_cost_signals(model: nn.Module, images: np.ndarray, labels: np.ndarray, num_classes: int,
                      embedding_size: int, resolution: int, margin: str, scale: float,
                      seed: int) -> dict[str, float | None]:
    """Every zero-cost score of the untrained ``model`` on two batches of training faces.

    ``images`` / ``labels``: the training set (uint8 N x 112 x 112 x 3, ints).  The model and
    torch's random state are left untouched, so the training that follows is the one it would
    have been without the scores.
    """
    rng = np.random.default_rng([seed, 7919])  # its own stream: the training batches stay as they are
    batches = []
    for _ in range(2):
        index = np.sort(rng.choice(len(labels), size=min(32, len(labels)), replace=False))
        batches.append((to_input_tensor(np.asarray(images[index])), torch.from_numpy(np.asarray(labels[index]))))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = margin_loss(margin, num_classes, embedding_size, s=scale)
        gradients = batch_gradients(model, head, batches)
    return {"synflow": synflow(model, resolution), "naswot": naswot(model, batches[0][0]),
            "zico": zico(gradients), "grad_norm": grad_norm(gradients[0]), "snip": snip(model, gradients[0])}


def trivial_signals(cost: dict) -> dict[str, float]:
    return {"log_flops": math.log10(max(1, cost["flops"])), "log_params": math.log10(max(1, cost["params"]))}
