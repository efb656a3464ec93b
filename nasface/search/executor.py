"""Where candidates train: one interface, two executors (like Optuna's samplers and storages).

- ``InlineExecutor`` runs each job in the driver process, one at a time (debugging, notebooks,
  tests that need no cluster);
- ``RayExecutor`` runs jobs as Ray tasks: a local Ray started by nasface by default, or an
  existing cluster with ``address``.  A worker process that dies mid-trial is retried a bounded
  number of times by Ray (``max_retries``); after that the job fails with the reason.  Each task is
  named after its key (``ray::nasface-trial-7`` in ``ps``), so a trial's worker can be found.

A job is a plain function and a JSON-friendly payload; ``wait`` hands back finished jobs as
``(key, Outcome)``.  A job's own exception becomes a failed outcome with its message: it never
stops the study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nasface.core.errors import NasfaceError
from nasface.core.options import flag_name


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: dict | None = None
    reason: str | None = None


def describe_exception(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


class Executor(Protocol):
    def submit(self, key, fn: Callable[[dict], dict], payload: dict) -> None: ...

    def wait(self, timeout: float) -> list[tuple[object, Outcome]]: ...

    def running(self) -> int: ...

    def capacity(self) -> int: ...

    def shutdown(self) -> None: ...


class InlineExecutor:
    """Runs a job when it is submitted; ``wait`` returns it.  Capacity 1."""

    def __init__(self):
        self._done: list[tuple[object, Outcome]] = []

    def submit(self, key, fn, payload) -> None:
        try:
            self._done.append((key, Outcome(True, fn(payload))))
        except Exception as err:  # a candidate's crash is data for the study, not a driver crash
            self._done.append((key, Outcome(False, reason=describe_exception(err))))

    def wait(self, timeout: float) -> list[tuple[object, Outcome]]:
        done, self._done = self._done, []
        return done

    def running(self) -> int:
        return 0

    def capacity(self) -> int:
        return 1

    def shutdown(self) -> None:
        """Nothing to release."""


def _run_job(fn, payload, threads: int):
    import ray
    import torch

    torch.set_num_threads(max(1, threads))
    result = fn(payload)
    result["ray_node"] = ray.get_runtime_context().get_node_id()  # where it ran, for the record
    return result


class RayExecutor:
    """Each job is a Ray task with ``cpus`` CPUs and ``gpus`` (fractional) GPUs."""

    def __init__(self, workers: int, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                 address: str | None = None, max_retries: int = 2):
        import ray

        self.ray = ray
        self.session_dir: str | None = None  # of a local Ray this executor started
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                       "configure_logging": True}
            try:
                if address:
                    ray.init(address=address, **options)
                else:
                    # nasface's own local Ray: sized for the asked workers, nothing to install or start.
                    started = ray.init(num_cpus=max(1, int(workers * cpus_per_trial + 0.999)),
                                       num_gpus=None if gpus_per_trial else 0, **options)
                    self.session_dir = started.address_info["session_dir"]
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                raise NasfaceError(f"cannot start or join {where}: {describe_exception(err)}") from None
        self.workers = workers
        self.max_retries = max_retries
        self.threads = max(1, int(cpus_per_trial))
        self.remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                 max_retries=max_retries)(_run_job)
        self.pending: dict = {}

    def submit(self, key, fn, payload) -> None:
        self.pending[self.remote.options(name=f"nasface-trial-{key}").remote(fn, payload, self.threads)] = key

    def wait(self, timeout: float) -> list[tuple[object, Outcome]]:
        if not self.pending:
            return []
        ready, _ = self.ray.wait(list(self.pending), num_returns=len(self.pending), timeout=timeout)
        finished = []
        for ref in ready:
            key = self.pending.pop(ref)
            try:
                finished.append((key, Outcome(True, self.ray.get(ref))))
            except self.ray.exceptions.RayTaskError as err:
                cause = err.cause if getattr(err, "cause", None) is not None else err
                finished.append((key, Outcome(False, reason=describe_exception(cause))))
            except self.ray.exceptions.WorkerCrashedError as err:
                reason = (f"worker died: its process ended in each of {self.max_retries + 1} attempts "
                          f"({describe_exception(err)})")
                finished.append((key, Outcome(False, reason=reason)))
            except self.ray.exceptions.RayError as err:  # node lost, out of memory, cancelled...
                finished.append((key, Outcome(False, reason=f"Ray: {describe_exception(err)}")))
        return finished

    def running(self) -> int:
        return len(self.pending)

    def capacity(self) -> int:
        return self.workers

    def cancel_all(self) -> None:
        for ref in list(self.pending):
            self.ray.cancel(ref, force=True)
        self.pending.clear()

    def shutdown(self) -> None:
        self.cancel_all()
        if self.ray.is_initialized():
            self.ray.shutdown()


def check_resources(workers: int, cpus_per_trial: float, gpus_per_trial: float,
                    named: Callable[[str], str] = flag_name) -> None:
    """Refuse resources Ray cannot give; ``named(option)`` is how the error names each (a flag, a file's key)."""
    if workers < 1:
        raise NasfaceError(f"{named('workers')} must be at least 1, got {workers}")
    if not 0 < cpus_per_trial < float("inf"):
        raise NasfaceError(f"{named('cpus_per_trial')} must be a positive number of CPUs, got {cpus_per_trial}")
    if not 0 <= gpus_per_trial < float("inf"):
        raise NasfaceError(f"{named('gpus_per_trial')} must be 0 or a positive fraction of GPUs, got {gpus_per_trial}")


def check_executor(kind: str, workers: int = 1, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                   named: Callable[[str], str] = flag_name) -> None:
    """Raise NasfaceError for executor settings that cannot run (before a search creates anything)."""
    if kind not in ("inline", "ray"):
        raise NasfaceError(f"unknown executor {kind!r} (choose from ray, inline)")
    if kind == "ray":
        check_resources(workers, cpus_per_trial, gpus_per_trial, named)


def make_executor(kind: str, workers: int = 1, cpus_per_trial: float = 1.0, gpus_per_trial: float = 0.0,
                  address: str | None = None) -> Executor:
    check_executor(kind, workers, cpus_per_trial, gpus_per_trial)
    if kind == "inline":
        return InlineExecutor()
    return RayExecutor(workers, cpus_per_trial, gpus_per_trial, address)

