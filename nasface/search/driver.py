"""The search driver: open the study, then ask, sample, count, train (by an executor) and tell.

See ``nasface.search`` for the loop step by step.  A trial's sampling, counting and the verdicts
that need no training are ``nasface.search.candidate``'s.  Every fact kept of a trial goes through
``nasface.search.record``; liveness and recovery are ``nasface.search.recovery``'s; what the driver
writes to the study besides its trials (settings, baselines, promotions) is ``nasface.search.study``'s,
and its counts and time left ``nasface.search.eta``'s.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import optuna

from nasface.core.atomic import WRITE_ERRNOS
from nasface.core.errors import NasfaceError
from nasface.search.executor import Outcome, make_executor
from nasface.search.latency import latency_cost, measure_front
from nasface.arch.model import count, deployed_cost
from nasface.search.results import pareto_front
from nasface.search import job, record
from nasface.search.candidate import objective_values, prepare_trial, set_constraints
from nasface.search.checks import check_config
from nasface.search.eta import Progress, count_queued
from nasface.search.recovery import (HEARTBEAT_SECONDS, Heartbeat, driver_id, fail_and_requeue,
                                     recover_stale_trials, still_ours, trained_elsewhere)
from nasface.search.trial_time import calibrate, calibration_networks
from nasface.search.live import LiveTrial, TrainingWatch, live_path
from nasface.search.orphans import note_ray_session, stop_orphans
from nasface.search.samplers import make_sampler
from nasface.search.silence import SilenceWatch
from nasface.search.config import OBJECTIVES, SearchConfig
from nasface.arch.space import SearchSpace
from nasface.arch.spec import spec_from_dict
from nasface.search.storage import StudyLock, open_storage, write_failure
from nasface.search.study import check_settings, enqueue_baselines, promote, rung_payload, waiting
from nasface.training.teacher import auto_teacher, teacher_info, teacher_targets

logger = logging.getLogger(__name__)


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during the candidates: the search stopped in order (finished trials kept, the unfinished
    ones enqueued again), so the same command resumes it.  Still a ``KeyboardInterrupt``, so a
    script, like the command line (exit status 130), can tell it from a finished search."""


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
            launch = check_settings(study, config)
            # Neither a continued study nor a second driver may replay the first one's random draws.
            study.sampler = make_sampler(config.sampler, config.seed + len(study.trials) + launch)
            recover_stale_trials(study, space)
            if config.baselines:
                enqueue_baselines(study, space)
        study = _drive(study, lock, space, config, reporter, progress, data)
        progress.doing = "finishing"
        if not progress.interrupted:  # with a latency target: the front's measured latency
            measure_front(study, config)
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


@contextmanager
def held_interrupt():
    """Ctrl-C during the block takes effect when it ends.  A storage write cut in half leaves its
    transaction open, and the writes that record the interruption then find the database locked
    (SQLite: 'database is locked'); held, the interruption meets a consistent study.  Only the main
    thread receives signals; elsewhere the block runs as it is.  A search started with SIGINT ignored
    (``nohup``, or ``cmd &`` in a script without job control) keeps ignoring it: caught only during these
    blocks, a Ctrl-C would stop it at some moments and not at others."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
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
    count_queued(progress, study, space, config)
    if config.teacher == "auto":  # its steps time the candidates' before any has trained
        progress.teacher_flops = count(auto_teacher(config.proxy, config.teacher_spec)[0],
                                       config.budgets.convention)["flops"]
    reporter.stages.search_eta = progress.eta_during
    if progress.planned is not None and (progress.queued_flops or progress.candidates_to_start({})):
        progress.doing = "timing a trial's parts"
        with progress.section("timing"):  # before the teacher, whose stage then shows the whole time left
            progress.model = calibrate(calibration_networks(space, config), data, config.proxy, reporter.stages)
    progress.doing = "preparing the teacher"
    with progress.section("teacher"):
        teacher = teacher_targets(config.teacher, data, config.study_dir / "cache", config.proxy,
                                  teacher_spec=config.teacher_spec, teacher_steps=config.teacher_steps,
                                  progress=reporter.stages)
    if teacher is not None:  # with the study: what the teacher was, and how well it verified on its own
        study.set_user_attr("nasface_teacher", teacher_info(teacher))
    payload_base = job.payload_base(config, teacher)

    candidates_started = time.time()
    progress.doing = "starting the candidates' workers"
    stop_orphans(config.study_dir)  # a killed driver's local Ray agents
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
            return bool(waiting(study))  # baselines and promotions still to run
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
                    outcome = prepare_trial(study, trial, space, config)
                    if outcome is None:
                        payload = {**payload_base, **rung_payload(study, trial, config),
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
                        logger.info(f"trial {number} was recovered by another driver while it trained "
                                    f"(its heartbeat looked stale); this result is dropped")
                        del running[number]
                        continue
                    _finish(study, trial, result, config, time.time() - started, progress)
                    del running[number]
                    if config.rungs:
                        promote(study, config)
                progress.running = len(running)
                progress.live.pop(number, None)
                live_path(config.study_dir, number).unlink(missing_ok=True)
                progress.trained = record.trained_candidates(study)
                count_queued(progress, study, space, config)
                progress.pareto = len(pareto_front(study))
                reporter.trial(record.read(trial), progress)
            if time.time() - last_recovery > HEARTBEAT_SECONDS:
                with lock.hold(config.study), held_interrupt():
                    recover_stale_trials(study, space)  # a peer driver that died mid-trial
                last_recovery = time.time()
    except KeyboardInterrupt:
        interrupted = True
        logger.info("interrupted: stopping; finished trials are kept, the running ones are enqueued again")
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


def _live_trial(facts: record.TrialRecord, payload: dict) -> LiveTrial:
    label = f"baseline {facts.baseline}" if facts.baseline else f"trial {facts.number}"
    return LiveTrial(number=facts.number, label=label, flops=facts.cost["flops"],
                     steps=payload["proxy"]["steps"], baseline=bool(facts.baseline),
                     started=time.time())


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
    set_constraints(trial, config.budgets, cost)
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
