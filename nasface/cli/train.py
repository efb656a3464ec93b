"""The commands after a search: ``train`` (full training of an exported spec; its options are
``nasface.cli.options.TRAIN_OPTIONS``) and ``onnx``."""

from __future__ import annotations

from pathlib import Path

import typer

from nasface.cli.base import Output, console, on_interrupt
from nasface.cli.options import TRAIN_OPTIONS, with_options


def train_command(
    recipe: Path = typer.Argument(..., help="The recipe.yaml that `nasface export` wrote."),
    progress: Output = typer.Option(Output.rich, help="What is shown while it runs: rich, quiet or jsonl (one "
                                                      "JSON object per event)."),
    **options,
) -> None:
    """Train an exported spec fully (the recipe's schedule and distillation), resumable after a kill."""
    from nasface.core.options import resolved
    from nasface.training.fulltrain import prepare_training, run_training
    from nasface.ui.training_progress import TrainingReporter

    reporter = TrainingReporter(progress.value)
    run = prepare_training(recipe, **resolved(options, TRAIN_OPTIONS), progress=reporter.stages)
    with on_interrupt(f"continue from the last checkpoint with: nasface train {recipe} -o {run.output} --resume"):
        run_training(run, reporter)


with_options(train_command, TRAIN_OPTIONS)


def onnx_command(
    source: str = typer.Argument(..., help="Weights (.safetensors / .pt, or a `nasface train` output folder), or "
                                           "a spec (preset name or YAML: exported with random weights)."),
    output: Path = typer.Option(..., "-o", "--output", help="The .onnx file to write."),
    spec: str = typer.Option(None, help="The architecture of a .pt state dict that holds no spec."),
) -> None:
    """Export the embedding network to ONNX (FLGC deployed, BatchNorm folded, 112x112, any batch)."""
    from nasface.arch.onnx_export import export_onnx

    exported = export_onnx(source, output, spec=spec)
    weights = "trained weights" if exported.trained else \
        "RANDOMLY INITIALISED weights (a spec holds no weights; give a checkpoint for a trained model)"
    console.print(f"wrote {exported.path}: {exported.spec.name} with {weights}; {exported.folded_batchnorms} "
                  f"BatchNorms folded; onnxruntime matches torch (cosine >= {exported.min_cosine:.6f})")
