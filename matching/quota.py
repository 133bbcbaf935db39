"""Minimum cross-functional share: a Lagrangian relaxation over the exact flow, a certified
bound and a primal repair.

The quota ``n1 >= q (n1 + n0)`` (cross-functional pairs n1, same-department pairs n0, pins
included) is moved into the objective: with points scaled by ``scale``, a cross-functional pair
gains ``b1 = beta`` and a same-department pair loses ``b0 = floor(beta * q / (1 - q))``. Every
matching that meets the quota has ``n1 * b1 - n0 * b0 >= 0``, so ``scale * score`` of such a
matching is at most the optimum ``L(beta)`` of the shifted problem: each ``L(beta)`` is an upper
bound. ``scale`` = 64 lets the multiplier move in 1/64 of a point per pair; the best multiplier
is usually a fraction of a point (at 20k x 10k with a 90 % quota an integer beta of 1 already
overshoots to 92.6 %).

1. ``beta`` is bracketed (``lo`` misses the quota, ``hi`` meets it) by flows on the candidate
   arcs of the certified unshifted solve, then narrowed by intersecting the two solutions'
   lines ``scale * score + beta * (n1 - r n0)`` (Kelley's cutting plane in one dimension) until
   the flow at the intersection finds nothing above the two lines: that beta minimises ``L``.
   Each shifted flow is the unshifted optimum repaired for the shift (``repair.repair_flow``),
   an OR-Tools solve only when the repair gives up.
2. Bound: those flows saw only the candidate arcs. The flow's potentials ``pi`` are a feasible
   dual on them; for every pruned pair ``e -> m`` with a positive excess ``shifted points - 1000
   - pi(e) + pi(m)`` (found by ``_pruned_excess``: float32 upper bounds first, then exact
   points, over the pairs the unshifted certificate cannot rule out), raising
   ``pi(e)`` by the largest excess of its row keeps the dual feasible on the full graph at a
   cost of that excess on the mentee's unit source arc. So ``L_full(beta) <= L_cand(beta) +
   sum of the row excesses``. The candidate arcs carry the full maximum flow and priority
   optimum (proved by the unshifted certificate), so the bound holds among maximum-coverage
   matchings, which is what the engine compares.
3. Primal: the flows at ``lo`` and ``hi`` are both maximum-coverage (each optimal for its own
   shifted costs, a cycle between them cannot change coverage or priority without making one
   of them suboptimal). Their difference splits into alternating cycles (a conformal
   decomposition, so any subset applied to ``hi`` is a feasible matching); starting from ``hi``,
   the cycles that gain the most score per cross-functional pair given up are applied while the
   share stays at or above the quota.

``q >= 1`` needs no search: same-department pairs lose more than any score (one solve), and the
flow's answer is exact unless the bound pass finds an excess.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .candidates import Candidates, arc_positions, block_arcs, level_blocks
from .certify import PARTIAL_CHUNK, VALUE_SLACK, screen_block
from .fastscore import POINTS_MARGIN, FastScorer
from .flow import PRIORITY_CAP, SINK, FlowResult, Network, build_network, flow_potentials, solve_network
from . import repair
from .scoring import SCORE_SCALE

SCALE = 64  # multiplier resolution: 1/64 point per pair
# Shifted flows see the arcs within this many points (plus the shift) of tight, see below.
NEAR_POINTS = 20
MAX_STEPS = 12  # Kelley steps after the bracket (it converges in a few)
# Stop the multiplier search once the bound is this close to the best matching (relative).
GAP_TOLERANCE = 1e-5
log = logging.getLogger(__name__)


@dataclass
class _Relaxed:
    """The shifted flow on the candidate arcs at one multiplier."""

    beta: int
    gain: int
    loss: int
    chosen: np.ndarray  # candidate arc indices of the matching
    value: int  # shifted optimum on the candidate arcs (scaled points of the free pairs)
    points: int  # unshifted points of the free pairs
    cross: int  # cross-functional pairs, pins included
    total: int  # pairs, pins included
    arcs: Candidates | None  # the pairs the flow saw (None: the unshifted solve)
    network: Network | None
    result: FlowResult | None


@dataclass
class _Primal:
    """The best matching found that meets the quota."""

    chosen: np.ndarray | None
    points: int


def enforce_quota(enc, scorer: FastScorer, unshifted: tuple, active, capacity, floors, pins, clock, t, deadline):
    """(pairs, status, bound in points of the free pairs, t) meeting the quota when possible.

    ``unshifted`` = (candidates, network, flow, certifying potentials) of the certified solve
    without the quota."""
    q = float(enc.problem.program.rules.min_cross_functional_share)
    cands, network0, result0, certified = unshifted
    chosen = np.flatnonzero(result0.flow[: network0.n_pairs] > 0)
    cross_arc = scorer.cross_functional(cands.mentee, cands.mentor)
    e_index = {pid: i for i, pid in enumerate(enc.mentees.ids)}
    m_index = {pid: j for j, pid in enumerate(enc.mentors.ids)}
    pin_cross = int(
        scorer.cross_functional(
            np.array([e_index[e] for _, e in pins], np.int64), np.array([m_index[m] for m, _ in pins], np.int64)
        ).sum()
    ) if pins else 0
    n_pins = len(pins)

    def pairs_of(idx):
        return list(zip(cands.mentee[idx].tolist(), cands.mentor[idx].tolist()))

    def meets(cross, total):
        return total == 0 or cross >= q * total - 1e-9

    base_cross, base_total = int(cross_arc[chosen].sum()) + pin_cross, chosen.size + n_pins
    if q <= 0 or meets(base_cross, base_total):
        return pairs_of(chosen), "optimal", None, t
    base_points = int(cands.points[chosen].sum())  # certified unshifted optimum: a bound too

    if q >= 1:
        scale = 1
        forbid = 10 * SCORE_SCALE * max(1, chosen.size)  # more than any score difference
        multipliers = lambda beta: (0, beta * forbid)
        ratio = math.inf
    else:
        scale = SCALE
        ratio = q / (1 - q)
        multipliers = lambda beta: (beta, math.floor(beta * ratio))

    # The shifted flows run on the arcs near tight in the unshifted optimum: reduced cost at
    # most NEAR_POINTS plus the largest change of shift between two pairs (gain + loss).
    # The others still count: the excess pass treats them as pruned.
    pairs0 = slice(0, network0.n_pairs)
    potential0 = flow_potentials(network0, result0.flow, guess=certified)
    reduced0 = network0.cost[pairs0] + potential0[network0.tail[pairs0]] - potential0[network0.head[pairs0]]

    def relax(beta: int) -> _Relaxed:
        gain, loss = multipliers(beta)
        near = np.flatnonzero(reduced0 * scale <= NEAR_POINTS * scale + gain + loss)
        arcs = Candidates(cands.mentee[near], cands.mentor[near], cands.points[near], cands.threshold)
        shifted = scale * arcs.points + np.where(cross_arc[near], gain, -loss)
        network = build_network(enc, Candidates(arcs.mentee, arcs.mentor, shifted, cands.threshold), active, capacity, floors)
        result = _shifted_from_unshifted(
            enc, arcs, network, result0.flow[pairs0][near], result0.flow[network0.n_pairs :], scale, active, capacity, floors, potential0
        )
        if result is None:
            result = solve_network(network)
        used = np.flatnonzero(result.flow[: network.n_pairs] > 0)
        idx = near[used]
        value, points, cross = int(shifted[used].sum()), int(cands.points[idx].sum()), int(cross_arc[idx].sum())
        log.debug("quota: beta %d: value %d, points %d, cross %d of %d (%d arcs)", beta, value, points, cross, idx.size, near.size)
        return _Relaxed(beta, gain, loss, idx, value, points, cross + pin_cross, idx.size + n_pins, arcs, network, result)

    def line(x: _Relaxed, beta: int) -> int:
        """x's shifted value at another multiplier (exact, integer)."""
        gain, loss = multipliers(beta)
        n1 = x.cross - pin_cross
        return scale * x.points + gain * n1 - loss * (x.chosen.size - n1)

    def slope(x: _Relaxed) -> float:
        n1 = x.cross - pin_cross
        return n1 - ratio * (x.chosen.size - n1)

    def pin_shift(x: _Relaxed) -> int:
        return pin_cross * x.gain - (n_pins - pin_cross) * x.loss

    def unshifted_run() -> _Relaxed:
        return _Relaxed(0, 0, 0, chosen, scale * base_points, base_points, base_cross, base_total, None, None, None)

    runs: list[_Relaxed] = []  # shifted flows

    def record(x: _Relaxed) -> None:
        """Add a run; only the one with the least shifted optimum keeps its network (the
        excess pass needs it), the others only their matching."""
        runs.append(x)
        least = min(runs, key=lambda r: r.value + pin_shift(r))
        for r in runs:
            if r is not least:
                r.arcs = r.network = r.result = None

    # The bracket's first multiplier (then x4): a quarter point. At 20k x 10k with a 90 % quota
    # it meets the quota in one flow (a whole point: 3 flows; an eighth: 2); the best multiplier
    # is usually a fraction of a point, and a flow at a small one is a cheaper repair.
    lo, hi_beta = unshifted_run(), (1 if q >= 1 else max(1, scale // 4))  # lo misses the quota
    while True:
        try:
            hi = relax(hi_beta)
        except ValueError:  # the cost range is too large for an exact flow at this resolution
            if scale == 1:
                raise
            # Whole-point multipliers instead: costs 64 times smaller.
            scale, hi_beta, runs = 1, max(1, hi_beta // SCALE), []
            lo = unshifted_run()
            continue
        t = clock.add("solve", t)
        record(hi)
        if meets(hi.cross, hi.total):
            break
        status = None
        if q >= 1 or hi_beta * 4 > 64 * SCORE_SCALE * scale:
            status = "quota_unmet"
        elif time.monotonic() > deadline:
            status = "feasible"
        if status:
            widest = max([unshifted_run(), *runs], key=lambda x: x.cross / max(x.total, 1))
            return pairs_of(widest.chosen), status, None, t
        lo, hi_beta = hi, hi_beta * 4

    best = _Primal(None, -1)

    def consider(chosen_idx: np.ndarray) -> None:
        """Keep the best matching meeting the quota."""
        nonlocal best
        cross = int(cross_arc[chosen_idx].sum()) + pin_cross
        points = int(cands.points[chosen_idx].sum())
        if meets(cross, chosen_idx.size + n_pins) and points > best.points:
            best = _Primal(chosen_idx, points)

    def repair_bracket() -> None:
        """hi repaired toward lo (after either changed)."""
        repaired = _repair(enc, cands, cross_arc, hi.chosen, lo.chosen, q, pin_cross, n_pins, floors)
        if repaired is not None:
            consider(repaired)

    def estimated_bound() -> int:
        """The bound before the excess pass (which usually adds nothing)."""
        return min(min((x.value + pin_shift(x)) // scale for x in runs), base_points)

    consider(hi.chosen)
    repair_bracket()
    for _ in range(MAX_STEPS):
        if hi.beta - lo.beta <= 1 or time.monotonic() > deadline:
            break
        if estimated_bound() - best.points <= GAP_TOLERANCE * estimated_bound():
            break
        # Where the two lines cross: L is at least their maximum, so its minimum is near.
        crossing = scale * (lo.points - hi.points) / (slope(hi) - slope(lo))
        beta = min(max(round(crossing), lo.beta + 1), hi.beta - 1)
        x = relax(beta)
        record(x)
        consider(x.chosen)
        if x.value <= max(line(lo, beta), line(hi, beta)):
            t = clock.add("solve", t)
            break  # nothing above the two lines: beta is where L is least
        if meets(x.cross, x.total):
            hi = x
        else:
            lo = x
        repair_bracket()
        t = clock.add("solve", t)
    log.debug("quota: %d flows, bracket %d..%d (scale %d)", len(runs), lo.beta, hi.beta, scale)

    # Bound at the multiplier with the least shifted optimum, lifted by the pruned excess.
    best_run = min(runs, key=lambda x: x.value + pin_shift(x))
    excess = _pruned_excess(enc, scorer, active, best_run, scale, cands, certified, cross_arc)
    t = clock.add("pruning", t)
    bound = min((best_run.value + pin_shift(best_run) + excess) // scale, base_points)
    log.debug("quota: objective %d, bound %d (excess %d)", best.points, bound, excess)
    status = "optimal" if best.points >= bound else "feasible"
    return pairs_of(best.chosen), status, max(bound, best.points), t


def _shifted_from_unshifted(enc, arcs: Candidates, network: Network, pair_flow, other_flow, scale, active, capacity, floors, potential0):
    """The shifted optimum on ``arcs``, repaired from the unshifted one (``repair.repair_flow``)
    instead of solved afresh: the shift moves each pair by less than a point or two, so few
    mentees change mentor (20k x 10k, 90 %: 0.3-0.8 s against 1.0-1.2 s for OR-Tools). The
    unshifted flow's potentials come from the same arcs at the same scale, unshifted. None when
    the repair gives up (the caller solves afresh). ``potential0``: the unshifted optimum's
    potentials on all its arcs, a guess for those on fewer."""
    unshifted = build_network(enc, Candidates(arcs.mentee, arcs.mentor, scale * arcs.points, arcs.threshold), active, capacity, floors)
    flow = np.zeros(unshifted.tail.size, np.int64)
    flow[: unshifted.n_pairs] = pair_flow
    flow[unshifted.n_pairs :] = other_flow
    # Same arcs as the unshifted optimum's maximum flow, and the repair keeps the flow's value.
    guess = _scaled_potential(unshifted, potential0, scale, enc.n_mentors)
    return repair.repair_flow(network, flow, flow_potentials(unshifted, flow, guess), reach=repair.REACH * scale)


def _scaled_potential(network: Network, potential: np.ndarray, scale: int, n_mentors: int) -> np.ndarray:
    """A potential of the unscaled network carried to ``network``, whose pair arcs cost
    ``1000 - scale * points``: ``scale`` times it, plus ``(scale - 1) * 1000`` on every node
    before the pair arcs (source, departments, mentees), as a pair arc costs that much less
    than ``scale`` times its unscaled cost. Exact for the pair and mentor arcs; a guess for
    ``sink_potentials`` (priority and floor costs do not scale alike)."""
    scaled = scale * potential
    upstream = np.ones(network.n_nodes, bool)
    upstream[SINK] = False
    upstream[network.mentor_node(np.arange(n_mentors))] = False
    scaled[upstream] += (scale - 1) * SCORE_SCALE
    return scaled


def _pruned_excess(enc, scorer: FastScorer, active, run: _Relaxed, scale: int, cands, certified, cross_arc) -> int:
    """Sum over the mentees of the largest excess ``shifted points - 1000 - pi(e) + pi(m)`` of a
    pair the flow did not see (module docstring, 2.): what lifts ``L_cand`` to a bound on
    ``L_full``, ``pi`` being the shifted flow's potentials.

    * Kept arcs the flow did not see (farther than NEAR_POINTS from tight): their points are
      known, so their excess is computed exactly.
    * The other pairs: under the potentials ``pf`` that certified the unshifted optimum every
      pair has ``points <= 1000 + pf(e) - pf(m)``, so the excess of (e, m) is at most ``A(e) +
      B(m)`` with ``A = scale * (1000 + pf(e)) + gain - 1000 - pi(e)`` and ``B = pi(m) - scale *
      pf(m)``. Only the pairs with ``B(m) > -A(e)`` can show one: a row is screened (float32
      upper bounds, then exact points) against those mentors only, rows in chunks of similar
      ``A`` (20k x 10k, 90 %: 38 M of the 73 M level-compatible pairs, 0.34 s against 0.7 s
      for all of them; the bound is unchanged).
    """
    guess = run.result.potential  # the repair's, or else the certified ones carried over (the shift is small)
    if guess is None:
        guess = _scaled_potential(run.network, certified, scale, enc.n_mentors)
    potential = flow_potentials(run.network, run.result.flow, guess)
    pi_e = potential[run.network.mentee_node(np.arange(enc.n_mentees))]
    pi_m = potential[run.network.mentor_node(np.arange(enc.n_mentors))]
    excess = np.zeros(enc.n_mentees, np.int64)

    unseen = np.ones(cands.mentee.size, bool)
    unseen[arc_positions(enc, cands, run.arcs.mentee, run.arcs.mentor)] = False
    unseen &= active[cands.mentee]
    e, m = cands.mentee[unseen], cands.mentor[unseen]
    shifted = scale * cands.points[unseen] + np.where(cross_arc[unseen], run.gain, -run.loss)
    np.maximum.at(excess, e, shifted - SCORE_SCALE - pi_e[e] + pi_m[m])

    pf_e = certified[run.network.mentee_node(np.arange(enc.n_mentees))]
    pf_m = certified[run.network.mentor_node(np.arange(enc.n_mentors))]
    row_room = scale * (SCORE_SCALE + pf_e) + run.gain - SCORE_SCALE - pi_e  # A
    col_room = pi_m - scale * pf_m  # B
    rows = np.flatnonzero(active)
    rows = rows[np.argsort(-row_room[rows], kind="stable")]
    screened = total = 0
    for block_rows, cols in level_blocks(enc, rows):
        total += block_rows.size * cols.size
        for k in range(0, block_rows.size, PARTIAL_CHUNK):
            chunk = block_rows[k : k + PARTIAL_CHUNK]
            sub = cols[col_room[cols] > -row_room[chunk].max()]
            if sub.size:
                screened += chunk.size * sub.size
                _dense_excess(enc, scorer, run, scale, cands, pi_e, pi_m, chunk, sub, excess)
    log.debug("quota: excess pass screened %d of %d level-compatible pairs", screened, total)
    return int(excess.sum())


def _dense_excess(enc, scorer, run, scale, cands, pi_e, pi_m, rows, cols, excess) -> None:
    """The largest excess per row over the block's pairs that are not kept arcs (in place)."""
    raw = scorer.raw_block(rows, cols)
    # scale * (raw * to_points + 0.5 + margin) + gain > 1000 + pi(e) - pi(m), divided by
    # scale and taken relative to the block's largest mentor potential (small floats):
    # certify's compiled screen lists those pairs (no cut condition here).
    base = int(pi_m[cols].max())
    col_value = (pi_m[cols] - base) / scale
    limit = (SCORE_SCALE + pi_e[rows] - base - run.gain) / scale - 0.5 - POINTS_MARGIN - VALUE_SLACK
    kept = block_arcs(cands, rows, cols, enc.n_mentors)
    no_cut_r, no_cut_c = np.zeros(rows.size, np.bool_), np.zeros(cols.size, np.bool_)
    r, c, _ = screen_block(raw, kept, scorer.to_points, col_value, limit, no_cut_r, no_cut_c)
    if r.size == 0:
        return
    e, m = rows[r], cols[c]
    points = scorer.exact_points(e, m)
    shifted = scale * points + np.where(scorer.cross_functional(e, m), run.gain, -run.loss)
    over = np.where(points >= 0, shifted - SCORE_SCALE - pi_e[e] + pi_m[m], 0)
    np.maximum.at(excess, e, over)


def _repair(enc, cands: Candidates, cross_arc, hi_idx, lo_idx, q, pin_cross, n_pins, floors) -> np.ndarray | None:
    """``hi``'s matching plus the cycles toward ``lo``'s that gain the most score per
    cross-functional pair given up, while the quota holds (module docstring, 3.). None when
    no cycle applies or the result would change coverage, priority or department floors."""
    take = np.setdiff1d(lo_idx, hi_idx)
    leave = np.setdiff1d(hi_idx, lo_idx)
    if take.size == 0:
        return None
    mentee, mentor = cands.mentee, cands.mentor
    dept = enc.mentees.department
    out: dict = defaultdict(list)  # node -> [(next node, arc index or -1, sign)]

    def hub(e):
        return ("d", int(dept[e])) if floors is not None else "S"

    for a in take.tolist():
        out[("e", int(mentee[a]))].append((("m", int(mentor[a])), a, 1))
    for a in leave.tolist():
        out[("m", int(mentor[a]))].append((("e", int(mentee[a])), a, -1))
    in_hi, in_lo = set(mentee[hi_idx].tolist()), set(mentee[lo_idx].tolist())
    moved = defaultdict(int)  # per hub: mentees it gains toward lo
    for e in in_lo - in_hi:
        out[hub(e)].append((("e", e), -1, 0))
        moved[hub(e)] += 1
    for e in in_hi - in_lo:
        out[("e", e)].append((hub(e), -1, 0))
        moved[hub(e)] -= 1
    if floors is not None:
        for d, delta in moved.items():
            for _ in range(abs(delta)):
                out["S" if delta > 0 else d].append((d if delta > 0 else "S", -1, 0))
    load = defaultdict(int)
    for a in take.tolist():
        load[int(mentor[a])] += 1
    for a in leave.tolist():
        load[int(mentor[a])] -= 1
    for m, delta in load.items():
        for _ in range(abs(delta)):
            out[("m", m) if delta > 0 else "T"].append(("T" if delta > 0 else ("m", m), -1, 0))
    bypass = hi_idx.size - lo_idx.size  # score_first: mentees left unmatched go source -> sink
    for _ in range(abs(bypass)):
        out["S" if bypass > 0 else "T"].append(("T" if bypass > 0 else "S", -1, 0))
    degree = defaultdict(int)
    for u, arcs in out.items():
        degree[u] += len(arcs)
        for v, _, _ in arcs:
            degree[v] -= 1
    if any(degree.values()):  # the difference of two flows is a circulation: a bug if not
        log.warning("quota repair skipped: the two matchings do not differ by a circulation")
        return None

    cycles = []
    for a_cycle in _cycles(out):
        arcs = np.array([a for a, sign in a_cycle if sign], np.int64)
        signs = np.array([sign for a, sign in a_cycle if sign], np.int64)
        if arcs.size:
            # score, and the quota's slack n1 - q n (pairs can come and go in score_first)
            d_slack = int((signs * cross_arc[arcs]).sum()) - q * int(signs.sum())
            cycles.append((int((signs * cands.points[arcs]).sum()), d_slack, arcs, signs))
    slack = int(cross_arc[hi_idx].sum()) + pin_cross - q * (hi_idx.size + n_pins)
    gains = [c for c in cycles if c[0] > 0]
    gains.sort(key=lambda c: -math.inf if c[1] >= 0 else c[0] / c[1])  # most score per slack used first
    chosen = set(hi_idx.tolist())
    applied = 0
    for d_points, d_slack, arcs, signs in gains:
        if slack + d_slack < -1e-9:
            continue
        slack += d_slack
        applied += 1
        chosen.difference_update(arcs[signs < 0].tolist())
        chosen.update(arcs[signs > 0].tolist())
    if not applied:
        return None
    result = np.array(sorted(chosen), np.int64)
    if _coverage_terms(enc, cands, result, floors) != _coverage_terms(enc, cands, hi_idx, floors):
        return None
    return result


def _coverage_terms(enc, cands: Candidates, idx, floors) -> tuple[int, ...]:
    """What the flow ranks before score: department floor credit, then (coverage_first) pairs
    and capped priority."""
    matched = cands.mentee[idx]
    credit = 0
    if floors is not None:
        counts = defaultdict(int)
        for d in enc.mentees.department[matched].tolist():
            counts[d] += 1
        credit = sum(min(counts[d], floor) for d, floor in floors.items())
    if enc.problem.program.objective != "coverage_first":
        return (credit,)
    return credit, idx.size, int(np.minimum(enc.mentee_priority[matched], PRIORITY_CAP).sum())


def _cycles(out: dict) -> list[list[tuple[int, int]]]:
    """Split a balanced multigraph (node -> [(next, arc, sign)]) into simple cycles, each a list
    of (arc, sign). Walks until the path meets itself, cuts the cycle off and walks on."""
    cycles = []
    for start in list(out):
        while out[start]:
            nodes, arcs, where = [start], [], {start: 0}
            u = start
            while True:
                v, arc, sign = out[u].pop()
                arcs.append((arc, sign))
                if v in where:
                    k = where[v]
                    cycles.append(arcs[k:])
                    for node in nodes[k + 1 :]:
                        del where[node]
                    del nodes[k + 1 :]
                    del arcs[k:]
                    if not arcs:
                        break
                else:
                    where[v] = len(nodes)
                    nodes.append(v)
                u = v
    return cycles
