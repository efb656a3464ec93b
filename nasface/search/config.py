"""The settings of a search (``SearchConfig``) and every option that sets them, declared once.

``SEARCH_OPTIONS`` is the one table of ``nasface search``'s options: the command line's parameters
and the study-file reader are derived from it (``nasface.core.options``), and its defaults are the
dataclasses' own.  Kept apart from ``nasface.search`` so the command line can read the table
without importing Optuna, pandas and plotly.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from nasface.arch.budget import Budgets
from nasface.core.errors import NasfaceError
from nasface.core.options import COUNTS, DEVICES, NAMES, TEXT, Option, flag_name, given, read_options
from nasface.training.settings import DISTILLER_KINDS, ProxyBudget, default_warmup

OBJECTIVES = {"accuracy": "maximize", "tar": "maximize", "score": "maximize", "flops": "minimize", "macs": "minimize",
              "weight_bytes": "minimize", "params": "minimize", "activation_bytes": "minimize",
              "latency_ms": "minimize"}
DEFAULT_OBJECTIVES = ("accuracy", "flops", "weight_bytes")
LATENCY_OBJECTIVES = ("accuracy", "latency_ms", "weight_bytes")  # the default where a latency target is set
DEFAULT_SCORE = "accuracy"  # the ranking signal (nasface.training.signals) the objective "score" maximises
SAMPLERS = ("tpe", "nsga2", "gp", "random")

@dataclass(frozen=True)
class DataSettings:
    """Which faces the candidates train and are verified on."""

    source: str = "synthetic"
    train_identities: int = 200
    images_per_identity: int = 10
    val_identities: int = 100
    pairs: int = 3000
    val_bin: str | None = None

    @classmethod
    def for_source(cls, source: str, **overrides) -> "DataSettings":
        """Defaults that fit the source (ORL has 40 people: 30 to train on, 10 held out)."""
        base = cls(source=source, train_identities=30, val_identities=10, pairs=600) if source == "orl" \
            else cls(source=source)
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class SearchConfig:
    study: str = "lfr-light"
    studies_dir: str = "studies"
    storage: str | None = None
    space: str | None = None
    budgets: Budgets = Budgets()
    data: DataSettings = DataSettings()
    proxy: ProxyBudget = ProxyBudget()
    teacher: str = "auto"
    teacher_spec: str | None = None
    teacher_steps: int | None = None
    sampler: str = "tpe"
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    score: str = DEFAULT_SCORE
    trials: int | None = 20
    timeout: float | None = None
    executor: str = "ray"
    workers: int = 1
    address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    baselines: bool = True
    fill_budget: bool = False
    seed: int = 0
    # Successive halving: proxy steps per rung, lowest first (None: every candidate trains the proxy
    # once), and the reduction factor: a rung's top 1/eta go on to the next.
    rungs: tuple[int, ...] | None = None
    eta: int = 3
    # The runtime, precision and threads latency is predicted for (``onnxruntime:fp32:1``); None: no latency.
    latency: str | None = None
    # How a candidate's latency is known before it trains: "table" (predicted from this machine's per-part
    # table) or "measurement" (each candidate measured whole here).
    latency_by: str = "table"
    # Where each option set from a study file came from ("lfr.yaml: workers"), so that an error about its
    # value names the file's key; an option absent from it came from the command line (or its default).
    origins: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def named(self, option: str) -> str:
        """How an error names ``option``: the study file's key, or the command line's flag."""
        return self.origins.get(option, flag_name(option))

    @property
    def study_dir(self) -> Path:
        return Path(self.studies_dir) / self.study

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'study.db').as_posix()}"

    def fingerprint(self) -> dict:
        """What must not change when a study is continued."""
        return {"budgets": self.budgets.stored(), "data": dataclasses.asdict(self.data),
                "proxy": {k: v for k, v in dataclasses.asdict(self.proxy).items() if k != "device"},
                "teacher": self.teacher, "objectives": list(self.objectives), "score": self.score,
                "space": self.space or "lfr",
                "fill_budget": self.fill_budget,
                **({"rungs": list(self.rungs), "eta": self.eta} if self.rungs else {}),
                **({"latency": self.latency} if self.latency else {}),
                **({"latency_by": self.latency_by} if self.latency and self.latency_by != "table" else {})}

    @property
    def top_rung(self) -> int:
        return len(self.rungs) - 1 if self.rungs else 0

    def rung_budget(self, rung: int) -> ProxyBudget:
        """The proxy at one rung; ``proxy`` itself is the top rung's.

        Every rung shares the warm-up (a tenth of the lowest rung unless set), so a promotion
        continues the run its lower rung started instead of training again from the start.
        """
        if not self.rungs:
            return self.proxy
        warmup = self.proxy.warmup_steps if self.proxy.warmup_steps is not None else default_warmup(self.rungs[0])
        return dataclasses.replace(self.proxy, steps=self.rungs[rung], warmup_steps=warmup)


# -- options and study files ------------------------------------------------------------------
_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text, where: str = "--timeout") -> float:
    """'30m', '2h', '1h30m', '90s' or '90' -> seconds (``where``: how an error names the value)."""
    match = _DURATION.match(str(text))
    if not match or not any(match.groups()) or str(text).strip() == "":
        raise NasfaceError(f"{where} {text!r}: write a duration such as 30m, 2h, 1h30m or 90s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise NasfaceError(f"{where} {text!r}: must be longer than zero")
    return total


_CONFIG, _DATA, _PROXY = SearchConfig(), DataSettings(), ProxyBudget()
# Every option of `nasface search` and of a study file, declared once: the command line's
# parameters (nasface.cli) and the study-file reader are derived from this table; the defaults are
# the dataclasses' own.
SEARCH_OPTIONS = (
    Option("budget_flops", TEXT, None, "FLOPs budget, e.g. 1G (convention: --flops-convention)."),
    Option("budget_mem", TEXT, None, "fp32 weight bytes budget, e.g. 20MB or 19MiB."),
    Option("budget_params", TEXT, None, "Parameter budget, e.g. 5M."),
    Option("budget_act_mem", TEXT, None, "Peak activation memory budget, e.g. 8MB."),
    Option("budget_latency", TEXT, None, "Latency budget, e.g. 8ms, predicted on --latency's runtime (nasface "
           "latency table)."),
    Option("latency", str | None, None, "Predict latency on RUNTIME:PRECISION:THREADS, e.g. onnxruntime:fp32:1 "
           "(default with --budget-latency); makes latency_ms an objective and measures the final front."),
    Option("latency_by", str, _CONFIG.latency_by, "How a candidate's latency is known before it trains: table "
           "(predicted from this machine's per-part table, plus its margin) or measurement (each candidate "
           "exported and measured whole here, a few seconds each, plus the measurements' own margin).",
           choices=("table", "measurement")),
    Option("flops_convention", str, _CONFIG.budgets.convention, "lfr: insightface's LFR2019 counter; macs: "
           "multiply-accumulates.", choices=("lfr", "macs")),
    Option("study", str, _CONFIG.study, "Study name; an existing one is continued."),
    Option("studies_dir", str, _CONFIG.studies_dir, "Where studies live."),
    Option("storage", str | None, None, "Any Optuna storage URL (default: SQLite in the study folder)."),
    Option("space", str | None, None, "Search space YAML, or a bundled one by name: lfr (the default) or lfr-wide."),
    Option("data", str, _DATA.source, "synthetic, synthetic-hard, orl, an image folder or a RecordIO folder."),
    Option("val_bin", str | None, None, "Verify on this insightface .bin instead of held-out identities."),
    Option("train_identities", int | None, None, "Identities the proxy trains on (default: by source)."),
    Option("images_per_identity", int | None, None, "Images of each training identity (default: by source)."),
    Option("val_identities", int | None, None, "Held-out identities for verification (default: by source)."),
    Option("pairs", int | None, None, "Verification pairs (default: by source)."),
    Option("teacher", str, _CONFIG.teacher, "auto (trains one), none, dlib-resnet (pretrained, for the proxy only; "
           "nasface[dlib]), or a checkpoint (.safetensors / .pt)."),
    Option("teacher_spec", str | None, None, "The teacher's preset or spec: what --teacher auto trains, or a .pt "
           "checkpoint's architecture.", shown_default="by device"),
    Option("teacher_steps", int | None, None, "Steps --teacher auto trains for (default: by the proxy)."),
    Option("distill", str, _PROXY.distill, "Distillation from the teacher.", choices=DISTILLER_KINDS),
    Option("proxy_steps", int, _PROXY.steps, "SGD steps of the proxy (0 scores the untrained network)."),
    Option("proxy_warmup", int | None, None, "Warm-up steps of the proxy's schedule (default: a tenth of "
           "--proxy-steps, or of the lowest rung); with --rungs, fixing it to a single-fidelity proxy's "
           "warm-up makes each rung the budget nasface fidelity measured."),
    Option("proxy_batch", int, _PROXY.batch_size, "Batch size of the proxy."),
    Option("resolution", int, _PROXY.resolution, "Proxy input size (112 is full size; less is cheaper)."),
    Option("objectives", NAMES, _CONFIG.objectives, f"Comma-separated, from {', '.join(OBJECTIVES)}."),
    Option("score", str, _CONFIG.score, "The ranking signal the objective 'score' maximises (see nasface "
           "fidelity): accuracy, loss_sum, synflow, ... (nasface.training.signals)."),
    Option("sampler", str, _CONFIG.sampler, f"{', '.join(SAMPLERS)}."),
    Option("trials", int | None, _CONFIG.trials, "Trained candidates to aim for (null in a file: no limit)."),
    Option("timeout", TEXT, None, "Stop after this long, e.g. 30m, 2h, 90s."),
    Option("executor", str, _CONFIG.executor, "ray, or inline (no Ray, one at a time)."),
    Option("workers", int, _CONFIG.workers, "Candidates trained at once (Ray tasks)."),
    Option("address", str | None, None, "Join this Ray cluster instead of starting a local Ray."),
    Option("cpus_per_trial", float, _CONFIG.cpus_per_trial, "CPUs each candidate's Ray task takes."),
    Option("gpus_per_trial", float, _CONFIG.gpus_per_trial, "Fractional: 0.25 puts four candidates on a GPU."),
    Option("baselines", bool, _CONFIG.baselines, "Train the seed presets too.", flags=("--baselines/--no-baselines",)),
    Option("fill_budget", bool, _CONFIG.fill_budget, "Widen each sampled structure until it fills the budgets.",
           flags=("--fill-budget/--no-fill-budget",)),
    Option("seed", int, _CONFIG.seed, "Random seed: data, training and (search) the sampler."),
    Option("rungs", COUNTS, None, "Successive halving: proxy steps per rung, e.g. 40,120,360 (the top rung "
           "replaces --proxy-steps); every candidate starts at the lowest."),
    Option("eta", int, _CONFIG.eta, "Successive halving's reduction factor: the top 1/eta of a rung are promoted."),
    Option("device", str, _PROXY.device, "Where the networks train.", choices=DEVICES),
)


def config_from_options(flags: dict, config_file: str | os.PathLike | None = None) -> SearchConfig:
    """A SearchConfig from a study definition YAML, overridden by the flags that were given (not None)."""
    values = {option.name: option.default for option in SEARCH_OPTIONS}
    from_file = {} if config_file is None else read_options(config_file, SEARCH_OPTIONS, "study definition")
    values.update(from_file)
    from_flags = given(flags, SEARCH_OPTIONS)
    values.update(from_flags)
    origins = {name: f"{config_file}: {name}" for name in from_file if name not in from_flags}
    chosen = {**from_file, **from_flags}
    get = values.__getitem__
    budgets = Budgets.parse(get("budget_flops"), get("budget_mem"), get("budget_params"), get("budget_act_mem"),
                            get("flops_convention"), get("budget_latency"))
    latency, objectives = latency_settings(get("latency"), budgets, get("objectives"),
                                           explicit="objectives" in chosen)
    if latency is None and get("latency_by") != "table":
        raise NasfaceError(f"{origins.get('latency_by') or flag_name('latency_by')} {get('latency_by')}: there "
                           f"is no latency to measure; give --latency RUNTIME:PRECISION:THREADS or --budget-latency")
    data = DataSettings.for_source(get("data"), val_bin=get("val_bin"), train_identities=get("train_identities"),
                                   images_per_identity=get("images_per_identity"),
                                   val_identities=get("val_identities"), pairs=get("pairs"))
    rungs = get("rungs")
    proxy_values = dict(values)
    if rungs:  # the top rung is the proxy; the warm-up, shared by every rung, fits the lowest
        check_rungs(rungs, get("eta"))
        warmup = get("proxy_warmup")
        proxy_values.update(proxy_steps=rungs[-1], proxy_warmup=default_warmup(rungs[0]) if warmup is None else warmup)
    proxy = ProxyBudget.from_options(proxy_values)
    return SearchConfig(
        study=get("study"), studies_dir=get("studies_dir"), storage=get("storage"), space=get("space"),
        budgets=budgets, data=data, proxy=proxy, teacher=get("teacher"), teacher_spec=get("teacher_spec"),
        teacher_steps=get("teacher_steps"), sampler=get("sampler"), objectives=objectives, score=get("score"),
        trials=get("trials"),
        timeout=None if get("timeout") is None else parse_duration(get("timeout"), origins.get("timeout") or flag_name("timeout")),
        executor=get("executor"), workers=get("workers"), address=get("address"),
        cpus_per_trial=get("cpus_per_trial"), gpus_per_trial=get("gpus_per_trial"), baselines=get("baselines"),
        fill_budget=get("fill_budget"), seed=get("seed"), rungs=rungs or None, eta=get("eta"), latency=latency,
        latency_by=get("latency_by"), origins=origins)


def latency_settings(latency: str | None, budgets: Budgets, objectives: tuple[str, ...],
                     explicit: bool) -> tuple[str | None, tuple[str, ...]]:
    """The latency target (checked: a runtime that is unknown or not installed is one line) and the
    objectives: latency replaces FLOPs in the default objectives where a target is set."""
    from nasface.latency.target import DEFAULT_TARGET, LatencyTarget

    if latency is None and budgets.latency_ms is not None:
        latency = DEFAULT_TARGET
    if latency is None:
        if objectives and "latency_ms" in objectives:
            raise NasfaceError("objective latency_ms: give --latency RUNTIME:PRECISION:THREADS "
                               "(e.g. onnxruntime:fp32:1) or --budget-latency")
        return None, objectives
    target = LatencyTarget.parse(latency)
    target.key()
    return str(target), objectives if explicit else LATENCY_OBJECTIVES


def check_rungs(rungs: tuple[int, ...], eta: int) -> None:
    if len(rungs) < 2 or any(r < 2 for r in rungs) or any(b <= a for a, b in zip(rungs, rungs[1:])):
        raise NasfaceError(f"--rungs {','.join(map(str, rungs))}: give two or more step counts, each at least 2, "
                           f"rising, such as 40,120,360")
    if eta < 2:
        raise NasfaceError(f"--eta {eta}: the reduction factor must be at least 2 (3 promotes a third)")
