"""Searches on a multi-node Ray cluster, simulated on this machine (``ray.cluster_utils.Cluster``:
a head and a second node, each its own raylet), in process and with two drivers sharing one
PostgreSQL-backed study."""

from __future__ import annotations

import json
import uuid

import optuna
import pytest

from nasface.ui.progress import Reporter
from nasface.search import record, run_search
from tests.factories import POSTGRES, STATES, finish, launch, needs_postgres, search_args
from tests.factories import assert_budget_invariant, tiny_config


@pytest.fixture
def two_nodes():
    """A Ray cluster of two single-CPU nodes; its address is what `--address` takes."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@pytest.mark.slow
def test_search_on_a_two_node_ray_cluster(tmp_path, two_nodes):
    config = tiny_config(tmp_path, executor="ray", address=two_nodes.address, workers=2, cpus_per_trial=1,
                         trials=4, proxy_steps=15)
    study = run_search(config, Reporter("quiet"))
    trained = [facts for facts in record.records(study) if facts.kind == "candidate"]
    assert len(trained) == 4
    nodes = {facts.metrics["ray_node"] for facts in trained}
    assert len(nodes) == 2  # both nodes trained candidates
    assert_budget_invariant(study, config.budgets)


@pytest.mark.slow
@needs_postgres
def test_two_drivers_share_a_postgresql_study_on_a_two_node_cluster(tmp_path, two_nodes):
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    args = search_args(tmp_path, name, "--storage", POSTGRES, "--address", two_nodes.address, "--workers", "2",
                       "--trials", "6", "--no-baselines", steps=10, executor="ray")
    try:
        drivers = [launch(*args), launch(*args)]
        for rc, _, err in [finish(driver) for driver in drivers]:
            assert rc == 0, err
        study = optuna.load_study(study_name=name, storage=POSTGRES)
        everything = study.get_trials()
        assert sorted(t.number for t in everything) == list(range(len(everything)))
        assert all(t.state in (STATES.COMPLETE, STATES.FAIL) for t in everything)
        trained = [t for t in everything if record.read(t).kind in ("candidate", "failed")]
        assert len(trained) == 6 and all(t.state == STATES.COMPLETE for t in trained)
        assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == 6
        assert len({record.read(t).driver for t in trained}) == 2  # both drivers trained candidates...
        assert len({record.read(t).metrics["ray_node"] for t in trained}) == 2  # ...on both nodes
    finally:
        try:
            optuna.delete_study(study_name=name, storage=POSTGRES)
        except KeyError:
            pass
