"""The commands after a search: ``train`` (full training of an exported spec) and ``onnx``."""

from __future__ import annotations

from pathlib import Path

import typer

from nasface.cli.base import Device, Output, console, on_interrupt


def train_command(
    recipe: Path = typer.Argument(..., help="The recipe.yaml that `nasface export` wrote."),
    data: str = typer.Option(None, help="Training faces: a RecordIO folder, an image folder, orl or synthetic."),
    teacher: str = typer.Option(None, help="A teacher checkpoint (.safetensors / .pt), auto (train one first) "
                                           "or none."),
    teacher_spec: str = typer.Option(None, help="The teacher's preset or spec (auto: what to train; a .pt: its "
                                                "architecture)."),
    val_bin: list[str] = typer.Option(None, "--val-bin", help="Verify on this insightface .bin during training "
                                                              "(repeatable; replaces the recipe's val_bins)."),
    steps: int = typer.Option(None, help="SGD steps per generation, instead of the recipe's epochs."),
    batch: int = typer.Option(None, help="Batch size."),
    generations: int = typer.Option(None, help="Recursive distillation generations."),
    checkpoint_every: int = typer.Option(None, help="Steps between checkpoints."),
    eval_every: int = typer.Option(None, help="Steps between verifications on the .bin files."),
    seed: int = typer.Option(None),
    device: Device = typer.Option(None, help="auto, cpu or cuda (default: the recipe's)."),
    output: Path = typer.Option(None, "-o", "--output", help="Run folder (default: run/ beside the recipe)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in the output folder from its last "
                                                        "checkpoint."),
    cache_dir: Path = typer.Option(None, help="Where decoded training faces are cached (default: .cache/ "
                                              "beside the output folder)."),
    progress: Output = typer.Option(Output.rich, help="What is shown while it runs: rich, quiet or jsonl (one "
                                                      "JSON object per event)."),
) -> None:
    """Train an exported spec fully (the recipe's schedule and distillation), resumable after a kill."""
    from nasface.training.fulltrain import prepare_training, run_training
    from nasface.ui.training_progress import TrainingReporter

    reporter = TrainingReporter(progress.value)
    run = prepare_training(recipe, output=output, resume=resume, data=data, cache_dir=cache_dir, teacher=teacher,
                           teacher_spec=teacher_spec, val_bins=val_bin or None, steps=steps, batch_size=batch,
                           generations=generations, checkpoint_every=checkpoint_every, eval_every=eval_every,
                           seed=seed, device=device.value if device else None, progress=reporter.stages)
    with on_interrupt(f"continue from the last checkpoint with: nasface train {recipe} -o {run.output} --resume"):
        run_training(run, reporter)


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
