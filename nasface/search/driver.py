"""The search driver: open the study, then ask, sample, count, train (by an executor) and tell.

See ``nasface.search`` for the loop step by step.  Every fact kept of a trial goes through
``nasface.search.record``; liveness and recovery are ``nasface.search.recovery``'s.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from nasface.atomic import WRITE_ERRNOS
from nasface.budget import Budgets
from nasface.errors import NasfaceError
from nasface.executor import Outcome, make_executor
from nasface.latency.search import latency_cost, measure_front
from nasface.model import count, deployed_cost
from nasface.report import pareto_front
from nasface.rungs import RungResult, promotions
from nasface.search import job, record
from nasface.search.checks import check_config
from nasface.search.recovery import (HEARTBEAT_SECONDS, Heartbeat, driver_id, fail_and_requeue,
                                     recover_stale_trials, still_ours, trained_elsewhere)
from nasface.search.eta import TrialCostModel, calibrate, modelled_time_left
from nasface.search.live import LiveTrial, TrainingWatch, live_path
from nasface.search.orphans import note_ray_session, stop_orphans
from nasface.search.samplers import make_sampler
from nasface.search.silence import SilenceWatch
from nasface.search.config import DEFAULT_SCORE, OBJECTIVES, SearchConfig
from nasface.signals import oriented
from nasface.space import SearchSpace, cheapest_spec, fill_budget
from nasface.spec import load_spec, preset_names, spec_from_dict, spec_to_dict
from nasface.storage import StudyLock, open_storage, write_failure
from nasface.progress import StageProgress
from nasface.teacher import TEACHER_TRAINING, auto_teacher, teacher_info, teacher_targets
from nasface.train import proxy_spec

class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during the candidates: the search stopped in order (finished trials kept, the unfinished
    ones enqueued again), so the same command resumes it.  Still a ``KeyboardInterrupt``, so a
    script, like the command line (exit status 130), can tell it from a finished search."""


WORST_SCORE = -1e300  # an untrained candidate's score (Optuna refuses -inf)
MAX_REJECTIONS_IN_A_ROW = 2000


def run_search(config: SearchConfig, reporter) -> optuna.Study:
    """Check the inputs, then search; a disk or database that refuses writes is one clear error."""
    from sqlalchemy.exc import OperationalError

    progress = Progress(planned=config.trials, proxy_steps=config.proxy.steps,
                        parallel=1 if config.executor == "inline" else config.workers)
    silence = SilenceWatch(reporter, progress)
    silence.start()
    try:
        space = check_config(config)
        return _search(config, space, reporter, progress)
    except (optuna.exceptions.StorageInternalError, OperationalError) as err:
        raise write_failure(f"the study storage {config.storage_url}", err) from None
    except OSError as err:
        if err.errno not in WRITE_ERRNOS:
            raise
        raise write_failure(err.filename or str(config.study_dir), err) from None
    finally:
        silence.stop()


def _search(config: SearchConfig, space: SearchSpace, reporter, progress: Progress) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reporter.start(config, space, None)
    # The faces the proxy uses are decoded before the study exists: a corrupt image is refused
    # without leaving a study that would then refuse the corrected command.
    progress.doing = "decoding the proxy data"
    cache = config.study_dir / "cache"
    created = [folder for folder in (cache, *cache.parents) if not folder.exists()]
    try:
        with progress.section("data"):
            data = job.load_proxy_data(config.data, config.seed, cache, reporter.stages)
    except BaseException:
        _remove_new_folders(created)
        raise
    progress.doing = "opening the study"
    lock = None
    try:
        try:
            lock = StudyLock(config.storage_url)  # a PostgreSQL storage is reached here
            with lock.hold("storage"):  # two drivers creating the same new database would collide
                storage = open_storage(config.storage_url)
                study = optuna.create_study(study_name=config.study, storage=storage,
                                            directions=[OBJECTIVES[o] for o in config.objectives],
                                            load_if_exists=True)
        except BaseException:  # e.g. a storage that cannot be reached: the new study folder goes
            if created:
                shutil.rmtree(cache / data.key, ignore_errors=True)
                _remove_new_folders(created)
            raise
        with lock.hold(config.study):
            launch = _check_settings(study, config)
            # Neither a continued study nor a second driver may replay the first one's random draws.
            study.sampler = make_sampler(config.sampler, config.seed + len(study.trials) + launch)
            recover_stale_trials(study, space, reporter.log)
            if config.baselines:
                enqueue_baselines(study, space, reporter.log)
        study = _drive(study, lock, space, config, reporter, progress, data)
        progress.doing = "finishing"
        if not progress.interrupted:  # with a latency target: the front's measured latency
            measure_front(study, config, reporter.log)
        return study
    finally:
        if lock is not None:
            lock.close()


def _remove_new_folders(created: list[Path]) -> None:
    """Remove the folders (deepest first) that a search that failed had created, where empty."""
    for folder in created:
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty: something else now uses it


def _check_settings(study: optuna.Study, config: SearchConfig) -> int:
    """Record the study's settings (or refuse other ones); return how many drivers started it before."""
    fingerprint = json.loads(json.dumps(config.fingerprint()))
    saved = study.user_attrs.get("nasface_config")
    if saved is None:
        study.set_user_attr("nasface_config", fingerprint)
    elif saved != fingerprint:
        raise NasfaceError(f"study {config.study} was created with other settings: "
                           f"{settings_difference(saved, fingerprint)}; continue it with the same settings or "
                           f"start a new --study")
    launch = int(study.user_attrs.get("nasface_launches", 0))
    study.set_user_attr("nasface_launches", launch + 1)
    return launch


def settings_difference(saved: dict, now: dict, limit: int = 3) -> str:
    """"data.source: 'orl' in the study, 'synthetic' now; ..." for the first ``limit`` settings that differ
    (nested settings by their dotted name)."""
    def flat(settings: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in settings.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    before, after = flat(saved), flat(now)
    changed = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    shown = [f"{key}: {before.get(key)!r} in the study, {after.get(key)!r} now" for key in changed[:limit]]
    return "; ".join(shown) + (f"; and {len(changed) - limit} more" if len(changed) > limit else "")


def enqueue_baselines(study: optuna.Study, space: SearchSpace, log) -> list[str]:
    """Enqueue each seed network that is a point of the space, once per study (run under the lock)."""
    present = {facts.baseline for facts in record.records(study)}
    enqueued = []
    for name in baseline_presets(space):
        if name not in present:
            record.enqueue(study, space.params_of(load_spec(name)), baseline=name)
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


@dataclass
class Progress:
    """The driver's counts, its time left, and where its time went; ``trained`` counts every driver's
    candidates.

    The time left is the training work still queued, at the rate measured so far, ``parallel``
    trials at a time.  Work is steps x FLOPs (a step's time grows with the network's FLOPs): the steps
    left of the trials in training (``live``, as their jobs report them), the proxy's steps of each
    baseline or promotion waiting (``queued_flops``), and of each candidate still to start at
    ``expected_flops`` (the mean of the candidates trained so far; before one, of the seed networks
    within budget).  The rate, seconds per step per FLOP, is pooled over the trials finished in this
    run (their wall time, so zero-cost scores and evaluation count); before one has finished, taken
    from the steps of those in training; before that, from the teacher's steps (the same batches at
    the same resolution, ``teacher_flops`` a step); with none of these it is unknown.

    With a ``model`` (``nasface.search.eta``: each part of a trial timed on seed networks before the
    candidates) the time left is instead the model's seconds of each trial left, corrected by the
    finished trials' measured / modelled wall time (``finished_modelled``), so the first estimate
    already counts zero-cost scores and evaluation.
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
    pareto: int | None = None                # the study's Pareto-optimal trials, as last counted
    queued_flops: dict[int, int] = field(default_factory=dict)  # trial number -> FLOPs
    expected_flops: float | None = None
    live: dict[int, LiveTrial] = field(default_factory=dict)
    finished_seconds: float = 0.0            # wall seconds of the trials finished in this run...
    finished_work: float = 0.0               # ...and their steps x FLOPs
    step_seconds: float | None = None        # one training step of the teacher, measured in this run
    teacher_flops: int | None = None
    started: float = field(default_factory=time.time)
    sections: dict[str, float] = field(default_factory=dict)   # data, teacher, candidates -> seconds
    interrupted: bool = False  # Ctrl-C ended the candidates
    doing: str = "checking the inputs"      # what the driver does now, for a line in a silent stretch
    model: TrialCostModel | None = None
    finished_modelled: float = 0.0           # the model's seconds for the trials finished in this run

    def finished(self, seconds: float, steps: int, flops: int) -> None:
        """A trial of ``steps`` steps of a ``flops`` network took ``seconds`` of wall time."""
        self.finished_seconds += seconds
        self.finished_work += steps * flops
        if self.model is not None:
            self.finished_modelled += self.model.seconds(flops, steps)

    def candidates_to_start(self, live: dict[int, LiveTrial]) -> int:
        return max(0, (self.planned or 0) - self.trained - sum(1 for trial in live.values() if not trial.baseline))

    def seconds_per_flop_step(self) -> float | None:
        if self.finished_work > 0:
            return self.finished_seconds / self.finished_work
        measured = [rate for rate in (trial.seconds_per_flop_step() for trial in list(self.live.values())) if rate]
        if measured:
            return sum(measured) / len(measured)
        if self.step_seconds and self.teacher_flops:
            return self.step_seconds / self.teacher_flops
        return None

    def work_left(self) -> float:
        """Steps x FLOPs still to train: the trials in training, those queued, the candidates to start."""
        live = dict(self.live)  # a snapshot: the driver adds and removes trials
        in_training = list(live.values())
        to_start = self.candidates_to_start(live)
        queued = sum(flops for number, flops in self.queued_flops.items() if number not in live)
        return (sum(max(0, trial.steps - trial.done) * trial.flops for trial in in_training)
                + self.proxy_steps * (queued + to_start * (self.expected_flops or 0.0)))

    def eta_seconds(self) -> float | None:
        if self.planned is not None and self.model is not None:
            return modelled_time_left(self)
        rate = self.seconds_per_flop_step()
        if self.planned is None or rate is None:
            return None
        return self.work_left() * rate / self.parallel

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


@contextmanager
def held_interrupt():
    """Ctrl-C during the block takes effect when it ends.  A storage write cut in half leaves its
    transaction open, and the writes that record the interruption then find the database locked
    (SQLite: 'database is locked'); held, the interruption meets a consistent study.  Only the main
    thread receives signals; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _drive(study: optuna.Study, lock: StudyLock, space: SearchSpace, config: SearchConfig,
           reporter, progress: Progress, data) -> optuna.Study:
    """The teacher (built once), then the ask / train / tell loop on the proxy ``data``, until the
    study has its trials, time is up, or Ctrl-C (in the loop: the running trials are enqueued again)."""
    progress.trained = record.trained_candidates(study)
    progress.pareto = len(pareto_front(study))
    _queued_work(study, space, config, progress)
    if config.teacher == "auto":  # its steps time the candidates' before any has trained
        progress.teacher_flops = count(auto_teacher(config.proxy, config.teacher_spec)[0],
                                       config.budgets.convention)["flops"]
    reporter.stages.search_eta = progress.eta_during
    if progress.planned is not None and (progress.queued_flops or progress.candidates_to_start({})):
        progress.doing = "timing a trial's parts"
        with progress.section("timing"):  # before the teacher, whose stage then shows the whole time left
            progress.model = calibrate(_calibration_networks(space, config), data, config.proxy, reporter.stages)
    progress.doing = "preparing the teacher"
    with progress.section("teacher"):
        teacher = teacher_targets(config.teacher, data, config.study_dir / "cache", config.proxy,
                                  teacher_spec=config.teacher_spec, teacher_steps=config.teacher_steps,
                                  log=reporter.log, progress=reporter.stages)
    if teacher is not None:  # with the study: what the teacher was, and how well it verified on its own
        study.set_user_attr("nasface_teacher", teacher_info(teacher))
    payload_base = job.payload_base(config, teacher)

    candidates_started = time.time()
    progress.doing = "starting the candidates' workers"
    stop_orphans(config.study_dir, reporter.log)  # a killed driver's local Ray agents
    executor = make_executor(config.executor, config.workers, config.cpus_per_trial, config.gpus_per_trial,
                             config.address)
    session_dir = getattr(executor, "session_dir", None)
    ray_note = note_ray_session(config.study_dir, session_dir) if session_dir else None
    running: dict[int, tuple[optuna.trial.Trial, float]] = {}
    deadline = None if config.timeout is None else time.time() + config.timeout
    rejections_in_a_row = 0
    last_recovery = time.time()

    def out_of_time() -> bool:
        return deadline is not None and time.time() >= deadline

    def want_more() -> bool:  # called under the study lock: every driver's trials are counted
        if out_of_time():
            return False
        if config.trials is not None and record.candidates_counted(study) >= config.trials:
            return bool(_waiting(study))  # baselines and promotions still to run
        return True

    heartbeat = Heartbeat(study, lock, running)
    heartbeat.start()
    watch = TrainingWatch(config.study_dir, progress, reporter, reporter.interval)
    watch.start()
    asked = None  # the trial being sampled and counted, until it trains or is told
    interrupted = False
    try:
        while True:
            progress.doing = "training candidates" if running else "sampling the next candidate"
            while len(running) < executor.capacity():
                with lock.hold(config.study), held_interrupt():
                    if not want_more():
                        break
                    trial = asked = study.ask()
                    record.write(trial, driver=driver_id(), heartbeat=time.time())
                    outcome = _prepare(study, trial, space, config)
                    if outcome is None:
                        payload = {**payload_base, **_rung_payload(study, trial, config),
                                   "live_file": str(live_path(config.study_dir, trial.number))}
                        record.write(trial, training_started=time.time())
                    else:  # not trained: invalid, over budget, or a repeat
                        study.tell(trial, **outcome)
                        asked = None
                if outcome is not None:
                    facts = record.read(trial)
                    if facts.kind == "duplicate":
                        progress.duplicates += 1
                    else:
                        progress.rejected += 1
                    rejections_in_a_row += 1
                    reporter.trial(facts, progress)
                    if rejections_in_a_row >= MAX_REJECTIONS_IN_A_ROW:
                        raise NasfaceError(f"{rejections_in_a_row} candidates in a row were over budget, invalid "
                                           f"or repeats; loosen the budgets or widen the space")
                    continue
                rejections_in_a_row = 0
                running[trial.number] = (trial, time.time())
                asked = None
                progress.running = len(running)
                progress.live[trial.number] = _live_trial(record.read(trial), payload)
                executor.submit(trial.number, job.run_candidate, payload)
            if not running:
                if out_of_time() or not trained_elsewhere(study):
                    break
                # Other drivers' candidates count towards --trials: wait for them, and take over any
                # whose driver dies (recovered below, then asked for again above).
                time.sleep(1.0)
            for number, result in executor.wait(timeout=1.0):
                trial, started = running[number]  # running until told: Ctrl-C meanwhile enqueues it again
                with lock.hold(config.study), held_interrupt():
                    if not still_ours(study, trial):
                        reporter.log(f"trial {number} was recovered by another driver while it trained "
                                     f"(its heartbeat looked stale); this result is dropped")
                        del running[number]
                        continue
                    _finish(study, trial, result, config, time.time() - started, progress)
                    del running[number]
                    if config.rungs:
                        promote(study, config, reporter.log)
                progress.running = len(running)
                progress.live.pop(number, None)
                live_path(config.study_dir, number).unlink(missing_ok=True)
                progress.trained = record.trained_candidates(study)
                _queued_work(study, space, config, progress)
                progress.pareto = len(pareto_front(study))
                reporter.trial(record.read(trial), progress)
            if time.time() - last_recovery > HEARTBEAT_SECONDS:
                with lock.hold(config.study), held_interrupt():
                    recover_stale_trials(study, space, reporter.log)  # a peer driver that died mid-trial
                last_recovery = time.time()
    except KeyboardInterrupt:
        interrupted = True
        reporter.log("interrupted: stopping; finished trials are kept, the running ones are enqueued again")
        progress.interrupted = True
        with lock.hold(config.study):
            unfinished = [trial for trial, _ in running.values()] + ([asked] if asked is not None else [])
            for trial in unfinished:
                if still_ours(study, trial):
                    fail_and_requeue(study, trial, "interrupted by the user", space)
        for number in running:
            live_path(config.study_dir, number).unlink(missing_ok=True)
        running.clear()
        progress.live.clear()
    finally:
        watch.stop()
        heartbeat.stop()
        executor.shutdown()
        if ray_note is not None:
            ray_note.unlink(missing_ok=True)
        progress.sections["candidates"] = time.time() - candidates_started
    reporter.finish(study, pareto_front(study), config, progress.where_the_time_went())
    if interrupted:
        raise SearchInterrupted()
    return study


def _queued_work(study: optuna.Study, space: SearchSpace, config: SearchConfig, progress: Progress) -> None:
    """What the time left needs of the study: the FLOPs of the baselines and promotions waiting, and
    those a candidate is expected to have (the trained candidates' mean; before one, that of the
    seed networks of the space within budget, else the FLOPs budget)."""
    everything = record.records(study)
    convention = config.budgets.convention
    progress.queued_flops = {facts.number: count(facts.baseline, convention)["flops"] if facts.baseline
                             else everything[facts.promoted_from].cost["flops"] for facts in _waiting(study)}
    trained = [facts.cost["flops"] for facts in everything if facts.kind == "candidate"]
    if not trained:
        seeds = [count(name, convention) for name in baseline_presets(space)]
        trained = [cost["flops"] for cost in seeds if not config.budgets.violations(cost)]
    if trained:
        progress.expected_flops = sum(trained) / len(trained)
    else:
        progress.expected_flops = config.budgets.flops


def baseline_presets(space: SearchSpace) -> list[str]:
    """The presets that are points of the space: the baselines a search trains."""
    names = []
    for name in preset_names():
        try:
            space.params_of(load_spec(name))
        except NasfaceError:
            continue  # not a point of this space (e.g. a teacher)
        names.append(name)
    return names


def _calibration_networks(space: SearchSpace, config: SearchConfig) -> list[tuple[object, int]]:
    """The cheapest and the most expensive seed network of the space, with their FLOPs (the space's
    cheapest network when it has none): what a trial's parts are timed on."""
    convention = config.budgets.convention
    seeds = sorted(((name, count(name, convention)["flops"]) for name in baseline_presets(space)),
                   key=lambda seed: seed[1])
    if not seeds:
        cheapest = cheapest_spec(space)
        return [(cheapest, count(cheapest, convention)["flops"])]
    return [seeds[0], seeds[-1]] if len(seeds) > 1 else seeds


def _live_trial(facts: record.TrialRecord, payload: dict) -> LiveTrial:
    label = f"baseline {facts.baseline}" if facts.baseline else f"trial {facts.number}"
    return LiveTrial(number=facts.number, label=label, flops=facts.cost["flops"],
                     steps=payload["proxy"]["steps"], baseline=bool(facts.baseline),
                     started=time.time())


def _waiting(study: optuna.Study) -> list:
    """Enqueued trials not asked for yet: baselines, successive halving's promotions, retries of those."""
    return [facts for facts in record.records(study, states=(optuna.trial.TrialState.WAITING,))
            if facts.baseline or facts.promoted]


def _rung_payload(study: optuna.Study, trial: optuna.trial.Trial, config: SearchConfig) -> dict:
    """The candidate's spec, its rung's proxy, and the run it continues (successive halving)."""
    facts = record.read(trial)
    if facts.rung is None:
        return {"spec": facts.spec}
    resume_from = save_to = None
    if facts.promoted:
        resume_from = record.read(study.trials[facts.promoted_from]).checkpoint
    if facts.rung < config.top_rung and not facts.baseline:
        save_to = str(config.study_dir / "checkpoints" / f"trial-{trial.number}.pt")
        record.write(trial, checkpoint=save_to)
    return {"spec": facts.spec, "proxy": dataclasses.asdict(config.rung_budget(facts.rung)),
            "resume_from": resume_from, "save_to": save_to}


def promote(study: optuna.Study, config: SearchConfig, log) -> list[int]:
    """Enqueue the candidates successive halving promotes now (run under the study lock).

    A rung's candidates are those trained at it (failed ones included: they count towards the
    rung's size but never rise), in trial order; ``nasface.rungs.promotions`` ranks the feasible
    ones by non-dominated sorting of the search's objectives, then crowding distance.  A candidate
    promoted once is never promoted again, whichever driver did it.
    """
    everything = record.records(study)
    promoted = {facts.promoted_from for facts in everything if facts.promoted}
    signs = [1.0 if OBJECTIVES[name] == "maximize" else -1.0 for name in config.objectives]
    enqueued = []
    for rung in range(config.top_rung):
        results = [RungResult(key=facts.number, failed=facts.kind == "failed", feasible=facts.feasible,
                              objectives=tuple(sign * value for sign, value in zip(signs, facts.values or signs)))
                   for facts in everything
                   if facts.rung == rung and not facts.baseline and facts.kind in ("candidate", "failed")]
        for number in promotions(results, config.eta, promoted):
            source = study.trials[number]
            record.enqueue(study, source.params, rung=rung + 1, promoted_from=number)
            enqueued.append(number)
    if enqueued:
        log(f"promoted to the next rung: trial{'s' if len(enqueued) > 1 else ''} {', '.join(map(str, enqueued))}")
    return enqueued


def _prepare(study: optuna.Study, trial: optuna.trial.Trial, space: SearchSpace, config: SearchConfig):
    """Sample and count the candidate; return tell() arguments when it must not be trained.

    Not trained: invalid architectures, candidates over budget, and repeats of a candidate the
    study already trained (its result is told again, so the sampler still learns from it).
    """
    facts = record.read(trial)  # a baseline or a promotion carries what it is from its enqueueing
    baseline = facts.baseline
    if config.rungs and facts.rung is None:  # baselines are references: they train the top rung's proxy
        record.write(trial, rung=config.top_rung if baseline else 0)
    try:
        spec = space.sample(trial, name=baseline or f"trial-{trial.number}")
    except NasfaceError as err:
        record.write(trial, kind="invalid", reason=f"invalid architecture: {err}")
        return {"state": optuna.trial.TrialState.FAIL}
    if baseline and trial.params != (preset := space.params_of(load_spec(baseline))):
        # enqueued again by an older nasface with the few knobs its interrupted trial had drawn
        record.write(trial, kind="invalid", reason=f"baseline {baseline} was enqueued with other knobs than its "
                                                   f"preset's; enqueued again from the preset")
        record.enqueue(study, preset, retry_of=trial.number, **record.enqueued_fields(facts))
        return {"state": optuna.trial.TrialState.FAIL}
    try:
        proxy_spec(spec, config.proxy.resolution)
    except NasfaceError as err:
        record.write(trial, kind="invalid", reason=str(err))
        return {"state": optuna.trial.TrialState.FAIL}
    if config.fill_budget and not baseline:  # deterministic: a promotion is widened as its first rung was
        spec, factor = fill_budget(spec, config.budgets)
        record.write(trial, width_scale=factor)
    cost = count(spec, config.budgets.convention)
    cost.pop("stages")
    cost.update(latency_cost(spec, config))
    record.write(trial, spec=spec_to_dict(spec), cost=cost)
    violations = config.budgets.violations(cost)
    if violations and not baseline:
        _set_constraints(trial, config.budgets, cost)
        record.write(trial, kind="rejected", reason="over budget: " + "; ".join(violations))
        return {"values": objective_values(config.objectives, cost, None, config.score)}
    if violations:
        record.write(trial, over_budget="; ".join(violations))  # a reference point, trained anyway
    twin = None if baseline or facts.promoted else _twin(study, trial)
    if twin is not None:
        record.write(trial, kind="duplicate", duplicate_of=twin.number)
        if twin.state == "RUNNING":  # another driver or worker is training it now
            record.write(trial, reason=f"same architecture as trial {twin.number}, in training")
            return {"state": optuna.trial.TrialState.FAIL}
        _set_constraints(trial, config.budgets, twin.cost)
        record.write(trial, metrics=twin.metrics)
        return {"values": list(twin.values)}
    return None


def _set_constraints(trial: optuna.trial.Trial, budgets: Budgets, cost: dict) -> None:
    """Tell the sampler how far over (> 0) or under (<= 0) each budget the candidate is.

    Set once per trial, from its final cost: Optuna keeps the first value of a constraint.
    """
    for key, value in budgets.constraints(cost).items():
        trial.set_constraint(key, value)


def _twin(study: optuna.Study, trial: optuna.trial.Trial) -> record.TrialRecord | None:
    """A trial with exactly this trial's parameters that completed training or is training now."""
    params = trial.params
    for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.RUNNING)):
        if other.params != params:
            continue
        facts = record.read(other)
        if (facts.trained or facts.in_training) and not facts.promoted:  # a candidate's first training
            return facts
    return None


def _finish(study, trial, result: Outcome, config: SearchConfig, seconds: float, progress: Progress) -> None:
    facts = record.read(trial)
    record.write(trial, wall_seconds=seconds)
    metrics = result.result if result.ok else None
    if metrics is None or metrics.get("status") != "ok":
        record.write(trial, kind="failed", reason=result.reason if not result.ok else metrics.get("reason"))
        if metrics is not None:
            record.write(trial, metrics=metrics)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        progress.failed += 1
        _discard(record.read(trial).checkpoint)  # a failed run is never promoted
        return
    # what training decided (FLGC's learnt groups) can change what the deployed network costs
    spec = spec_from_dict(facts.spec)
    cost = {**deployed_cost(spec, metrics, config.budgets.convention), **latency_cost(spec, config)}
    record.write(trial, cost=cost)
    _set_constraints(trial, config.budgets, cost)
    record.write(trial, kind="baseline" if facts.baseline else "candidate", metrics=metrics)
    study.tell(trial, values=objective_values(config.objectives, cost, metrics, config.score))
    progress.finished(seconds, int(metrics["steps"]) - int(metrics.get("resumed_at") or 0), facts.cost["flops"])
    if facts.baseline:
        progress.baselines += 1
    if facts.promoted:  # the run goes on from this trial now; the state it continued is spent
        _discard(record.read(study.trials[facts.promoted_from]).checkpoint)


def _discard(checkpoint: str | None) -> None:
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
