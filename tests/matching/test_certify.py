"""The pruning certificate's potentials (the sink's, or next to the last round's): feasible, and
sound with tiny top_k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import bellman_ford

from matching import Problem, Program, Rules, check, solve
from matching.candidates import block_arcs, build_candidates_fast, default_top_k, level_blocks
from matching import flow
from matching.certify import screen_block
from matching.encode import encode
from matching.fastscore import FastScorer
from matching.flow import (
    SINK,
    Certificate,
    anchored_potentials,
    build_network,
    potentials,
    residual_arcs,
    sink_potentials,
    solve_network,
    stable_order,
)
from matching.synthetic import synthetic_organisation

from .factory import ROUND, recorded


def _problem(n_mentees, n_mentors, seed, objective="coverage_first", **rules) -> Problem:
    people, enrollments = synthetic_organisation(n_mentees, n_mentors, seed=seed)
    return Problem(
        program=Program(objective=objective, rules=Rules(**rules)), people=people, enrollments=enrollments, round_date=ROUND
    )


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize("seed", [0, 3])
def test_sink_potentials_are_feasible_and_price_spare_mentors_at_zero(objective, seed):
    prob = _problem(300, 140, seed, objective=objective)
    enc = encode(prob)
    cands = build_candidates_fast(enc, FastScorer(enc), top_k=3)
    active = np.ones(enc.n_mentees, bool)
    capacity = enc.mentors.capacity.copy()
    network = build_network(enc, cands, active, capacity, None)
    result = solve_network(network)
    tail, head, cost = residual_arcs(network, result.flow)
    pi = sink_potentials(network, result.flow, tail, head, cost)
    assert pi[SINK] == 0
    assert (cost + pi[tail] - pi[head] >= 0).all()  # a feasible potential: certifies optimality
    m_nodes = network.mentor_node(np.arange(enc.n_mentors))
    load = np.bincount(cands.mentor[result.flow[: network.n_pairs] > 0], minlength=enc.n_mentors)
    spare = (load < capacity) & (capacity > 0)
    assert (pi[m_nodes[spare]] == 0).all()  # mentors with room: price 0
    assert (pi[m_nodes] <= 0).all()  # no mentor has a negative price


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_mentees=st.integers(20, 160),
    ratio=st.sampled_from([0.3, 0.5, 0.8]),
    seed=st.integers(0, 10_000),
    top_k=st.integers(1, 3),
    objective=st.sampled_from(["coverage_first", "score_first"]),
    min_score=st.sampled_from([0.0, 0.45]),
)
def test_tiny_top_k_is_certified_to_the_unpruned_optimum(n_mentees, ratio, seed, top_k, objective, min_score):
    prob = _problem(n_mentees, max(2, int(n_mentees * ratio)), seed, objective=objective, min_score=min_score)
    pruned, full = solve(prob, top_k=top_k), solve(prob, top_k=None)
    assert check(prob, pruned) == []
    assert pruned.solver.status == "optimal"
    assert pruned.solver.objective == full.solver.objective
    assert pruned.stats["matched_mentees"] == full.stats["matched_mentees"]


def _bellman_ford_from_root(n, tail, head, cost, root_cost):
    """scipy's Bellman-Ford distances from a virtual root n with an arc of ``root_cost[v]`` to
    every node v (parallel arcs keep their cheapest cost)."""
    best = {}
    for u, v, c in zip(np.r_[tail, np.full(n, n)], np.r_[head, np.arange(n)], np.r_[cost, root_cost]):
        best[(u, v)] = min(best.get((u, v), c), c)
    rows, cols = zip(*best)
    weights = np.array(list(best.values()), float)
    # csgraph drops explicit zeros: a dyadic epsilon instead keeps every path sum exact in
    # float64 (1e-12 made rounding noise that scipy once reported as a negative cycle), and
    # paths have at most n + 1 arcs, so rounding the distances removes the epsilons.
    weights[weights == 0] = 2.0**-20
    graph = sp.csr_matrix((weights, (rows, cols)), shape=(n + 1, n + 1))
    return np.round(bellman_ford(graph, indices=n)[:n]).astype(np.int64)


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("noise", [0, 40])
def test_anchored_potentials_are_the_largest_feasible_ones_below_the_anchor(objective, seed, noise):
    """From an anchor off the flow's duals (the sink potentials of a smaller network's flow,
    plus noise): feasible, and equal to scipy's distances from a virtual root with an arc of
    cost anchor(v) to every node v -- the largest potential nowhere above the anchor -- but for
    mentors without flow, which go down to pi(sink); all shifted so that pi(sink) keeps the
    anchor's value."""
    prob = _problem(300, 140, seed, objective=objective)
    enc = encode(prob)
    scorer = FastScorer(enc)
    active = np.ones(enc.n_mentees, bool)
    capacity = enc.mentors.capacity.copy()
    # The anchor: the certificate's potentials on the top-2 arcs; the flow: the optimum on top-4.
    small = build_network(enc, build_candidates_fast(enc, scorer, top_k=2), active, capacity, None)
    small_result = solve_network(small)
    anchor = sink_potentials(small, small_result.flow, *residual_arcs(small, small_result.flow))
    anchor = anchor + np.random.default_rng(seed).integers(-noise, noise + 1, anchor.size)
    cands = build_candidates_fast(enc, scorer, top_k=4)
    network = build_network(enc, cands, active, capacity, None)
    result = solve_network(network)
    tail, head, cost = residual_arcs(network, result.flow)
    assert (cost + anchor[tail] - anchor[head] < 0).any()  # the anchor alone is not feasible

    pi = anchored_potentials(network, result.flow, tail, head, cost, anchor)
    assert (cost + pi[tail] - pi[head] >= 0).all()  # feasible: certifies optimality
    assert pi[SINK] == anchor[SINK]
    expected = _bellman_ford_from_root(network.n_nodes, tail, head, cost, anchor)
    assert (expected <= anchor).all()
    m_nodes = network.mentor_node(np.arange(enc.n_mentors))
    idle = m_nodes[(np.bincount(cands.mentor[result.flow[: network.n_pairs] > 0], minlength=enc.n_mentors) == 0) & (capacity > 0)]
    expected[idle] = np.minimum(expected[idle], expected[SINK])
    assert np.array_equal(pi, expected + anchor[SINK] - expected[SINK])
    # The certificate takes them when given the anchor, the sink potentials without one (or
    # with one for another network).
    assert np.array_equal(Certificate.of(network, result, anchor).potential, pi)
    sink = sink_potentials(network, result.flow, tail, head, cost)
    assert np.array_equal(Certificate.of(network, result).potential, sink)
    assert np.array_equal(Certificate.of(network, result, anchor[:-1]).potential, sink)
    assert not np.array_equal(pi, sink)


@pytest.mark.parametrize("floor", [None, 0.9])
@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
def test_exact_rounds_after_another_round_are_certified_next_to_its_potentials(monkeypatch, objective, floor):
    """Every exact round that another round came before (an auction round, or with department
    floors, which the auction does not model, an exact one) certifies its flow next to that
    round's potentials, with the same pi(sink); the first round with floors has none. The
    pruned solves reach the unpruned optimum."""
    from matching import certify

    calls = []

    class Recording(Certificate):
        @classmethod
        def of(cls, network, result, anchor=None):
            cert = Certificate.of(network, result, anchor)
            calls.append((anchor, cert.potential))
            return cert

    monkeypatch.setattr(certify, "Certificate", Recording)
    anchored = 0
    for seed in range(3):
        prob = _problem(260, 120, seed, objective=objective, min_department_match_rate=floor)
        solutions = []
        for top_k in (2, None):
            calls.clear()
            solutions.append(solve(prob, top_k=top_k))
            assert calls
            first = floor is not None  # no auction round with floors: the first exact one has no anchor
            assert [anchor is None for anchor, _ in calls] == [first] + [False] * (len(calls) - 1)
            for anchor, pi in calls[1 if first else 0 :]:
                assert pi[SINK] == anchor[SINK]  # no drift from round to round
                anchored += 1
        pruned, full = solutions
        assert pruned.solver.objective == full.solver.objective
        assert len(pruned.matches) == len(full.matches)
    assert anchored >= 6


def test_default_top_k_grows_with_the_organisation_past_20k_mentees():
    assert [default_top_k(n) for n in (10, 5_000, 20_000, 50_000, 100_000, 400_000)] == [16, 16, 16, 25, 36, 72]


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize("reserve_margin", [0, 5])
def test_arcs_sent_to_the_reserve_keep_the_optimum(monkeypatch, objective, reserve_margin):
    """Arcs the auction's rounds move out of the flow network (to the reserve, checked arc by
    arc) come back when needed: the optimum is the unpruned one."""
    import matching.certify as certify

    monkeypatch.setattr(certify, "RESERVE_MARGIN", reserve_margin)  # every slack arc without flow
    dropped = []
    real = certify._drop_far_arcs

    def counted(enc, every, in_net, *args):
        kept = real(enc, every, in_net, *args)
        dropped.append(int(in_net.sum() - kept.sum()))
        return kept

    monkeypatch.setattr(certify, "_drop_far_arcs", counted)
    prob = _problem(500, 240, 7, objective=objective)
    pruned, full = solve(prob, top_k=3), solve(prob, top_k=None)
    assert sum(dropped) > 0
    assert check(prob, pruned) == []
    assert pruned.solver.status == "optimal"
    assert pruned.solver.objective == full.solver.objective
    assert pruned.stats["matched_mentees"] == full.stats["matched_mentees"]


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
def test_the_flow_over_every_arc_or_the_last_network_s_has_the_same_pairs(objective):
    """Without the quota's search the certified flow comes over the last network's arcs only:
    the same pairs as over every scored arc (the reserve's carry no flow), on fewer arcs."""
    from matching.certify import certified_flow
    from matching.engine import _Clock

    enc = encode(_problem(500, 240, 7, objective=objective))
    scorer = FastScorer(enc)
    active = np.ones(enc.n_mentees, bool)

    def pairs_and_arcs(every_arc):
        cands = build_candidates_fast(enc, scorer, top_k=3)
        arcs, network, result, _, _ = certified_flow(
            enc, scorer, cands, active, enc.mentors.capacity.copy(), None, _Clock(), 0.0, every_arc=every_arc
        )
        chosen = np.flatnonzero(result.flow[: network.n_pairs] > 0)
        assert network.n_pairs == arcs.mentee.size
        return sorted(zip(arcs.mentee[chosen].tolist(), arcs.mentor[chosen].tolist())), arcs.mentee.size

    (every_pairs, every_arcs), (last_pairs, last_arcs) = pairs_and_arcs(True), pairs_and_arcs(False)
    assert last_pairs == every_pairs
    assert last_arcs < every_arcs  # the reserve was left out


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
def test_capped_additions_per_row_keep_the_optimum(monkeypatch, objective):
    import matching.certify as certify

    monkeypatch.setattr(certify, "ADD_PER_ROW", 1)  # one arc per row and round: many rounds
    prob = _problem(400, 180, 11, objective=objective, min_score=0.3)
    pruned, full = solve(prob, top_k=2), solve(prob, top_k=None)
    assert check(prob, pruned) == []
    assert pruned.solver.status == "optimal"
    assert pruned.solver.objective == full.solver.objective
    assert pruned.stats["matched_mentees"] == full.stats["matched_mentees"]


@pytest.mark.parametrize("floor", [None, 0.9])
@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
def test_repaired_rounds_reach_the_optimum_of_fresh_solves(monkeypatch, objective, floor):
    """Certificate rounds that repair the previous flow reach the optimum of rounds that always
    solve afresh (with department floors too: their parallel source arcs)."""
    from matching import certify

    repairs = recorded(monkeypatch, certify, "repair_flow")
    for seed in range(4):
        prob = _problem(260, 120, seed, objective=objective, min_department_match_rate=floor)
        repaired = solve(prob, top_k=2)
        with monkeypatch.context() as fresh_only:
            fresh_only.setattr(certify, "REPAIR_LIMIT", 0)
            fresh = solve(prob, top_k=2)
        assert check(prob, repaired) == []
        # Equal optima (the pairs may differ between alternative optima), same coverage.
        assert repaired.solver.status == fresh.solver.status == "optimal"
        assert repaired.solver.objective == fresh.solver.objective
        assert len(repaired.matches) == len(fresh.matches)
    assert sum(flow is not None for flow in repairs) >= 3  # the repair did run and succeed


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 30), st.integers(0, 2**32 - 1))
def test_label_correcting_potentials_equal_bellman_ford(n, seed):
    """``flow.potentials`` (the compiled label-correcting kernel) gives scipy's Bellman-Ford
    distances from a virtual root, on graphs with negative arcs but no negative cycle."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 4 * n))
    tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = tail != head
    tail, head = tail[keep], head[keep]
    p = rng.integers(-50, 50, n)
    cost = rng.integers(0, 20, tail.size) + p[tail] - p[head]  # reduced costs >= 0: no negative cycle
    ours = potentials(n, tail, head, cost)
    assert np.array_equal(ours, _bellman_ford_from_root(n, tail, head, cost, np.zeros(n, np.int64)))


def test_label_correcting_potentials_find_a_negative_cycle():
    with pytest.raises(RuntimeError, match="negative cycle"):
        potentials(3, np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([1, -3, 1]))


def _from_node_0(tail, head, cost, n):
    """(head, cost, start, dist, active) of shortest paths from node 0, arcs in CSR order."""
    order, start = stable_order(tail, n)
    dist = np.full(n, np.iinfo(np.int64).max, np.int64)
    dist[0] = 0
    return head[order], cost[order], start, dist, np.array([0])


def test_a_far_off_guess_hands_over_to_the_fifo_search_from_where_the_dijkstra_stopped(monkeypatch):
    """Node 1's guess makes it pop first at 5 though 0 -> 2 -> 1 costs 2: the Dijkstra would
    re-open it, and with no re-opening allowed it stops there. The FIFO search goes on from
    its labels, from the given active node and every node it lowered (node 0 alone has
    nothing left to improve), to the shortest distances."""
    monkeypatch.setattr(flow, "REOPEN_BUDGET", 0)
    handed_over = recorded(monkeypatch, flow, "_dijkstra_from")
    args = _from_node_0(np.array([0, 0, 2]), np.array([1, 2, 1]), np.array([5, 1, 1]), 3)
    assert flow._label_correct(*args, guess=np.array([0, 10, 0])).tolist() == [0, 2, 1]
    assert handed_over == [-1]
    with pytest.raises(RuntimeError, match="negative cycle"):  # found after the hand-over too
        flow._label_correct(*_from_node_0(np.array([0, 1, 2]), np.array([1, 2, 0]), np.array([1, -3, 1]), 3), guess=np.zeros(3, np.int64))
    # Every node active at 0 (a virtual root's distances): node 2's arc 2 -> 1 would re-open
    # node 1 and stops the Dijkstra before lowering it. No label was lowered, so only the
    # given active nodes tell the FIFO search where to go on.
    order, start = stable_order(np.array([1, 1, 2, 1]), 3)
    head, cost = np.array([1, 1, 1, 2])[order], np.array([2, 3, -1, 4])[order]
    found = flow._label_correct(head, cost, start, np.zeros(3, np.int64), np.arange(3), guess=np.array([6, -2, -4]))
    assert found.tolist() == [0, -1, 0]


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 30), st.integers(0, 2**32 - 1), st.integers(0, 300), st.sampled_from([0, 1]))
def test_shortest_paths_from_any_guess_are_the_fifo_search_s(n, seed, noise, budget):
    """On graphs with negative arcs but no negative cycle, from node 0 or from every node: a
    noisy guess, with the Dijkstra allowed no re-opening or one per node, gives the FIFO
    search's distances."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 4 * n))
    tail, head = rng.integers(0, n, m), rng.integers(0, n, m)
    p = rng.integers(-50, 50, n)
    cost = rng.integers(0, 20, m) + p[tail] - p[head]  # reduced costs >= 0 under p: no negative cycle
    head_s, cost_s, start, dist, active = _from_node_0(tail, head, cost, n)
    guess = -p + rng.integers(-noise, noise + 1, n)  # under -p no reduced cost is negative
    # From node 0 (as the sink potentials search), and from every node at 0 (a virtual root).
    for labels, starts in ((dist, active), (np.zeros(n, np.int64), np.arange(n))):
        expected = flow._label_correct(head_s, cost_s, start, labels.copy(), starts)
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(flow, "REOPEN_BUDGET", budget)
            assert np.array_equal(flow._label_correct(head_s, cost_s, start, labels.copy(), starts, guess), expected)


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize("share", [0.0, 1.0])
def test_rows_screened_only_against_moved_mentors_keep_the_optimum(monkeypatch, objective, share):
    """A bounded row is screened against the mentors whose potential moved past its room (also
    a negative room: prices that all rose) instead of afresh: with every such row screened that
    way (share 1) or every one afresh (share 0), the optimum is the unpruned one."""
    import matching.certify as certify

    monkeypatch.setattr(certify, "PARTIAL_SHARE", share)
    for seed in (1, 2):
        prob = _problem(400, 190, seed, objective=objective, min_score=0.2)
        pruned, full = solve(prob, top_k=2), solve(prob, top_k=None)
        assert check(prob, pruned) == []
        assert pruned.solver.status == "optimal"
        assert pruned.solver.objective == full.solver.objective
        assert pruned.stats["matched_mentees"] == full.stats["matched_mentees"]


@pytest.mark.parametrize("seed", [0, 3])
def test_screen_lists_the_near_pruned_pairs_and_bounds_the_rest(seed):
    """``screen_block`` against the same screen written with NumPy: over eligible pairs that
    are not kept arcs, the near ones (value above the row's limit, or crossing the cut) are
    listed in row order and the others' largest value per row is returned. Over whole level
    blocks and over scattered picks of their mentors (the partial screens), where most of a
    row's kept arcs lie outside the block."""
    enc = encode(_problem(300, 140, seed, min_score=0.2 if seed else 0.0))
    scorer = FastScorer(enc)
    cands = build_candidates_fast(enc, scorer, top_k=3)
    kept = cands.mentee * enc.n_mentors + cands.mentor
    rng = np.random.default_rng(seed)
    inside = outside = 0
    for rows, block_cols in level_blocks(enc):
        for cols in (block_cols, np.sort(rng.choice(block_cols, max(1, block_cols.size // 5), replace=False))):
            raw = scorer.raw_block(rows, cols)
            col_value = rng.normal(0, 50, cols.size)
            row_limit = rng.normal(600, 100, rows.size)
            cut_row, cut_col = rng.random(rows.size) < 0.2, rng.random(cols.size) < 0.2
            r, c, best = screen_block(
                raw, block_arcs(cands, rows, cols, enc.n_mentors), scorer.to_points, col_value, row_limit, cut_row, cut_col
            )
            present = np.isin(rows[:, None] * enc.n_mentors + cols[None, :], kept)
            pruned = scorer.eligible(raw) & ~present
            value = raw.astype(np.float64) * scorer.to_points + col_value
            near = pruned & ((value > row_limit[:, None]) | (cut_row[:, None] & cut_col[None, :]))
            expected_r, expected_c = np.nonzero(near)
            assert np.array_equal(r, expected_r) and np.array_equal(c, expected_c)
            rest = np.where(pruned & ~near, value, -np.inf)
            assert np.array_equal(best, rest.max(axis=1))
            inside += int(present.sum())
            outside += int(np.isin(kept // enc.n_mentors, rows).sum()) - int(present.sum())
    assert (inside > 0 and outside > 0) or cands.mentee.size == 0


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.integers(0, 20), max_size=300), spare=st.integers(0, 3))
def test_stable_order_is_a_stable_argsort_with_offsets(keys, spare):
    keys = np.array(keys, np.int64)
    n_keys = int(keys.max(initial=-1)) + 1 + spare
    order, start = stable_order(keys, n_keys)
    assert np.array_equal(order, np.argsort(keys, kind="stable"))
    assert np.array_equal(start, np.searchsorted(keys[order], np.arange(n_keys + 1)))


@pytest.mark.parametrize("quota", [None, 0.5])
def test_the_engine_asks_for_every_arc_only_for_the_quota(monkeypatch, quota):
    """The flow over every scored arc (a network as large as all of them: 100k x 50k, 7.5 M
    arcs and the run's peak memory) is built only when the quota's search needs it."""
    from matching import engine

    asked = []
    real = engine.certified_flow

    def recording(*args, every_arc=True, **kwargs):
        asked.append(every_arc)
        return real(*args, every_arc=every_arc, **kwargs)

    monkeypatch.setattr(engine, "certified_flow", recording)
    prob = _problem(200, 90, 1, min_cross_functional_share=quota)
    assert check(prob, solve(prob, top_k=2)) == []
    assert asked == [quota is not None]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 20), st.integers(0, 300))
def test_the_arc_list_helpers_equal_their_numpy_forms(seed, n_mentees, n_mentors, n_pairs):
    """``unique_pairs`` (a counting sort) is ``np.unique`` of the pair keys; ``_merge_flagged``
    (a merge) is a sort of both lists with the new arcs flagged; ``_reduced_costs`` is the
    reduced cost and the cut crossing of each listed arc."""
    from types import SimpleNamespace

    from matching.candidates import Candidates, unique_pairs
    from matching.certify import _merge_flagged, _reduced_costs

    rng = np.random.default_rng(seed)
    mentee = rng.integers(0, n_mentees, n_pairs)
    mentor = rng.integers(0, n_mentors, n_pairs)
    keys = np.unique(mentee * n_mentors + mentor)
    got_e, got_m = unique_pairs(mentee, mentor, n_mentees)
    assert np.array_equal(got_e, keys // n_mentors) and np.array_equal(got_m, keys % n_mentors)

    old = rng.random(keys.size) < 0.6
    every = Candidates(keys[old] // n_mentors, keys[old] % n_mentors, rng.integers(-5, 1000, int(old.sum())), np.zeros(n_mentees, np.int64))
    flags = rng.random(int(old.sum())) < 0.5
    new_points = rng.integers(-5, 1000, int((~old).sum()))
    merged, merged_flags = _merge_flagged(every, flags, keys[~old] // n_mentors, keys[~old] % n_mentors, new_points)
    assert np.array_equal(merged.mentee * n_mentors + merged.mentor, keys)
    points = np.empty(keys.size, np.int64)
    points[old], points[~old] = every.points, new_points
    assert np.array_equal(merged.points, points)
    expected_flags = np.ones(keys.size, bool)
    expected_flags[old] = flags
    assert np.array_equal(merged_flags, expected_flags)

    e_nodes, m_nodes = 2 + np.arange(n_mentees), 2 + n_mentees + np.arange(n_mentors)
    cert = SimpleNamespace(
        potential=rng.integers(-3000, 3000, 2 + n_mentees + n_mentors), reachable=rng.random(2 + n_mentees + n_mentors) < 0.5
    )
    arcs = np.flatnonzero(rng.random(merged.mentee.size) < 0.7)
    reduced, crossing = _reduced_costs(merged, arcs, e_nodes, m_nodes, cert)
    tail, head = e_nodes[merged.mentee[arcs]], m_nodes[merged.mentor[arcs]]
    assert np.array_equal(reduced, 1000 - merged.points[arcs] + cert.potential[tail] - cert.potential[head])
    assert np.array_equal(crossing, cert.reachable[tail] & ~cert.reachable[head])
