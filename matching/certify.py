"""Certified pruning: solve on the kept arcs, prove no pruned arc could improve, else add it.

See ``flow.py`` for the two conditions an added arc e->m must pass (reduced cost
``1000 - points + pi(e) - pi(m) >= 0`` and not leaving the source side S of the min cut).
The potentials of an auction round, and of an exact round with no round before it, are
``flow.sink_potentials``: the feasible ones with the least mentor prices (``-pi(m)``) and
largest mentee utilities (``1000 + pi(e)``), which pass the most pruned arcs. Every later exact
round takes the feasible potentials next to the last round's (``flow.anchored_potentials``):
those passed nearly every pruned pair, and an extreme dual of the new flow can sit far from
them (100k x 50k, seed 1: 195 k violated arcs and a second fresh solve, against 34).

Rounds. Until a round adds few violated arcs (``REPAIR_LIMIT``), the potentials come from an
auction on the kept arcs (``auction.py``, eps-optimal; its least potentials once the arcs that
break eps-optimality are costed up) instead of an exact flow: they only choose which arcs to
add. Then the first exact flow is the auction finished exact (``auction.exact_round``:
phases below 1/n point, then ``repair.widen_flow``; OR-Tools when that gives up), and later
rounds repair that optimum from its potentials (``repair.repair_flow``, filled up to the
largest flow) when they add few violated arcs, or solve afresh with OR-Tools. Only an exact
round can end the loop. The first
auction round, and each one that another auction round follows, also sends the kept arcs far
from tight (``RESERVE_MARGIN``) and without flow to a *reserve*: out of the flow network,
checked arc by arc every round (a gather), back in when they come within ``NEAR_MARGIN`` of
violating.

Re-scoring every pruned pair each round would cost a full pass, so each mentee row carries an
upper bound instead:

* before its first re-check: ``threshold`` (max points of its pruned arcs), so a row passes
  when ``threshold + max pi(m) over its level slice <= 1000 + pi(e)``; a row that fails is
  scored only against the mentors with ``pi(m) > 1000 + pi(e) - threshold - margin`` (against
  the others even the threshold is far from violating), and the rest enter its bound;
* after a re-check under potentials ``pi_r``: ``bound = max over pruned m of (points + pi_r(m))``,
  so under new potentials a pruned pair has ``points + pi(m) <= bound + shift(m)``, ``shift =
  pi - pi_r``. Against every mentor whose shift is at most the row's room (``1000 + pi(e) -
  bound``, possibly negative) the bound still certifies the pair; the others are scored pair
  by pair, or the whole row afresh (a new bound) when they are more than ``PARTIAL_SHARE`` of
  its slice.

Scored pairs within ``NEAR_MARGIN`` of a negative reduced cost are added (not only violated
ones: that keeps the next round's bounds from failing). The min-cut condition is checked
directly on the rows in S against the mentors outside S (few when S is large, and S is small
otherwise). The loop stops when an exact round finds no violated pair: then every pruned arc
satisfies both conditions for the final flow (near pairs found in that round are not added;
they do not change the optimum).
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit

from .auction import AuctionState, approximate_round, exact_round
from .candidates import (
    BlockArcs,
    Candidates,
    arc_positions,
    block_arcs,
    level_blocks,
    mentor_columns,
    present_mask,
    unique_pairs,
)
from .encode import Encoded
from .parallel import parts, run_parts
from .fastscore import ELIGIBLE, POINTS_MARGIN, FastScorer
from .flow import (
    SINK,
    Certificate,
    FlowResult,
    build_network,
    solve_network,
)
from .repair import repair_flow
from .rules import level_bounds
from .scoring import SCORE_SCALE

MAX_ROUNDS = 200
# Covers float64 rounding in the screen's unrounded point bounds (values of a few thousand
# points at most, see _screen; POINTS_MARGIN leaves ~0.0099 points of room besides).
VALUE_SLACK = 1e-6
# Re-checked rows get every pruned arc whose reduced cost is below this margin (not only the
# violated ones): with the certificate's potentials (``flow.sink_potentials`` or
# ``flow.anchored_potentials``) violated arcs are few, and the near ones keep the next round's
# potentials from failing the row bounds.
NEAR_MARGIN = 3
# Rounds that add at most this many violated arcs repair the previous optimum (repair.py)
# instead of solving afresh; more and the repair's searches cost more than a fresh solve (20k x
# 10k: 45557 violated arcs took 4.2 s against 0.9 s).
REPAIR_LIMIT = 1000
PARTIAL_CHUNK = 256
# A row bounded in an earlier round is screened against the mentors whose potential moved past
# its room while they are at most this share of its level slice; beyond, it is scored afresh.
PARTIAL_SHARE = 0.25
ADD_PER_ROW = 128
# The thinning auction rounds keep in the network the arcs within this margin of tight under its
# prices, those with flow, those crossing the cut and all of unmatched mentees'; the others wait
# in the reserve (20k x 10k: the exact flow on 184k arcs instead of 208k; at 10, 149k arcs but
# many more violated arcs afterwards, at 100k x 50k a second fresh solve).
RESERVE_MARGIN = 20
# Auction-priced rounds before the first exact solve, at most (each adds the arcs its prices
# call for; they stop once a round finds no more violated arcs than a repair takes).
MAX_APPROXIMATE_ROUNDS = 6
# Fresh rows skip mentors where even the row's threshold stays this far (plus NEAR_MARGIN)
# from a negative reduced cost, leaving room for the next round's price moves.
FRESH_ROOM = 30
log = logging.getLogger(__name__)


def _count_above(enc: Encoded, values: np.ndarray, rows: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many of its level-compatible mentors have a value above the row's limit,
    and how many there are."""
    cols_sorted, col_levels = mentor_columns(enc)
    above = np.zeros(rows.size, np.int64)
    width = np.zeros(rows.size, np.int64)
    levels = enc.mentees.level[rows]
    for level in np.unique(levels):
        lo, hi = level_bounds(enc, int(level))
        a, b = np.searchsorted(col_levels, lo, "left"), np.searchsorted(col_levels, hi, "right")
        at = levels == level
        ordered = np.sort(values[cols_sorted[a:b]])
        above[at] = ordered.size - np.searchsorted(ordered, limit[at], "right")
        width[at] = ordered.size
    return above, width


def _slice_max(enc: Encoded, values: np.ndarray) -> np.ndarray:
    """Per mentee: max of a per-mentor value over the mentee's level-compatible mentors."""
    cols_sorted, col_levels = mentor_columns(enc)
    out = np.full(enc.n_mentees, -np.inf)
    for level in np.unique(enc.mentees.level):
        lo, hi = level_bounds(enc, int(level))
        a, b = np.searchsorted(col_levels, lo, "left"), np.searchsorted(col_levels, hi, "right")
        if b > a:
            out[enc.mentees.level == level] = values[cols_sorted[a:b]].max()
    return out


def _screen(enc, scorer, cands, cert, rows, cols, e_nodes, m_nodes, add_e, add_m, bound, pi_m):
    """Score the pruned pairs of a block: queue those within NEAR_MARGIN of a negative reduced
    cost (or crossing the min cut) for adding; with ``bound``, fold the rest into the row bounds
    (max of points + pi(m) over the pairs that stay pruned). Dense over the block: only the
    queued pairs are listed and scored exactly."""
    raw = scorer.raw_block(rows, cols)
    kept = block_arcs(cands, rows, cols, enc.n_mentors)
    pot_e = cert.potential[e_nodes[rows]]
    pot_m = cert.potential[m_nodes[cols]]
    # value = raw * to_points + (pi(m) - base) + (0.5 + POINTS_MARGIN + VALUE_SLACK) is at least
    # the pair's upper bound of points (as points_upper_bound) + pi(m) - base, unrounded in
    # float64, so one value does for the screen and the bound. Potentials are taken relative
    # to the block's largest mentor potential (an integer), so the float64 values stay small
    # whatever the potentials' size and VALUE_SLACK covers their rounding. A pair is near when
    # its reduced cost 1000 - points + pi(e) - pi(m) could be below NEAR_MARGIN, i.e. when
    # value > 1000 - NEAR_MARGIN - base + pi(e). Pairs leaving the source side S of the min cut
    # are near whatever their cost.
    base = int(pot_m.max())  # the block has columns
    col_value = (pot_m - base) + (0.5 + POINTS_MARGIN + VALUE_SLACK)
    row_limit = (SCORE_SCALE - NEAR_MARGIN - base + pot_e).astype(np.float64)
    in_s_row = cert.reachable[e_nodes[rows]]
    in_s_col = cert.reachable[m_nodes[cols]]
    r, c, best = screen_block(raw, kept, scorer.to_points, col_value, row_limit, in_s_row, ~in_s_col)
    points = scorer.exact_points(rows[r], cols[c])  # -1: below min_score
    slack = SCORE_SCALE + pot_e[r] - pot_m[c]
    crossing = in_s_row[r] & ~in_s_col[c]
    add = (points >= 0) & ((slack - points < NEAR_MARGIN) | crossing)
    idx = np.flatnonzero(add)
    if idx.size > ADD_PER_ROW:
        # At most ADD_PER_ROW per row and round, most violated first (crossing the cut first):
        # when the first prices are poor (100k x 50k: ~240 violated pairs per row) adding them
        # all would swamp the flow. The others stay pruned (in the bound) and come back later.
        key = np.where(crossing[idx], np.iinfo(np.int64).min, slack[idx] - points[idx])
        order = idx[np.lexsort((key, r[idx]))]
        row_sorted = r[order]
        starts = np.flatnonzero(np.r_[True, row_sorted[1:] != row_sorted[:-1]])
        rank = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
        add[order[rank >= ADD_PER_ROW]] = False
    add_e.append(rows[r[add]])
    add_m.append(cols[c[add]])
    if bound is None:
        return
    # Pairs not near stay pruned on the float32 bound alone: best is their largest value.
    bound[rows] = np.maximum(bound[rows], np.floor(best) + base)
    rest = np.flatnonzero(~add & (points >= 0))  # scored exactly, stays pruned
    if rest.size:
        rr = r[rest]
        starts = np.flatnonzero(np.r_[True, rr[1:] != rr[:-1]])
        best = np.maximum.reduceat(points[rest] + pi_m[cols[c[rest]]], starts)
        bound[rows[rr[starts]]] = np.maximum(bound[rows[rr[starts]]], best)


def _finish(enc, every, cands, network, result, cert, active, capacity, floors, t, every_arc):
    """Return the flow -- over ``every`` kept arc with ``every_arc`` (arcs outside the last
    network carry 0), else over the last network's -- and the potentials that certified it:
    under them every eligible pair has a reduced cost >= 0 (``1000 - points + pi(e) -
    pi(m)``), kept or pruned."""
    if not every_arc or every.mentee.size == cands.mentee.size:
        return cands, network, result, cert.potential, t
    full = build_network(enc, every, active, capacity, floors)
    flow = np.zeros(full.tail.size, np.int64)
    flow[arc_positions(enc, every, cands.mentee, cands.mentor)] = result.flow[: network.n_pairs]
    flow[full.n_pairs :] = result.flow[network.n_pairs :]
    return every, full, FlowResult(flow=flow, maximum_flow=result.maximum_flow), cert.potential, t


def certified_flow(enc, scorer: FastScorer, cands: Candidates, active, capacity, floors, clock, t, every_arc=True):
    """The optimal flow over every eligible pair, solved on ``cands`` and the pairs the rounds
    add: (arcs, their network, its flow, the certifying potentials, t). ``every_arc``: the arcs
    are every one scored, the reserve's too (the quota's search re-prices them all); else the
    last network's, which carry the same flow (100k x 50k: a network of 7.5 M arcs, ~1 s, not
    built)."""
    bound = np.full(enc.n_mentees, -np.inf)  # valid once ref >= 0
    ref = np.full(enc.n_mentees, -1, np.int64)
    history: list[np.ndarray] = []  # mentor potentials of each re-check round
    # Every arc scored so far (returned). The flow network has those marked in_net; the others
    # (the reserve: far from tight, without flow) are checked one by one each round, which
    # costs a gather, and come back when they get near -- the dense screens skip them all.
    every = cands
    in_net = np.ones(every.mentee.size, bool)
    repaired = None  # (network, flow, its certificate) of this round when the last one's flow could be repaired
    prebuilt = None  # this round's network, built for a repair that gave up
    # Rounds before the first exact solve are priced by an auction (auction.py): their
    # potentials only choose the arcs to add. They go on while a round adds more violated arcs
    # than a repair would take; then the exact solve, on arcs the auction's prices already
    # found. Department floors need nodes of their own, which the auction does not model.
    auction = None
    if floors is None and MAX_APPROXIMATE_ROUNDS:
        demand = np.bincount(cands.mentor[active[cands.mentee]], minlength=enc.n_mentors)
        auction = AuctionState.empty(enc.n_mentees, capacity, demand)
    approximate = auction is not None
    cert = None  # the last round's certificate
    for round_no in range(MAX_ROUNDS):
        # Where this round's exact flow and its certificate's search start from, if any.
        last_potential = cert.potential if cert is not None else None
        if approximate:
            network = build_network(enc, cands, active, capacity, floors)
            result, cert = approximate_round(auction, enc, network, cands, active)
        elif repaired is None:
            network = prebuilt if prebuilt is not None else build_network(enc, cands, active, capacity, floors)
            prebuilt = None
            # After auction-priced rounds the auction is finished exact, once; OR-Tools when
            # that gives up or there is no auction.
            result = exact_round(auction, enc, network, cands, active) if auction is not None else None
            auction = None
            if result is None:
                result = solve_network(network, last_potential)
        else:
            network, result, cert = repaired
        t = clock.add("solve", t)
        log.debug("certify round %d: %s on %d arcs", round_no, "auction" if approximate else "flow", network.n_pairs)
        if not approximate and repaired is None:
            cert = Certificate.of(network, result, last_potential)
        e_nodes = network.mentee_node(np.arange(enc.n_mentees))
        m_nodes = network.mentor_node(np.arange(enc.n_mentors))
        # The reserve, arc by arc.
        reserve = np.flatnonzero(~in_net)
        r_reduced, r_crossing = _reduced_costs(every, reserve, e_nodes, m_nodes, cert)
        back = reserve[(r_reduced < NEAR_MARGIN) | r_crossing]
        back_violated = int(((r_reduced < 0) | r_crossing).sum())
        del r_reduced, r_crossing
        # Rows re-checked before are described by their bound, the others by their threshold.
        has_pruned = active & np.where(ref >= 0, np.isfinite(bound), cands.threshold >= 0)
        if not has_pruned.any() and back.size == 0:
            if approximate:
                approximate = False  # nothing pruned: the exact solve next
                continue
            return _finish(enc, every, cands, network, result, cert, active, capacity, floors, t, every_arc)
        pi_e = cert.potential[e_nodes].astype(np.float64)
        pi_m = cert.potential[m_nodes].astype(np.float64)
        in_s_e = cert.reachable[e_nodes]
        in_s_m = cert.reachable[m_nodes]

        # Reduced-cost screen.
        allowance = SCORE_SCALE + pi_e
        fresh = has_pruned & (ref < 0)
        worst = np.full(enc.n_mentees, -np.inf)
        if fresh.any():
            worst[fresh] = (cands.threshold + _slice_max(enc, pi_m))[fresh]
        partial = []  # (rows, shift): rows whose bound holds except against some mentors
        for r, old in enumerate(history):
            rows = np.flatnonzero(has_pruned & (ref == r))
            if rows.size == 0:
                continue
            # A pruned pair (i, j) of a row bounded under round r's potentials has points +
            # pi(j) <= bound(i) + shift(j), shift = pi - pi_r: against every mentor whose pi
            # moved by at most the row's room (allowance(i) - bound(i), negative too: when
            # every price rose, e.g. from an auction's potentials to an exact flow's) the bound
            # still certifies the pair. The others are screened pair by pair -- or the whole
            # row is scored afresh when they are many.
            shift = pi_m - old
            room = allowance[rows] - bound[rows]
            above, width = _count_above(enc, shift, rows, room)
            worst[rows[above > PARTIAL_SHARE * width]] = np.inf  # fails: re-scored
            listed = rows[(above > 0) & (above <= PARTIAL_SHARE * width)]
            if listed.size:
                partial.append((listed, shift))
        failed = has_pruned & (worst > allowance)
        recheck = np.flatnonzero(failed & ~fresh)
        fresh_fail = np.flatnonzero(failed & fresh)

        # Min-cut screen: rows in S against mentors outside S.
        outside = ~in_s_m & (enc.mentors.capacity > 0)
        not_rechecked = np.ones(enc.n_mentees, bool)  # fresh rows too: their screen skips cheap mentors
        not_rechecked[recheck] = False
        cut_rows = np.flatnonzero(has_pruned & in_s_e & not_rechecked)
        add_e, add_m = [], []
        if cut_rows.size and outside.any():
            # Blocks over the outside mentors only (100k x 50k: 99k rows against 1 mentor took
            # 0.56 s as 1200 full-width blocks, each intersected with the outside set).
            for rows, cols in level_blocks(enc, cut_rows, mentors=outside):
                raw = scorer.raw_block(rows, cols)
                r, c = np.nonzero(scorer.eligible(raw) & ~present_mask(every, rows, cols, enc.n_mentors))
                add_e.append(rows[r])
                add_m.append(cols[c])
        n_partial = 0
        for rows_p, shift in partial:
            # A pair (i, j) left out of row i's bound check needs a look only if the price of
            # j fell by more than the row's spare room: shift(j) > allowance(i) - bound(i).
            # Rows are taken in order of spare room, in chunks, so each chunk looks at few mentors.
            room = allowance[rows_p] - bound[rows_p]
            rows_p = rows_p[np.argsort(-room, kind="stable")]
            for rows, cols in level_blocks(enc, rows_p):
                for k in range(0, rows.size, PARTIAL_CHUNK):
                    chunk = rows[k : k + PARTIAL_CHUNK]
                    least = (allowance[chunk] - bound[chunk]).min()
                    sub = cols[shift[cols] > least]
                    if sub.size:
                        n_partial += chunk.size * sub.size
                        _screen(enc, scorer, every, cert, chunk, sub, e_nodes, m_nodes, add_e, add_m, None, pi_m)
        t = clock.add("pruning", t)
        log.debug(
            "certify round %d: rows %d, re-scored %d + fresh %d, partial pairs %d, cut rows %d x %d mentors, flow %d",
            round_no, int(has_pruned.sum()), recheck.size, fresh_fail.size, n_partial, cut_rows.size, int(outside.sum()), result.maximum_flow,
        )

        # Re-check of the rows that failed the reduced-cost screen; each gets a bound under
        # this round's potentials.
        rebased = bool(recheck.size or fresh_fail.size)  # some rows get a bound under this round's pi
        if rebased:
            history.append(pi_m.copy())
        if recheck.size:
            bound[recheck] = -np.inf
            ref[recheck] = len(history) - 1
            for rows, cols in level_blocks(enc, recheck):
                _screen(enc, scorer, every, cert, rows, cols, e_nodes, m_nodes, add_e, add_m, bound, pi_m)
        if fresh_fail.size:
            # A pruned pair of a fresh row i has points <= threshold(i), so against a mentor
            # with pi(m) <= allowance(i) - threshold(i) - NEAR_MARGIN it is not even near:
            # only the dearer-for-the-row mentors are scored (rows in chunks of similar room),
            # the others enter the bound as threshold + their largest pi(m).
            room = allowance[fresh_fail] - cands.threshold[fresh_fail]
            rows_f = fresh_fail[np.argsort(-room, kind="stable")]
            bound[rows_f] = -np.inf
            ref[rows_f] = len(history) - 1
            for rows, cols in level_blocks(enc, rows_f):
                pm_cols = pi_m[cols]
                for k in range(0, rows.size, PARTIAL_CHUNK):
                    chunk = rows[k : k + PARTIAL_CHUNK]
                    least = (allowance[chunk] - cands.threshold[chunk]).min() - NEAR_MARGIN - FRESH_ROOM
                    hot = pm_cols > least
                    if hot.any():
                        _screen(enc, scorer, every, cert, chunk, cols[hot], e_nodes, m_nodes, add_e, add_m, bound, pi_m)
                    if not hot.all():
                        cold = cands.threshold[chunk] + pm_cols[~hot].max()
                        bound[chunk] = np.maximum(bound[chunk], cold)
        t = clock.add("pruning", t)
        added_e = np.concatenate(add_e) if add_e else np.zeros(0, np.int64)
        added_m = np.concatenate(add_m) if add_m else np.zeros(0, np.int64)
        e_new, m_new = unique_pairs(added_e, added_m, enc.n_mentees)
        points = scorer.exact_points(e_new, m_new)
        keep = points >= 0
        violated = keep & cert.arc_improves(e_nodes[e_new], m_nodes[m_new], SCORE_SCALE - points)
        n_violated = int(violated.sum()) + back_violated
        log.debug(
            "certify round %d: adding %d arcs (%d violated), %d back from the reserve (%d violated)",
            round_no, int(keep.sum()), int(violated.sum()), back.size, back_violated,
        )
        if not approximate and n_violated == 0:
            # Every pruned pair passed this round's screen and the queued ones are merely near
            # (reduced cost >= 0, not crossing the cut): the potentials and the cut certify the
            # flow as it is, no need to add them and solve again.
            return _finish(enc, every, cands, network, result, cert, active, capacity, floors, t, every_arc)
        if approximate and not keep.any() and back.size == 0:
            approximate = False  # nothing to add: the exact solve next
            continue
        if not approximate:
            # What the repair needs of this round's flow (the old network itself is let go).
            used = np.flatnonzero(result.flow[: network.n_pairs] > 0)
            carried = cands.mentee[used], cands.mentor[used], result.flow[used], result.flow[network.n_pairs :]
        # Another auction round follows while this one found more violated arcs than a repair takes.
        priced_again = approximate and n_violated > REPAIR_LIMIT and round_no + 1 < MAX_APPROXIMATE_ROUNDS
        if approximate and (round_no == 0 or priced_again):
            # The first auction round (priced on the top-k candidates) sends the arcs far from
            # tight to the reserve, and so does each auction round that another one follows
            # (100k x 50k: the second thins what the first one's screen added, 1.6 M arcs of
            # which ~0.8 M end far from tight; the exact flow then runs on 2.3 M arcs instead of
            # 3.1 M, ~3 s sooner, and the peak is ~100 MB lower). The next rounds re-price the
            # thinner network and call back the arcs that matter. Thinning a later round right
            # before the exact solve cost coverage paths instead: at 100k x 50k the exact flow
            # then left 41k arcs across its cut, a second fresh solve; at 20k x 10k the exact
            # round and the quota's scaled flows took up to 1.5x longer.
            in_net = _drop_far_arcs(enc, every, in_net, network, result, cert, e_nodes, m_nodes, round_no, RESERVE_MARGIN)
        in_net[back] = True
        every, in_net = _merge_flagged(every, in_net, e_new[keep], m_new[keep], points[keep])
        cands = Candidates(every.mentee[in_net], every.mentor[in_net], every.points[in_net], every.threshold)
        repaired = None
        if approximate:
            approximate = priced_again
        elif n_violated <= REPAIR_LIMIT:
            # A few violated arcs: repair the optimum instead of a fresh solve
            # (matching/repair.py); dropped arcs carried no flow.
            network = build_network(enc, cands, active, capacity, floors)
            flow = np.zeros(network.tail.size, np.int64)
            flow[arc_positions(enc, cands, carried[0], carried[1])] = carried[2]
            flow[network.n_pairs :] = carried[3]
            # Filled: an arc across the old min cut may allow a larger flow (coverage_first).
            fixed = repair_flow(network, flow, cert.potential, fill=True)
            if fixed is not None:
                next_cert = Certificate.of(network, fixed, cert.potential)  # the next round's, built once
                if enc.problem.program.objective == "coverage_first" and next_cert.reachable[SINK]:
                    log.warning("certify: a filled repair left a path to the sink; solving afresh")
                    fixed = None
            log.debug("certify round %d: %d violated arcs %s", round_no, n_violated, "repaired" if fixed is not None else "need a fresh solve")
            if fixed is None:
                prebuilt = network
            else:
                repaired = network, fixed, next_cert
        t = clock.add("solve", t)
    raise RuntimeError("pruning certificate did not converge")


def _drop_far_arcs(enc, every, in_net, network, result, cert, e_nodes, m_nodes, round_no, margin) -> np.ndarray:
    """``in_net`` without the network's arcs far from tight (reduced cost >= margin), without
    flow and not crossing the cut, of mentees the flow matched: they move to the reserve. (An
    unmatched mentee keeps its arcs, so that the min cut is not made up by an isolated row.)
    A function of its own so that its arc-sized temporaries are freed before the next solve."""
    net = np.flatnonzero(in_net)  # the network's pair arcs, in order
    flow = result.flow[: network.n_pairs]
    matched = np.zeros(enc.n_mentees, bool)
    matched[every.mentee[net[flow > 0]]] = True
    reduced, crossing = _reduced_costs(every, net, e_nodes, m_nodes, cert)
    drop = (reduced >= margin) & (flow == 0) & matched[every.mentee[net]] & ~crossing
    log.debug("certify round %d: %d arcs leave the flow network", round_no, int(drop.sum()))
    in_net = in_net.copy()
    in_net[net[drop]] = False
    return in_net


def _reduced_costs(every: Candidates, arcs: np.ndarray, e_nodes, m_nodes, cert) -> tuple[np.ndarray, np.ndarray]:
    """Of the listed arcs of ``every``: the reduced cost ``1000 - points + pi(e) - pi(m)`` under
    the certificate's potentials, and whether the arc leaves the source side of its min cut.
    One compiled pass (100k x 50k: the reserve's 4 M arcs and the network's 6 M each round,
    ~1.1 s over the rounds as NumPy gathers)."""
    reduced = np.empty(arcs.size, np.int64)
    crossing = np.empty(arcs.size, np.bool_)
    _arc_reduced_costs(
        arcs, every.mentee, every.mentor, every.points, e_nodes, m_nodes, cert.potential, cert.reachable, reduced, crossing
    )
    return reduced, crossing


@njit(cache=True, nogil=True)
def _arc_reduced_costs(arcs, mentee, mentor, points, e_nodes, m_nodes, potential, reachable, reduced, crossing):
    for k in range(arcs.size):
        a = arcs[k]
        tail, head = e_nodes[mentee[a]], m_nodes[mentor[a]]
        reduced[k] = SCORE_SCALE - points[a] + potential[tail] - potential[head]
        crossing[k] = reachable[tail] and not reachable[head]


def _merge_flagged(every: Candidates, flags: np.ndarray, mentee, mentor, points) -> tuple[Candidates, np.ndarray]:
    """``every`` plus new arcs (sorted, none in it yet, flagged True), in order with the flags:
    a merge of two sorted lists, compiled (100k x 50k: 8 M arcs, a sort took 0.7 s, NumPy's
    masked interleave 0.7 s over the rounds)."""
    total = every.mentee.size + mentee.size
    out = (np.empty(total, np.int64), np.empty(total, np.int64), np.empty(total, np.int64), np.empty(total, np.bool_))
    _merge_sorted_arcs(
        every.mentee, every.mentor, every.points, flags, mentee.astype(np.int64, copy=False),
        mentor.astype(np.int64, copy=False), points.astype(np.int64, copy=False), *out,
    )
    return Candidates(out[0], out[1], out[2], every.threshold), out[3]


@njit(cache=True, nogil=True)
def _merge_sorted_arcs(old_e, old_m, old_p, old_flag, new_e, new_m, new_p, out_e, out_m, out_p, out_flag):
    """Merge two lists of arcs sorted by (mentee, mentor), with no arc in both; new arcs are
    flagged True."""
    i = 0
    j = 0
    for k in range(out_e.size):
        take_new = j < new_e.size and (
            i == old_e.size or new_e[j] < old_e[i] or (new_e[j] == old_e[i] and new_m[j] < old_m[i])
        )
        if take_new:
            out_e[k], out_m[k], out_p[k], out_flag[k] = new_e[j], new_m[j], new_p[j], True
            j += 1
        else:
            out_e[k], out_m[k], out_p[k], out_flag[k] = old_e[i], old_m[i], old_p[i], old_flag[i]
            i += 1


def screen_block(raw, kept: BlockArcs, to_points, col_value, row_limit, cut_row, cut_col):
    """``_screen``'s pass over a block: (rows, columns) of the pruned pairs (eligible, not
    ``kept`` arcs) that are near (value above the row's limit, or crossing the cut), in row
    order, and per row the largest value among its other pruned pairs (-inf if none). Parts of
    the rows run on every core (``parallel``)."""
    n_r, n_c = raw.shape
    best = np.empty(n_r, np.float64)

    def part(lo: int, hi: int):
        near_r = np.empty((hi - lo) * n_c, np.int32)
        near_c = np.empty((hi - lo) * n_c, np.int32)
        n_near = _screen_rows(
            raw[lo:hi], kept.start[lo:hi], kept.stop[lo:hi], kept.mentor, kept.col_of, np.float32(ELIGIBLE), to_points,
            col_value, row_limit[lo:hi], cut_row[lo:hi], cut_col, near_r, near_c, best[lo:hi],
        )
        return near_r[:n_near].astype(np.int64) + lo, near_c[:n_near].astype(np.int64)

    found = run_parts(part, parts(n_r, n_c))
    return np.concatenate([r for r, _ in found]), np.concatenate([c for _, c in found]), best


@njit(cache=True, nogil=True)
def _screen_rows(
    raw, arc_start, arc_stop, arc_mentor, col_of, floor, to_points, col_value, row_limit, cut_row, cut_col, near_r, near_c, best
):
    """``screen_block`` over some rows; returns how many pairs it listed as near. A row's kept
    arcs are marked in a column-sized scratch while the row is screened. The pair loop has one
    branch, on near pairs (few): about half the pairs are ineligible, in no pattern a branch
    predictor can learn, so eligibility and the row's best are selects (100k x 50k: 3.8 -> 2.3
    ns per pair on one core)."""
    n_r, n_c = raw.shape
    kept = np.zeros(n_c, np.bool_)
    n_near = 0
    for i in range(n_r):
        for k in range(arc_start[i], arc_stop[i]):
            j = col_of[arc_mentor[k]]
            if j >= 0:
                kept[j] = True
        top = -np.inf
        limit = row_limit[i]
        crossing_row = cut_row[i]
        for j in range(n_c):
            raw_value = raw[i, j]
            value = np.float64(raw_value) * to_points + col_value[j]
            pruned = (raw_value > floor) & (kept[j] == False)  # noqa: E712 (a select, not a branch)
            near = value > limit
            if crossing_row:
                near = near | cut_col[j]
            if pruned & near:
                near_r[n_near] = i
                near_c[n_near] = j
                n_near += 1
            top = max(top, value if pruned & (near == False) else -np.inf)  # noqa: E712
        best[i] = top
        for k in range(arc_start[i], arc_stop[i]):
            j = col_of[arc_mentor[k]]
            if j >= 0:
                kept[j] = False
    return n_near
