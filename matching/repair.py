"""Incremental repair of an optimal flow after arcs are added: successive shortest paths.

The certificate's later rounds add a handful of violated arcs (at 50k x 25k: 19, then 1) to a
network whose flow is optimal, and a fresh OR-Tools solve costs as much as the first one (5 s
there). Instead, with the potentials ``pi`` that proved the old flow optimal:

1. every residual arc with a negative reduced cost ``cost + pi(tail) - pi(head)`` (the violated
   new arcs) is saturated; now every residual arc has a non-negative reduced cost, but the
   saturated arcs' tails send one unit too many (deficit) and their heads receive one too many
   (excess);
2. each phase runs one multi-source Dijkstra (scipy, on reduced costs) from the excess nodes,
   up to ``REACH`` cost units, and sends one unit along the shortest path to each reached
   deficit node, nearest first, while the paths' residual capacities last; then
   ``pi += min(dist, farthest target's dist)``, which keeps every reduced cost non-negative and
   the augmented paths at zero (the classical primal-dual step);
3. when no excess is left the flow is optimal: it is feasible, and ``pi`` is a feasible
   potential for its residual graph.

The repair gives up (returns None, the caller solves afresh) when a deficit lies beyond
``REACH`` or after ``MAX_PHASES`` phases. The flow value is unchanged, so the caller repairs only
when no added arc crosses the minimum cut (a larger flow could exist).
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from .flow import Network

log = logging.getLogger(__name__)

REACH = 4000  # cost units (points) a repair path may cost; farther deficits mean a fresh solve
MAX_PHASES = 40
_CLOSED = 1e18  # weight of a residual arc without capacity (beyond any REACH)


def repair_flow(network: Network, flow: np.ndarray, potential: np.ndarray) -> np.ndarray | None:
    """An optimal flow of ``network`` from ``flow`` (optimal before some arcs were added, which
    carry 0) and a potential ``potential`` feasible for the old residual graph; None if the
    repair gives up."""
    n, m = network.n_nodes, network.tail.size
    flow = flow.copy()
    pi = potential.astype(np.float64)

    def net_outflow() -> np.ndarray:
        return np.bincount(network.tail, flow, n).astype(np.int64) - np.bincount(network.head, flow, n).astype(np.int64)

    value = net_outflow()  # the old flow's value at the source (a maximum flow may send less than flow_bound)
    reduced = network.cost + potential[network.tail] - potential[network.head]
    saturate = (reduced < 0) & (flow < network.capacity)
    flow[saturate] = network.capacity[saturate]
    flow[(reduced > 0) & (flow > 0)] = 0
    # imbalance > 0: the node sends more than it should (deficit); < 0: it keeps an excess
    imbalance = net_outflow() - value
    if not imbalance.any():
        return flow

    # Residual arcs: r < m forward along arc r, r >= m backward along arc r - m; CSR by tail
    # (a stable radix sort on the node numbers).
    r_tail = np.concatenate([network.tail, network.head])
    order = np.argsort(r_tail, kind="stable")
    r_tail = r_tail[order]
    indptr = np.searchsorted(r_tail, np.arange(n + 1))
    forward = order < m
    arc_of = np.where(forward, order, order - m)
    indices = np.where(forward, network.head[arc_of], network.tail[arc_of])
    r_cost = np.where(forward, network.cost[arc_of], -network.cost[arc_of]).astype(np.float64)
    r_room = np.where(forward, network.capacity[arc_of], 0)  # open while flow < room (forward) / > 0 (backward)

    def weights() -> np.ndarray:
        f = flow[arc_of]
        open_ = np.where(forward, f < r_room, f > 0)
        w = r_cost + pi[r_tail]
        w -= pi[indices]
        w[~open_] = _CLOSED
        return w

    for phase in range(MAX_PHASES):
        excess_nodes = np.flatnonzero(imbalance < 0)
        if excess_nodes.size == 0:
            log.debug("repair: %d phases", phase)
            return flow
        w = weights()
        graph = sp.csr_matrix((w, indices, indptr), shape=(n, n))
        dist, pred, origin = dijkstra(
            graph, directed=True, indices=excess_nodes, min_only=True, return_predecessors=True, limit=REACH
        )
        targets = np.flatnonzero((imbalance > 0) & np.isfinite(dist))
        if targets.size == 0:
            return None
        targets = targets[np.argsort(dist[targets], kind="stable")]
        farthest = None
        for t in targets.tolist():
            s = int(origin[t])
            if imbalance[s] >= 0 or imbalance[t] <= 0:
                continue
            path = _path_arcs(t, pred, indptr, indices, order, m, flow, network, w)
            if path is None:
                continue
            for r in path:
                if r < m:
                    flow[r] += 1
                else:
                    flow[r - m] -= 1
            imbalance[s] += 1
            imbalance[t] -= 1
            farthest = dist[t]
        if farthest is None:
            return None
        pi += np.minimum(dist, farthest)  # unreached nodes (inf) move by the farthest distance
    return None


def _path_arcs(t, pred, indptr, indices, order, m, flow, network, w) -> list[int] | None:
    """Residual arcs (forward r < m, backward m + arc) of the tree path ending at t, or None
    when one of them has no capacity left (used by an earlier path of this phase). Between
    parallel arcs (a department's floor and rest) the cheaper open one is the tree's."""
    arcs = []
    v = t
    while pred[v] >= 0:
        u = int(pred[v])
        lo, hi = indptr[u], indptr[u + 1]
        chosen, best = None, np.inf
        for k in (lo + np.flatnonzero(indices[lo:hi] == v)).tolist():
            r = int(order[k])
            is_open = flow[r] < network.capacity[r] if r < m else flow[r - m] > 0
            if is_open and w[k] < best:
                chosen, best = r, w[k]
        if chosen is None:
            return None
        arcs.append(chosen)
        v = u
    return arcs
