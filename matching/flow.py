"""The exact core: a min-cost flow over the candidate arcs, and the certificate for pruning.

Network (node 0 = source, 1 = sink, then mentees, mentors, optional department nodes)::

    source -> [department] -> mentee -> mentor -> sink
    cap 1 per mentee arc, cap 1 per pair arc, cap = free capacity per mentor arc

* pair arc cost = 1000 - points (small integers; non-negative but for the quota's shifted points);
* coverage_first: ``solve_max_flow_with_min_cost`` maximises the number of matched mentees
  natively, then minimises cost. Mentees unmatched in earlier rounds: their arc carries
  ``-P * min(k, 3)`` with ``P = 1000 * max_pairs + 1`` (``k`` = earlier rounds left unmatched),
  which is more than any difference in total score, so the order is exactly: most mentees,
  then most sum of min(k, 3) over matched mentees, then highest total score;
* score_first: a bypass arc source -> sink (cost 1000, i.e. "score 0") lets mentees stay
  unmatched, so the min cost is exactly 1000 * n - total score;
* fairness floor: the source -> department arc is split into a floor part (capacity
  ceil(rate * n_dept) minus pinned, cost -F with F larger than all other cost differences) and
  the rest (cost 0), so floors are met as far as the candidates allow, before score.

Pruning certificate (``Certificate``): after solving on the pruned arcs we compute node
potentials (``sink_potentials``: shortest residual distances from the sink, i.e. the least
mentor prices; or ``anchored_potentials``, the feasible ones next to the last round's; a
Dijkstra from a guessed potential, label-correcting where the guess is off) and the set S
reachable from the source. A pruned arc e->m could improve the solution only if its reduced
cost ``cost + pi(e) - pi(m)`` is negative (a negative cycle appears) or it leaves S (the min
cut grows, a larger flow appears). If no pruned arc does either, pi stays a feasible potential
and S stays a minimum cut for the full graph, which proves the pruned optimum is the full
optimum. Otherwise the offending arcs are added and the flow is solved again.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order
from numba import njit
from ortools.graph.python import min_cost_flow

from .encode import Encoded
from .scoring import SCORE_SCALE

if TYPE_CHECKING:  # candidates.py imports this module (its counting sort)
    from .candidates import Candidates

log = logging.getLogger(__name__)

SOURCE, SINK = 0, 1
PRIORITY_CAP = 3
# A network's largest |cost| times (nodes + 1) times 4 must stay below this: OR-Tools' cost
# scaling multiplies costs by the node count, and path lengths (the repair's distances) add
# up to that many costs, all in int64.
INT_LIMIT = 1 << 62
# Re-openings per node after which the Dijkstra from a guessed potential hands over to the
# FIFO label-correcting search (``_label_correct``).
REOPEN_BUDGET = 1


@dataclass
class Network:
    tail: np.ndarray
    head: np.ndarray
    capacity: np.ndarray
    cost: np.ndarray
    n_nodes: int
    n_pairs: int  # the first n_pairs arcs are the candidate pairs, in candidate order
    flow_bound: int  # supply pushed from the source
    n_mentees: int

    def mentee_node(self, e):
        return 2 + np.asarray(e)

    def mentor_node(self, m):
        return 2 + self.n_mentees + np.asarray(m)


@dataclass
class FlowResult:
    flow: np.ndarray  # per arc
    maximum_flow: int
    # Potentials under which the flow's residual arcs have reduced costs >= 0 (capacities cut
    # to the flow bound, which no flow exceeds), when its solver kept them (the repair; OR-Tools
    # does not tell): what its certificate's search starts from.
    potential: np.ndarray | None = None

    @classmethod
    def of(cls, network: Network, flow: np.ndarray, potential: np.ndarray | None = None) -> FlowResult:
        """A flow computed here (auction, repair) with its value: what leaves the source."""
        return cls(flow=flow, maximum_flow=int(flow[network.tail == SOURCE].sum()), potential=potential)


def department_floors(enc: Encoded, active_mentee: np.ndarray, pinned_mentees: np.ndarray) -> dict[int, int] | None:
    """Per department code (-1 = unknown): how many more mentees must be matched."""
    rate = enc.problem.program.rules.min_department_match_rate
    if not rate:
        return None
    floors: dict[int, int] = {}
    departments = enc.mentees.department
    for dept in np.unique(departments):
        members = departments == dept
        target = math.ceil(rate * int(members.sum()) - 1e-9)
        already = int((members & pinned_mentees).sum())
        floors[int(dept)] = max(0, min(target - already, int((members & active_mentee).sum())))
    return floors


def build_network(
    enc: Encoded,
    cands: Candidates,
    active_mentee: np.ndarray,
    mentor_capacity: np.ndarray,
    floors: dict[int, int] | None,
) -> Network:
    program = enc.problem.program
    return build_network_arrays(
        n_mentees=enc.n_mentees,
        n_mentors=enc.n_mentors,
        mentee=cands.mentee,
        mentor=cands.mentor,
        points=cands.points,
        active_mentee=active_mentee,
        mentor_capacity=mentor_capacity,
        coverage_first=program.objective == "coverage_first",
        priority=enc.mentee_priority,
        department=enc.mentees.department,
        floors=floors,
    )


def build_network_arrays(
    *,
    n_mentees: int,
    n_mentors: int,
    mentee: np.ndarray,
    mentor: np.ndarray,
    points: np.ndarray,
    active_mentee: np.ndarray,
    mentor_capacity: np.ndarray,
    coverage_first: bool,
    priority: np.ndarray | None = None,
    department: np.ndarray | None = None,
    floors: dict[int, int] | None = None,
) -> Network:
    """The network for arbitrary pair arrays (``points`` 0..1000 per pair, or beyond for shifted points)."""
    n_e, n_m = n_mentees, n_mentors
    coverage = coverage_first
    active_idx = np.flatnonzero(active_mentee)
    max_pairs = int(min(active_idx.size, int(mentor_capacity.sum())))
    keep = active_mentee[mentee]
    pair_tail = 2 + mentee
    pair_head = 2 + n_e + mentor
    pair_cost = SCORE_SCALE - points
    pair_cap = keep.astype(np.int64)

    if priority is None or not coverage:
        priority = np.zeros(n_e, np.int64)
    priority = np.minimum(priority, PRIORITY_CAP)
    # Any two solutions differ by less than `spread` in pair (and bypass) cost: at most
    # max_pairs arcs change, each within [lo, hi]. Costs can be negative (the quota's shifted
    # points exceed 1000), so the span counts from the lowest cost, not from 0.
    hi = max(int(pair_cost.max(initial=0)), 0 if coverage else SCORE_SCALE)
    lo = min(int(pair_cost.min(initial=0)), 0)
    spread = (hi - lo) * max_pairs + 1
    priority_unit = spread if priority.any() else 0
    mentee_cost = -priority_unit * priority[active_idx]

    tails = [pair_tail]
    heads = [pair_head]
    caps = [pair_cap]
    costs = [pair_cost]
    n_nodes = 2 + n_e + n_m
    if floors is None:
        tails.append(np.full(active_idx.size, SOURCE))
    else:
        # Floors come before priority and score: F exceeds every other cost difference.
        floor_cost = PRIORITY_CAP * priority_unit * max_pairs + spread
        dept_codes = sorted(floors)
        dept_node = {d: n_nodes + k for k, d in enumerate(dept_codes)}
        n_nodes += len(dept_codes)
        dept_of = department[active_idx]
        tails.append(np.array([dept_node[int(d)] for d in dept_of], np.int64))
    heads.append(2 + active_idx)
    caps.append(np.ones(active_idx.size, np.int64))
    costs.append(mentee_cost)
    if floors is not None:
        for d in dept_codes:
            size = int((dept_of == d).sum())
            floor = floors[d]
            tails.append(np.array([SOURCE, SOURCE], np.int64))
            heads.append(np.array([dept_node[d], dept_node[d]], np.int64))
            caps.append(np.array([floor, size - floor], np.int64))
            costs.append(np.array([-floor_cost, 0], np.int64))
    tails.append(2 + n_e + np.arange(n_m))
    heads.append(np.full(n_m, SINK))
    caps.append(mentor_capacity.astype(np.int64))
    costs.append(np.zeros(n_m, np.int64))
    if not coverage:
        tails.append(np.array([SOURCE]))
        heads.append(np.array([SINK]))
        caps.append(np.array([active_idx.size], np.int64))
        costs.append(np.array([SCORE_SCALE], np.int64))
    network = Network(
        tail=np.concatenate(tails).astype(np.int64, copy=False),
        head=np.concatenate(heads).astype(np.int64, copy=False),
        capacity=np.concatenate(caps).astype(np.int64, copy=False),
        cost=np.concatenate(costs).astype(np.int64, copy=False),
        n_nodes=n_nodes,
        n_pairs=int(mentee.size),
        flow_bound=int(active_idx.size),
        n_mentees=n_e,
    )
    largest = int(np.abs(network.cost).max(initial=0))
    if largest * (network.n_nodes + 1) * 4 >= INT_LIMIT:
        raise ValueError("cost range too large for an exact lexicographic objective on this instance")
    return network


def solve_network(network: Network, potential: np.ndarray | None = None) -> FlowResult:
    """OR-Tools' largest flow of least cost. With ``potential`` (per node) it solves on the
    reduced costs ``cost + pi(tail) - pi(head)``: every flow of a given value changes cost by
    the same ``value * (pi(source) - pi(sink))``, so the optimal flows are the same, and from
    near-optimal potentials (the certificate's last auction round) the cost scaling has less
    to undo (100k x 50k, 3.1 M arcs: 17.5-20.2 s, median 17.9, against 18.3-24.1 s, median
    19.8, over 5 alternating solves; no change at 50k x 25k)."""
    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(network.tail, network.head, network.capacity, solver_costs(network, potential))
    supplies = np.zeros(network.n_nodes, np.int64)
    supplies[SOURCE] = network.flow_bound
    supplies[SINK] = -network.flow_bound
    smcf.set_nodes_supplies(np.arange(network.n_nodes), supplies)
    status = smcf.solve_max_flow_with_min_cost()
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min cost flow failed with status {status}")
    flow = np.asarray(smcf.flows(np.arange(network.tail.size)), np.int64)
    return FlowResult(flow=flow, maximum_flow=int(smcf.maximum_flow()))


def solver_costs(network: Network, potential: np.ndarray | None) -> np.ndarray:
    """The costs ``solve_network`` hands OR-Tools: reduced by ``potential`` unless that would
    widen them beyond OR-Tools' range (the network's own costs then)."""
    if potential is None:
        return network.cost
    reduced = network.cost + potential[network.tail] - potential[network.head]
    if int(np.abs(reduced).max(initial=0)) * (network.n_nodes + 1) * 4 >= INT_LIMIT:
        return network.cost
    return reduced


# --- certificate ------------------------------------------------------------------------------


def residual_arcs(network: Network, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    forward = flow < network.capacity
    backward = flow > 0
    tail = np.concatenate([network.tail[forward], network.head[backward]])
    head = np.concatenate([network.head[forward], network.tail[backward]])
    cost = np.concatenate([network.cost[forward], -network.cost[backward]])
    return tail, head, cost


def potentials(n_nodes: int, tail: np.ndarray, head: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Shortest distances from a virtual root linked to every node (cost 0), int64.

    Label-correcting (Bellman-Ford with a queue of the nodes improved). The residual graph of
    an optimal flow has no negative cycle; finding one is a bug (RuntimeError).
    """
    head, cost, start = _by_tail(tail, head, cost, n_nodes)
    return _label_correct(head, cost, start, np.zeros(n_nodes, np.int64), np.arange(n_nodes))


def _by_tail(tail, head, cost, n_nodes):
    """(head, cost, start): the arcs' heads and costs in tail order, and each node's offset
    into them (CSR, as ``_label_correct`` reads them)."""
    order, start = stable_order(tail, n_nodes)
    return head[order], cost[order], start


def stable_order(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, start): ``keys[order]`` ascending, equal keys in their original order (as
    ``np.argsort(keys, kind="stable")``), and ``start[k]`` where key ``k`` begins in it
    (``n_keys + 1`` offsets). A counting sort on node numbers: 100k x 50k, 6 M residual arcs
    in ~0.03 s against 0.75 s for argsort."""
    return _counting_order(keys, n_keys)


@njit(cache=True, nogil=True)
def _counting_order(keys, n_keys):
    start = np.zeros(n_keys + 1, np.int64)
    for k in range(keys.size):
        start[keys[k] + 1] += 1
    for key in range(n_keys):
        start[key + 1] += start[key]
    fill = start[:-1].copy()
    order = np.empty(keys.size, np.int64)
    for k in range(keys.size):
        order[fill[keys[k]]] = k
        fill[keys[k]] += 1
    return order, start


def _label_correct(head, cost, start, dist, active, guess=None) -> np.ndarray:
    """Relax arcs (sorted by tail, ``start`` = CSR offsets) out of ``active`` until stable.

    ``guess``: a potential under which few arcs, if any, have a negative reduced cost (the
    auction rounds have a feasible one, later rounds the last round's). Then Dijkstra on the
    reduced costs, which settles nearly every node once where the FIFO queue scans each ~16-20
    times (50k x 25k); the distances are the same. When the guess is far off (more re-opened
    nodes than ``REOPEN_BUDGET`` per node), the FIFO queue takes over from the labels the
    Dijkstra reached: each is the length of a path from the given labels, so an upper bound
    the FIFO search lowers to the same distances (100k x 50k, after the exact flow: 0.32 s
    against 0.94 s from the given labels)."""
    active = active.astype(np.int64)
    if guess is not None and guess.size != dist.size:  # (the kernel does not check bounds)
        log.debug("shortest paths: a guessed potential for %d nodes, not %d: not used", guess.size, dist.size)
        guess = None
    if guess is not None:
        found = dist.copy()
        reopened = _dijkstra_from(head, cost, start, found, active, guess, REOPEN_BUDGET * dist.size)
        if reopened >= 0:
            return found
        log.debug("shortest paths: the guessed potential is far off, label-correcting from where it stopped")
        # The given active nodes and every node the Dijkstra lowered still have arcs to relax.
        active = np.union1d(active, np.flatnonzero(found != dist))
        dist = found
    if not _relax_from(head, cost, start, dist, active):
        raise RuntimeError("negative cycle in the residual graph: the flow is not optimal")
    return dist


@njit(cache=True, nogil=True)
def _relax_from(head, cost, start, dist, active):
    """Label-correcting shortest paths (a FIFO queue of improved nodes) in place on ``dist``;
    False when some node improves more than n times, i.e. a negative cycle."""
    n = dist.size
    queue = np.empty(n, np.int64)  # circular: a node is queued at most once at a time
    queued = np.zeros(n, np.bool_)
    improved = np.zeros(n, np.int64)
    head_at, size = 0, 0
    for v in active:
        if not queued[v]:
            queued[v] = True
            queue[(head_at + size) % n] = v
            size += 1
    while size:
        v = queue[head_at]
        head_at = (head_at + 1) % n
        size -= 1
        queued[v] = False
        base = dist[v]
        for a in range(start[v], start[v + 1]):
            w = head[a]
            candidate = base + cost[a]
            if candidate < dist[w]:
                dist[w] = candidate
                if not queued[w]:
                    improved[w] += 1
                    if improved[w] > n:
                        return False
                    queued[w] = True
                    queue[(head_at + size) % n] = w
                    size += 1
    return True


@njit(cache=True, nogil=True)
def _dijkstra_from(head, cost, start, dist, active, phi, budget):
    """Shortest paths in place on ``dist`` from the ``active`` nodes' labels: an indexed binary
    heap keyed by ``dist - phi``. Where every reduced cost ``cost + phi(tail) - phi(head)`` is
    >= 0 the key never falls along an arc and a node popped is final (Dijkstra). An arc that
    lowers a node already popped re-opens it (label-correcting in key order: correct for any
    ``phi`` without a negative cycle). Returns how many nodes were re-opened, or -1 past
    ``budget`` (each label in ``dist`` is then the length of some path from the given labels,
    not yet the shortest: the caller goes on from them)."""
    n = dist.size
    heap = np.empty(n, np.int64)
    key = np.empty(n, np.int64)
    where = np.full(n, -1, np.int64)
    popped = np.zeros(n, np.bool_)
    size = 0
    reopened = 0
    for v in active:
        if where[v] == -1:
            key[v] = dist[v] - phi[v]
            size = indexed_heap_push(heap, where, key, size, v)
    while size:
        v = heap[0]
        size = indexed_heap_pop(heap, where, key, size)
        popped[v] = True
        base = dist[v]
        for a in range(start[v], start[v + 1]):
            w = head[a]
            candidate = base + cost[a]
            if candidate < dist[w]:
                if popped[w]:
                    reopened += 1
                    if reopened > budget:
                        return -1
                    popped[w] = False
                dist[w] = candidate
                key[w] = candidate - phi[w]
                if where[w] == -1:
                    size = indexed_heap_push(heap, where, key, size, w)
                else:
                    indexed_heap_up(heap, where, key, where[w])
    return reopened


# An indexed binary min-heap of nodes (``where[v]``: v's position, -1 when not in it) keyed
# by ``key[v]``: the repair's searches and ``_dijkstra_from``.


@njit(cache=True, nogil=True)
def indexed_heap_up(heap, where, key, at):
    v = heap[at]
    while at > 0:
        parent = (at - 1) // 2
        if key[heap[parent]] <= key[v]:
            break
        heap[at] = heap[parent]
        where[heap[at]] = at
        at = parent
    heap[at] = v
    where[v] = at


@njit(cache=True, nogil=True)
def indexed_heap_push(heap, where, key, size, v):
    heap[size] = v
    where[v] = size
    indexed_heap_up(heap, where, key, size)
    return size + 1


@njit(cache=True, nogil=True)
def indexed_heap_pop(heap, where, key, size):
    """Remove the least (heap[0]); returns the new size."""
    where[heap[0]] = -1
    size -= 1
    if size == 0:
        return 0
    v = heap[size]
    at = 0
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and key[heap[child + 1]] < key[heap[child]]:
            child += 1
        if key[heap[child]] >= key[v]:
            break
        heap[at] = heap[child]
        where[heap[at]] = at
        at = child
    heap[at] = v
    where[v] = at
    return size


def sink_potentials(network: Network, flow: np.ndarray, tail, head, cost, guess: np.ndarray | None = None) -> np.ndarray:
    """A feasible potential (every residual arc has ``cost + pi(tail) - pi(head) >= 0``) that is
    as favourable as possible to the pruning screen: the largest one with ``pi(sink) = 0``.

    ``pi(v)`` = shortest residual distance from the sink to ``v``. In assignment terms (mentee
    utility ``u = 1000 + pi(e)``, mentor price ``v = -pi(m)``) this is the dual with the
    *smallest* mentor prices and the *largest* mentee utilities: mentors with spare capacity
    and some flow sit at price 0, saturated mentors at the least price complementary slackness
    allows. Nodes the sink cannot reach (isolated pinned mentees, mentors nobody kept) start at
    ``K`` (above every reached distance plus any arc cost) and are settled among themselves, i.e.
    distances from a virtual root with an arc of cost 0 to the sink and cost ``K`` to every
    other node -- a genuine shortest-path potential. Finally mentors without flow are lowered
    to ``pi(sink)`` (``_lower_idle_mentors``).

    ``guess``: a potential under which few of the given arcs have a negative reduced cost,
    when the caller has one, for a faster search of the same distances (``_label_correct``).
    """
    n = network.n_nodes
    head, cost, start = _by_tail(tail, head, cost, n)
    unset = np.iinfo(np.int64).max
    dist = np.full(n, unset, np.int64)
    dist[SINK] = 0
    dist = _label_correct(head, cost, start, dist, np.array([SINK]), guess)
    unreached = np.flatnonzero(dist == unset)
    if unreached.size:
        reached = dist[dist != unset]
        dist[unreached] = int(reached.max(initial=0)) + int(np.abs(cost).max(initial=0)) + 1
        dist = _label_correct(head, cost, start, dist, unreached, guess)
    return _lower_idle_mentors(network, flow, dist)


def anchored_potentials(network: Network, flow: np.ndarray, tail, head, cost, anchor, guess=None) -> np.ndarray:
    """The largest feasible potential nowhere above ``anchor`` (then idle mentors lowered, as
    in ``sink_potentials``), shifted by a constant so that ``pi(sink)`` keeps the anchor's
    value: shortest residual distances from a virtual root with an arc of cost ``anchor(v)``
    to every node ``v``. A node keeps its anchor (up to the shift) unless a residual path under
    which the anchor is not feasible leads to it. A uniform shift changes no reduced cost; it
    keeps the potentials from drifting down round after round (a department floor's cost each
    time).

    The certificate's exact rounds take it with the last round's potentials as anchor: those
    screened every pruned pair, so staying next to them keeps the pairs they passed passing,
    where the optimal duals' extreme point (``sink_potentials``) can sit far from them (100k
    x 50k, seed 1: 195 k violated arcs after the exact flow and a second fresh solve, against
    34). ``guess``: a potential near the flow's, if any, for a faster search of the same
    distances (else the anchor)."""
    n = network.n_nodes
    head, cost, start = _by_tail(tail, head, cost, n)
    dist = anchor.astype(np.int64)  # a copy
    dist = _label_correct(head, cost, start, dist, np.arange(n), anchor if guess is None else guess)
    dist = _lower_idle_mentors(network, flow, dist)
    dist += int(anchor[SINK]) - int(dist[SINK])
    return dist


def _lower_idle_mentors(network: Network, flow: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Mentors without flow down to ``pi(sink)`` (in place): their only residual out-arc is the
    one to the sink (cost 0), so the value stays feasible, and it is the price 0 a mentor
    nobody uses deserves (in-arcs only gain reduced cost)."""
    n = network.n_nodes
    m_first = 2 + network.n_mentees
    mentor_arcs = (network.head == SINK) & (network.tail >= m_first) & (network.tail < n)
    used = np.zeros(n, bool)
    used[network.head[: network.n_pairs][flow[: network.n_pairs] > 0]] = True
    idle = network.tail[mentor_arcs]
    idle = idle[~used[idle]]
    dist[idle] = np.minimum(dist[idle], dist[SINK])
    return dist


def flow_potentials(network: Network, flow: np.ndarray, guess: np.ndarray | None = None) -> np.ndarray:
    """``sink_potentials`` of an optimal flow (what a ``Certificate`` holds, without the cut)."""
    return sink_potentials(network, flow, *residual_arcs(network, flow), guess)


def reachable_from_source(n_nodes: int, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    graph = sp.csr_matrix((np.ones(tail.size, np.int8), (tail, head)), shape=(n_nodes, n_nodes))
    seen = np.zeros(n_nodes, bool)
    seen[breadth_first_order(graph, SOURCE, directed=True, return_predecessors=False)] = True
    return seen


@dataclass
class Certificate:
    potential: np.ndarray
    reachable: np.ndarray

    @classmethod
    def of(cls, network: Network, result: FlowResult, anchor: np.ndarray | None = None) -> "Certificate":
        """``anchor``: the last round's potentials, if any: the certificate's are then the
        feasible ones next to them (``anchored_potentials``), else ``sink_potentials``. The
        flow's own potentials, if any, speed up the search."""
        tail, head, cost = residual_arcs(network, result.flow)
        if anchor is not None and anchor.size != network.n_nodes:
            log.debug("certificate: an anchor for %d nodes, not %d: not used", anchor.size, network.n_nodes)
            anchor = None
        if anchor is None:
            potential = sink_potentials(network, result.flow, tail, head, cost, result.potential)
        else:
            potential = anchored_potentials(network, result.flow, tail, head, cost, anchor, result.potential)
        return cls(potential, reachable_from_source(network.n_nodes, tail, head))

    def arc_improves(self, tail_node: np.ndarray, head_node: np.ndarray, cost: np.ndarray) -> np.ndarray:
        """True where adding the arc could change the optimum (see module docstring)."""
        negative = cost + self.potential[tail_node] - self.potential[head_node] < 0
        crosses_cut = self.reachable[tail_node] & ~self.reachable[head_node]
        return negative | crosses_cut
