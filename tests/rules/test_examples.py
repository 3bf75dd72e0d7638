"""Data-driven rule tests: for every example config, exactly which checks land in which phase."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest
import yaml

from rules.catalogue import requirements_for
from rules.model import PHASE_ORDER, Phase, Protocol, Requirement
from rules.plan import Plan, build_plan
from tests.conftest import EXAMPLES, example_config, example_plan

EXPECTED = Path(__file__).parent / "expected"
NAMES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def test_every_example_has_expectations() -> None:
    assert NAMES
    assert sorted(p.name for p in EXPECTED.glob("*.yaml")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_check_ids_per_phase_exactly(name: str) -> None:
    expected = yaml.safe_load((EXPECTED / name).read_text())
    plan = example_plan(name)
    actual = {
        p.value: sorted(c.id for c in plan.checks.values() if c.phase is p) for p in PHASE_ORDER
    }
    assert actual == expected


@pytest.mark.parametrize("name", NAMES)
def test_plan_is_a_dag_ordered_by_phase(name: str) -> None:
    plan = example_plan(name)
    assert nx.is_directed_acyclic_graph(plan.graph)
    for a, b in plan.graph.edges:
        ca, cb = plan.checks.get(a), plan.checks.get(b)
        if ca and cb:
            assert ca.phase.rank <= cb.phase.rank, (a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("keep_going", [False, True])
def test_plan_structure_is_what_networkx_computes(name: str, keep_going: bool) -> None:
    """The plan's own adjacency, order and generations agree with networkx on its DAG."""
    plan = build_plan(requirements_for(example_config(name)), keep_going=keep_going)
    graph = plan.graph
    assert plan.order() == list(nx.topological_sort(graph))
    assert plan.timeline() == [sorted(g) for g in nx.topological_generations(graph)]
    for node in graph:
        assert node in plan
        assert plan.prerequisites(node) == sorted(graph.predecessors(node))
        assert plan.dependants(node) == sorted(graph.successors(node))
        assert plan.in_degree(node) == graph.in_degree(node)
    for check_id in plan.checks:
        expected = sorted(n for n in nx.descendants(graph, check_id) if n in plan.checks)
        assert plan.blocks(check_id) == expected
    assert "phase:nowhere" not in plan


def test_a_cycle_is_refused() -> None:
    plan = example_plan(NAMES[0])
    with pytest.raises(ValueError, match="cycle"):
        Plan(plan.requirements, plan.checks, ("a", "b"), (("a", "b"), ("b", "a")), plan.phases)


def test_repeated_nodes_and_edges_count_once_and_an_unknown_node_is_refused() -> None:
    plan = example_plan(NAMES[0])
    nodes, edges = ("a", "b", "a"), (("a", "b"), ("a", "b"))
    twice = Plan(plan.requirements, plan.checks, nodes, edges, plan.phases)
    assert twice.nodes == ("a", "b") and twice.edges == (("a", "b"),)
    assert twice.prerequisites("b") == ["a"] and twice.in_degree("b") == 1
    assert twice.order() == ["a", "b"]
    with pytest.raises(ValueError, match="'c', which is not a node"):
        Plan(plan.requirements, plan.checks, ("a",), (("a", "c"),), plan.phases)


@pytest.mark.parametrize("phases", [None, [Phase.SERVING]])
def test_a_requirement_without_phases_makes_no_checks(phases: list[Phase] | None) -> None:
    orphan = Requirement(
        id="x/none",
        catalogue="extra",
        host="orphan.example.com",
        port=443,
        protocol=Protocol.HTTPS,
        phases=(),
        purpose="p",
        source="s",
    )
    plan = build_plan([orphan], phases)
    assert plan.checks == {} and plan.requirements == ()


def _hosts(plan_checks: dict, phase: Phase | None = None) -> set[str]:
    return {c.target for c in plan_checks.values() if phase is None or phase in c.phases}


def test_key_auth_has_no_token_host_and_auto_domain_has_cloudapp() -> None:
    plan = example_plan("key-auth-auto-domain.yaml")
    hosts = _hosts(plan.checks)
    assert "api.azureml.ms" not in hosts
    assert "scoringa1b2c3.eastus.cloudapp.azure.com" in _hosts(plan.checks, Phase.SERVING)
    # The scoring name is resolved by clients only: a DNS check, no egress checks.
    assert [c.id for c in plan.checks.values() if c.target.endswith("cloudapp.azure.com")] == [
        "dns:scoringa1b2c3.eastus.cloudapp.azure.com"
    ]


def test_token_auth_custom_domain() -> None:
    plan = example_plan("token-auth-private-endpoints.yaml")
    assert plan.checks["dns:api.azureml.ms"].phase is Phase.ROUTER_RUNNING
    assert not any("cloudapp" in c.target for c in plan.checks.values())
    # A configured private endpoint makes the DNS check expect a private answer.
    assert plan.checks["dns:mlweuacr.azurecr.io"].expect_private is True
    assert plan.checks["dns:mcr.microsoft.com"].expect_private is False


def test_design_table_hosts_in_their_phases() -> None:
    plan = example_plan("lab.yaml")
    api = "lab-aks-00000000.hcp.eastus.azmk8s.io"
    assert set(plan.checks[f"dns:{api}"].phases) == set(PHASE_ORDER)
    assert plan.checks["tcp:mcr.microsoft.com:443"].phases == (Phase.ROUTER_INSTALL,)
    assert plan.checks["tls:labstorage01.blob.core.windows.net:443"].phases == (
        Phase.ROUTER_RUNNING,
        Phase.MODEL_DEPLOY,
    )
    assert plan.checks["http:labacr01.azurecr.io:443"].phase is Phase.MODEL_DEPLOY
    assert plan.checks["tcp:features.postgres.database.azure.com:5432"].phase is Phase.SERVING
    assert plan.checks["http:ingest-viennaeastus.kusto.windows.net:443"].severity == "warn"


def test_wildcards_are_allowlist_only() -> None:
    plan = example_plan("key-auth-auto-domain.yaml")
    wildcard = [r for r in plan.requirements if r.host == "*.data.mcr.microsoft.com"]
    assert wildcard and not any("*" in c.target for c in plan.checks.values())


def test_missing_api_server_fqdn_gives_skipped_checks() -> None:
    plan = example_plan("devtest-kubenet.yaml")
    check = plan.checks["dns:*.hcp.westus2.azmk8s.io"]
    assert check.unprobeable_reason and "cluster.api_server_fqdn" in check.unprobeable_reason


def test_sovereign_cloud_undocumented_names_are_reported_not_invented() -> None:
    config = example_config("china-token-auth.yaml")
    plan = example_plan("china-token-auth.yaml")
    assert config.service.auth == "token"
    undocumented = [r for r in plan.requirements if r.host.startswith("<")]
    assert {r.id for r in undocumented} == {
        "azureml-aks/azureml-api",
        "azureml-aks/kusto-telemetry",
    }
    assert all("china" in r.note for r in undocumented)
    assert "dns:mcr.azure.cn" in plan.checks
    assert not any(c.target.endswith(("windows.net", "azmk8s.io")) for c in plan.checks.values())
