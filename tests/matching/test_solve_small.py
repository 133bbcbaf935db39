"""Hand-checked small instances: objectives, pins, priority, floors, peer, explanations."""

import pytest

from matching import Weights, check, solve

from .factory import brute_force, person, problem, solution_value

GOALS_ONLY = Weights(goals=1.0, time_zone=0.0, seniority=0.0, cross_functional=0.0)


def pairs(sol):
    return sorted((m.mentor_id, m.mentee_id) for m in sol.matches)


def two_by_two(**kw):
    # Goal fit only: A teaches python at 5 (e1 -> 1.0) and sql at 3 (e2 -> 0.6); B python at 1
    # (e1 -> 0.2). e2 blocks B. Coverage: A-e2 + B-e1 = 0.8 with 2 mentees; best score: A-e1 = 1.0.
    people = [
        person("A", level=8, skills={"python": 5, "sql": 3}),
        person("B", level=8, skills={"python": 1}),
        person("e1", level=5, goals={"python": 1}),
        person("e2", level=5, goals={"sql": 1}),
    ]
    roles = {"A": "mentor", "B": "mentor", "e1": "mentee", "e2": "mentee"}
    return problem(people, roles, weights=GOALS_ONLY, capacity={"A": 1, "B": 1}, blocked={"e2": {"B"}}, **kw)


def test_coverage_first_matches_more_mentees():
    sol = solve(two_by_two())
    assert pairs(sol) == [("A", "e2"), ("B", "e1")]
    assert sol.solver.objective == pytest.approx(0.8)
    assert sol.solver.status == "optimal" and sol.solver.bound == sol.solver.objective
    assert sol.stats["coverage"] == 1.0


def test_score_first_maximises_total_score():
    sol = solve(two_by_two(objective="score_first"))
    assert pairs(sol) == [("A", "e1")]
    assert sol.solver.objective == pytest.approx(1.0)
    unmatched = {u.person_id: u for u in sol.unmatched}
    assert "e2" in unmatched and "B" in unmatched


def test_min_score_applies_to_coverage_first_too():
    sol = solve(two_by_two(min_score=0.3))  # B-e1 (0.2) is no longer allowed
    assert pairs(sol) == [("A", "e1")]


def one_mentor_two_mentees(**kw):
    people = [
        person("A", level=8, skills={"python": 5, "sql": 3}),
        person("e1", level=5, goals={"python": 1}),
        person("e2", level=5, goals={"sql": 1}),
    ]
    return problem(people, {"A": "mentor", "e1": "mentee", "e2": "mentee"}, weights=GOALS_ONLY, capacity={"A": 1}, **kw)


def test_previously_unmatched_mentee_goes_first_among_equal_counts():
    assert pairs(solve(one_mentor_two_mentees())) == [("A", "e1")]
    prob = one_mentor_two_mentees(previously_unmatched={"e2": 1})
    assert pairs(solve(prob)) == [("A", "e2")]
    assert solution_value(prob, solve(prob)) == brute_force(prob)


def test_unmatched_mentee_reason_all_at_capacity():
    sol = solve(one_mentor_two_mentees())
    (entry,) = [u for u in sol.unmatched if u.person_id == "e2"]
    assert entry.role == "mentee"
    assert entry.reasons[0] == "all 1 eligible mentor is at capacity"


def test_unmatched_mentee_reason_counts_eligible_mentors_with_spare_capacity():
    # A 100 % cross-functional quota keeps e2 (same department as A) out, though A has room.
    people = [person("A", level=8, dept="Eng"), person("e1", level=5, dept="Sales"), person("e2", level=5, dept="Eng")]
    prob = problem(
        people, {"A": "mentor", "e1": "mentee", "e2": "mentee"}, objective="score_first", capacity={"A": 2},
        min_cross_functional_share=1.0,
    )
    sol = solve(prob)
    assert pairs(sol) == [("A", "e1")]
    (entry,) = [u for u in sol.unmatched if u.person_id == "e2"]
    assert entry.reasons[0] == (
        "1 of 1 eligible mentors have spare capacity, but pairing would break the cross-functional quota "
        "or lower the total score"
    )


def test_unmatched_mentee_reason_counts_rules():
    people = [
        person("A", level=8, languages=("ja",)),
        person("B", level=5),
        person("C", level=9, tz="Asia/Tokyo"),
        person("e", level=5),
    ]
    prob = problem(people, {"A": "mentor", "B": "mentor", "C": "mentor", "e": "mentee"})
    (entry,) = [u for u in solve(prob).unmatched if u.person_id == "e"]
    assert entry.reasons[0] == "no eligible mentor"
    assert dict(entry.rule_counts) == {"common_language": 1, "level_gap": 1, "min_overlap": 1}
    assert "1 mentor shares no language" in entry.reasons


def test_pins_are_honoured_and_use_capacity():
    prob = two_by_two(pins=(("A", "e1"),))
    sol = solve(prob)
    assert pairs(sol) == [("A", "e1")]  # A is full, B is blocked by e2
    assert [m.pinned for m in sol.matches] == [True]
    assert "pinned by a program admin" in sol.matches[0].reasons
    assert check(prob, sol) == []


def test_pin_that_breaks_a_rule_is_refused():
    with pytest.raises(ValueError, match=r"pin \(B, e2\).*blocked"):
        solve(two_by_two(pins=(("B", "e2"),)))


def test_pins_beyond_capacity_are_refused():
    prob = one_mentor_two_mentees(pins=(("A", "e1"), ("A", "e2")))
    with pytest.raises(ValueError, match="capacity"):
        solve(prob)


def test_department_floor():
    # One mentor (capacity 2); Sales mentees score higher. A 50 % floor forces one HR mentee in.
    people = [
        person("A", level=8, dept="Legal", skills={"python": 5, "sql": 2}),
        person("s1", level=5, dept="Sales", goals={"python": 1}),
        person("s2", level=5, dept="Sales", goals={"python": 1}),
        person("h1", level=5, dept="HR", goals={"sql": 1}),
        person("h2", level=5, dept="HR", goals={"sql": 2}),
    ]
    roles = {"A": "mentor", "s1": "mentee", "s2": "mentee", "h1": "mentee", "h2": "mentee"}
    plain = problem(people, roles, weights=GOALS_ONLY, capacity={"A": 2})
    assert pairs(solve(plain)) == [("A", "s1"), ("A", "s2")]
    fair = problem(people, roles, weights=GOALS_ONLY, capacity={"A": 2}, min_department_match_rate=0.5)
    assert pairs(solve(fair)) == [("A", "h1"), ("A", "s1")]


def test_preferred_lifts_score_by_a_tenth():
    base = solve(one_mentor_two_mentees())
    lifted = solve(one_mentor_two_mentees(preferred={"e2": {"A"}}, previously_unmatched={"e2": 1}))
    (m,) = lifted.matches
    assert m.score == pytest.approx(0.6 + 0.1)
    assert "requested by the mentee" in m.reasons
    assert base.matches[0].score == pytest.approx(1.0)


def test_traditional_explanations_cite_real_evidence():
    people = [
        person("m", level=8, dept="Sales", tz="Asia/Singapore", skills={"python": 4, "negotiation": 3, "sql": 2}),
        person("e", level=5, dept="Engineering", tz="America/Toronto", hours=("19:00", "03:00"),
               goals={"negotiation": 1, "python": 2, "golf": 1}),
    ]
    sol = solve(problem(people, {"m": "mentor", "e": "mentee"}))
    (match,) = sol.matches
    assert match.reasons == (
        "shares 2 of the mentee's goals: negotiation, python",
        "6.0 h of shared working hours (mentor 09:00–17:00 Asia/Singapore, mentee 19:00–03:00 America/Toronto)",
        "mentor is 3 levels senior",
        "cross-functional: Sales → Engineering",
        "common language: en",
    )
    # goals: (3*3 + 2*4 + 3*0) / (5 * 8) = 17/40; tz 1; seniority 0.8; cf 1
    assert match.components == {"goals": 0.425, "time_zone": 1.0, "seniority": 0.8, "cross_functional": 1.0}
    assert match.score == pytest.approx((0.4 * 0.425 + 0.2 + 0.2 * 0.8 + 0.2) / 1.0, abs=5e-4)
    assert match.overlap_hours == 6.0 and len(match.overlap_windows) == 1


def test_reverse_mentoring_junior_teaches():
    people = [
        person("jr", level=3, skills={"tiktok": 5}),
        person("exec", level=6, dept="Sales", goals={"tiktok": 1}),
    ]
    sol = solve(problem(people, {"jr": "mentor", "exec": "mentee"}, relationship="reverse"))
    (match,) = sol.matches
    assert match.components["goals"] == 1.0
    assert "reverse mentoring: mentee is 3 levels senior" in match.reasons


def test_peer_general_matching_maximises_pairs():
    # a, b, c all compatible (a triangle); d only with c. Max pairs = 2: (a,b) + (c,d).
    people = [person(x, level=5, dept=x) for x in "abc"] + [person("d", level=5, dept="d", languages=("fr",))]
    people[2] = person("c", level=5, dept="c", languages=("en", "fr"))
    roles = {x: "both" for x in "abcd"}
    sol = solve(problem(people, roles, relationship="peer"))
    assert {frozenset((m.mentor_id, m.mentee_id)) for m in sol.matches} == {frozenset("ab"), frozenset("cd")}
    assert sol.stats["matched_mentees"] == 4 and sol.stats["coverage"] == 1.0


def test_peer_orientation_mentor_covers_more_goals():
    people = [
        person("a", level=5, skills={"python": 5}, goals={"sales": 1}),
        person("b", level=5, dept="Sales", skills={"sales": 2}, goals={"python": 1}),
    ]
    (match,) = solve(problem(people, {"a": "both", "b": "both"}, relationship="peer")).matches
    # a covers b's goal at 5/5, b covers a's at 2/5: a is the mentor.
    assert (match.mentor_id, match.mentee_id) == ("a", "b")
    assert match.components["goals"] == pytest.approx((1.0 + 0.4) / 2)


def test_both_role_can_mentor_and_be_mentored():
    people = [person("top", level=9), person("mid", level=6, dept="Sales"), person("jr", level=3, dept="HR")]
    roles = {"top": "mentor", "mid": "both", "jr": "mentee"}
    sol = solve(problem(people, roles))
    assert pairs(sol) == [("mid", "jr"), ("top", "mid")]


def test_idle_mentor_is_listed_with_reason():
    people = [person("A", level=8), person("B", level=8, dept="Sales"), person("e", level=5)]
    sol = solve(problem(people, {"A": "mentor", "B": "mentor", "e": "mentee"}, capacity={"A": 1, "B": 1}))
    idle = [u for u in sol.unmatched if u.role == "mentor"]
    assert len(idle) == 1 and idle[0].reasons[0].startswith("all 1 eligible mentee is better served")


def test_time_limit_and_timings_present():
    sol = solve(two_by_two())
    assert set(sol.timings) == {"rules_scoring", "pruning", "solve", "explain"}
    assert set(sol.stats) == {"mentees", "mentors", "matched_mentees", "coverage", "mean_score",
                              "cross_functional_share", "mean_overlap_hours"}
