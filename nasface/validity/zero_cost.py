"""Do the signals at initialisation rank the published networks as full training did?  No training.

Each zero-cost signal (``nasface.training.signals``: ZiCo, grad_norm, SNIP, NASWOT, synflow) is
computed exactly as a proxy run computes it before its first step: the same seed, the same untrained
network and the same two batches of the proxy's training faces (``initial_signals``), so a value
here is the value a ``nasface validate`` run logs.  Each is then analysed as ``validate`` analyses
the proxy's accuracy (``nasface.validity.validate.analyse``): the published pairs it orders, per
group and overall, its pooled Kendall tau, FLOPs and parameters alone beside it, and seed noise.
Training-free, it reaches every network the table can build with several seeds in minutes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from nasface.training.proxy import initial_signals
from nasface.training.settings import ProxyBudget
from nasface.training.signals import SIGNALS
from nasface.training.student import build_student
from nasface.validity.published import PublishedTable
from nasface.validity.validate import Buildable, analyse

ZERO_COST = tuple(name for name, signal in SIGNALS.items() if signal.kind == "zero-cost")


def untrained_signals(network: Buildable, train_set, proxy: ProxyBudget, seed: int) -> dict:
    """The signals a proxy run of ``network`` with ``seed`` records before its first step."""
    torch.manual_seed(seed)  # as the proxy run seeds its network's initialisation
    model = build_student(network.spec, proxy.resolution)
    return initial_signals(network.spec, model, train_set, dataclasses.replace(proxy, seed=seed))


def analyse_signals(table: PublishedTable, networks: list[Buildable], seeds: list[int], measured: dict,
                    names: tuple[str, ...] = ZERO_COST) -> dict:
    """How each signal in ``names`` orders the published pairs (``measured``: {(preset, seed): signals}).

    ``baselines``: FLOPs and parameters alone (nasface's counts) and the table's printed FLOPs, the
    same whatever the signal; per signal, its pair counts and tau overall and per group, the pairs
    each seed alone orders, and ``noise_to_spread``: the mean over networks of the signal's standard
    deviation over seeds, over the standard deviation of the networks' means (0: seeds never
    disagree; 1: a seed moves a network as far as the networks lie apart).
    """
    report = {"seeds": seeds, "signals": {}}
    for name in names:
        runs = {key: {"result": {"status": "ok", "signals": signals}} if signals.get(name) is not None else None
                for key, signals in measured.items()}
        found = analyse(table, networks, seeds, runs, score=name)
        overall = found["overall"]
        report.setdefault("baselines", {"flops": overall["flops"], "params": overall["params"],
                                        "printed_flops": overall["printed_flops"]})
        report["signals"][name] = {
            "higher_is_better": SIGNALS[name].higher_is_better, **overall["proxy"],
            "per_seed": overall["seed_noise"]["per_seed"], "noise_to_spread": _noise_to_spread(found["networks"]),
            "networks_measured": sum(bool(n["accuracy"]) for n in found["networks"]),
            "largest_above_smallest": overall["largest_above_smallest"],
            "largest_not_above_smallest": overall["largest_not_above_smallest"],
            "groups": {g["id"]: {**_pair_fields(g["proxy"]), "trained": g["trained"]}
                       for g in found["groups"] if g["trained"] >= 2}}
    report["groups"] = {g["id"]: {"flops": _pair_fields(g["flops"]), "params": _pair_fields(g["params"])}
                        for g in found["groups"] if g["trained"] >= 2} if names else {}
    return report


def _pair_fields(entry: dict) -> dict:
    return {k: entry[k] for k in ("counted", "ordered", "share", "tau")}


def _noise_to_spread(networks: list[dict]) -> float | None:
    """Mean within-network (seed) standard deviation over the between-network standard deviation."""
    values = [list(n["accuracy"].values()) for n in networks if len(n["accuracy"]) >= 2]
    if len(values) < 2:
        return None
    between = float(np.std([np.mean(v) for v in values], ddof=1))
    within = float(np.mean([np.std(v, ddof=1) for v in values]))
    return None if between == 0 else within / between
