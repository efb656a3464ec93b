"""Do the zero-cost signals order the published networks as full training did?  No training.

    nice -n 10 python benchmarks/zero_cost_validity.py [--seeds 3] [--sources synthetic,orl,synthetic-hard]

For every published network nasface builds (the table's presets), several seeds, on each source
with the data settings of BENCHMARKS.md's ``nasface validate`` commands and the README study's proxy
(``studies/lfr-light.yaml``), computes each signal at initialisation as a proxy run does before its
first step (``nasface.validity.zero_cost``), and counts the published pairs each orders, per group
and overall, beside FLOPs alone, parameters alone and the table's printed FLOPs.  Each value is
also compared with what the committed ``validate`` logs recorded for the same network and seed
(the same computation, so they must agree).  Resumable: each (source, network, seed) is a line of
results/zero_cost_validity.jsonl; the analysis goes to results/zero_cost_validity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, RowLog, write_result  # noqa: E402
from nasface.arch.spec import spec_to_dict  # noqa: E402
from nasface.core.keys import json_digest  # noqa: E402
from nasface.search import config_from_options, load_proxy_data  # noqa: E402
from nasface.validity.published import load_published  # noqa: E402
from nasface.validity.validate import LOG, ValidateSettings, buildable_networks  # noqa: E402
from nasface.validity.zero_cost import ZERO_COST, analyse_signals, untrained_signals  # noqa: E402

STUDY = Path(__file__).resolve().parents[1] / "studies" / "lfr-light.yaml"
# each source's data settings and the validate logs measured with them (BENCHMARKS.md)
SOURCES = {
    "synthetic": ({}, ("validate-synthetic", "validate-ladders-synthetic")),
    "orl": ({"train_identities": 20, "val_identities": 20, "pairs": 1800}, ("validate-orl",)),
    "synthetic-hard": ({}, ("validate-ladders-synthetic-hard",)),
}
TRIVIAL = ("log_flops", "log_params")


def logged_signals(folders) -> dict:
    """{(preset, seed): signals} that the validate logs in ``folders`` recorded."""
    found = {}
    for folder in folders:
        path = RESULTS / folder / LOG
        if path.is_file():
            for line in path.read_text().splitlines():
                row = json.loads(line) if line.strip() else None
                if row and row["result"]["status"] == "ok":
                    found[(row["preset"], row["seed"])] = row["result"]["signals"]
    return found


def agreement_with_logs(measured: dict, logged: dict) -> dict:
    """The largest relative difference, per signal, between a value here and the logged one."""
    shared = [key for key in measured if key in logged]
    worst = {}
    for name in ZERO_COST:
        gaps = [abs(measured[k][name] - logged[k][name]) / max(abs(logged[k][name]), 1e-12) for k in shared
                if measured[k].get(name) is not None and logged[k].get(name) is not None]
        worst[name] = max(gaps) if gaps else None
    return {"runs_compared": len(shared), "max_relative_difference": worst}


def measure_source(source: str, seeds: int, table, out: Path, log: RowLog) -> dict:
    flags, folders = SOURCES[source]
    config = config_from_options({"data": source, **flags}, STUDY)
    settings = ValidateSettings(search=config, seeds=seeds)
    proxy = settings.proxy
    data = load_proxy_data(config.data, config.seed, out / "cache")
    networks = buildable_networks(table, proxy.resolution)
    runnable = [b for b in networks if b.reason is None]
    measured, seconds = {}, {}
    for seed in settings.seed_list():
        for network in runnable:
            key = json_digest({"data": data.key, "spec": spec_to_dict(network.spec), "seed": seed,
                               "proxy": {k: getattr(proxy, k) for k in ("resolution", "margin", "scale")}}, 24)
            row = log.get(key)
            if row is None:
                start = time.process_time()
                signals = untrained_signals(network, data.train, proxy, seed)
                row = {"source": source, "preset": network.preset, "seed": seed, "signals": signals,
                       "cpu_seconds": time.process_time() - start, "load_average": os.getloadavg()[0]}
                log.add(key, row)
                print(f"{source} {network.preset} seed {seed}: zico {signals['zico']:.1f} "
                      f"({row['cpu_seconds']:.1f} CPU s)", flush=True)
            measured[(network.preset, seed)] = row["signals"]
            seconds[network.preset] = seconds.get(network.preset, 0.0) + row["cpu_seconds"]
    report = analyse_signals(table, networks, settings.seed_list(), measured, names=ZERO_COST + TRIVIAL)
    report["data"] = {"source": source, **flags}
    report["networks"] = [b.preset for b in runnable]
    report["left_out"] = {b.preset: b.reason for b in networks if b.reason is not None}
    report["cpu_seconds_per_network_seed"] = {p: s / len(settings.seed_list()) for p, s in seconds.items()}
    report["validate_logs"] = agreement_with_logs(measured, logged_signals(folders))
    return report


def show(source: str, report: dict) -> None:
    base = report["baselines"]
    print(f"\n{source}: {len(report['networks'])} networks, seeds {report['seeds']}; "
          f"FLOPs alone {base['flops']['ordered']}/{base['flops']['counted']} (tau {base['flops']['tau']:+.2f}), "
          f"parameters alone {base['params']['ordered']}/{base['params']['counted']} "
          f"(tau {base['params']['tau']:+.2f}), printed FLOPs {base['printed_flops']['ordered']}/"
          f"{base['printed_flops']['counted']}")
    for name, entry in report["signals"].items():
        seeds = [v["ordered"] for v in entry["per_seed"].values()]
        noise = entry["noise_to_spread"]
        print(f"  {name:10s} {entry['ordered']:5.1f}/{entry['counted']} ({entry['share']:.0%}, tau {entry['tau']:+.2f})"
              f"  single seeds {min(seeds):.1f}-{max(seeds):.1f}"
              f"  noise/spread {'-' if noise is None else f'{noise:.2f}'}")
    print(f"  agrees with the validate logs: {report['validate_logs']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (validate's logs: 1)")
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated, of {', '.join(SOURCES)}")
    args = parser.parse_args()
    sources = [s.strip() for s in args.sources.split(",")]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or args.seeds < 1:
        parser.error(f"--sources: {', '.join(SOURCES)}; --seeds: 1 or more")
    torch.set_num_threads(args.threads)
    out = RESULTS / "zero-cost-validity"
    log = RowLog(RESULTS / "zero_cost_validity.jsonl")
    table = load_published()
    reports = {}
    for source in sources:
        reports[source] = measure_source(source, args.seeds, table, out, log)
        show(source, reports[source])
    path = write_result("zero_cost_validity", {"command": " ".join(["python", *sys.argv]), "study": "studies/lfr-light.yaml",
                                               "threads": args.threads,
                                               "load_average": os.getloadavg()[0], "sources": reports})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
