"""What a latency figure is a figure of: the runtime, its version, the precision, the threads, the CPU.

A ``LatencyTarget`` is what a user names (``onnxruntime:fp32:1``); its ``key`` adds what the machine
decides (the runtime's installed version and the CPU model), and every stored figure carries that key,
so figures of different runtimes, precisions, thread counts or machines are never mixed.
"""

from __future__ import annotations

import functools
import importlib
import platform
import re
from dataclasses import dataclass
from pathlib import Path

from nasface.core.errors import NasfaceError

RUNTIMES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}  # name -> the module that runs it
EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}  # name -> the nasface extra that installs it
PRECISIONS = ("fp32", "int8")
DEFAULT_TARGET = "onnxruntime:fp32:1"
TARGET_FORMAT = "RUNTIME:PRECISION:THREADS such as onnxruntime:fp32:1"
# whole networks a table's correction is fitted on unless told: fitted on 20, held-out networks were 5-8
# points more often within +-10 % than fitted on 10 (BENCHMARKS.md, "Latency predictor against measurement")
FIT_NETWORKS = 20
# Runtimes whose PReLU takes longer the more its input's signs mix (a branch per element): there a PReLU
# inside a network can cost otherwise than in its part as timed, and the correction takes a cost per
# element a PReLU takes (``nasface.latency.table.Correction``); elsewhere that term only adds noise to
# the fit.  On this machine a PReLU on 128 x 56 x 56 ran 0.16 ms on positive input and 1.85 ms on random
# signs on onnxruntime 1.32, 0.19 ms either way on OpenVINO 2026.4 (``benchmarks/latency_prelu_signs.py``).
PRELU_BY_SIGNS = ("onnxruntime",)


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (the platform's processor name elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def runtime_version(runtime: str) -> str:
    """The installed version of ``runtime``; one line naming the extra to install when it is missing."""
    try:
        module = importlib.import_module(RUNTIMES[runtime])
    except ImportError:
        raise NasfaceError(f"the {runtime} runtime is not installed: pip install "
                           f"'nasface[{EXTRAS.get(runtime, runtime)}]'") from None
    return str(getattr(module, "__version__", None) or module.get_version())


@dataclass(frozen=True)
class LatencyTarget:
    runtime: str = "onnxruntime"
    precision: str = "fp32"
    threads: int = 1

    @classmethod
    def parse(cls, text: str, option: str = "--latency") -> "LatencyTarget":
        """``onnxruntime:fp32:1`` (precision and threads may be left out: fp32, 1 thread)."""
        parts = str(text).strip().split(":")
        if not 1 <= len(parts) <= 3 or not parts[0]:
            raise NasfaceError(f"{option} {text!r}: write {TARGET_FORMAT}")
        runtime, precision, threads = [*parts, "fp32", "1"][:3] if len(parts) == 1 else [*parts, "1"][:3]
        if runtime not in RUNTIMES:
            raise NasfaceError(f"{option} {text!r}: unknown runtime {runtime!r} (choose from {', '.join(RUNTIMES)})")
        if precision not in PRECISIONS:
            raise NasfaceError(f"{option} {text!r}: unknown precision {precision!r} "
                               f"(choose from {', '.join(PRECISIONS)})")
        if not threads.isdigit() or int(threads) < 1:
            raise NasfaceError(f"{option} {text!r}: threads must be a whole number >= 1, got {threads!r}")
        return cls(runtime, precision, int(threads))

    def __str__(self) -> str:
        return f"{self.runtime}:{self.precision}:{self.threads}"

    def key(self) -> dict:
        """This target on this machine: what every stored figure is keyed by (checks the runtime is installed)."""
        return {"runtime": self.runtime, "version": runtime_version(self.runtime), "precision": self.precision,
                "threads": self.threads, "cpu": cpu_model()}

    def slug(self) -> str:
        """A file name for this target's table on this machine."""
        key = self.key()
        cpu = re.sub(r"[^a-z0-9]+", "-", key["cpu"].lower()).strip("-")[:40]
        version = re.sub(r"[^A-Za-z0-9.]+", "-", key["version"])[:40]
        return f"{self.runtime}-{version}-{self.precision}-{self.threads}t-{cpu}"


def prelu_by_signs(key: dict) -> bool:
    """Whether the PReLUs of ``key``'s runtime take longer the more their input's signs mix."""
    return key["runtime"] in PRELU_BY_SIGNS


def describe_key(key: dict) -> str:
    return f"{key['runtime']} {key['version']} {key['precision']} {key['threads']} thread(s) on {key['cpu']}"


def default_table(target: LatencyTarget, studies_dir: str | Path = "studies") -> Path:
    """The table of ``target`` on this machine, which searches in ``studies_dir`` use: one file per runtime
    version, precision, threads and CPU."""
    return Path(studies_dir) / "latency-tables" / f"{target.slug()}.jsonl"
