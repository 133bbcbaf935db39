"""Incremental repair of an optimal flow after arcs are added: a primal-dual repair.

The certificate's later rounds add a handful of violated arcs (at 50k x 25k: 19, then 1) to a
network whose flow is optimal, and a fresh OR-Tools solve costs as much as the first one (5 s
there). Instead, with the potentials ``pi`` that proved the old flow optimal:

1. every residual arc with a negative reduced cost ``cost + pi(tail) - pi(head)`` (the violated
   new arcs) is saturated; now every residual arc has a non-negative reduced cost, but the
   saturated arcs' tails send one unit too many (deficit) and their heads receive one too many
   (excess);
2. each phase runs one multi-source Dijkstra (scipy, on reduced costs) from the excess nodes,
   up to ``REACH`` cost units, raises ``pi`` by ``min(dist, D)`` (``D`` = the farthest reached
   deficit's distance: reduced costs stay non-negative and every shortest path to a reached
   deficit is made of zero-cost arcs), then sends as much as those zero-cost arcs carry from
   the excesses to the deficits (scipy's maximum flow on them);
3. when no excess is left the flow is optimal: it is feasible, and ``pi`` is a feasible
   potential for its residual graph.

The repair gives up (returns None, the caller solves afresh) when a deficit lies beyond
``REACH``, after ``MAX_PHASES`` phases, past its time budget, or on parallel arcs (department
floors). The flow value is unchanged: the caller checks that no larger flow appeared.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra, maximum_flow

from .flow import Network

log = logging.getLogger(__name__)

REACH = 4000  # cost units (points) a repair path may cost; farther deficits mean a fresh solve
MAX_PHASES = 40
_CLOSED = 1e18  # weight of a residual arc without capacity (beyond any REACH)
_CHUNK = 1 << 20


def repair_flow(network: Network, flow: np.ndarray, potential: np.ndarray, seconds: float = math.inf) -> np.ndarray | None:
    """An optimal flow of ``network`` from ``flow`` (optimal before some arcs were added, which
    carry 0) and a potential ``potential`` feasible for the old residual graph; None if the
    repair gives up, or would run past ``seconds`` (what a fresh solve is expected to take)."""
    deadline = time.perf_counter() + seconds
    n, m = network.n_nodes, network.tail.size
    flow = flow.astype(np.int32)  # 0..capacity; int32 halves the per-phase gathers (100k: 11 M residual arcs)
    pi = potential.astype(np.float64)

    def net_outflow() -> np.ndarray:
        return np.bincount(network.tail, flow, n).astype(np.int64) - np.bincount(network.head, flow, n).astype(np.int64)

    balance = net_outflow()  # per node, of the old flow (the source sends its value, maybe less than flow_bound)
    reduced = network.cost + potential[network.tail] - potential[network.head]
    saturate = (reduced < 0) & (flow < network.capacity)
    flow[saturate] = network.capacity[saturate]
    flow[(reduced > 0) & (flow > 0)] = 0
    del reduced, saturate
    # imbalance > 0: the node sends more than it should (deficit); < 0: it keeps an excess
    imbalance = net_outflow() - balance
    if not imbalance.any():
        return flow.astype(np.int64)

    sorted_keys = np.sort(network.tail * n + network.head)
    if (sorted_keys[1:] == sorted_keys[:-1]).any():
        return None  # parallel arcs (department floors): the max flow below cannot tell them apart
    del sorted_keys
    # Residual arcs in CSR order by tail (a stable radix sort on the node numbers): entry k
    # runs along arc arc_of[k], forward if forward[k] (tail -> head) else backward. Kept lean
    # (int32, no per-entry tail array): at 100k x 50k there are ~11 M entries.
    order = np.argsort(np.concatenate([network.tail, network.head]).astype(np.int32), kind="stable")
    indices = np.concatenate([network.head.astype(np.int32), network.tail.astype(np.int32)])[order]
    r_room = np.concatenate([network.capacity.astype(np.int32), np.zeros(m, np.int32)])[order]  # open while flow < room (forward) / > 0 (backward)
    forward = order < m
    order[~forward] -= m
    arc_of = order.astype(np.int32)
    del order
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(network.tail, minlength=n) + np.bincount(network.head, minlength=n), out=indptr[1:])
    degree = np.diff(indptr)

    def weights() -> np.ndarray:
        """Reduced cost of every residual entry, _CLOSED where it has no capacity; in chunks,
        so the temporaries stay small next to the result."""
        w = np.repeat(pi, degree)  # pi(tail)
        for start in range(0, w.size, _CHUNK):
            part = slice(start, start + _CHUNK)
            arcs, ahead = arc_of[part], forward[part]
            cost = network.cost[arcs]
            w[part] += np.where(ahead, cost, -cost)
            w[part] -= pi[indices[part]]
            f = flow[arcs]
            w[part][np.where(ahead, f >= r_room[part], f <= 0)] = _CLOSED
        return w

    super_source, super_sink = n, n + 1
    for phase in range(MAX_PHASES):
        if time.perf_counter() > deadline:
            log.debug("repair: out of time after %d phases", phase)
            return None
        excess_nodes = np.flatnonzero(imbalance < 0)
        if excess_nodes.size == 0:
            log.debug("repair: %d phases", phase)
            return flow.astype(np.int64)
        graph = sp.csr_matrix((weights(), indices, indptr), shape=(n, n))
        dist = dijkstra(graph, directed=True, indices=excess_nodes, min_only=True, limit=REACH)
        del graph  # its weights are stale once pi moves
        reached = dist[(imbalance > 0) & np.isfinite(dist)]
        if reached.size == 0:
            return None
        # Raise pi by the distances, capped at the farthest reached deficit's: reduced costs
        # stay >= 0 and every shortest path to a reached deficit is made of zero-cost arcs.
        pi += np.minimum(dist, reached.max())
        admissible = np.flatnonzero(weights() == 0)
        # Push as much as those zero-cost arcs carry from the excesses to the deficits.
        a_tail = np.searchsorted(indptr, admissible, side="right") - 1
        a_head = indices[admissible]
        a_arc = arc_of[admissible]
        room = np.where(forward[admissible], r_room[admissible] - flow[a_arc], flow[a_arc])
        deficit_nodes = np.flatnonzero(imbalance > 0)
        rows = np.concatenate([a_tail, np.full(excess_nodes.size, super_source), deficit_nodes])
        cols = np.concatenate([a_head, excess_nodes, np.full(deficit_nodes.size, super_sink)])
        caps = np.concatenate([room, -imbalance[excess_nodes], imbalance[deficit_nodes]]).astype(np.int32)
        pushed = maximum_flow(sp.csr_matrix((caps, (rows, cols)), shape=(n + 2, n + 2)), super_source, super_sink)
        if pushed.flow_value == 0:
            return None
        touched = np.zeros(m, bool)  # an arc can be admissible both ways; np.unique hashes (slow)
        touched[a_arc] = True
        arcs = np.flatnonzero(touched)
        change = np.asarray(pushed.flow[network.tail[arcs], network.head[arcs]]).ravel()
        flow[arcs] += change.astype(np.int32)
        imbalance = net_outflow() - balance
    return None
