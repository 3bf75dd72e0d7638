"""Which Jobs to run: one per node pool (pinned by the pool label), or one per node."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from preflight.cluster_state import POOL_LABELS, node_pool
from preflight.incluster.errors import InClusterError
from preflight.incluster.manifests import HOSTNAME_LABEL, ProbeTarget


def _pool_selector(labels: dict[str, str]) -> dict[str, str]:
    key = next(k for k in POOL_LABELS if labels.get(k))
    return {key: labels[key]}


def probe_targets(
    nodes: Iterable[tuple[str, dict[str, str]]],
    pools: Sequence[str] = (),
    *,
    per_node: bool = False,
) -> tuple[ProbeTarget, ...]:
    """Targets for `nodes` (name, labels), limited to `pools` when given.

    A node that names no pool is a target of its own (pinned by host name), since no
    pool label can select it. An unknown pool in `pools` is bad input.
    """
    by_pool: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for name, labels in nodes:
        by_pool.setdefault(node_pool(labels), []).append((name, labels))
    known = sorted(p for p in by_pool if p)
    unknown = [p for p in pools if p not in by_pool]
    if unknown:
        raise InClusterError(
            f"--node-pool: no node in pool {', '.join(unknown)} "
            f"(pools: {', '.join(known) or 'none labelled'})"
        )
    if not by_pool:
        raise InClusterError("the cluster has no nodes to run probes on")
    out: list[ProbeTarget] = []
    for pool in sorted(by_pool):
        if pools and pool not in pools:
            continue
        members = sorted(by_pool[pool])
        if per_node or not pool:
            out.extend(
                ProbeTarget(
                    name=node,
                    pool=pool,
                    node_selector={HOSTNAME_LABEL: labels.get(HOSTNAME_LABEL, node)},
                    node=node,
                )
                for node, labels in members
            )
        else:
            out.append(
                ProbeTarget(name=pool, pool=pool, node_selector=_pool_selector(members[0][1]))
            )
    return tuple(out)
