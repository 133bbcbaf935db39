"""Each hard rule, hand-checked on the smallest case, for each relationship type."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import (
    RULE_BLOCKED,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_LEVEL_GAP,
    RULE_MANAGEMENT_CHAIN,
    RULE_MIN_OVERLAP,
    RULE_MIN_SCORE,
    RULE_REPEAT_PAIR,
    RULE_SELF,
    Problem,
    Program,
    pair_violations,
    solve,
)
from matching.check import PairJudge

from .factory import ROUND, person, problem


def pair(mentor_kw=None, mentee_kw=None, extra=(), **kw):
    mentor = person("m", **({"level": 8, "dept": "Sales"} | (mentor_kw or {})))
    mentee = person("e", **({"level": 5} | (mentee_kw or {})))
    return problem([mentor, mentee, *extra], {"m": "mentor", "e": "mentee"}, **kw)


def test_clean_pair_has_no_violation_and_is_matched():
    prob = pair()
    assert pair_violations(prob, "m", "e") == []
    sol = solve(prob)
    assert [(x.mentor_id, x.mentee_id) for x in sol.matches] == [("m", "e")]


@pytest.mark.parametrize(
    "mentor_level, mentee_level, ok",
    [(6, 5, True), (9, 5, True), (5, 5, False), (10, 5, False), (4, 5, False)],
)
def test_level_gap_traditional(mentor_level, mentee_level, ok):
    prob = pair({"level": mentor_level}, {"level": mentee_level})
    assert (RULE_LEVEL_GAP not in pair_violations(prob, "m", "e")) is ok
    assert (len(solve(prob).matches) == 1) is ok


@pytest.mark.parametrize(
    "mentor_level, mentee_level, ok",
    [(3, 5, True), (1, 5, True), (5, 5, False), (6, 5, False), (1, 6, False)],
)
def test_level_gap_reverse_mentee_is_senior(mentor_level, mentee_level, ok):
    prob = pair({"level": mentor_level}, {"level": mentee_level}, relationship="reverse")
    assert (RULE_LEVEL_GAP not in pair_violations(prob, "m", "e")) is ok
    assert (len(solve(prob).matches) == 1) is ok


@pytest.mark.parametrize("a, b, ok", [(5, 5, True), (5, 6, True), (6, 5, True), (5, 7, False)])
def test_level_gap_peer_within_one(a, b, ok):
    prob = problem(
        [person("a", level=a, dept="HR"), person("b", level=b)], {"a": "both", "b": "both"}, relationship="peer"
    )
    assert (RULE_LEVEL_GAP not in pair_violations(prob, "a", "b")) is ok
    assert (len(solve(prob).matches) == 1) is ok


def test_custom_gap_bounds():
    prob = pair({"level": 7}, {"level": 5}, level_gap_min=3, level_gap_max=6)
    assert pair_violations(prob, "m", "e") == [RULE_LEVEL_GAP]


def test_self_pair_for_both_role():
    solo = person("x", level=5)
    prob = problem([solo], {"x": "both"}, level_gap_min=0)
    assert RULE_SELF in pair_violations(prob, "x", "x")
    assert solve(prob).matches == ()


def test_management_chain_both_directions_whole_chain():
    # e -> boss -> m : the mentor is the mentee's skip-level manager.
    prob = pair(mentee_kw={"manager": "boss"}, extra=[person("boss", level=7, manager="m")])
    assert pair_violations(prob, "m", "e") == [RULE_MANAGEMENT_CHAIN]
    assert solve(prob).matches == ()
    # reverse mentoring: the senior mentee manages the junior mentor through a chain
    prob = pair({"level": 3, "manager": "mid"}, {"level": 5}, relationship="reverse",
                extra=[person("mid", level=4, manager="e")])
    assert pair_violations(prob, "m", "e") == [RULE_MANAGEMENT_CHAIN]


def test_management_chain_survives_cycles_and_dangling_ids():
    cyc = [person("a1", level=9, manager="a2"), person("a2", level=9, manager="a1")]
    prob = pair(mentee_kw={"manager": "a1"}, mentor_kw={"manager": "ghost"}, extra=cyc)
    assert pair_violations(prob, "m", "e") == []
    assert len(solve(prob).matches) == 1
    # a cycle that contains the mentor
    cyc = [person("c1", level=9, manager="m")]
    prob = pair(mentee_kw={"manager": "c1"}, mentor_kw={"manager": "c1"}, extra=cyc)
    assert pair_violations(prob, "m", "e") == [RULE_MANAGEMENT_CHAIN]
    assert solve(prob).matches == ()


def test_management_chain_rule_can_be_switched_off():
    prob = pair(mentee_kw={"manager": "m"}, exclude_management_chain=False)
    assert pair_violations(prob, "m", "e") == []


def test_min_overlap():
    # Singapore 09-17 (01-09 UTC) vs London 09-17 GMT (09-17 UTC): 0 h.
    prob = pair({"tz": "Asia/Singapore"})
    assert pair_violations(prob, "m", "e") == [RULE_MIN_OVERLAP]
    assert solve(prob).matches == ()
    # Berlin 09-17 CET (08-16 UTC) vs London: 7 h; a 7.5 h minimum removes it.
    assert pair_violations(pair({"tz": "Europe/Berlin"}, min_overlap_hours=7.0), "m", "e") == []
    assert pair_violations(pair({"tz": "Europe/Berlin"}, min_overlap_hours=7.5), "m", "e") == [RULE_MIN_OVERLAP]


def test_common_language():
    prob = pair({"languages": ("ja",)}, {"languages": ("en", "fr")})
    assert pair_violations(prob, "m", "e") == [RULE_COMMON_LANGUAGE]
    assert solve(prob).matches == ()
    assert pair_violations(pair({"languages": ("ja",)}, require_common_language=False), "m", "e") == []


def test_cross_functional_required():
    prob = pair({"dept": "Engineering"}, cross_functional="require")
    assert pair_violations(prob, "m", "e") == [RULE_CROSS_FUNCTIONAL]
    # unknown department is never assumed to be different
    assert pair_violations(pair({"dept": None}, cross_functional="require"), "m", "e") == [RULE_CROSS_FUNCTIONAL]
    assert pair_violations(pair(cross_functional="require"), "m", "e") == []


def test_blocked_by_either_side_or_admin():
    assert pair_violations(pair(blocked={"e": {"m"}}), "m", "e") == [RULE_BLOCKED]
    assert pair_violations(pair(blocked={"m": {"e"}}), "m", "e") == [RULE_BLOCKED]
    prob = pair(blocks=(("m", "e"),))
    assert pair_violations(prob, "m", "e") == [RULE_BLOCKED]
    assert solve(prob).matches == ()


def test_repeat_pair():
    prob = pair(past_pairs={("m", "e")})
    assert pair_violations(prob, "m", "e") == [RULE_REPEAT_PAIR]
    assert solve(prob).matches == ()
    assert pair_violations(pair(past_pairs={("m", "e")}, avoid_repeat_pairs=False), "m", "e") == []
    # peer: either orientation of an earlier pair counts
    peer = problem([person("a"), person("b", dept="HR")], {"a": "both", "b": "both"},
                   relationship="peer", past_pairs={("b", "a")})
    assert RULE_REPEAT_PAIR in pair_violations(peer, "a", "b")
    assert solve(peer).matches == ()


def test_min_score():
    # score = (0.4*0 + 0.2*1 + 0.2*0.4 + 0.2*1) / 1 = 0.48 with a 1-level gap and no goals.
    prob = pair({"level": 6}, min_score=0.49)
    assert pair_violations(prob, "m", "e") == [RULE_MIN_SCORE]
    assert solve(prob).matches == ()
    prob = pair({"level": 6}, min_score=0.48)
    assert pair_violations(prob, "m", "e") == []
    assert solve(prob).matches[0].score == 0.48


def test_capacity_zero_takes_nobody():
    prob = pair(capacity={"m": 0})
    sol = solve(prob)
    assert sol.matches == ()
    mentor_entry = [u for u in sol.unmatched if u.person_id == "m"][0]
    assert mentor_entry.role == "mentor"


def test_several_rules_reported_together():
    prob = pair({"level": 5, "languages": ("ja",), "tz": "Asia/Tokyo"}, past_pairs={("m", "e")})
    assert set(pair_violations(prob, "m", "e")) == {RULE_LEVEL_GAP, RULE_COMMON_LANGUAGE, RULE_MIN_OVERLAP, RULE_REPEAT_PAIR}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 90)), min_size=1, max_size=90),
    st.integers(0, 89),
)
def test_manages_equals_membership_in_a_plain_walk_up(managers, chain_start):
    """``PairJudge.manages(boss, p)`` (a walk that keeps no set for the first steps) says
    whether boss is in the set a plain walk up from p collects: cycles through p, cycles
    further up (also beyond the walk's plain steps), self-managers and dangling ids (indexes
    past the list name nobody)."""
    people = {f"p{i}": person(f"p{i}", manager=None if m is None else f"p{m}") for i, m in enumerate(managers)}
    # A long chain above p{chain_start} ending in a cycle, to pass the plain steps.
    if chain_start < len(managers):
        for k in range(80):
            people[f"q{k}"] = person(f"q{k}", manager=f"q{k + 1}" if k < 79 else "q70")
        people[f"p{chain_start}"] = person(f"p{chain_start}", manager="q0")
    judge = PairJudge(Problem(program=Program(), people=people, enrollments=(), round_date=ROUND))

    def walk(pid):
        above, manager = set(), people[pid].manager_id
        while manager is not None and manager not in above and manager != pid:
            above.add(manager)
            manager = people[manager].manager_id if manager in people else None
        return above

    names = sorted(people) + ["p95", "nobody"]
    for pid in people:
        above = walk(pid)
        for boss in names:
            assert judge.manages(boss, pid) == (boss in above), (boss, pid)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 40)), min_size=2, max_size=40),
    st.lists(st.sampled_from(["mentor", "mentee", "both", None]), min_size=40, max_size=40),
    st.sampled_from([64, 2]),
)
def test_encoded_management_chain_pairs_equal_the_checkers_walk(managers, roles, plain_levels):
    """The encoder's chain walk (all chains a level at a time; past ``PLAIN_LEVELS`` the memoised
    walk) bans exactly the pairs the independent checker calls management_chain: cycles,
    self-managers, ids nobody has."""
    import numpy as np

    from matching import encode as encode_mod

    people = [person(f"p{i}", manager=None if m is None else f"p{m}") for i, m in enumerate(managers)]
    role_of = {f"p{i}": r for i, r in enumerate(roles[: len(managers)]) if r is not None}
    if not any(r in ("mentor", "both") for r in role_of.values()) or not any(r in ("mentee", "both") for r in role_of.values()):
        return
    prob = problem(people, role_of)
    saved, encode_mod.PLAIN_LEVELS = encode_mod.PLAIN_LEVELS, plain_levels
    try:
        enc = encode_mod.encode(prob)
    finally:
        encode_mod.PLAIN_LEVELS = saved
    banned = set(enc.banned[RULE_MANAGEMENT_CHAIN].tolist())
    judge = PairJudge(prob)
    expected = {
        e * enc.n_mentors + m
        for e, mentee in enumerate(enc.mentees.ids)
        for m, mentor in enumerate(enc.mentors.ids)
        if judge.manages(mentor, mentee) or judge.manages(mentee, mentor)
    }
    assert banned == expected
    assert np.all(np.diff(enc.banned[RULE_MANAGEMENT_CHAIN]) > 0)
