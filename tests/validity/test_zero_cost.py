"""The zero-cost signals against the published table: the values are those a real proxy run records,
and the pair counts keep their invariants whatever the values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from nasface.arch.spec import load_spec
from nasface.search import load_proxy_data
from nasface.search.config import DataSettings
from nasface.training.proxy import score
from nasface.training.settings import ProxyBudget
from nasface.validity.published import load_published
from nasface.validity.validate import Buildable, buildable_networks
from nasface.validity.zero_cost import ZERO_COST, analyse_signals, untrained_signals
from tests.factories import TINY_VALIDATE, tiny_published_table

SEEDS = [0, 1]


@pytest.fixture(scope="module")
def table_and_networks(tmp_path_factory):
    table = load_published(tiny_published_table(tmp_path_factory.mktemp("table")))
    return table, buildable_networks(table, 32)


def test_the_signals_are_those_a_real_proxy_run_records(tmp_path):
    """A real (tiny) proxy run logs its signals before its first step; computed without training,
    for the same network and seed, they are the same numbers, for two seeds that differ."""
    data = load_proxy_data(DataSettings(train_identities=12, images_per_identity=4, val_identities=8, pairs=80), 0,
                           tmp_path / "cache")
    network = Buildable("mobilefacenet", load_spec("mobilefacenet"), 0, 0, None)
    budget = ProxyBudget(steps=3, batch_size=8, resolution=32, device="cpu")
    found = {}
    for seed in SEEDS:
        trained = score(network.spec, data.train, data.pairs, dataclasses.replace(budget, seed=seed))
        assert trained["status"] == "ok"
        found[seed] = untrained_signals(network, data.train, budget, seed)
        for name in (*ZERO_COST, "log_flops", "log_params"):
            assert found[seed][name] == pytest.approx(trained["signals"][name], rel=1e-9, abs=1e-12), (seed, name)
    assert found[0]["zico"] != found[1]["zico"]  # the seed is the network's initialisation and the batches


@hypothesis_settings(max_examples=40, deadline=None)
@given(st.data())
def test_a_signal_and_its_mirror_share_every_counted_pair(table_and_networks, data):
    """Whatever the values: a signal and its negative together order each counted pair exactly once
    (a tie counts a half for each), overall, per group and per seed; the pairs counted are the
    baselines' pairs; and a signal equal to the published score orders them all (tau +1)."""
    table, networks = table_and_networks
    values = {(b.preset, seed): data.draw(st.sampled_from([-1.0, 0.0, 0.5, 2.0]), label=f"{b.preset} {seed}")
              for b in networks for seed in SEEDS}
    measured = {key: {"zico": v, "grad_norm": -v} for key, v in values.items()}
    report = analyse_signals(table, networks, SEEDS, measured, names=("zico", "grad_norm"))
    zico, mirror = report["signals"]["zico"], report["signals"]["grad_norm"]
    assert zico["counted"] == mirror["counted"] == report["baselines"]["flops"]["counted"] > 0
    assert zico["ordered"] + mirror["ordered"] == zico["counted"]
    for group, entry in zico["groups"].items():
        assert entry["ordered"] + mirror["groups"][group]["ordered"] == entry["counted"]
    for seed, entry in zico["per_seed"].items():
        assert entry["ordered"] + mirror["per_seed"][seed]["ordered"] == entry["counted"]
    if zico["tau"] is not None:
        assert zico["tau"] == pytest.approx(-mirror["tau"])


def test_a_signal_that_is_the_published_score_orders_every_pair_and_seeds_that_agree_have_no_noise(
        table_and_networks):
    table, networks = table_and_networks
    published = {n.preset: group.score(n) for group in table.groups[:1] for n in group.networks if n.preset}
    measured = {(preset, seed): {"zico": value} for preset, value in published.items() for seed in SEEDS}
    entry = analyse_signals(table, networks, SEEDS, measured, names=("zico",))["signals"]["zico"]
    ladder = entry["groups"]["ladder"]
    assert ladder["ordered"] == ladder["counted"] == 3 and ladder["tau"] == pytest.approx(1.0)
    assert entry["noise_to_spread"] == 0.0
    noisy = {(preset, seed): {"zico": value + (0.1 if seed else -0.1) * np.ptp(list(published.values()))}
             for preset, value in published.items() for seed in SEEDS}
    assert analyse_signals(table, networks, SEEDS, noisy, names=("zico",))["signals"]["zico"]["noise_to_spread"] > 0
    one_seed = {key: value for key, value in measured.items() if key[1] == 0}
    assert analyse_signals(table, networks, [0], one_seed, names=("zico",))["signals"]["zico"]["noise_to_spread"] is None


def test_validate_ranks_by_any_recorded_signal_a_loss_negated(table_and_networks):
    """``nasface validate --score SIGNAL`` reads the signal each logged run recorded; a loss ranks
    lower-is-better, so the network with the smallest loss counts as the best."""
    from nasface.search import config_from_options
    from nasface.validity.validate import ValidateSettings, analyse, check_settings

    table, networks = table_and_networks
    published = {n.preset: table.groups[0].score(n) for n in table.groups[0].networks if n.preset}
    runs = {(preset, 0): {"result": {"status": "ok", "accuracy": 0.5,
                                     "signals": {"zico": value, "loss_sum": -value, "accuracy": 0.5}}}
            for preset, value in published.items()}
    for name in ("zico", "loss_sum"):
        ladder = analyse(table, networks, [0], runs, name)["groups"][0]
        assert ladder["proxy"]["ordered"] == ladder["proxy"]["counted"] == 3, name
    flat = analyse(table, networks, [0], runs, "accuracy")["groups"][0]["proxy"]
    assert flat["ordered"] == 1.5  # every accuracy equal: a coin's half of each pair
    for name in ("zico", "loss_sum", "tar_at_far"):
        check_settings(ValidateSettings(search=config_from_options(TINY_VALIDATE), score=name))
