"""A forward auction on the candidate arcs (numba): the pruning certificate's approximate
rounds, and its first exact flow.

The certificate (``certify.py``) screens the pruned pairs against node potentials. The
potentials only decide which pairs to add; only the last round's must come from an exact
optimum. So the rounds before the first exact solve are priced by an auction on the kept
arcs, much cheaper than a min-cost flow (20k x 10k: 0.26 s with its potentials, against
0.9-1.3 s for OR-Tools and its certificate on the same 479k arcs), and warm-started from one
round to the next when the screen added arcs.

Auction (Bertsekas; a mentor of capacity c is c "similar objects", its slots): each mentee
not holding a slot bids for the mentor with the best ``points - price``, raising the price of
that mentor's cheapest slot by the margin over its second-best option plus ``eps``; a bid
evicts the slot's holder, who bids again. A mentor's price is its cheapest slot's. Staying
unmatched is worth 0 whatever the objective: score_first's own terms, and for coverage_first
a larger worth of matching would only send every price up by it in a saturated market (the
exact rounds settle coverage). The phases scale ``eps`` down (``EPS``); a mentee keeps its slot
into the next phase while it is within the new ``eps`` of its best option. Integers only,
mentees queued by index (``encode`` makes that independent of the input order): the prices
are deterministic.

The auction's assignment and prices are ``eps``-optimal for the kept arcs, not optimal, so
``approximate_round`` raises the cost of each residual arc that breaks them just enough (by
at most ``eps`` on a pair arc) and takes the least potentials of that (``flow.sink_potentials``),
as for an exact optimum. ``exact_round`` instead finishes the auction exact: phases down to
an eps below 1/n point leave an assignment optimal but for the slots left free at a price,
which ``repair.widen_flow`` gives back (the certificate's first exact flow, at every size; it
replaced OR-Tools' 8.8-10.4 s at 100k x 50k, see bench/README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from numba import njit

from .candidates import arc_positions
from .flow import INT_LIMIT, SINK, SOURCE, Certificate, FlowResult, Network, reachable_from_source, residual_arcs, sink_potentials
from .repair import widen_flow
from .scoring import SCORE_SCALE
from .topk import sift_down

log = logging.getLogger(__name__)

# Points per phase (eps-scaling): the coarse phases set the price level in few bids, the last
# leaves the prices eps-optimal. Before each finer phase every price is lowered by twice the
# last eps (never below 0): a coarse phase overshoots by up to its step, and prices that high
# would price marginal mentees out for good (prices only rise within a phase). 20k x 10k:
# 430k bids, against 3.3M for one phase at eps 2, for the same matching quality.
EPS = (64, 8, 2)
# ``exact_round``'s phases after the approximate rounds' last eps: each this many times finer,
# down to 1/scale point (at 100k x 50k, scale 2^17: 2^15, 2^12, 2^9, 2^6, 2^3, 1 units; 1.1-1.5 s).
EXACT_STEP = 8
SLOT_HEADROOM = 16  # slots beyond a mentor's first arcs, for arcs added later
# The price a mentor without slots is read at: far above any value (``exact_round`` keeps
# values and prices below INT_LIMIT / 4), far from overflowing once subtracted.
NO_SLOT = np.int64(1) << 62


@dataclass
class AuctionState:
    """The auction between rounds: each mentor's slots (a min-heap by price, with the mentee
    holding each or -1) and the mentor each mentee holds (-1: none). Kept by mentor and
    mentee index, so that it survives the candidate arcs being re-sorted."""

    slot_ptr: np.ndarray
    slot_price: np.ndarray
    holder: np.ndarray
    held: np.ndarray
    warm: bool = False

    @classmethod
    def empty(cls, n_mentees: int, capacity: np.ndarray, demand: np.ndarray) -> "AuctionState":
        """``demand``: per mentor, how many mentees have an arc to it. A mentor gets at most
        ``demand + SLOT_HEADROOM`` slots, so memory stays near the arcs' whatever the capacities
        (one that more mentees want later is priced as if full: the prices only guide)."""
        slots = np.minimum(capacity, np.minimum(demand + SLOT_HEADROOM, n_mentees)).astype(np.int64)
        slot_ptr = np.zeros(capacity.size + 1, np.int64)
        np.cumsum(slots, out=slot_ptr[1:])
        n_slots = max(int(slot_ptr[-1]), 1)
        return cls(slot_ptr, np.zeros(n_slots, np.int64), np.full(n_slots, -1, np.int64), np.full(n_mentees, -1, np.int64))

    def prices(self) -> np.ndarray:
        """Per mentor: its cheapest slot's price (0 for a mentor without slots)."""
        price = np.zeros(self.slot_ptr.size - 1, np.int64)
        has = self.slot_ptr[1:] > self.slot_ptr[:-1]
        price[has] = self.slot_price[self.slot_ptr[:-1][has]]  # heap roots
        return price


def run_auction(
    state: AuctionState,
    mentee: np.ndarray,
    mentor: np.ndarray,
    points: np.ndarray,
    n_mentees: int,
    schedule: tuple[int, ...] | None = None,
    after: int = 0,
) -> None:
    """Auction phases in place on ``state`` over the arcs (sorted by mentee): ``schedule``'s
    eps in turn, by default the whole ``EPS`` from a cold state and its last (finest) phase
    from a warm one. Before each phase but the first, and before the first too when ``after``
    (the eps of the phase that set the prices) is given, every price is lowered by twice the
    previous eps."""
    ptr = np.searchsorted(mentee, np.arange(n_mentees + 1)).astype(np.int64)
    mentor, points = mentor.astype(np.int64, copy=False), points.astype(np.int64, copy=False)
    if schedule is None:
        schedule = EPS[-1:] if state.warm else EPS
    previous = after
    for eps in schedule:
        if previous:
            # A constant shift keeps every slot heap ordered.
            np.maximum(state.slot_price - 2 * previous, 0, out=state.slot_price)
        bids = _auction(ptr, mentor, points, state.slot_ptr, np.int64(eps), state.slot_price, state.holder, state.held)
        log.debug("auction: eps %d, %d bids", eps, bids)
        previous = eps
    state.warm = True


@njit(cache=True, nogil=True)
def _auction(ptr, mentor, value, slot_ptr, eps, slot_price, holder, held):
    """One eps phase of the Gauss-Seidel forward auction, in place (see module docstring).
    A mentee holding a slot keeps it while within ``eps`` of its best option; otherwise it
    lets the slot go (the slot keeps its price: prices never fall in a phase) and bids again.
    Returns the number of bids."""
    n_e = ptr.size - 1
    # Each mentor's price (its cheapest slot's, the heap root) in one array, NO_SLOT for a
    # mentor without slots: a mentee's scan of its arcs then reads one small array at random
    # (100k x 50k: 400 KB, in cache) instead of the slot pointers and the slot prices.
    n_m = slot_ptr.size - 1
    mentor_price = np.empty(n_m, np.int64)
    for j in range(n_m):
        mentor_price[j] = slot_price[slot_ptr[j]] if slot_ptr[j + 1] > slot_ptr[j] else NO_SLOT
    queue = np.empty(max(n_e, 1), np.int64)
    size = 0
    for i in range(n_e):
        if ptr[i + 1] == ptr[i]:
            if held[i] >= 0:  # its arcs are gone (cannot happen while arcs with flow are kept)
                _release(i, held[i], slot_ptr, holder)
                held[i] = -1
            continue
        best, _, _, held_worth = _options(i, ptr, mentor, value, mentor_price, held[i])
        if held[i] >= 0:
            # Judged at the price of the slot it holds, not the mentor's cheapest: the cheapest
            # may rise to it during the phase.
            j = held[i]
            own = _release(i, j, slot_ptr, holder)
            if own >= 0 and held_worth + slot_price[slot_ptr[j]] - slot_price[own] >= best - eps:
                holder[own] = i  # keeps it
                continue
            held[i] = -1
        queue[size] = i
        size += 1
    head = 0
    bids = 0
    while size:
        i = queue[head]
        head = head + 1 if head + 1 < n_e else 0
        size -= 1
        best, second, best_arc, _ = _options(i, ptr, mentor, value, mentor_price, -1)
        if best <= 0:
            continue  # every option costs at least what it is worth: stays unmatched
        j = mentor[best_arc]
        start = slot_ptr[j]
        cap = slot_ptr[j + 1] - start
        # The mentor's next-cheapest slot is an option too (a child of the heap's root).
        for child in (start + 1, start + 2):
            if child < start + cap:
                second = max(second, value[best_arc] - slot_price[child])
        out = holder[start]
        if out >= 0:
            held[out] = -1
            queue[(head + size) % n_e] = out
            size += 1
        slot_price[start] += best - second + eps
        holder[start] = i
        sift_down(slot_price, holder, start, cap, 0)
        mentor_price[j] = slot_price[start]
        held[i] = j
        bids += 1
    return bids


@njit(cache=True, nogil=True)
def _release(i, j, slot_ptr, holder):
    """Mentee i lets go of its slot of mentor j (which keeps its price); returns the slot."""
    for s in range(slot_ptr[j], slot_ptr[j + 1]):
        if holder[s] == i:
            holder[s] = -1
            return s
    return -1


@njit(cache=True, nogil=True)
def _options(i, ptr, mentor, value, mentor_price, held_mentor):
    """(best worth, second best worth, best arc, worth of the held mentor's arc or -1) of
    mentee i at the current prices; staying unmatched is worth 0 and counts as an option (a
    mentor without slots, priced ``NO_SLOT``, never is one)."""
    best, second, best_arc, held_worth = -1, 0, -1, -1
    for a in range(ptr[i], ptr[i + 1]):
        j = mentor[a]
        worth = value[a] - mentor_price[j]
        if j == held_mentor:
            held_worth = worth
        if worth > best:
            if best > second:
                second = best
            best = worth
            best_arc = a
        elif worth > second:
            second = worth
    return best, second, best_arc, held_worth


def approximate_round(state: AuctionState, enc, network: Network, cands, active: np.ndarray) -> tuple[FlowResult, Certificate]:
    """Run the auction on the network's pair arcs (``cands``, sorted by mentee; no department
    nodes) and return its flow and a certificate of the least potentials the assignment allows
    once the arcs that break it have their cost raised. The flow is not an optimum and must not
    be returned as one."""
    flow, pi = _auction_flow(state, enc, network, cands, active)
    tail, head, cost = residual_arcs(network, flow)
    cost = cost - np.minimum(cost + pi[tail] - pi[head], 0)  # now pi is feasible
    certificate = Certificate(
        sink_potentials(network, flow, tail, head, cost, guess=pi), reachable_from_source(network.n_nodes, tail, head)
    )
    return FlowResult.of(network, flow), certificate


def exact_round(state: AuctionState, enc, network: Network, cands, active: np.ndarray) -> FlowResult | None:
    """An optimal flow of the network (the largest, then the least costly, as OR-Tools'
    ``solve_max_flow_with_min_cost``) from the auction, which finishes exact: its last phases
    run in 1/``scale`` points, ``scale`` a power of two above the number of mentees, down to
    an eps of one such unit. Each matched mentee is then within 1/scale point of its best slot,
    so the assignment is optimal for the network without the slots the auction left free at a
    price (released when a phase began; 20k x 10k: 5, 100k x 50k: 461, the whole coverage gap
    there): ``sink_potentials`` of that narrower network prove it. ``repair.widen_flow`` gives
    those slots back. ``state`` is spent. None (the caller solves afresh) when mentees carry a
    priority (their source arcs a cost), when the points, scaled, could overflow, or when the
    widening passes its work limit."""
    n_m = state.slot_ptr.size - 1
    if network.cost[(network.tail == SOURCE) & (network.head != SINK)].any():
        # Priorities (mentees left unmatched before) are worth ~1000 points per pair each: the
        # mentees that lose the contest for a few mentors would bid their prices up that far
        # eps by eps (a reviewer's 3000 x 500 case: 3.8e9 bids, 295 s against 4.8 s).
        return None
    scale = 1 << max(int(active.sum()), 1).bit_length()
    if (int(np.abs(cands.points).max(initial=0)) + SCORE_SCALE) * scale * 4 >= INT_LIMIT:
        return None
    state.slot_price *= scale
    fine = []
    eps = EPS[-1] * scale
    while eps > 1:
        eps = max(eps // EXACT_STEP, 1)
        fine.append(eps)
    phases = tuple(fine) if state.warm else tuple(e * scale for e in EPS) + tuple(fine)
    after = EPS[-1] * scale if state.warm else 0
    flow, pi = _auction_flow(state, enc, network, cands, active, scale, phases, after)
    # The slots left free at a price are taken out of the mentors' capacity: what is left is
    # what the assignment is optimal for.
    slot_mentor = np.repeat(np.arange(n_m), np.diff(state.slot_ptr))
    n_slots = slot_mentor.size  # (the arrays hold one slot at least)
    kept = (state.holder[:n_slots] >= 0) | (state.slot_price[:n_slots] == 0)
    usable = np.bincount(slot_mentor[kept], minlength=n_m)
    to_sink = np.flatnonzero((network.head == SINK) & (network.tail != SOURCE))
    narrow_capacity = network.capacity.copy()
    mentors = network.tail[to_sink] - 2 - network.n_mentees
    narrow_capacity[to_sink] = np.minimum(network.capacity[to_sink], usable[mentors])
    narrow = replace(network, capacity=narrow_capacity)
    potential = sink_potentials(narrow, flow, *residual_arcs(narrow, flow), guess=pi // scale)
    log.debug("exact round: %d slots free at a price", n_slots - int(kept.sum()))
    return widen_flow(network, flow, potential)


def _auction_flow(
    state: AuctionState, enc, network: Network, cands, active: np.ndarray, scale: int = 1, schedule=None, after: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The auction's assignment on the network's pair arcs as a flow, and its potentials:
    mentee ``utility - SCORE_SCALE``, mentor ``-price`` (feasible but for the arcs that break
    eps-optimality). ``scale``: values, prices and potentials in 1/scale points (``schedule``
    and ``after`` as for ``run_auction``, in those units)."""
    n_e = active.size
    mentee, mentor, points = cands.mentee, cands.mentor, cands.points * scale
    arcs = np.flatnonzero(active[mentee])  # pinned mentees take no part
    run_auction(state, mentee[arcs], mentor[arcs], points[arcs], n_e, schedule, after)
    held = state.held
    matched = np.flatnonzero(held >= 0)
    flow = np.zeros(network.tail.size, np.int64)
    flow[arc_positions(enc, cands, matched, held[matched])] = 1
    _complete_flow(network, flow, matched.size)

    price = state.prices()
    e_nodes = network.mentee_node(np.arange(n_e))
    m_nodes = network.mentor_node(np.arange(price.size))
    worth = points[arcs] - price[mentor[arcs]]
    utility = np.zeros(n_e, np.int64)
    if arcs.size:
        rows = mentee[arcs]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        utility[rows[starts]] = np.maximum.reduceat(worth, starts)
    pi = np.zeros(network.n_nodes, np.int64)
    pi[e_nodes] = utility - SCORE_SCALE * scale
    pi[m_nodes] = -price
    if matched.size:
        pi[SOURCE] = pi[e_nodes[matched]].min()  # as in an optimum: no matched mentee's source arc is negative
    return flow, pi


def _complete_flow(network: Network, flow: np.ndarray, matched: int) -> None:
    """Fill the source, mentor and bypass arcs from the pair arcs' flow (in place)."""
    pairs = slice(0, network.n_pairs)
    out_of = np.bincount(network.tail[pairs], flow[pairs], network.n_nodes).astype(np.int64)
    into = np.bincount(network.head[pairs], flow[pairs], network.n_nodes).astype(np.int64)
    rest = np.arange(network.n_pairs, network.tail.size)
    tail, head = network.tail[rest], network.head[rest]
    to_mentee = (tail == SOURCE) & (head != SINK)
    flow[rest[to_mentee]] = out_of[head[to_mentee]]
    from_mentor = (head == SINK) & (tail != SOURCE)
    flow[rest[from_mentor]] = into[tail[from_mentor]]
    flow[rest[(tail == SOURCE) & (head == SINK)]] = network.flow_bound - matched
