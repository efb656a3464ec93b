"""The commands about one architecture's proxy score and its data: ``data`` and ``score``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from nasface.cli.base import NOTHING_HALF_WRITTEN, Device, on_interrupt, print_facts, progress_console


class Distill(str, Enum):
    angular = "angular"
    margin = "margin"
    none = "none"


class Margin(str, Enum):
    arcface = "arcface"
    cosface = "cosface"
    sphereface = "sphereface"


def _proxy_budget(steps: int | None, batch: int | None, resolution: int | None, seed: int, device: Device,
                  distill: Distill, margin: Margin = Margin.arcface):
    """The search's proxy (``ProxyBudget``'s defaults) with what the command line gave."""
    from nasface.training.settings import ProxyBudget

    budget = ProxyBudget.from_options({"proxy_steps": steps, "proxy_batch": batch, "resolution": resolution,
                                       "seed": seed, "device": device.value, "distill": distill.value,
                                       "margin": margin.value})
    budget.check()
    return budget


def data_command(
    source: str = typer.Argument(..., help="synthetic, orl, orl-aligned, an image folder (aligned:FOLDER aligns "
                                           "its photos), a RecordIO folder / prefix, or a .bin"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Describe a face data source: format, images, identities or pairs, that a sample decodes, and for an
    aligned source how many photos were aligned and which were not."""
    from nasface.data import describe
    from nasface.ui.progress import StageDisplay

    # aligning a folder of photos the first time takes a while: shown on stderr, stdout stays the facts
    print_facts(describe(source, StageDisplay("rich", progress_console)), as_json)


def score_command(
    spec: str = typer.Argument(..., help="A preset name or a spec file."),
    data: str = typer.Option("synthetic", help="synthetic, orl, an image folder or a RecordIO folder."),
    val_bin: str = typer.Option(None, help="Verify on this insightface .bin instead of held-out identities."),
    teacher: str = typer.Option("none", help="none, auto (train one, cached), dlib-resnet (pretrained; "
                                             "nasface[dlib]), or a checkpoint path."),
    teacher_spec: str = typer.Option(None, help="The teacher's preset or spec (auto: what to train)."),
    distill: Distill = typer.Option(Distill.angular, help="Distillation from the teacher."),
    margin: Margin = typer.Option(Margin.arcface, help="Margin softmax."),
    proxy_steps: int = typer.Option(None, help="SGD steps (0 scores the untrained network; default: the "
                                               "search's proxy)."),
    proxy_batch: int = typer.Option(None, help="Batch size (default: the search's proxy)."),
    resolution: int = typer.Option(None, help="Train at this input size (112: full size; less: cheaper; "
                                              "default: the search's proxy)."),
    seed: int = typer.Option(0),
    device: Device = typer.Option(Device.auto),
    cache_dir: Path = typer.Option(Path("studies") / ".cache", help="Where decoded data and teachers are cached."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Train one architecture briefly (the search's proxy) and score it on unseen identities."""
    from nasface.ui.progress import StageDisplay
    from nasface.search import DataSettings, load_proxy_data
    from nasface.arch.spec import load_spec
    from nasface.training.teacher import check_teacher, teacher_targets
    from nasface.training.proxy import score
    from nasface.ui.facts import score_lines

    arch = load_spec(spec)
    budget = _proxy_budget(proxy_steps, proxy_batch, resolution, seed, device, distill, margin)
    check_teacher(teacher, teacher_spec)
    # the stages (decoding, a teacher's training) on stderr: stdout is the metrics alone
    stages = StageDisplay("rich", progress_console)
    with on_interrupt(NOTHING_HALF_WRITTEN):
        proxy = load_proxy_data(DataSettings.for_source(data, val_bin=val_bin), seed, cache_dir, stages)
        targets = teacher_targets(teacher, proxy, cache_dir, budget, teacher_spec=teacher_spec,
                                  log=lambda m: progress_console.print(f"[dim]{m}[/dim]"), progress=stages)
        facts = score(arch, proxy.train, proxy.pairs, budget, targets)
    print_facts({"spec": spec, **facts} if as_json else facts, as_json, score_lines)
