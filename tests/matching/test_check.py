"""check() catches every violation type in a doctored solution."""

from dataclasses import replace

import pytest

from matching import (
    RULE_BLOCKED,
    RULE_CAPACITY,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_LEVEL_GAP,
    RULE_MANAGEMENT_CHAIN,
    RULE_MIN_OVERLAP,
    RULE_MIN_SCORE,
    RULE_PIN,
    RULE_REPEAT_PAIR,
    RULE_SELF,
    Match,
    check,
    solve,
)

from .factory import person, problem


def fake(mentor, mentee):
    return Match(mentor_id=mentor, mentee_id=mentee, score=0.5, components={}, reasons=(), overlap_hours=0.0)


def doctored(prob, *pairs):
    sol = solve(prob)
    return replace(sol, matches=tuple(fake(m, e) for m, e in pairs))


BASE = [
    person("m", level=8, dept="Sales"),
    person("m2", level=8, dept="Sales"),
    person("e", level=5),
    person("e2", level=5),
    person("e3", level=5),
]
ROLES = {"m": "mentor", "m2": "mentor", "e": "mentee", "e2": "mentee", "e3": "mentee"}


def labels(prob, *pairs):
    return sorted({v.label for v in check(prob, doctored(prob, *pairs))})


def test_valid_solution_has_no_violation():
    prob = problem(BASE, ROLES)
    assert check(prob, solve(prob)) == []


@pytest.mark.parametrize(
    "people_patch, kw, expected",
    [
        ({"e": person("e", level=8)}, {}, RULE_LEVEL_GAP),
        ({"e": person("e", level=5, manager="m")}, {}, RULE_MANAGEMENT_CHAIN),
        ({"e": person("e", level=5, tz="Asia/Tokyo")}, {}, RULE_MIN_OVERLAP),
        ({"e": person("e", level=5, languages=("ja",))}, {}, RULE_COMMON_LANGUAGE),
        ({"e": person("e", level=5, dept="Sales")}, {"cross_functional": "require"}, RULE_CROSS_FUNCTIONAL),
        ({}, {"blocks": (("m", "e"),)}, RULE_BLOCKED),
        ({}, {"past_pairs": {("m", "e")}}, RULE_REPEAT_PAIR),
        ({}, {"min_score": 0.99}, RULE_MIN_SCORE),
    ],
)
def test_each_pair_rule(people_patch, kw, expected):
    people = [people_patch.get(p.id, p) for p in BASE]
    prob = problem(people, ROLES, **kw)
    assert labels(prob, ("m", "e")) == [expected]


def test_self_pair():
    prob = problem([person("x", level=5)], {"x": "both"}, level_gap_min=0)
    assert labels(prob, ("x", "x")) == [RULE_SELF]


def test_capacity_excess_and_double_mentee():
    prob = problem(BASE, ROLES, capacity={"m": 1})
    found = check(prob, doctored(prob, ("m", "e"), ("m", "e2")))
    assert [(v.label, v.mentor_id) for v in found] == [(RULE_CAPACITY, "m")]
    found = check(prob, doctored(prob, ("m", "e"), ("m2", "e")))
    assert [(v.label, v.mentee_id) for v in found] == [(RULE_CAPACITY, "e")]


def test_capacity_faults_are_listed_in_order_of_the_people_at_fault():
    prob = problem(BASE, ROLES, capacity={"m": 1, "m2": 1})
    pairs = [("m2", "e3"), ("m2", "e2"), ("m", "e2"), ("m", "e"), ("m2", "e3"), ("e3", "e")]
    found = [(v.label, v.mentor_id, v.mentee_id, v.detail) for v in check(prob, doctored(prob, *pairs))]
    assert found == [
        (RULE_LEVEL_GAP, "e3", "e", "pair breaks rule level_gap"),
        (RULE_CAPACITY, "m2", "e3", "pair listed 2 times"),
        (RULE_CAPACITY, "e3", None, "e3 has 1 mentees, capacity 0"),  # a mentee, not a mentor
        (RULE_CAPACITY, "m", None, "m has 2 mentees, capacity 1"),
        (RULE_CAPACITY, "m2", None, "m2 has 3 mentees, capacity 1"),
        (RULE_CAPACITY, None, "e", "e has 2 mentors"),
        (RULE_CAPACITY, None, "e2", "e2 has 2 mentors"),
        (RULE_CAPACITY, None, "e3", "e3 has 2 mentors"),
    ]


def test_role_not_enrolled():
    prob = problem(BASE, ROLES)
    found = check(prob, doctored(prob, ("e2", "e")))  # e2 is a mentee, not a mentor
    assert RULE_CAPACITY in {v.label for v in found}


def test_pin_not_honoured():
    prob = problem(BASE, ROLES, pins=(("m", "e"),))
    found = check(prob, doctored(prob, ("m2", "e")))
    assert [v.label for v in found] == [RULE_PIN]


def test_peer_person_in_two_pairs():
    people = [person(x, level=5, dept=x) for x in "abc"]
    prob = problem(people, {x: "both" for x in "abc"}, relationship="peer")
    found = check(prob, doctored(prob, ("a", "b"), ("c", "a")))
    assert [(v.label, v.mentee_id) for v in found] == [(RULE_CAPACITY, "a")]


def test_a_judge_warmed_by_explanations_reports_the_same_violations():
    # solve() hands its explanations' PairJudge (memoised scores and overlaps) to check().
    from matching.explain import PairExplainer

    prob = problem(BASE, ROLES, capacity={"m": 1}, min_score=0.99)
    bad = doctored(prob, ("m", "e"), ("m", "e2"), ("e3", "e"))
    explainer = PairExplainer(prob)
    for match in bad.matches:
        explainer.match(match.mentor_id, match.mentee_id)  # warms the judge's memo
    assert check(prob, bad, judge=explainer.judge) == check(prob, bad)
    assert {v.label for v in check(prob, bad, judge=explainer.judge)} >= {RULE_CAPACITY, RULE_MIN_SCORE}


def test_a_judge_of_another_problem_is_refused():
    from matching.check import PairJudge

    with pytest.raises(ValueError, match="another problem"):
        check(problem(BASE, ROLES), solve(problem(BASE, ROLES)), judge=PairJudge(problem(BASE, ROLES)))
