"""The commands about one architecture's proxy score and its data: ``data`` and ``score`` (whose options
are ``nasface.cli.options.SCORE_OPTIONS``)."""

from __future__ import annotations

import typer

from nasface.cli.base import NOTHING_HALF_WRITTEN, messages, on_interrupt, print_facts, progress_console
from nasface.cli.options import SCORE_OPTIONS, with_options


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
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
    **options,
) -> None:
    """Train one architecture briefly (the search's proxy) and score it on unseen identities."""
    from nasface.core.options import resolved
    from nasface.ui.progress import StageDisplay
    from nasface.search import DataSettings, load_proxy_data
    from nasface.arch.spec import load_spec
    from nasface.training.settings import ProxyBudget
    from nasface.training.teacher import check_teacher, teacher_targets
    from nasface.training.proxy import score
    from nasface.ui.facts import score_lines

    values = resolved(options, SCORE_OPTIONS)
    arch = load_spec(spec)
    budget = ProxyBudget.from_options(values)  # the search's proxy with what the command line gave
    budget.check()
    teacher, teacher_spec, cache_dir = values["teacher"], values["teacher_spec"], values["cache_dir"]
    check_teacher(teacher, teacher_spec)
    # the stages (decoding, a teacher's training) on stderr: stdout is the metrics alone
    stages = StageDisplay("rich", progress_console)
    with on_interrupt(NOTHING_HALF_WRITTEN):
        proxy = load_proxy_data(DataSettings.for_source(values["data"], val_bin=values["val_bin"]), values["seed"],
                                cache_dir, stages)
        with messages.shown_by(lambda m: progress_console.print(m, style="dim", markup=False, highlight=False)):
            targets = teacher_targets(teacher, proxy, cache_dir, budget, teacher_spec=teacher_spec, progress=stages)
        facts = score(arch, proxy.train, proxy.pairs, budget, targets)
    print_facts({"spec": spec, **facts} if as_json else facts, as_json, score_lines)


with_options(score_command, SCORE_OPTIONS)
