"""The auction that prices the certificate's first rounds: eps-optimal, warm-startable, and
the rounds it prices end at the same optimum as rounds priced by exact flows."""

from __future__ import annotations

import importlib
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching import Problem, Program, Rules, check, solve
from matching.auction import EPS, AuctionState, exact_round, run_auction
from matching.candidates import Candidates
from matching.flow import INT_LIMIT, build_network_arrays, residual_arcs, solve_network
from matching.synthetic import synthetic_organisation

from .factory import ROUND, recorded


def _random_arcs(rng, n_mentees, n_mentors, degree):
    mentee = np.repeat(np.arange(n_mentees), degree)
    mentor = rng.integers(0, n_mentors, mentee.size)
    keys = np.unique(mentee * n_mentors + mentor)
    return keys // n_mentors, keys % n_mentors, rng.integers(0, 1001, keys.size)


def _assert_eps_optimal(state, mentee, mentor, points, n_mentees, capacity, eps):
    price = state.prices()
    worth = points - price[mentor]
    usable = capacity[mentor] > 0
    best = np.full(n_mentees, 0)  # staying unmatched is worth 0
    np.maximum.at(best, mentee[usable], worth[usable])
    held = state.held
    load = np.bincount(held[held >= 0], minlength=capacity.size)
    assert (load <= capacity).all()
    for i in range(n_mentees):
        if held[i] < 0:
            assert best[i] <= 0, (i, best[i])  # nothing worth a bid is left
        else:
            arc = np.flatnonzero((mentee == i) & (mentor == held[i]))
            assert arc.size == 1  # held through one of its own arcs
            assert worth[arc[0]] >= best[i] - eps  # within eps of its best option
    # Holders are listed once each, in their mentor's slots.
    held_by_slot = state.holder[state.holder >= 0]
    assert np.array_equal(np.sort(held_by_slot), np.flatnonzero(held >= 0))


# Random arc sets: sizes, arcs per mentee, the largest capacity, the generator's seed.
ARC_SETS = dict(
    n_mentees=st.integers(1, 60),
    n_mentors=st.integers(1, 30),
    degree=st.integers(1, 6),
    max_capacity=st.integers(0, 4),
    seed=st.integers(0, 2**32 - 1),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**ARC_SETS)
def test_auction_is_eps_optimal_cold_and_warm(n_mentees, n_mentors, degree, max_capacity, seed):
    rng = np.random.default_rng(seed)
    mentee, mentor, points = _random_arcs(rng, n_mentees, n_mentors, degree)
    capacity = rng.integers(0, max_capacity + 1, n_mentors)
    state = AuctionState.empty(n_mentees, capacity, np.bincount(mentor, minlength=n_mentors))
    run_auction(state, mentee, mentor, points, n_mentees)
    _assert_eps_optimal(state, mentee, mentor, points, n_mentees, capacity, EPS[-1])
    # Warm start after arcs are added (as the certificate does): still eps-optimal.
    more_e, more_m, more_p = _random_arcs(rng, n_mentees, n_mentors, 2)
    keys = np.union1d(mentee * n_mentors + mentor, more_e * n_mentors + more_m)
    old = dict(zip((mentee * n_mentors + mentor).tolist(), points.tolist()))
    new = dict(zip((more_e * n_mentors + more_m).tolist(), more_p.tolist()))
    points2 = np.array([old.get(k, new.get(k)) for k in keys.tolist()])
    run_auction(state, keys // n_mentors, keys % n_mentors, points2, n_mentees)
    _assert_eps_optimal(state, keys // n_mentors, keys % n_mentors, points2, n_mentees, capacity, EPS[-1])


def test_slots_stay_within_the_arcs_whatever_the_capacities():
    """A mentor gets few more slots than mentees with an arc to it, so a huge capacity costs
    nothing; such a mentor is never full, so its price stays 0."""
    mentee = np.array([0, 1, 2, 2])
    mentor = np.array([0, 0, 0, 1])
    state = AuctionState.empty(3, np.array([10**18, 1]), np.bincount(mentor, minlength=2))
    assert state.slot_price.size == 3 + 1  # no more slots than mentees, one for capacity 1
    run_auction(state, mentee, mentor, np.array([500, 400, 300, 900]), 3)
    assert state.held.tolist() == [0, 0, 1]
    assert state.prices()[0] == 0  # room left: free


def test_auction_finds_the_optimum_of_a_small_assignment():
    # 3 mentees, 2 mentors of capacity 1: the best total (900 + 800) leaves mentee 1 out.
    mentee = np.array([0, 0, 1, 1, 2])
    mentor = np.array([0, 1, 0, 1, 1])
    points = np.array([900, 100, 500, 450, 800])
    state = AuctionState.empty(3, np.array([1, 1]), np.array([2, 3]))
    run_auction(state, mentee, mentor, points, 3)
    assert state.held.tolist() == [0, -1, 1]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(**ARC_SETS, coverage_first=st.booleans(), prioritised=st.booleans(), warm=st.booleans(), pinned=st.booleans())
def test_exact_round_is_the_optimum_of_a_fresh_solve(
    n_mentees, n_mentors, degree, max_capacity, coverage_first, prioritised, warm, pinned, seed
):
    """The auction finished exact and widened (``exact_round``) is an optimum: OR-Tools'
    maximum flow (``solve_max_flow_with_min_cost``) at its cost, from a cold or warm auction,
    with pinned (inactive) mentees too, and its potentials prove it. With priorities it leaves
    the round to OR-Tools (None) and does not touch the auction's state."""
    rng = np.random.default_rng(seed)
    mentee, mentor, points = _random_arcs(rng, n_mentees, n_mentors, degree)
    capacity = rng.integers(0, max_capacity + 1, n_mentors)
    priority = rng.integers(0, 3, n_mentees) if prioritised else None
    active = rng.random(n_mentees) < 0.8 if pinned else np.ones(n_mentees, bool)
    network = build_network_arrays(
        n_mentees=n_mentees, n_mentors=n_mentors, mentee=mentee, mentor=mentor, points=points,
        active_mentee=active, mentor_capacity=capacity, coverage_first=coverage_first, priority=priority,
    )
    state = AuctionState.empty(n_mentees, capacity, np.bincount(mentor[active[mentee]], minlength=n_mentors))
    if warm:  # priced before on half of the arcs, as the certificate's rounds do
        half = np.sort(rng.permutation(mentee.size)[: mentee.size // 2])
        half = half[active[mentee[half]]]
        run_auction(state, mentee[half], mentor[half], points[half], n_mentees)
    cands = Candidates(mentee, mentor, points, np.full(n_mentees, -1))
    prices = state.slot_price.copy()
    result = exact_round(state, SimpleNamespace(n_mentors=n_mentors), network, cands, active)
    if prioritised and coverage_first and priority[active].any():
        assert result is None
        assert np.array_equal(state.slot_price, prices)
        return
    fresh = solve_network(network)
    flow = result.flow
    assert ((flow >= 0) & (flow <= network.capacity)).all()
    net = np.bincount(network.tail, flow, network.n_nodes) - np.bincount(network.head, flow, network.n_nodes)
    assert (net[2:] == 0).all()
    assert result.maximum_flow == fresh.maximum_flow == net[0]
    assert int((flow * network.cost).sum()) == int((fresh.flow * network.cost).sum())
    cut = replace(network, capacity=np.minimum(network.capacity, network.flow_bound))
    tail, head, cost = residual_arcs(cut, flow)
    assert (cost + result.potential[tail] - result.potential[head] >= 0).all()


@pytest.mark.parametrize("huge", [2**31, 2**32, 2**32 + 1, 2**62])
@pytest.mark.parametrize("coverage_first", [True, False])
def test_exact_round_with_capacities_beyond_int32(huge, coverage_first):
    """A mentor's capacity may be any int64 (the repair works in int32: no arc carries more
    than the supply)."""
    mentee, mentor = np.array([0, 0, 1, 2, 2, 3]), np.array([0, 1, 0, 0, 1, 0])
    points, capacity = np.array([900, 500, 800, 700, 100, 0]), np.array([huge, 1])
    network = build_network_arrays(
        n_mentees=4, n_mentors=2, mentee=mentee, mentor=mentor, points=points, active_mentee=np.ones(4, bool),
        mentor_capacity=capacity, coverage_first=coverage_first,
    )
    state = AuctionState.empty(4, capacity, np.bincount(mentor, minlength=2))
    cands = Candidates(mentee, mentor, points, np.full(4, -1))
    result = exact_round(state, SimpleNamespace(n_mentors=2), network, cands, np.ones(4, bool))
    fresh = solve_network(network)
    assert result.maximum_flow == fresh.maximum_flow
    assert fresh.maximum_flow == 4 or not coverage_first
    assert int((result.flow * network.cost).sum()) == int((fresh.flow * network.cost).sum())


def test_exact_round_gives_up_on_values_too_wide_to_scale():
    """The exact round's last phases work in 1/scale points, scale a power of two above the
    number of mentees (here 8 -> 16); a network whose values, so scaled, could overflow int64
    (in a round: large priority costs; built here from one very negative point value, still
    valid for OR-Tools) is left to OR-Tools (None), and the auction's state is not touched."""
    n = 8
    mentee, mentor = np.arange(n), np.zeros(n, np.int64)
    points = np.full(n, 500)
    points[1] = -(2**56 + 2**54)
    network = build_network_arrays(
        n_mentees=n, n_mentors=1, mentee=mentee, mentor=mentor, points=points, active_mentee=np.ones(n, bool),
        mentor_capacity=np.array([1]), coverage_first=True,
    )
    largest = int(np.abs(network.cost).max())
    assert largest * (network.n_nodes + 1) * 4 < INT_LIMIT <= largest * 16 * 4
    state = AuctionState.empty(n, np.array([1]), np.array([n]))
    run_auction(state, mentee, mentor, np.full(n, 500), n)
    prices = state.slot_price.copy()
    cands = Candidates(mentee, mentor, points, np.full(n, -1))
    assert exact_round(state, SimpleNamespace(n_mentors=1), network, cands, np.ones(n, bool)) is None
    assert np.array_equal(state.slot_price, prices)
    assert solve_network(network).maximum_flow == 1
    # Without that value, the same round is exact.
    points[1] = 500
    network = build_network_arrays(
        n_mentees=n, n_mentors=1, mentee=mentee, mentor=mentor, points=points, active_mentee=np.ones(n, bool),
        mentor_capacity=np.array([1]), coverage_first=True,
    )
    cands = Candidates(mentee, mentor, points, np.full(n, -1))
    assert exact_round(state, SimpleNamespace(n_mentors=1), network, cands, np.ones(n, bool)).maximum_flow == 1


def _problem(n_mentees, n_mentors, seed, objective, **rules) -> Problem:
    people, enrollments = synthetic_organisation(n_mentees, n_mentors, seed=seed)
    return Problem(
        program=Program(objective=objective, rules=Rules(**rules)), people=people, enrollments=enrollments, round_date=ROUND
    )


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize("seed", [0, 5])
def test_auction_priced_rounds_reach_the_optimum_of_exact_rounds(monkeypatch, objective, seed):
    from matching import certify

    rounds = recorded(monkeypatch, certify, "approximate_round")
    exact_rounds = recorded(monkeypatch, certify, "exact_round")
    prob = _problem(600, 280, seed, objective, min_score=0.3 if seed else 0.0)
    priced = solve(prob, top_k=3)
    assert rounds, "the auction priced no round"
    assert [r is not None for r in exact_rounds] == [True], "the first exact flow was not the auction's, repaired"
    with monkeypatch.context() as exact_only:
        exact_only.setattr(certify, "MAX_APPROXIMATE_ROUNDS", 0)
        exact = solve(prob, top_k=3)
    unpruned = solve(prob, top_k=None)
    assert check(prob, priced) == []
    assert priced.solver.status == "optimal"
    assert priced.solver.objective == exact.solver.objective == unpruned.solver.objective
    assert priced.stats["matched_mentees"] == unpruned.stats["matched_mentees"]


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
@pytest.mark.parametrize(
    "limits",
    [
        {"repair.WORK_PER_ENTRY": 0, "repair.WIDEN_WORK_PER_ENTRY": 0},  # every repair gives up at its first search
        {"auction.INT_LIMIT": 0},  # values too wide to scale for the exact round: OR-Tools at once
    ],
)
def test_a_repair_that_gives_up_falls_back_to_or_tools(monkeypatch, objective, limits):
    from matching import certify

    prob = _problem(600, 280, 3, objective)
    expected = solve(prob, top_k=None)
    solved_afresh = recorded(monkeypatch, certify, "solve_network")
    exact_rounds = recorded(monkeypatch, certify, "exact_round")
    for name, value in limits.items():
        module, constant = name.split(".")
        monkeypatch.setattr(importlib.import_module(f"matching.{module}"), constant, value)
    fallback = solve(prob, top_k=3)
    assert exact_rounds == [None], "the exact round did not give up"
    assert solved_afresh, "OR-Tools never ran"
    assert fallback.solver.status == "optimal"
    assert fallback.solver.objective == expected.solver.objective
    assert fallback.stats["matched_mentees"] == expected.stats["matched_mentees"]


@pytest.mark.parametrize("objective", ["coverage_first", "score_first"])
def test_auction_rounds_thin_the_network_unless_the_exact_solve_comes_next(monkeypatch, objective):
    """Round 0 sends the arcs far from tight to the reserve, and so does every auction round
    that another auction round follows; the one right before the exact solve does not (at 100k
    x 50k that cost coverage paths and a second fresh solve). The optimum is the unpruned one."""
    from matching import certify

    prob = _problem(600, 280, 3, objective)
    expected = solve(prob, top_k=None)
    monkeypatch.setattr(certify, "REPAIR_LIMIT", 0)  # a round with any violated arc is priced again
    priced = recorded(monkeypatch, certify, "approximate_round")
    thinned: list[int] = []
    real = certify._drop_far_arcs

    def thinning(*args):
        thinned.append(args[-2])  # the round
        return real(*args)

    monkeypatch.setattr(certify, "_drop_far_arcs", thinning)
    solved = solve(prob, top_k=3)
    assert len(priced) >= 3
    assert thinned == list(range(len(priced) - 1))
    assert solved.solver.status == "optimal"
    assert solved.solver.objective == expected.solver.objective
    assert solved.stats["matched_mentees"] == expected.stats["matched_mentees"]
