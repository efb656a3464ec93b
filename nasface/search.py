"""``nasface search``: Optuna ask/tell in the driver, candidates trained by an executor (Ray).

The driver loop, top to bottom:

1. check every input (budgets, space, data, teacher, sampler, storage) before anything is created;
2. open or create the study (SQLite ``studies/<name>/study.db`` by default, any Optuna storage URL);
3. recover trials a dead driver left RUNNING (failed with the reason, re-enqueued once) and
   enqueue the seed presets that are points of the space as baseline trials;
4. ask -> sample a spec -> count it analytically; a candidate over any budget is told to the study
   at once (its constraint values and worst-case accuracy) and never trained;
5. within budget -> the executor trains and scores it; the result (or the reason it failed) is
   told to the study with its spec, costs, metrics and wall time as trial attributes.

``--trials N`` counts the study's trained candidates (baselines and over-budget rejections
excluded), whichever driver trained them.  Several drivers may run one study at once: steps 2-4
and the bookkeeping of step 5 run under a lock shared by every driver of the storage
(``nasface.storage.StudyLock``), so no seed network is enqueued twice, no architecture is trained
twice, and N candidates are trained in all.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from nasface.atomic import WRITE_ERRNOS, process_alive, process_id
from nasface.budget import Budgets
from nasface.data import check_pairs_file, check_training_source, proxy_data
from nasface.errors import NasfaceError
from nasface.executor import Outcome, make_executor
from nasface.model import count
from nasface.progress import SILENT, StageProgress, Stages
from nasface.signals import SIGNALS, oriented
from nasface.report import pareto_front
# config_from_options and parse_duration are re-exported: ``nasface.search`` is where the README sends callers.
from nasface.search_config import (DEFAULT_SCORE, OBJECTIVES, SAMPLERS, DataSettings, SearchConfig,  # noqa: F401
                                   config_from_options, parse_duration)
from nasface.space import RandomChooser, SearchSpace, fill_budget, load_space
from nasface.spec import load_spec, preset_names, spec_from_dict, spec_to_dict
from nasface.storage import StudyLock, check_storage_url, open_storage, write_failure
from nasface.teacher import TEACHER_TRAINING, check_teacher, read_teacher, teacher_info, teacher_targets
from nasface.train import ProxyBudget, proxy_spec, score

WORST_SCORE = -1e300  # an untrained candidate's score (Optuna refuses -inf)
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0
MAX_REJECTIONS_IN_A_ROW = 2000
INVALID = "invalid"


# -- checks before anything is created ---------------------------------------------------------
def check_config(config: SearchConfig) -> SearchSpace:
    """Raise NasfaceError for the first bad input; return the loaded space."""
    if not config.study or "/" in config.study or config.study.startswith("."):
        raise NasfaceError(f"--study {config.study!r}: use a plain name such as lfr-light")
    for objective in config.objectives:
        if objective not in OBJECTIVES:
            raise NasfaceError(f"unknown objective {objective!r} (choose from {', '.join(OBJECTIVES)})")
    if config.score not in SIGNALS:
        raise NasfaceError(f"--score {config.score!r}: choose a signal from {', '.join(SIGNALS)}")
    if config.sampler not in SAMPLERS:
        raise NasfaceError(f"--sampler {config.sampler!r}: choose from {', '.join(SAMPLERS)}")
    if config.trials is not None and config.trials < 0:
        raise NasfaceError(f"--trials must be 0 or more, got {config.trials}")
    if config.storage is not None:
        check_storage_url(config.storage)
    config.proxy.check()
    space = load_space(config.space)
    check_training_source(config.data.source)  # opens the source and decodes a sample
    if config.data.val_bin is not None:
        check_pairs_file(config.data.val_bin)
    check_teacher(config.teacher, config.teacher_spec)
    cheapest = cheapest_spec(space)
    if config.budgets.limits() and not config.budgets.fits(count(cheapest, config.budgets.convention)):
        figures = count(cheapest, config.budgets.convention)
        raise NasfaceError(
            f"no architecture of the space {space.name} fits these budgets: the cheapest it can make has "
            f"{figures['flops']:,} FLOPs ({config.budgets.convention}), {figures['weight_bytes']:,} weight bytes, "
            f"{figures['params']:,} parameters, {figures['activation_bytes']:,} peak activation bytes "
            f"({', '.join(config.budgets.violations(figures))})")
    return space


class _CheapestChooser:
    """Picks, knob by knob, the choice that costs least: one block, narrowest, most down-sampled."""

    def __init__(self, family: str, embedding: str):
        self.family, self.embedding = family, embedding

    def suggest_categorical(self, name: str, choices: list):
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "family":
            return self.family
        if name == "emb.kind":
            return self.embedding
        if leaf == "repeats":
            return min(choices) if name == "s1.repeats" else 0
        if leaf == "mapping":
            return False if False in choices else choices[0]
        numbers = [c for c in choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if not numbers:
            return choices[0]
        # more FLGC groups and longer strides cost less; for every other number, less is cheaper
        return max(numbers) if leaf in ("groups", "stride") else min(numbers)


def cheapest_spec(space: SearchSpace):
    """The cheapest architecture (by FLOPs) the space makes, to report budgets nothing can meet."""
    candidates = []
    for family in space.families:
        for embedding in space.embedding_kinds:
            try:
                candidates.append(space.sample(_CheapestChooser(family, embedding), name="cheapest"))
            except NasfaceError:
                continue
    for seed in range(200 if not candidates else 0):
        try:
            candidates.append(space.sample(RandomChooser(seed), name="cheapest"))
        except NasfaceError:
            continue
    if not candidates:
        raise NasfaceError(f"the space {space.name} makes no valid architecture")
    return min(candidates, key=lambda spec: count(spec)["flops"])


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        with warnings.catch_warnings():  # `group` is marked experimental; it is what conditional knobs need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8,
                                              constant_liar=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)


# -- the job a worker runs ---------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _proxy(data_json: str, seed: int, cache_dir: str):
    """A worker's proxy data, memory-mapped once per process from the cache the driver built."""
    return load_proxy_data(DataSettings(**json.loads(data_json)), seed, cache_dir)


def load_proxy_data(data: DataSettings, seed: int, cache_dir: str | os.PathLike, progress: Stages = SILENT):
    """The proxy training set and verification pairs, decoded once into ``cache_dir`` (a stage of
    ``progress`` while they are)."""
    return proxy_data(data.source, train_identities=data.train_identities,
                      images_per_identity=data.images_per_identity, val_identities=data.val_identities,
                      pairs=data.pairs, seed=seed, cache_dir=Path(cache_dir), bin_path=data.val_bin,
                      progress=progress)


def run_candidate(payload: dict) -> dict:
    """Train and score one candidate (runs in a Ray worker, or inline)."""
    data = _proxy(payload["data"], payload["seed"], payload["cache_dir"])
    teacher = read_teacher(payload["teacher_dir"]) if payload["teacher_dir"] else None
    budget = ProxyBudget(**payload["proxy"])
    return score(spec_from_dict(payload["spec"]), data.train, data.pairs, budget, teacher)


# -- the study -------------------------------------------------------------------------------
def driver_id() -> str:
    return process_id()


def recover_stale_trials(study: optuna.Study, log) -> int:
    """Fail the trials whose driver died mid-trial and enqueue each once again.

    Run under the study lock: two drivers never recover the same trial, and a trial another driver
    has just asked for is never taken for an orphan before it carries its driver's name.
    """
    recovered = 0
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        driver = trial.user_attrs.get("driver")
        beat = trial.user_attrs.get("heartbeat", 0.0)
        if driver == driver_id() or (process_alive(driver) and now - beat < STALE_SECONDS):
            continue
        _fail_and_requeue(study, trial, "interrupted: its driver stopped; re-enqueued")
        recovered += 1
        log(f"trial {trial.number} was interrupted with its driver; enqueued again")
    return recovered


def _fail_and_requeue(study: optuna.Study, trial, reason: str) -> None:
    """Fail a trial that will never finish and enqueue its architecture again, keeping its baseline tag."""
    study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", reason)
    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    baseline = {k: v for k, v in trial.user_attrs.items() if k == "baseline"}
    study.enqueue_trial(trial.params, user_attrs={**baseline, "retry_of": trial.number})


def enqueue_baselines(study: optuna.Study, space: SearchSpace, log) -> list[str]:
    """Enqueue each seed network that is a point of the space, once per study (run under the lock)."""
    present = {t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)}
    enqueued = []
    for name in preset_names():
        try:
            params = space.params_of(load_spec(name))
        except NasfaceError:
            continue  # not a point of this space (e.g. a teacher)
        if name not in present:
            study.enqueue_trial(params, user_attrs={"baseline": name})
            enqueued.append(name)
    if enqueued:
        log(f"baselines enqueued: {', '.join(enqueued)}")
    return enqueued


def objective_values(objectives: tuple[str, ...], cost: dict, metrics: dict | None,
                     score: str = DEFAULT_SCORE) -> list[float]:
    """The trial's values; an untrained candidate gets the worst accuracy (0) and ``WORST_SCORE``."""
    values = []
    for objective in objectives:
        if objective == "accuracy":
            values.append(float(metrics["accuracy"]) if metrics else 0.0)
        elif objective == "tar":
            values.append(float(metrics.get("tar_at_far") or 0.0) if metrics else 0.0)
        elif objective == "score":
            found = oriented(score, (metrics.get("signals") or {}).get(score)) if metrics else None
            values.append(float(found) if found is not None else WORST_SCORE)
        else:
            values.append(float(cost[objective]))
    return values


def _in_training(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state == optuna.trial.TrialState.RUNNING and "training_started" in trial.user_attrs


def trained_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.user_attrs.get("kind") == "trained" and not t.user_attrs.get("baseline"))


def committed_count(study: optuna.Study) -> int:
    """Candidates (not baselines) trained or in training by any driver: what ``--trials`` counts."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if not t.user_attrs.get("baseline") and (t.user_attrs.get("kind") == "trained" or _in_training(t)))


@dataclass
class Progress:
    """The driver's counts, its time left, and where its time went.

    The time left is an estimate: the candidates still to train (``planned`` less those trained,
    plus the baselines waiting or running), ``parallel`` at a time, each taking the mean wall time of
    the candidates trained so far.  Before one has finished, a candidate is taken to cost the proxy's
    steps at the time a step of the teacher took (the same batches at the same resolution, of a
    MobileFaceNet on a CPU); with no teacher trained in this run it is unknown until then.
    """

    planned: int | None
    proxy_steps: int = 0
    parallel: int = 1
    trained: int = 0
    running: int = 0
    rejected: int = 0
    duplicates: int = 0
    failed: int = 0
    baselines: int = 0
    baselines_left: int = 0
    started: float = field(default_factory=time.time)
    trial_seconds: list[float] = field(default_factory=list)
    step_seconds: float | None = None        # one training step of the teacher, measured in this run
    sections: dict[str, float] = field(default_factory=dict)   # data, teacher, candidates -> seconds

    def candidate_seconds(self) -> float | None:
        if self.trial_seconds:
            return sum(self.trial_seconds) / len(self.trial_seconds)
        return None if self.step_seconds is None else self.step_seconds * self.proxy_steps

    def eta_seconds(self) -> float | None:
        per_candidate = self.candidate_seconds()
        if self.planned is None or per_candidate is None:
            return None
        left = max(0, self.planned - self.trained) + self.baselines_left
        return math.ceil(left / self.parallel) * per_candidate

    def eta_during(self, stage: StageProgress) -> float | None:
        """The search's time left while ``stage`` runs: the stage's own ETA, then the candidates'.

        While the teacher trains, its time per step so far is kept for the candidates' estimate.
        Unknown while the faces are rendered on a first run (no step has been timed yet); the
        teacher's embedding pass after its training (seconds) is left out."""
        if stage.name == TEACHER_TRAINING and stage.done:
            self.step_seconds = stage.seconds_per_unit()
        own, after = stage.eta_seconds(), self.eta_seconds()
        return None if own is None or after is None else own + after

    @contextmanager
    def section(self, name: str):
        """Add the time spent in the block to ``sections[name]``."""
        start = time.time()
        try:
            yield
        finally:
            self.sections[name] = self.sections.get(name, 0.0) + time.time() - start

    def where_the_time_went(self) -> dict[str, float]:
        """Each section's seconds, the rest (checking the inputs, opening the study, the summary) as
        ``other``, and ``total``."""
        total = time.time() - self.started
        return {**self.sections, "other": max(0.0, total - sum(self.sections.values())), "total": total}


def run_search(config: SearchConfig, reporter) -> optuna.Study:
    """Check the inputs, then search; a disk or database that refuses writes is one clear error."""
    from sqlalchemy.exc import OperationalError

    progress = Progress(planned=config.trials, proxy_steps=config.proxy.steps,
                        parallel=1 if config.executor == "inline" else config.workers)
    space = check_config(config)
    try:
        return _search(config, space, reporter, progress)
    except (optuna.exceptions.StorageInternalError, OperationalError) as err:
        raise write_failure(f"the study storage {config.storage_url}", err) from None
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        raise write_failure(err.filename or str(config.study_dir), err) from None


def _search(config: SearchConfig, space: SearchSpace, reporter, progress: Progress) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lock = StudyLock(config.storage_url)
    try:
        with lock.hold("storage"):  # two drivers creating the same new database would collide
            storage = open_storage(config.storage_url)
            study = optuna.create_study(study_name=config.study, storage=storage,
                                        directions=[OBJECTIVES[o] for o in config.objectives],
                                        load_if_exists=True)
        with lock.hold(config.study):
            launch = _check_settings(study, config)
            # Neither a continued study nor a second driver may replay the first one's random draws.
            study.sampler = make_sampler(config.sampler, config.seed + len(study.trials) + launch)
            reporter.start(config, space, study)
            recover_stale_trials(study, reporter.log)
            if config.baselines:
                enqueue_baselines(study, space, reporter.log)
        config.study_dir.mkdir(parents=True, exist_ok=True)  # the proxy-data and teacher caches
        return _drive(study, lock, space, config, reporter, progress)
    finally:
        lock.close()


def _check_settings(study: optuna.Study, config: SearchConfig) -> int:
    """Record the study's settings (or refuse other ones); return how many drivers started it before."""
    fingerprint = json.loads(json.dumps(config.fingerprint()))
    saved = study.user_attrs.get("nasface_config")
    if saved is None:
        study.set_user_attr("nasface_config", fingerprint)
    elif saved != fingerprint:
        changed = [k for k in fingerprint if saved.get(k) != fingerprint[k]]
        raise NasfaceError(f"study {config.study} was created with other settings ({', '.join(changed)}); "
                           f"continue it with the same settings or start a new --study")
    launch = int(study.user_attrs.get("nasface_launches", 0))
    study.set_user_attr("nasface_launches", launch + 1)
    return launch


class Heartbeat:
    """Beats for this driver's running trials from a thread, every ``HEARTBEAT_SECONDS``.

    Other machines' drivers take a trial whose heartbeat is older than ``STALE_SECONDS`` for the
    orphan of a dead driver.  The driver's loop cannot beat while it trains a candidate itself
    (``--executor inline``) or waits on a slow storage, so the beat runs beside it.
    """

    def __init__(self, study: optuna.Study, lock: StudyLock, running: dict):
        self.study, self.lock, self.running = study, lock, running
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nasface-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - the driver's own next write meets the same fault and reports it
                return

    def beat(self) -> None:
        with self.lock.hold(self.study.study_name):
            for trial, _ in list(self.running.values()):  # a snapshot: the loop adds and removes trials
                if _still_ours(self.study, trial):
                    trial.set_user_attr("heartbeat", time.time())


def _drive(study: optuna.Study, lock: StudyLock, space: SearchSpace, config: SearchConfig,
           reporter, progress: Progress) -> optuna.Study:
    """Data and teacher (each built once), then the ask / train / tell loop, until the study has its
    trials, time is up, or Ctrl-C (in the loop: the running trials are enqueued again)."""
    progress.trained = trained_count(study)
    progress.baselines_left = _baselines_left(study)
    reporter.stages.search_eta = progress.eta_during
    with progress.section("data"):
        data = load_proxy_data(config.data, config.seed, config.study_dir / "cache", reporter.stages)
    with progress.section("teacher"):
        teacher = teacher_targets(config.teacher, data, config.study_dir / "cache", config.proxy,
                                  teacher_spec=config.teacher_spec, teacher_steps=config.teacher_steps,
                                  log=reporter.log, progress=reporter.stages)
    if teacher is not None:  # with the study: what the teacher was, and how well it verified on its own
        study.set_user_attr("nasface_teacher", teacher_info(teacher))
    payload_base = {"data": json.dumps(dataclasses.asdict(config.data), sort_keys=True), "seed": config.seed,
                    "cache_dir": str(config.study_dir / "cache"), "proxy": dataclasses.asdict(config.proxy),
                    "teacher_dir": teacher.folder if teacher is not None else None}

    candidates_started = time.time()
    executor = make_executor(config.executor, config.workers, config.cpus_per_trial, config.gpus_per_trial,
                             config.address)
    running: dict[int, tuple[optuna.trial.Trial, float]] = {}
    deadline = None if config.timeout is None else time.time() + config.timeout
    rejections_in_a_row = 0
    last_recovery = time.time()

    def out_of_time() -> bool:
        return deadline is not None and time.time() >= deadline

    def want_more() -> bool:  # called under the study lock: every driver's trials are counted
        if out_of_time():
            return False
        if config.trials is not None and committed_count(study) >= config.trials:
            return bool(_waiting_baselines(study))
        return True

    heartbeat = Heartbeat(study, lock, running)
    heartbeat.start()
    try:
        while True:
            while len(running) < executor.capacity():
                with lock.hold(config.study):
                    if not want_more():
                        break
                    trial = study.ask()
                    trial.set_user_attr("driver", driver_id())
                    trial.set_user_attr("heartbeat", time.time())
                    baseline = trial.user_attrs.get("baseline")
                    outcome = _prepare(study, trial, space, config, baseline)
                    if outcome is None:
                        trial.set_user_attr("training_started", time.time())
                    else:  # not trained: invalid, over budget, or a repeat
                        study.tell(trial, **outcome)
                if outcome is not None:
                    if trial.user_attrs.get("kind") == "duplicate":
                        progress.duplicates += 1
                    else:
                        progress.rejected += 1
                    rejections_in_a_row += 1
                    reporter.trial(trial.number, trial.user_attrs, None, progress)
                    if rejections_in_a_row >= MAX_REJECTIONS_IN_A_ROW:
                        raise NasfaceError(f"{rejections_in_a_row} candidates in a row were over budget, invalid "
                                           f"or repeats; loosen the budgets or widen the space")
                    continue
                rejections_in_a_row = 0
                payload = {**payload_base, "spec": trial.user_attrs["spec"]}
                running[trial.number] = (trial, time.time())
                progress.running = len(running)
                executor.submit(trial.number, run_candidate, payload)
            if not running:
                if out_of_time() or not _trained_elsewhere(study):
                    break
                # Other drivers' candidates count towards --trials: wait for them, and take over any
                # whose driver dies (recovered below, then asked for again above).
                time.sleep(1.0)
            for number, result in executor.wait(timeout=1.0):
                trial, started = running.pop(number)
                progress.running = len(running)
                with lock.hold(config.study):
                    if not _still_ours(study, trial):
                        reporter.log(f"trial {number} was recovered by another driver while it trained "
                                     f"(its heartbeat looked stale); this result is dropped")
                        continue
                    _finish(study, trial, result, config, time.time() - started, progress)
                progress.trained = trained_count(study)
                progress.baselines_left = _baselines_left(study)
                reporter.trial(number, trial.user_attrs, result, progress, pareto_front(study))
            if time.time() - last_recovery > HEARTBEAT_SECONDS:
                with lock.hold(config.study):
                    recover_stale_trials(study, reporter.log)  # a peer driver that died mid-trial
                last_recovery = time.time()
    except KeyboardInterrupt:
        reporter.log("interrupted: stopping; finished trials are kept, the running ones are enqueued again")
        with lock.hold(config.study):
            for trial, _ in running.values():
                if not _still_ours(study, trial):
                    continue
                _fail_and_requeue(study, trial, "interrupted by the user; re-enqueued")
        running.clear()
    finally:
        heartbeat.stop()
        executor.shutdown()
        progress.sections["candidates"] = time.time() - candidates_started
    reporter.finish(study, pareto_front(study), config, progress.where_the_time_went())
    return study


def _trained_elsewhere(study: optuna.Study) -> bool:
    """Whether another driver is training a candidate of this study now."""
    return any(_in_training(t) and t.user_attrs.get("driver") != driver_id()
               for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def _still_ours(study: optuna.Study, trial: optuna.trial.Trial) -> bool:
    """False when another driver has failed this trial meanwhile (it took us for dead)."""
    return study._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING


def _baselines_left(study: optuna.Study) -> int:
    """Baselines waiting to be trained or in training, by any driver."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,
                                                                   optuna.trial.TrialState.RUNNING))
               if t.user_attrs.get("baseline"))


def _waiting_baselines(study: optuna.Study) -> list:
    return [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
            if t.user_attrs.get("baseline")]


def _prepare(study: optuna.Study, trial: optuna.trial.Trial, space: SearchSpace, config: SearchConfig,
             baseline: str | None):
    """Sample and count the candidate; return tell() arguments when it must not be trained.

    Not trained: invalid architectures, candidates over budget, and repeats of a candidate the
    study already trained (its result is told again, so the sampler still learns from it).
    """
    try:
        spec = space.sample(trial, name=baseline or f"trial-{trial.number}")
    except NasfaceError as err:
        trial.set_user_attr("kind", INVALID)
        trial.set_user_attr("fail_reason", f"invalid architecture: {err}")
        return {"state": optuna.trial.TrialState.FAIL}
    try:
        proxy_spec(spec, config.proxy.resolution)
    except NasfaceError as err:
        trial.set_user_attr("kind", INVALID)
        trial.set_user_attr("fail_reason", str(err))
        return {"state": optuna.trial.TrialState.FAIL}
    if config.fill_budget and not baseline:
        spec, factor = fill_budget(spec, config.budgets)
        trial.set_user_attr("width_scale", factor)
    cost = count(spec, config.budgets.convention)
    cost.pop("stages")
    trial.set_user_attr("spec", spec_to_dict(spec))
    trial.set_user_attr("cost", cost)
    violations = config.budgets.violations(cost)
    if violations and not baseline:
        _set_constraints(trial, config.budgets, cost)
        trial.set_user_attr("kind", "rejected")
        trial.set_user_attr("fail_reason", "over budget: " + "; ".join(violations))
        return {"values": objective_values(config.objectives, cost, None, config.score)}
    if violations:
        trial.set_user_attr("over_budget", "; ".join(violations))  # a reference point, trained anyway
    twin = _twin(study, trial)
    if twin is not None and not baseline:
        trial.set_user_attr("kind", "duplicate")
        trial.set_user_attr("duplicate_of", twin.number)
        if twin.state == optuna.trial.TrialState.RUNNING:  # another driver or worker is training it now
            trial.set_user_attr("fail_reason", f"same architecture as trial {twin.number}, in training")
            return {"state": optuna.trial.TrialState.FAIL}
        _set_constraints(trial, config.budgets, twin.user_attrs["cost"])
        trial.set_user_attr("metrics", twin.user_attrs["metrics"])
        return {"values": twin.values}
    return None


def _set_constraints(trial: optuna.trial.Trial, budgets: Budgets, cost: dict) -> None:
    """Tell the sampler how far over (> 0) or under (<= 0) each budget the candidate is.

    Set once per trial, from its final cost: Optuna keeps the first value of a constraint.
    """
    for key, value in budgets.constraints(cost).items():
        trial.set_constraint(key, value)


def _twin(study: optuna.Study, trial: optuna.trial.Trial):
    """A trial with exactly this trial's parameters that completed training or is training now."""
    params = trial.params
    for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.RUNNING)):
        if other.params == params and (other.user_attrs.get("kind") == "trained" or _in_training(other)):
            return other
    return None


def _finish(study, trial, result: Outcome, config: SearchConfig, seconds: float, progress: Progress) -> None:
    trial.set_user_attr("wall_seconds", seconds)
    metrics = result.result if result.ok else None
    if metrics is None or metrics.get("status") != "ok":
        reason = result.reason if not result.ok else metrics.get("reason")
        trial.set_user_attr("kind", "trained")
        trial.set_user_attr("fail_reason", reason)
        if metrics is not None:
            trial.set_user_attr("metrics", metrics)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        progress.failed += 1
        return
    cost = dict(trial.user_attrs["cost"])
    if "deployed" in metrics:  # FLGC: the learnt groups decide what the deployed network costs
        deployed = dict(metrics["deployed"])
        deployed.pop("stages", None)
        deployed["flops"] = deployed["lfr_flops"] if config.budgets.convention == "lfr" else deployed["macs"]
        cost.update(deployed)
        trial.set_user_attr("cost", cost)
    _set_constraints(trial, config.budgets, cost)
    trial.set_user_attr("kind", "trained")
    trial.set_user_attr("metrics", metrics)
    study.tell(trial, values=objective_values(config.objectives, cost, metrics, config.score))
    progress.trial_seconds.append(seconds)
    if trial.user_attrs.get("baseline"):
        progress.baselines += 1
