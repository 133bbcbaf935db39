"""Small builders for hand-written matching problems (no fixtures, no DB), and a spy."""

from __future__ import annotations

import itertools
from datetime import date

from matching.check import PairJudge
from matching.problem import Enrollment, Goal, Person, Problem, Program, Rules, Skill, Weights
from matching.scoring import to_points

ROUND = date(2025, 3, 12)


def hhmm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def person(
    pid: str,
    level: int = 5,
    tz: str = "Europe/London",
    hours: tuple[str, str] = ("09:00", "17:00"),
    dept: str | None = "Engineering",
    manager: str | None = None,
    languages: tuple[str, ...] = ("en",),
    skills: dict[str, int] | None = None,
    goals: dict[str, int] | None = None,
) -> Person:
    return Person(
        id=pid,
        level=level,
        time_zone=tz,
        work_start_min=hhmm(hours[0]),
        work_end_min=hhmm(hours[1]),
        department=dept,
        manager_id=manager,
        languages=languages,
        skills=tuple(Skill(k, v) for k, v in (skills or {}).items()),
        goals=tuple(Goal(k, v) for k, v in (goals or {}).items()),
    )


def problem(
    people: list[Person],
    roles: dict[str, str],
    *,
    relationship: str = "traditional",
    objective: str = "coverage_first",
    weights: Weights | None = None,
    capacity: dict[str, int] | None = None,
    blocked: dict[str, set[str]] | None = None,
    preferred: dict[str, set[str]] | None = None,
    round_date: date = ROUND,
    **rules,
) -> Problem:
    capacity = capacity or {}
    enrollments = tuple(
        Enrollment(
            person_id=pid,
            role=role,
            capacity=capacity.get(pid),
            blocked=frozenset((blocked or {}).get(pid, ())),
            preferred=frozenset((preferred or {}).get(pid, ())),
        )
        for pid, role in roles.items()
    )
    extra = {k: rules.pop(k) for k in ("pins", "blocks", "past_pairs", "previously_unmatched") if k in rules}
    if "past_pairs" in extra:
        extra["past_pairs"] = frozenset(extra["past_pairs"])
    return Problem(
        program=Program(relationship=relationship, objective=objective, weights=weights or Weights(), rules=Rules(**rules)),
        people={p.id: p for p in people},
        enrollments=enrollments,
        round_date=round_date,
        **extra,
    )


def eligible_points(prob: Problem) -> dict[tuple[str, str], int]:
    """(mentor, mentee) -> points for every pair allowed by the hard rules (scalar reference)."""
    judge = PairJudge(prob)
    roles = {e.person_id: e.role for e in prob.enrollments}
    peer = prob.program.relationship == "peer"
    mentors = sorted(p for p, r in roles.items() if peer or r in ("mentor", "both"))
    mentees = sorted(p for p, r in roles.items() if peer or r in ("mentee", "both"))
    out = {}
    for m in mentors:
        if judge.capacity(m) <= 0:
            continue
        for e in mentees:
            if not judge.violations(m, e):
                out[(m, e)] = to_points(judge.score(m, e)[0])
    return out


def brute_force(prob: Problem) -> tuple[int, int, int]:
    """Best (matched, priority, points) by enumeration (bipartite programs, tiny instances).

    score_first returns (0, 0, points).
    """
    judge = PairJudge(prob)
    arcs = eligible_points(prob)
    mentees = sorted({e for _, e in arcs})
    options = {e: [None] + [m for (m, ee) in arcs if ee == e] for e in mentees}
    prio = {e: min(3, prob.previously_unmatched.get(e, 0)) for e in mentees}
    best = (0, 0, 0)
    for choice in itertools.product(*(options[e] for e in mentees)):
        load: dict[str, int] = {}
        ok = True
        for m in choice:
            if m is not None:
                load[m] = load.get(m, 0) + 1
                if load[m] > judge.capacity(m):
                    ok = False
                    break
        if not ok:
            continue
        pts = sum(arcs[(m, e)] for e, m in zip(mentees, choice) if m is not None)
        if prob.program.objective == "score_first":
            value = (0, 0, pts)
        else:
            matched = sum(m is not None for m in choice)
            value = (matched, sum(prio[e] for e, m in zip(mentees, choice) if m is not None), pts)
        best = max(best, value)
    return best


def solution_value(prob: Problem, sol) -> tuple[int, int, int]:
    pts = sum(round(m.score * 1000) for m in sol.matches)
    if prob.program.objective == "score_first":
        return (0, 0, pts)
    prio = sum(min(3, prob.previously_unmatched.get(m.mentee_id, 0)) for m in sol.matches)
    return (len(sol.matches), prio, pts)


def recorded(monkeypatch, module, name: str) -> list:
    """Patch ``module.name`` so that each call's return value is recorded, in call order;
    returns that list (tests count calls and check what came back)."""
    returned: list = []
    real = getattr(module, name)

    def recording(*args, **kwargs):
        result = real(*args, **kwargs)
        returned.append(result)
        return result

    monkeypatch.setattr(module, name, recording)
    return returned
