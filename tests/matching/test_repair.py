"""Incremental flow repair: after arcs are added, the repaired flow is as good as a fresh solve."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching import repair
from matching.flow import (
    SINK,
    build_network_arrays,
    reachable_from_source,
    residual_arcs,
    sink_potentials,
    solve_network,
    solver_costs,
)


def _network(n_e, n_m, mentee, mentor, points, capacity, coverage_first, priority):
    return build_network_arrays(
        n_mentees=n_e, n_mentors=n_m, mentee=mentee, mentor=mentor, points=points,
        active_mentee=np.ones(n_e, bool), mentor_capacity=capacity, coverage_first=coverage_first, priority=priority,
    )


@st.composite
def instances(draw):
    n_e, n_m = draw(st.integers(2, 40)), draw(st.integers(1, 20))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    density = draw(st.sampled_from([0.1, 0.3, 0.7]))
    pairs = np.argwhere(rng.random((n_e, n_m)) < density)
    if pairs.size == 0:
        pairs = np.array([[0, 0]])
    points = rng.integers(0, 1001, len(pairs))
    capacity = rng.integers(0, 4, n_m)
    kept = rng.random(len(pairs)) < draw(st.sampled_from([0.3, 0.6, 0.9]))
    priority = rng.integers(0, 3, n_e) if draw(st.booleans()) else None
    return n_e, n_m, pairs, points, capacity, kept, draw(st.booleans()), priority


def _with_added_arcs(instance):
    """(the network with every arc, the optimum without the added ones carried over to it,
    that optimum's potentials, its result)."""
    n_e, n_m, pairs, points, capacity, kept, coverage_first, priority = instance
    order = np.r_[np.flatnonzero(kept), np.flatnonzero(~kept)]  # old arcs first, then the added ones
    mentee, mentor, pts = pairs[order, 0], pairs[order, 1], points[order]
    n_old = int(kept.sum())
    old = _network(n_e, n_m, mentee[:n_old], mentor[:n_old], pts[:n_old], capacity, coverage_first, priority)
    old_result = solve_network(old)
    tail, head, cost = residual_arcs(old, old_result.flow)
    potential = sink_potentials(old, old_result.flow, tail, head, cost)
    new = _network(n_e, n_m, mentee, mentor, pts, capacity, coverage_first, priority)
    flow = np.zeros(new.tail.size, np.int64)
    flow[:n_old] = old_result.flow[:n_old]
    flow[new.n_pairs :] = old_result.flow[old.n_pairs :]
    return new, flow, potential, old_result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_repair_matches_a_fresh_solve(instance):
    *_, coverage_first, priority = instance
    new, flow, potential, old_result = _with_added_arcs(instance)
    repaired = repair.repair_flow(new, flow, potential)
    repaired = None if repaired is None else repaired.flow
    fresh = solve_network(new)
    if repaired is None:
        # It gives up only when the priority unit (the coverage order's weight) puts a deficit
        # beyond REACH; then the caller solves afresh.
        assert priority is not None and coverage_first
        return
    # a feasible flow of the same value
    assert ((repaired >= 0) & (repaired <= new.capacity)).all()
    net = np.bincount(new.tail, repaired, new.n_nodes) - np.bincount(new.head, repaired, new.n_nodes)
    assert net[0] == old_result.maximum_flow and net[SINK] == -old_result.maximum_flow
    assert (net[2:] == 0).all()
    r_tail, r_head, _ = residual_arcs(new, repaired)
    if fresh.maximum_flow == old_result.maximum_flow:
        assert int((repaired * new.cost).sum()) == int((fresh.flow * new.cost).sum())  # optimal
    else:
        assert reachable_from_source(new.n_nodes, r_tail, r_head)[SINK]  # the caller sees it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_filled_repair_is_the_largest_flow_of_least_cost(instance):
    """With ``fill``, the repair also sends more flow while a path is left: the maximum flow
    at a fresh solve's cost, when an added arc opens the old min cut too."""
    *_, coverage_first, priority = instance
    new, flow, potential, _ = _with_added_arcs(instance)
    repaired = repair.repair_flow(new, flow, potential, fill=True)
    repaired = None if repaired is None else repaired.flow
    if repaired is None:
        assert priority is not None and coverage_first  # as above: a deficit beyond REACH
        return
    fresh = solve_network(new)
    assert ((repaired >= 0) & (repaired <= new.capacity)).all()
    net = np.bincount(new.tail, repaired, new.n_nodes) - np.bincount(new.head, repaired, new.n_nodes)
    assert net[0] == fresh.maximum_flow and net[SINK] == -fresh.maximum_flow
    assert (net[2:] == 0).all()
    assert int((repaired * new.cost).sum()) == int((fresh.flow * new.cost).sum())
    r_tail, r_head, _ = residual_arcs(new, repaired)
    assert not coverage_first or not reachable_from_source(new.n_nodes, r_tail, r_head)[SINK]


def test_widening_gives_up_past_its_work_limit(monkeypatch):
    """Searches past ``WIDEN_WORK_PER_ENTRY`` scans make ``widen_flow`` return None (the
    caller solves afresh) instead of a wrong flow; a potential that does not prove the flow
    is an error."""
    # Mentor 0 (capacity 1 of 2 in the narrow network) holds mentee 0; mentee 1 waits for it.
    mentee, mentor, points = np.array([0, 1]), np.array([0, 0]), np.array([900, 800])
    network = _network(2, 1, mentee, mentor, points, np.array([2]), True, None)
    narrow = dataclasses.replace(network, capacity=np.where(network.head == SINK, 1, network.capacity))
    start = solve_network(narrow)
    potential = sink_potentials(narrow, start.flow, *residual_arcs(narrow, start.flow))
    assert repair.widen_flow(network, start.flow, potential).maximum_flow == 2
    monkeypatch.setattr(repair, "WIDEN_WORK_PER_ENTRY", 0)
    assert repair.widen_flow(network, start.flow, potential) is None
    # A potential that does not prove the flow (the matched pair costs 100 above it) is a
    # caller's bug: an error, not searches that assume it.
    with pytest.raises(ValueError, match="does not prove"):
        repair.widen_flow(network, start.flow, np.zeros(network.n_nodes, np.int64))


@pytest.mark.parametrize("limit", ["REACH", "WORK_PER_ENTRY"])
def test_repair_gives_up_beyond_its_limits(monkeypatch, limit):
    """A deficit farther than REACH, or searches past the work limit, make the repair return
    None instead of a wrong flow."""
    monkeypatch.setattr(repair, limit, 0)
    # mentee 0 holds mentor 0 (500 points), mentee 1 mentor 1 (900). The added arc (0, 1) at 1000
    # points has a reduced cost of -500 under the sink potentials, yet the old matching stays
    # optimal (1000 + 10 < 500 + 900): the saturated unit must go back at a distance of 500.
    mentee, mentor, pts = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]), np.array([500, 900, 10, 1000])
    capacity = np.array([1, 1])
    old = _network(2, 2, mentee[:3], mentor[:3], pts[:3], capacity, True, None)
    old_result = solve_network(old)
    tail, head, cost = residual_arcs(old, old_result.flow)
    potential = sink_potentials(old, old_result.flow, tail, head, cost)
    new = _network(2, 2, mentee, mentor, pts, capacity, True, None)
    flow = np.zeros(new.tail.size, np.int64)
    flow[:3] = old_result.flow[:3]
    flow[new.n_pairs :] = old_result.flow[old.n_pairs :]
    assert repair.repair_flow(new, flow, potential) is None
    monkeypatch.undo()
    repaired = repair.repair_flow(new, flow, potential).flow
    assert int((repaired * new.cost).sum()) == int((solve_network(new).flow * new.cost).sum())


@st.composite
def any_networks(draw):
    """Networks of every shape the engine builds: inactive (pinned) mentees, capacity 0 or
    beyond int32, priorities, department floors, either objective; empty ones too."""
    n_e, n_m = draw(st.integers(0, 12)), draw(st.integers(0, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pairs = np.argwhere(rng.random((n_e, n_m)) < draw(st.sampled_from([0.2, 0.5, 0.9])))
    active = rng.random(n_e) < 0.8
    capacity = rng.integers(0, 4, n_m)
    if n_m and draw(st.booleans()):
        capacity[0] = 2**40
    department = floors = None
    if n_e and draw(st.booleans()):
        department = rng.integers(-1, 2, n_e)
        floors = {int(d): int(rng.integers(0, (active & (department == d)).sum() + 1)) for d in np.unique(department)}
    return build_network_arrays(
        n_mentees=n_e, n_mentors=n_m, mentee=pairs[:, 0], mentor=pairs[:, 1], points=rng.integers(0, 1001, len(pairs)),
        active_mentee=active, mentor_capacity=capacity, coverage_first=draw(st.booleans()),
        priority=rng.integers(0, 4, n_e) if draw(st.booleans()) else None, department=department, floors=floors,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_networks(), st.booleans())
def test_a_filled_repair_from_nothing_is_a_fresh_solve(network, random_potentials):
    """From the empty flow and any potential, the repair and its fill are a whole solver:
    OR-Tools' maximum flow at its optimal cost, with potentials that prove it (no residual arc
    of negative reduced cost, capacities cut to the flow bound as no flow exceeds it)."""
    rng = np.random.default_rng(network.tail.size)
    potential = rng.integers(-2000, 2000, network.n_nodes) if random_potentials else np.zeros(network.n_nodes, np.int64)
    repaired = repair.repair_flow(network, np.zeros(network.tail.size, np.int64), potential, reach=repair.FILL_REACH, fill=True)
    fresh = solve_network(network)
    assert repaired is not None
    filled = repaired.flow
    assert ((filled >= 0) & (filled <= network.capacity)).all()
    net = np.bincount(network.tail, filled, network.n_nodes) - np.bincount(network.head, filled, network.n_nodes)
    assert net[0] == fresh.maximum_flow and (net[2:] == 0).all()
    assert int((filled * network.cost).sum()) == int((fresh.flow * network.cost).sum())
    cut = dataclasses.replace(network, capacity=np.minimum(network.capacity, network.flow_bound))
    tail, head, cost = residual_arcs(cut, filled)
    assert (cost + repaired.potential[tail] - repaired.potential[head] >= 0).all()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_networks(), st.integers(0, 2**32 - 1))
def test_widening_an_optimum_is_a_fresh_solve(network, seed):
    """From an optimum of the network with less capacity on some mentors (the slots an
    auction left free at a price) and its potentials, ``widen_flow`` gives OR-Tools' maximum
    flow at its optimal cost for the whole network, with potentials that prove it."""
    rng = np.random.default_rng(seed)
    to_sink = np.flatnonzero((network.head == SINK) & (network.tail != 0))
    narrow_capacity = network.capacity.copy()
    narrow_capacity[to_sink] = np.minimum(network.capacity[to_sink], rng.integers(0, 3, to_sink.size))
    narrow = dataclasses.replace(network, capacity=narrow_capacity)
    start = solve_network(narrow)
    potential = sink_potentials(narrow, start.flow, *residual_arcs(narrow, start.flow))
    widened = repair.widen_flow(network, start.flow, potential)
    assert widened is not None
    fresh = solve_network(network)
    flow = widened.flow
    assert ((flow >= 0) & (flow <= network.capacity)).all()
    net = np.bincount(network.tail, flow, network.n_nodes) - np.bincount(network.head, flow, network.n_nodes)
    assert net[0] == widened.maximum_flow == fresh.maximum_flow and (net[2:] == 0).all()
    assert int((flow * network.cost).sum()) == int((fresh.flow * network.cost).sum())
    cut = dataclasses.replace(network, capacity=np.minimum(network.capacity, network.flow_bound))
    tail, head, cost = residual_arcs(cut, flow)
    assert (cost + widened.potential[tail] - widened.potential[head] >= 0).all()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_networks(), st.sampled_from([2000, 2**40, 2**61]))
def test_solving_on_reduced_costs_gives_an_optimum_of_the_network(network, spread):
    """OR-Tools on costs reduced by any potential (the certificate's warm start) returns a
    largest flow of least cost for the network's own costs; potentials too wide for OR-Tools'
    cost range are left out rather than overflowing."""
    rng = np.random.default_rng(network.tail.size)
    potential = rng.integers(-spread, spread, network.n_nodes)
    if spread == 2**61 and network.tail.size:
        # Beyond OR-Tools' range whatever the draw: two random potentials can be close.
        potential[network.tail[0]], potential[network.head[0]] = spread, -spread
    reduced = network.cost + potential[network.tail] - potential[network.head]
    assert np.array_equal(solver_costs(network, potential), network.cost if spread == 2**61 else reduced)
    plain, warm = solve_network(network), solve_network(network, potential)
    assert ((warm.flow >= 0) & (warm.flow <= network.capacity)).all()
    net = np.bincount(network.tail, warm.flow, network.n_nodes) - np.bincount(network.head, warm.flow, network.n_nodes)
    assert warm.maximum_flow == plain.maximum_flow == net[0] and (net[2:] == 0).all()
    assert int((warm.flow * network.cost).sum()) == int((plain.flow * network.cost).sum())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(any_networks(), st.integers(-50, 50), st.integers(1, 400))
def test_sink_potentials_from_a_guess_are_the_same(monkeypatch, network, shift, noise):
    """Given a guessed potential (the auction rounds have a feasible one, later rounds the
    last round's), the sink potentials come from a Dijkstra that re-opens the nodes the guess
    got wrong, with the label-correcting search's values -- or from that search, going on from
    where the Dijkstra stopped, when the guess is far off."""
    from matching import flow as flow_module

    fresh = solve_network(network)
    tail, head, cost = residual_arcs(network, fresh.flow)
    expected = sink_potentials(network, fresh.flow, tail, head, cost)
    noisy = expected + np.random.default_rng(network.tail.size).integers(-noise, noise + 1, network.n_nodes)
    assert np.array_equal(sink_potentials(network, fresh.flow, tail, head, cost, guess=noisy), expected)
    with monkeypatch.context() as patched:
        patched.setattr(flow_module, "_dijkstra_from", None)  # a guess of another size is not used
        assert np.array_equal(sink_potentials(network, fresh.flow, tail, head, cost, guess=noisy[1:]), expected)
    with monkeypatch.context() as patched:
        patched.setattr(flow_module, "_relax_from", None)  # a feasible guess needs no fallback
        for guess in (expected, expected + shift):
            assert np.array_equal(sink_potentials(network, fresh.flow, tail, head, cost, guess=guess), expected)


def _random_arcs(seed, n_nodes, n_arcs):
    """Arcs with self-loops and parallel arcs, costs of either sign, flows from empty to full."""
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, n_nodes, n_arcs)
    head = rng.integers(0, n_nodes, n_arcs)
    cost = rng.integers(-5, 6, n_arcs)
    capacity = rng.integers(0, 3, n_arcs).astype(np.int32)
    flow = np.minimum(rng.integers(0, 3, n_arcs), capacity).astype(np.int32)
    network = dataclasses.make_dataclass("Arcs", ["n_nodes", "tail", "head", "cost"])(n_nodes, tail, head, cost)
    return rng, network, capacity, flow


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(0, 40))
def test_the_residual_graph_is_the_stable_order_of_tails_then_heads(seed, n_nodes, n_arcs):
    _, network, capacity, _ = _random_arcs(seed, n_nodes, n_arcs)
    tail, head, cost = network.tail, network.head, network.cost
    r_cost, arc_of, forward, indices, indptr, r_room = repair._residual_graph(network, capacity)
    order = np.argsort(np.concatenate([tail, head]), kind="stable")
    assert np.array_equal(forward, order < n_arcs)
    assert np.array_equal(arc_of, np.where(order < n_arcs, order, order - n_arcs))
    assert np.array_equal(indices, np.concatenate([head, tail])[order])
    assert np.array_equal(r_cost, np.concatenate([cost, -cost])[order])
    assert np.array_equal(r_room, np.concatenate([capacity, np.zeros(n_arcs, np.int32)])[order])
    assert np.array_equal(indptr, np.searchsorted(np.sort(np.concatenate([tail, head])), np.arange(n_nodes + 1)))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(0, 40))
def test_alive_nodes_are_those_with_a_tight_residual_path_to_a_deficit(seed, n_nodes, n_arcs):
    """``_mark_alive`` against a plain reachability: residual arcs (forward below capacity,
    backward with flow) of reduced cost 0, searched backwards from the deficits."""
    rng, network, capacity, flow = _random_arcs(seed, n_nodes, n_arcs)
    tail, head, cost = network.tail, network.head, network.cost
    pi = rng.integers(-2, 3, n_nodes)
    imbalance = rng.integers(-1, 2, n_nodes)
    r_cost, arc_of, forward, indices, indptr, _ = repair._residual_graph(network, capacity)
    alive = np.full(n_nodes, -1, np.int64)
    repair._mark_alive(r_cost, arc_of, forward, indices, indptr, capacity, flow, pi, imbalance, alive, 0, np.zeros(n_nodes, np.int64))
    # Tight residual arcs u -> v, then every node with a path to a deficit.
    tight = [(u, v) for u, v, c, room in zip(tail, head, cost, flow < capacity) if room and c + pi[u] - pi[v] == 0]
    tight += [(v, u) for u, v, c, used in zip(tail, head, cost, flow > 0) if used and -c + pi[v] - pi[u] == 0]
    expected = set(np.flatnonzero(imbalance > 0).tolist())
    grown = True
    while grown:
        grown = False
        for u, v in tight:
            if v in expected and u not in expected:
                expected.add(u)
                grown = True
    assert set(np.flatnonzero(alive == 0).tolist()) == expected
