"""The commands about architectures: ``presets``, ``count``, ``spec`` and ``space``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from nasface.cli.base import Convention, console, print_table
from nasface.core.errors import NasfaceError


def _human(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


def presets(as_json: bool = typer.Option(False, "--json", help="Print one JSON object per preset.")) -> None:
    """List the seed networks (presets) with their exact costs."""
    from nasface.arch.model import count
    from nasface.arch.spec import load_spec, preset_names

    rows = []
    for name in preset_names():
        spec = load_spec(name)
        rows.append({"name": name, "embedding": spec.embedding.size, **count(spec)})
    if as_json:
        for row in rows:
            row.pop("stages")
            print(json.dumps(row))
        return
    # compact (no vertical rules, no padding beside the one-space rules): it fits 80 columns
    table = Table(title="nasface presets (LFR2019 light track: FLOPs < 1G in the lfr convention, fp32 weights < 20 MB)",
                  box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    for column in ("preset", "LFR FLOPs", "MACs", "params", "weights", "peak act.", "emb."):
        table.add_column(column, justify="left" if column == "preset" else "right", no_wrap=True)
    for row in rows:
        table.add_row(row["name"], f"{row['lfr_flops']:,}", _human(row["macs"]), _human(row["params"]),
                      f"{row['weight_bytes'] / 1e6:.2f} MB", f"{row['activation_bytes'] / 1e6:.2f} MB",
                      str(row["embedding"]))
    print_table(table)


def count_command(
    spec: str = typer.Argument(..., help="A preset name or the path of a spec YAML / JSON file."),
    flops_convention: Convention = typer.Option(Convention.lfr, "--flops-convention",
                                                help="lfr: insightface's LFR2019 counter; macs: multiply-accumulates."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Exact FLOPs, MACs, parameters, weight size and peak activation memory of a spec."""
    from nasface.arch.model import count
    from nasface.arch.spec import load_spec

    arch = load_spec(spec)
    figures = count(arch, flops_convention.value)
    if as_json:
        print(json.dumps({"spec": spec, **figures}))
        return
    size = arch.input_size
    table = Table(title=f"{spec}: cost at batch 1, {size}x{size} input ({figures['convention']} FLOPs)")
    for column in ("stage", "FLOPs", "MACs", "params"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for stage in figures["stages"]:
        table.add_row(stage["name"], f"{stage['flops']:,}", f"{stage['macs']:,}", f"{stage['params']:,}")
    table.add_row("total", f"{figures['flops']:,}", f"{figures['macs']:,}", f"{figures['params']:,}",
                  style="bold")
    print_table(table)
    console.print(f"weights: {figures['weight_bytes']:,} bytes fp32 ({figures['weight_bytes'] / 1e6:.2f} MB, "
                  f"{figures['weight_bytes'] / 2**20:.2f} MiB); peak activations: "
                  f"{figures['activation_bytes']:,} bytes")


def spec_command(
    spec: str = typer.Argument(..., help="A preset name or the path of a spec file."),
    output: Path = typer.Option(None, "-o", "--output", help="Write the spec here (.yaml, .yml or .json: the "
                                                             "extension chooses the format) in an existing folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Validate a spec and print it in full (every default spelled out), or write it to a file."""
    from nasface.arch.spec import dump_spec, load_spec, save_spec

    loaded = load_spec(spec)
    if output is not None:
        save_spec(loaded, output, make_folders=False)
        console.print(f"wrote {output}")
    else:
        print(dump_spec(loaded, "json" if as_json else "yaml"), end="")


def space_command(
    file: str = typer.Argument(None, help="A search space YAML, or a bundled one by name: lfr (the default) or lfr-wide."),
    budget_flops: str = typer.Option(None, help="e.g. 1G"),
    budget_mem: str = typer.Option(None, help="fp32 weight bytes, e.g. 20MB"),
    budget_params: str = typer.Option(None),
    budget_act_mem: str = typer.Option(None),
    flops_convention: Convention = typer.Option(Convention.lfr, "--flops-convention"),
    sample: int = typer.Option(0, help="Write this many random feasible specs."),
    seed: int = typer.Option(0),
    output: Path = typer.Option(None, "-o", help="Folder for --sample's YAML files."),
    estimate: int = typer.Option(2000, help="Random points drawn to estimate the feasible fraction."),
) -> None:
    """Print a search space's knobs, its size and the feasible fraction under budgets."""
    from nasface.arch.budget import Budgets
    from nasface.arch.space import feasible_sample, load_space
    from nasface.arch.spec import save_spec

    budgets = Budgets.parse(budget_flops, budget_mem, budget_params, budget_act_mem, flops_convention.value)
    space = load_space(file)
    if sample and output is None:
        raise NasfaceError("--sample needs -o DIR, the folder to write the specs into")
    table = Table(title=f"search space {space.name} ({space.path})")
    table.add_column("knob")
    table.add_column("choices")
    for name, choices in space.knobs():
        table.add_row(name, ", ".join(str(c) for c in choices))
    console.print(table)
    console.print(f"size: {space.size():,} settings ({space.size():.2e})")
    stats = feasible_sample(space, budgets, estimate, seed)
    console.print(f"of {estimate:,} random points: {stats['valid']:.1%} valid architectures, "
                  f"{stats['feasible']:.1%} within budget ({'; '.join(budgets.describe())})")
    if sample:
        specs = feasible_sample(space, budgets, sample, seed, keep=sample)["specs"]
        if len(specs) < sample:
            raise NasfaceError(f"found only {len(specs)} feasible specs in {sample * 200} draws; loosen the budgets")
        for index, spec in enumerate(specs):
            save_spec(spec, output / f"{space.name}-{seed}-{index:03d}.yaml")
        console.print(f"wrote {len(specs)} specs to {output}")
