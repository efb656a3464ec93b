"""Every input of a search checked before anything is created: one clear error for the first bad one."""

from __future__ import annotations

from nasface.data import check_pairs_file, check_training_source
from nasface.core.errors import NasfaceError
from nasface.search.executor import check_executor
from nasface.arch.model import count
from nasface.search.config import OBJECTIVES, SAMPLERS, SearchConfig, check_rungs
from nasface.training.signals import SEARCH_SIGNALS, SIGNALS
from nasface.arch.space import SearchSpace, cheapest_spec, load_space
from nasface.search.storage import check_storage_url
from nasface.training.teacher import check_teacher


def check_config(config: SearchConfig) -> SearchSpace:
    """Raise NasfaceError for the first bad input; return the loaded space."""
    if not config.study or "/" in config.study or config.study.startswith("."):
        raise NasfaceError(f"--study {config.study!r}: use a plain name such as lfr-light")
    if not config.objectives:  # `objectives: null` or `[]` in a study file
        raise NasfaceError(f"{config.named('objectives')}: give one or more of {', '.join(OBJECTIVES)}")
    for objective in config.objectives:
        if objective not in OBJECTIVES:
            raise NasfaceError(f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})")
    if config.score not in SEARCH_SIGNALS:
        raise NasfaceError(f"--score {config.score!r}: choose a signal from {', '.join(SEARCH_SIGNALS)}"
                           + (" (the yardstick is measured only by nasface fidelity --yardstick)"
                              if config.score in SIGNALS else ""))
    if config.score == "teacher_cka" and config.teacher == "none":
        raise NasfaceError("--score teacher_cka measures agreement with the teacher: give one (--teacher auto, "
                           "dlib-resnet or a checkpoint)")
    if config.sampler not in SAMPLERS:
        raise NasfaceError(f"{config.named('sampler')} {config.sampler!r}: choose from {', '.join(SAMPLERS)}")
    if config.trials is not None and config.trials < 0:
        raise NasfaceError(f"{config.named('trials')} must be 0 or more, got {config.trials}")
    check_executor(config.executor, config.workers, config.cpus_per_trial, config.gpus_per_trial, config.named)
    if config.storage is not None:
        check_storage_url(config.storage)
    config.proxy.check()
    if config.rungs:
        check_rungs(config.rungs, config.eta)
        for rung in range(len(config.rungs)):
            config.rung_budget(rung).check()  # the shared warm-up must fit before every rung's cool-down
    space = load_space(config.space)
    # opens the source, decodes a sample and counts its identities
    held_out = 0 if config.data.val_bin is not None else config.data.val_identities
    check_training_source(config.data.source, config.data.train_identities, held_out)
    if config.data.val_bin is not None:
        check_pairs_file(config.data.val_bin)
    check_teacher(config.teacher, config.teacher_spec)
    cheapest = cheapest_spec(space) if config.budgets.limits() else None  # a walk of the space: only when needed
    if cheapest is not None and not config.budgets.fits(count(cheapest, config.budgets.convention)):
        figures = count(cheapest, config.budgets.convention)
        raise NasfaceError(
            f"no architecture of the space {space.name} fits these budgets: the cheapest it can make has "
            f"{figures['flops']:,} FLOPs ({config.budgets.convention}), {figures['weight_bytes']:,} weight bytes, "
            f"{figures['params']:,} parameters, {figures['activation_bytes']:,} peak activation bytes "
            f"({', '.join(config.budgets.violations(figures))})")
    return space
