"""Score formulas: hand values, bounds, and the vectorised block equal to the scalar reference."""

import dataclasses

import numpy as np
import pytest

from matching import Program, Rules, Weights
from matching.check import PairJudge
from matching.encode import encode
from matching.fastscore import NARROW_SHARE, POINTS_MARGIN, FastScorer
from matching.rules import BlockEvaluator
from matching.scoring import combine, seniority_fit, to_points

from .factory import person, problem
from .test_optimality import synthetic_problem


@pytest.mark.parametrize("gap, expected", [(1, 0.4), (2, 0.8), (3, 0.8), (4, 0.4)])
def test_seniority_default_bounds(gap, expected):
    assert seniority_fit(5 + gap, 5, Program()) == pytest.approx(expected)


def test_seniority_reverse_and_peer():
    assert seniority_fit(3, 5, Program(relationship="reverse")) == pytest.approx(0.8)
    assert seniority_fit(5, 5, Program(relationship="peer")) == 1.0
    assert seniority_fit(6, 5, Program(relationship="peer")) == 0.5


def test_weights_are_normalised_and_ignore_drops_cross_functional():
    comps = {"goals": 1.0, "time_zone": 0.0, "seniority": 0.0, "cross_functional": 1.0}
    assert combine(Program(weights=Weights(2, 0, 0, 2)), comps, False) == pytest.approx(1.0)
    ignore = Program(weights=Weights(2, 0, 0, 2), rules=Rules(cross_functional="ignore"))
    assert combine(ignore, {**comps, "goals": 0.5}, False) == pytest.approx(0.5)
    assert combine(Program(weights=Weights(0, 0, 0, 0)), comps, True) == pytest.approx(0.1)
    assert combine(Program(), {k: 1.0 for k in comps}, True) == 1.0  # capped


@pytest.mark.parametrize("relationship", ["traditional", "reverse", "peer"])
def test_vectorised_scores_equal_scalar_reference(relationship):
    prob = synthetic_problem(150, 80, 11)
    prob = prob.__class__(**{**{f: getattr(prob, f) for f in prob.__dataclass_fields__},
                             "program": Program(relationship=relationship, rules=Rules(min_overlap_hours=0, level_gap_min=0,
                                                                                        level_gap_max=19, require_common_language=False,
                                                                                        exclude_management_chain=False))})
    enc = encode(prob)
    points, _ = BlockEvaluator(enc).evaluate(np.arange(enc.n_mentees), np.arange(enc.n_mentors))
    judge = PairJudge(prob)
    rng = np.random.default_rng(0)
    for e, m in zip(rng.integers(0, enc.n_mentees, 300), rng.integers(0, enc.n_mentors, 300)):
        if points[e, m] < 0:
            continue  # removed (self, or the other orientation of a peer pair)
        mentee, mentor = enc.mentees.ids[e], enc.mentors.ids[m]
        score, comps, _ = judge.score(mentor, mentee)
        assert all(0.0 <= v <= 1.0 for v in comps.values())
        assert points[e, m] == to_points(score)


@pytest.mark.parametrize("relationship", ["traditional", "reverse"])
def test_fast_path_equals_exact_evaluator(relationship):
    """The pruned path's float32 ranking keeps exactly the eligible pairs, and ``exact_points``
    gives every pair the exact evaluator's points (goal fit and preferred bonus included), over
    whole blocks; blocked, repeated and chain pairs are removed on both paths."""
    base = synthetic_problem(300, 150, 5)
    mentees = [e.person_id for e in base.enrollments if e.role == "mentee"]
    mentors = [e.person_id for e in base.enrollments if e.role == "mentor"]
    rng = np.random.default_rng(3)
    enrollments = tuple(
        dataclasses.replace(
            e,
            preferred=frozenset(rng.choice(mentors, 6).tolist()),
            blocked=frozenset(rng.choice(mentors, 3).tolist()),
        ) if e.role == "mentee" and k % 3 == 0 else e
        for k, e in enumerate(base.enrollments)
    )
    some_pairs = lambda count: tuple(zip(rng.choice(mentors, count).tolist(), rng.choice(mentees, count).tolist()))
    prob = dataclasses.replace(
        base,
        program=Program(relationship=relationship, rules=Rules(min_overlap_hours=1)),
        enrollments=enrollments,
        blocks=some_pairs(200),
        past_pairs=frozenset(some_pairs(200)),
    )
    enc = encode(prob)
    scorer = FastScorer(enc)
    evaluator = BlockEvaluator(enc)
    rows, cols = np.arange(enc.n_mentees), np.arange(enc.n_mentors)
    compared = 0
    for level in np.unique(enc.mentees.level):
        block = rows[enc.mentees.level == level]
        exact, _ = evaluator.evaluate(block, cols)
        raw = scorer.raw_block(block, cols)
        assert np.array_equal(scorer.eligible(raw), exact >= 0)
        r, c = np.nonzero(exact >= 0)
        assert np.array_equal(scorer.exact_points(block[r], cols[c]), exact[r, c])
        # The float32 ranking score is the exact one before rounding, within the bounds' margin.
        assert np.all(np.abs(raw[r, c] * scorer.to_points - exact[r, c]) <= 0.5 + POINTS_MARGIN)
        assert np.all(scorer.points_upper_bound(raw[r, c]) >= exact[r, c])
        compared += r.size
    assert compared > 1000


def test_goal_fit_by_priority_and_proficiency():
    prob = problem(
        [person("m", level=8, skills={"a": 5, "b": 1}), person("e", level=5, goals={"a": 1, "b": 3, "c": 2})],
        {"m": "mentor", "e": "mentee"},
    )
    _, comps, _ = PairJudge(prob).score("m", "e")
    # (3*5 + 1*1 + 2*0) / (5 * (3 + 1 + 2)) = 16 / 30
    assert comps["goals"] == pytest.approx(16 / 30)
    assert to_points(0.4995) == 500 and to_points(0.4994) == 499


@pytest.mark.parametrize("relationship", ["traditional", "reverse"])
def test_solved_matches_carry_the_scalar_scores_and_components(relationship):
    """``solve`` scores its pairs with the vectorised formulas (``FastScorer.scored``): every
    match has exactly the score, components, hours and reasons the scalar reference gives,
    preferred pairs included."""
    from matching import solve
    from matching.explain import PairExplainer

    base = synthetic_problem(300, 150, 8)
    mentors = [e.person_id for e in base.enrollments if e.role == "mentor"]
    rng = np.random.default_rng(1)
    enrollments = tuple(
        dataclasses.replace(e, preferred=frozenset(rng.choice(mentors, 20).tolist()))
        if e.role == "mentee" and k % 2 == 0 else e
        for k, e in enumerate(base.enrollments)
    )
    prob = dataclasses.replace(base, program=Program(relationship=relationship), enrollments=enrollments)
    solution = solve(prob)
    scalar = PairExplainer(prob)
    assert any("requested by" in " ".join(m.reasons) for m in solution.matches)
    for match in solution.matches:
        assert match == scalar.match(match.mentor_id, match.mentee_id)


def test_raw_block_is_the_same_over_any_columns():
    """A block's raw scores do not depend on which other columns it has: level slices (whose
    goal fit visits only the slice's stretch of each skill's mentors) and scattered subsets
    give exactly the scores of the full row, picks narrow enough for a skill index of their
    own (under 1/``NARROW_SHARE`` of their stretch) too."""
    from matching.candidates import level_blocks, mentor_columns

    prob = synthetic_problem(400, 200, 9)
    enc = encode(prob)
    scorer = FastScorer(enc)
    everyone = np.arange(enc.n_mentors)
    rng = np.random.default_rng(2)
    in_level_order, _ = mentor_columns(enc)
    position = np.zeros(enc.n_mentors, np.int64)
    position[in_level_order] = np.arange(in_level_order.size)
    checked = narrow = 0
    for rows, cols in level_blocks(enc):
        full = scorer.raw_block(rows, everyone)
        assert np.array_equal(scorer.raw_block(rows, cols), full[:, cols])
        for share in (3, 10, 10, 16, 16, 4 * NARROW_SHARE):
            subset = np.sort(rng.choice(cols, max(1, cols.size // share), replace=False))
            assert np.array_equal(scorer.raw_block(rows, subset), full[:, subset])
            stretch = position[subset].max() + 1 - position[subset].min()
            narrow += subset.size * NARROW_SHARE < stretch
        checked += rows.size * cols.size
    assert checked > 10_000 and narrow >= 20
