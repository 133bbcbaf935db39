"""Incremental repair of an optimal flow after arcs are added: successive shortest paths.

The certificate's later rounds add a handful of violated arcs (at 20k x 10k: ~70; at 50k x
25k: 19, then 1) to a network whose flow is optimal, and a fresh OR-Tools solve costs as much
as the first one. Instead, with the potentials ``pi`` that proved the old flow optimal (or
other potentials nearly right for a flow, as the quota's shifted costs give):

1. the tail of each violated pair arc (reduced cost ``cost + pi(tail) - pi(head)`` below 0) has
   its ``pi`` raised by its largest violation, so that a mentee with several violated arcs is
   one unit to re-route rather than one per arc; then every residual arc with a negative
   reduced cost is saturated and every arc with flow and a positive one emptied. Now every
   residual arc has a non-negative reduced cost, but some nodes send too much (deficit) and
   some receive too much (excess);
2. from each excess node in turn (ascending node number), a Dijkstra on reduced costs finds the
   nearest deficit at distance ``D``; the nodes it settled get ``pi += dist - D`` (reduced costs
   stay non-negative, the path's become 0) and the path carries what the excess, the deficit
   and its residual capacities allow;
3. when no excess is left the flow is optimal: it is feasible, and ``pi`` is a feasible
   potential for its residual graph.

The searches are local when the prices were nearly right, which is why this beats a fresh
solve for a few violated arcs (a compiled kernel, numba). The repair gives up (returns None,
the caller solves afresh) when a deficit lies beyond ``REACH`` points or the searches have
scanned ``WORK_PER_ENTRY`` times the residual graph. Its limits are counts, never the clock:
whether a round is repaired or solved afresh decides which of several optimal matchings comes
out, and the same input must give the same pairs on a busy machine too. The flow value is
unchanged, unless ``fill`` asks for the largest flow: then a second pass of the same searches
sends the source's missing supply to the sink while a path is left (each step the least
costly flow of its value), up to ``flow_bound``.
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit

from .flow import SINK, SOURCE, FlowResult, Network, indexed_heap_pop, indexed_heap_push, indexed_heap_up

log = logging.getLogger(__name__)

REACH = 4000  # cost units (points) a repair path may cost; farther deficits mean a fresh solve
# Entries scanned by all searches of a pass together (the repair, then the fill), per entry of
# the residual graph, before the repair gives up (a fresh solve is then the cheaper way).
WORK_PER_ENTRY = 40
# ``widen_flow``'s limit, likewise: its searches took 16-20 scans at 100k x 50k (seeds 0 and 1,
# the backward searches of ``_mark_alive`` counted), where OR-Tools' fresh solve, the fallback,
# costs about as much as 75.
WIDEN_WORK_PER_ENTRY = 60
FILL_REACH = np.iinfo(np.int64).max // 4  # a filling path is taken however costly (the max flow comes first)


def repair_flow(
    network: Network,
    flow: np.ndarray,
    potential: np.ndarray,
    reach: int | None = None,
    fill: bool = False,
) -> FlowResult | None:
    """An optimal flow of ``network`` from ``flow`` (optimal before some arcs were added, which
    carry 0, or before the costs moved, or an auction's eps-optimal one) and a potential
    ``potential`` feasible for the old residual graph but for the arcs that break it; None if
    the repair gives up. ``reach``: in the network's cost units (default ``REACH``).

    The repair keeps each node's balance, so the flow keeps its value. ``fill``: then send
    more from the source to the sink along shortest paths (successive shortest paths: each
    flow on the way is the least costly of its value) until the source has sent
    ``flow_bound`` or no path is left: the largest flow, and the least costly of those.
    The result carries the potentials that prove it optimal (``FlowResult.potential``)."""
    reach = REACH if reach is None else reach
    n = network.n_nodes
    capacity, flow, pi = _lean(network, flow, potential)
    balance = _net_outflow(network, flow)  # per node, of the old flow (the source sends its value, maybe less than flow_bound)
    reduced = network.cost + pi[network.tail] - pi[network.head]
    # Lift each violated pair arc's tail by its largest violation first: a mentee with several
    # violated arcs then gives one unit of imbalance (its own unit, re-routed from scratch)
    # instead of one per arc, each needing its own search (20k x 10k round 0: 45557 violated
    # arcs over 4030 mentees, 4.2 s -> 0.98 s). Other violated arcs (a mentor's arc to the
    # sink, a source arc whose cost moved with the network's cost range) are only saturated:
    # lifting a mentor would break every arc into it, while saturating its arc is a unit per
    # slot (an auction's assignment, as the exact round repaired it until the seventh session
    # of 2026-12-07, 20k x 10k: 5461 -> 5201 units, 23.6 -> 17.4 scans of the residual graph).
    violated = (reduced < 0) & (flow < capacity)
    violated[network.n_pairs :] = False
    if violated.any():
        lift = np.zeros(n, np.int64)
        np.maximum.at(lift, network.tail[violated], -reduced[violated])
        pi += lift
        reduced = network.cost + pi[network.tail] - pi[network.head]
    saturate = (reduced < 0) & (flow < capacity)
    flow[saturate] = capacity[saturate]
    flow[(reduced > 0) & (flow > 0)] = 0
    del reduced, saturate, violated
    # imbalance > 0: the node sends more than it should (deficit); < 0: it keeps an excess
    imbalance = _net_outflow(network, flow) - balance
    missing = network.flow_bound - int(balance[SOURCE]) if fill else 0
    if not imbalance.any() and missing <= 0:
        return FlowResult.of(network, flow.astype(np.int64), pi)
    units = int(-imbalance[imbalance < 0].sum())
    graph = _residual_graph(network, capacity)
    work_limit = WORK_PER_ENTRY * graph[1].size
    work = _shortest_path_repair(*graph, flow, pi, imbalance, reach, work_limit, False) if units else 0
    if work < 0:
        log.debug("repair: gave up on %d units (a deficit beyond %d cost units or past the work limit)", units, reach)
        return None
    log.debug("repair: %d units re-routed, %.1f entries scanned per entry", units, work / graph[1].size)
    if missing > 0:
        # Only the source has an excess now and only the sink a deficit: a search that finds
        # no path means the flow is the largest.
        imbalance[:] = 0
        imbalance[SOURCE], imbalance[SINK] = -missing, missing
        if _shortest_path_repair(*graph, flow, pi, imbalance, FILL_REACH, work_limit, True) < 0:
            log.debug("repair: gave up filling the flow (past the work limit)")
            return None
    return FlowResult.of(network, flow.astype(np.int64), pi)


def _lean(network: Network, flow: np.ndarray, potential: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(capacity, flow, pi) as the searches take them, copies. No arc carries more than the
    supply, so capacities are cut to flow_bound (a mentor's capacity may be any int64): flows
    then fit int32, which keeps the residual arrays lean (100k: 11 M entries)."""
    capacity = np.minimum(network.capacity, network.flow_bound).astype(np.int32)
    return capacity, flow.astype(np.int32), potential.astype(np.int64)


def _net_outflow(network: Network, flow: np.ndarray) -> np.ndarray:
    """Per node: what it sends along the flow less what it receives."""
    n = network.n_nodes
    return np.bincount(network.tail, flow, n).astype(np.int64) - np.bincount(network.head, flow, n).astype(np.int64)


def _residual_graph(network: Network, capacity: np.ndarray) -> tuple[np.ndarray, ...]:
    """Residual arcs in CSR order by tail: (r_cost, arc_of, forward, indices, indptr, r_room).
    Entry k runs along arc arc_of[k], forward if forward[k] (tail -> head) else backward; a
    node's forward entries come first, then its backward ones, each in arc order. Kept lean
    (int32, no per-entry tail array): at 100k x 50k there are ~11 M entries. Each entry
    carries its own cost (the arc's, negated backward): a mentor's entries run along the arcs
    of many mentees, so reading the cost by arc missed the cache at each one. One compiled
    counting sort (NumPy's gathers of a stable order took ~0.4 s a graph at 100k x 50k)."""
    n, m = network.n_nodes, network.tail.size
    indptr = np.zeros(n + 1, np.int64)
    r_cost = np.empty(2 * m, np.int64)
    arc_of = np.empty(2 * m, np.int32)
    forward = np.empty(2 * m, np.bool_)
    indices = np.empty(2 * m, np.int32)
    r_room = np.empty(2 * m, np.int32)  # open while flow < room (forward) / > 0 (backward)
    _fill_residual(network.tail, network.head, network.cost, capacity, indptr, r_cost, arc_of, forward, indices, r_room)
    return r_cost, arc_of, forward, indices, indptr, r_room


@njit(cache=True, nogil=True)
def _fill_residual(tail, head, cost, capacity, indptr, r_cost, arc_of, forward, indices, r_room):
    """``_residual_graph``'s kernel: entries bucketed by the node they leave."""
    n = indptr.size - 1
    for a in range(tail.size):
        indptr[tail[a] + 1] += 1
        indptr[head[a] + 1] += 1
    for v in range(n):
        indptr[v + 1] += indptr[v]
    fill = indptr[:-1].copy()
    for a in range(tail.size):
        k = fill[tail[a]]
        fill[tail[a]] = k + 1
        r_cost[k], arc_of[k], forward[k], indices[k], r_room[k] = cost[a], a, True, head[a], capacity[a]
    for a in range(tail.size):
        k = fill[head[a]]
        fill[head[a]] = k + 1
        r_cost[k], arc_of[k], forward[k], indices[k], r_room[k] = -cost[a], a, False, tail[a], 0


CLOSED = np.iinfo(np.int64).max  # ``_residual_cost`` of an entry without room


@njit(cache=True, nogil=True)
def _has_room(k, arc_of, forward, r_room, flow):
    """Whether residual entry k can carry more (forward: below capacity; backward: some flow)."""
    return flow[arc_of[k]] < r_room[k] if forward[k] else flow[arc_of[k]] > 0


@njit(cache=True, nogil=True)
def _residual_cost(k, arc_of, forward, r_room, flow, r_cost):
    """The cost of residual entry k (its arc's, negated backward), or CLOSED when it has no room."""
    return r_cost[k] if _has_room(k, arc_of, forward, r_room, flow) else CLOSED


@njit(cache=True, nogil=True)
def _shortest_path_repair(r_cost, arc_of, forward, indices, indptr, r_room, flow, pi, imbalance, reach, max_work, partial):
    """Successive shortest paths on reduced costs, in place on ``flow`` and ``pi``: from each
    excess node in turn, a Dijkstra to the nearest deficit, then ``pi(v) += dist(v) - D`` on the
    nodes it settled (``D`` = the deficit's distance: reduced costs stay >= 0 and the path's
    become 0), and as much flow as the path, the excess and the deficit allow along it. -1
    when a deficit lies beyond ``reach`` or the entries scanned pass ``max_work``; with
    ``partial``, an excess from which no deficit can be reached at all is left as it is.
    Returns the entries scanned, -1 when it gave up."""
    n = pi.size
    dist = np.zeros(n, np.int64)
    stamp = np.full(n, -1, np.int64)  # dist[v] is this search's when stamp[v] == search
    settled = np.zeros(n, np.bool_)
    via = np.zeros(n, np.int64)  # residual entry that reached v
    parent = np.zeros(n, np.int64)  # the node that entry leaves
    heap = np.zeros(n, np.int64)
    where = np.full(n, -1, np.int64)  # position in heap, -1 when not in it
    order = np.zeros(n, np.int64)  # nodes settled by this search, in order
    work = 0
    search = -1
    for source in range(n):
        while imbalance[source] < 0:
            search += 1
            stamp[source], dist[source], settled[source] = search, 0, False
            size = indexed_heap_push(heap, where, dist, 0, source)
            n_settled = 0
            target = -1
            beyond = False
            while size:
                u = heap[0]
                size = indexed_heap_pop(heap, where, dist, size)
                settled[u] = True
                order[n_settled] = u
                n_settled += 1
                if imbalance[u] > 0:
                    target = u
                    break
                if dist[u] > reach:
                    beyond = True
                    break
                base = dist[u] + pi[u]
                for k in range(indptr[u], indptr[u + 1]):
                    step = _residual_cost(k, arc_of, forward, r_room, flow, r_cost)
                    if step == CLOSED:
                        continue
                    v = indices[k]
                    candidate = base + step - pi[v]
                    if stamp[v] != search:
                        stamp[v], dist[v], via[v], parent[v], settled[v] = search, candidate, k, u, False
                        size = indexed_heap_push(heap, where, dist, size, v)
                    elif not settled[v] and candidate < dist[v]:
                        dist[v], via[v], parent[v] = candidate, k, u
                        indexed_heap_up(heap, where, dist, where[v])
                work += indptr[u + 1] - indptr[u]
            for h in range(size):
                where[heap[h]] = -1
            if target < 0 and partial and not beyond and work <= max_work:
                break  # nothing reachable from here: its excess stays
            if target < 0 or dist[target] > reach or work > max_work:
                return -1
            reach_d = dist[target]
            for h in range(n_settled):
                u = order[h]
                pi[u] += dist[u] - reach_d
            # Bottleneck along the path, then push.
            amount = min(-imbalance[source], imbalance[target])
            v = target
            while v != source:
                k = via[v]
                arc = arc_of[k]
                room = r_room[k] - flow[arc] if forward[k] else flow[arc]
                amount = min(amount, room)
                v = parent[v]
            v = target
            while v != source:
                k = via[v]
                arc = arc_of[k]
                if forward[k]:
                    flow[arc] += amount
                else:
                    flow[arc] -= amount
                v = parent[v]
            imbalance[source] += amount
            imbalance[target] -= amount
    return work


def widen_flow(network: Network, flow: np.ndarray, potential: np.ndarray) -> FlowResult | None:
    """An optimal flow of ``network`` (the largest, then the least costly) from ``flow``, an
    optimum of the same network with less capacity on some arcs, which ``potential`` proves
    (feasible for its residual graph there); None when the searches pass the work limit.

    The widened arcs whose reduced cost is negative are saturated, as in ``repair_flow``. The
    units they take would leave an excess at the sink; without a bypass arc (coverage_first)
    the source is asked for them instead: the flow's value grows by them, which is what a
    wider network allows first, as far as augmenting paths reach; the sink keeps the rest.
    ``_primal_dual`` settles every unit, then fills the flow up to the largest.

    Used by ``auction.exact_round``: the auction's assignment is optimal once the mentors' slots
    it left free at a price are taken out (100k x 50k: 461 of them). One search per unit, as
    ``repair_flow`` does, costs ~1 M scanned entries each there, because most of the graph lies
    at distance 0 from the source; the primal-dual searches settle them together."""
    capacity, flow, pi = _lean(network, flow, potential)
    balance = _net_outflow(network, flow)
    reduced = network.cost + pi[network.tail] - pi[network.head]
    saturate = (reduced < 0) & (flow < capacity)
    flow[saturate] = capacity[saturate]
    if ((reduced > 0) & (flow > 0)).any():
        # The searches assume no residual arc of negative reduced cost (a numba kernel reads
        # no bounds: a node settled twice would write past its arrays).
        raise ValueError("widen_flow: the potential does not prove the flow optimal")
    del reduced, saturate
    imbalance = _net_outflow(network, flow) - balance
    bypass = bool(((network.tail == SOURCE) & (network.head == SINK)).any())
    if not bypass:
        imbalance[SOURCE] += imbalance[SINK]
        imbalance[SINK] = 0
    graph = _residual_graph(network, capacity)
    work_limit = WIDEN_WORK_PER_ENTRY * graph[1].size
    work = _primal_dual(*graph, capacity, flow, pi, imbalance, work_limit, not bypass)
    if work >= 0 and imbalance[SOURCE] < 0:
        # Units no augmenting path can take: the sink keeps them (the flow's value does not grow).
        imbalance[SINK] += imbalance[SOURCE]
        imbalance[SOURCE] = 0
        more = _primal_dual(*graph, capacity, flow, pi, imbalance, work_limit, False)
        work = -1 if more < 0 else work + more
    if work < 0:
        log.debug("widen: gave up (past the work limit)")
        return None
    value = int(flow[network.tail == SOURCE].sum())
    missing = network.flow_bound - value
    filled = 0
    if missing > 0:
        imbalance[:] = 0
        imbalance[SOURCE], imbalance[SINK] = -missing, missing
        filled = _primal_dual(*graph, capacity, flow, pi, imbalance, work_limit, True)
        if filled < 0:
            log.debug("widen: gave up filling the flow (past the work limit)")
            return None
    size = max(graph[1].size, 1)
    log.debug("widen: %.1f entries scanned per entry, %.1f of them filling", (work + filled) / size, filled / size)
    return FlowResult.of(network, flow.astype(np.int64), pi)


@njit(cache=True, nogil=True)
def _primal_dual(r_cost, arc_of, forward, indices, indptr, r_room, capacity, flow, pi, imbalance, max_work, partial):
    """Primal-dual min-cost flow, in place on ``flow`` and ``pi`` (reduced costs >= 0 on
    every residual arc, kept so): a Dijkstra from every excess node at once up to the nearest
    deficit at distance ``D``, ``pi(v) += dist(v) - D`` on the nodes it settled, then passes of
    depth-first searches from each excess along the arcs whose reduced cost is 0 (any such path
    from an excess to a deficit is a shortest one; only into nodes from which such arcs still
    lead to a deficit, ``_mark_alive``), each node entered once per pass (a current
    arc per node), so that a pass finds many node-disjoint paths at the cost of one scan of
    those arcs; passes go on while they find a path, then the next Dijkstra. Returns the
    entries scanned, -1 past ``max_work`` or when an excess can reach no deficit; with
    ``partial`` such an excess is left as it is instead."""
    n = pi.size
    unset = np.iinfo(np.int64).max
    dist = np.full(n, unset, np.int64)
    heap = np.zeros(n, np.int64)
    where = np.full(n, -1, np.int64)
    order = np.zeros(n, np.int64)
    seen = np.full(n, -1, np.int64)  # the pass that entered the node
    stamp = -1
    alive = np.full(n, -1, np.int64)  # the phase (Dijkstra) in which the node reached a deficit
    phase = -1
    queue = np.zeros(n, np.int64)
    current = np.zeros(n, np.int64)
    path_node = np.zeros(n + 1, np.int64)
    path_entry = np.zeros(n + 1, np.int64)
    work = 0
    while True:
        size = 0
        for v in range(n):
            if imbalance[v] < 0:
                dist[v] = 0
                size = indexed_heap_push(heap, where, dist, size, v)
        if size == 0:
            return work
        n_settled = 0
        found = -1
        while size:
            u = heap[0]
            size = indexed_heap_pop(heap, where, dist, size)
            order[n_settled] = u
            n_settled += 1
            if imbalance[u] > 0:
                found = u
                break
            base = dist[u] + pi[u]
            for k in range(indptr[u], indptr[u + 1]):
                step = _residual_cost(k, arc_of, forward, r_room, flow, r_cost)
                if step == CLOSED:
                    continue
                v = indices[k]
                candidate = base + step - pi[v]
                if candidate < dist[v]:
                    dist[v] = candidate
                    if where[v] < 0:
                        size = indexed_heap_push(heap, where, dist, size, v)
                    else:
                        indexed_heap_up(heap, where, dist, where[v])
            work += indptr[u + 1] - indptr[u]
        for h in range(size):
            where[heap[h]] = -1
        if found < 0:
            return work if partial else -1
        reach_d = dist[found]
        for h in range(n_settled):
            u = order[h]
            pi[u] += dist[u] - reach_d
        dist[:] = unset
        if work > max_work:
            return -1
        # Only nodes that reach a deficit along arcs of reduced cost 0 can be on a path; they
        # are the same for every pass until the next Dijkstra (an augmenting path reverses arcs
        # among nodes that reached a deficit already), so the passes skip the others (100k x
        # 50k: a third of the 130k nodes a pass entered; the same paths, 40 % less work).
        phase += 1
        work += _mark_alive(r_cost, arc_of, forward, indices, indptr, capacity, flow, pi, imbalance, alive, phase, queue)
        while True:  # passes of depth-first searches along the arcs of reduced cost 0
            stamp += 1
            # Every other pass scans each node's arcs from the last (fairness, as in Pothen and
            # Fan's matching searches: a pass then explores other branches first).
            direction = 1 if stamp % 2 == 0 else -1
            for v in range(n):
                current[v] = indptr[v] if direction == 1 else indptr[v + 1] - 1
            pushed = 0
            for x in range(n):
                if imbalance[x] >= 0:
                    continue
                seen[x] = stamp
                while imbalance[x] < 0:
                    depth = 0
                    path_node[0] = x
                    reached = -1
                    while depth >= 0:
                        u = path_node[depth]
                        if depth > 0 and imbalance[u] > 0:
                            reached = u
                            break
                        advanced = False
                        while indptr[u] <= current[u] < indptr[u + 1]:
                            k = current[u]
                            v = indices[k]
                            # A deficit may take several paths in a pass, any other node one.
                            if alive[v] == phase and (seen[v] != stamp or imbalance[v] > 0):
                                # The cost first (read in entry order), the room (by arc) only then.
                                if r_cost[k] + pi[u] - pi[v] == 0 and _has_room(k, arc_of, forward, r_room, flow):
                                    seen[v] = stamp
                                    path_entry[depth] = k
                                    depth += 1
                                    path_node[depth] = v
                                    advanced = True
                                    break
                            current[u] += direction
                            work += 1
                        if not advanced:
                            depth -= 1
                            if depth >= 0:
                                current[path_node[depth]] += direction
                    if reached < 0:
                        break  # this excess reaches no deficit in this pass
                    amount = min(-imbalance[x], imbalance[reached])
                    for h in range(depth):
                        k = path_entry[h]
                        arc = arc_of[k]
                        room = r_room[k] - flow[arc] if forward[k] else flow[arc]
                        amount = min(amount, room)
                    for h in range(depth):
                        k = path_entry[h]
                        arc = arc_of[k]
                        if forward[k]:
                            flow[arc] += amount
                        else:
                            flow[arc] -= amount
                    imbalance[x] += amount
                    imbalance[reached] -= amount
                    pushed += amount
            if pushed == 0:
                break  # no path left on arcs of reduced cost 0: the next Dijkstra
            if work > max_work:
                return -1


@njit(cache=True, nogil=True)
def _mark_alive(r_cost, arc_of, forward, indices, indptr, capacity, flow, pi, imbalance, alive, phase, queue):
    """``alive[v] = phase`` for every node with a path of residual arcs of reduced cost 0 to a
    deficit: a search backwards from the deficits. The arc into v from w is the other
    direction of an arc in v's own entries (a forward entry's arc v -> w has room backwards
    when it carries flow; a backward entry's w -> v while below its capacity). Returns the
    entries scanned."""
    n_queued = 0
    for v in range(pi.size):
        if imbalance[v] > 0:
            alive[v] = phase
            queue[n_queued] = v
            n_queued += 1
    work = 0
    head = 0
    while head < n_queued:
        v = queue[head]
        head += 1
        for k in range(indptr[v], indptr[v + 1]):
            w = indices[k]
            if alive[w] == phase:
                continue
            arc = arc_of[k]
            room = flow[arc] > 0 if forward[k] else flow[arc] < capacity[arc]
            if room and pi[w] - pi[v] - r_cost[k] == 0:
                alive[w] = phase
                queue[n_queued] = w
                n_queued += 1
        work += indptr[v + 1] - indptr[v]
    return work
