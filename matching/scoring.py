"""Pair score: a weighted mean of four components, each in [0, 1].

Formulas (``w`` = program weights; ``cross_functional`` weight is 0 when rules say "ignore"):

* goals  = sum_g pw(g) * L_mentor(g) / 5  /  sum_g pw(g)   over the mentee's goals g, where
  pw = 3, 2, 1 for priority 1, 2, 3 and L_mentor(g) = the mentor's proficiency 1..5 in that
  skill (0 if absent). A goal listed twice counts once (at its most important priority), a
  skill listed twice counts once (at its best level). No goals -> 0. The mentor is whoever
  teaches, so reverse mentoring uses the same formula (the junior mentor's skills against the
  senior mentee's goals). Peer: the mean of both directions.
* time_zone = min(1, shared_hours / 4): four shared working hours on the round date is a full
  score (see ``overlap.py`` for how shared hours are computed).
* seniority: traditional gap = mentor.level - mentee.level, reverse gap = mentee.level -
  mentor.level, bounds [gmin, gmax] from the rules; ideal = (gmin + gmax) / 2,
  seniority = max(0, 1 - |gap - ideal| / ((gmax - gmin) / 2 + 1)). With the default 1..4:
  gap 1 -> 0.4, 2 -> 0.8, 3 -> 0.8, 4 -> 0.4. Peer: 1 - |diff| / 2 (same level 1.0, one apart 0.5).
* cross_functional = 1 if both departments are known and differ, else 0 (an unknown department
  is never counted as cross-functional; with cross_functional="require" such a pair is not
  allowed).

score = (w.goals*goals + w.time_zone*tz + w.seniority*seniority + w.cross_functional*cf) / sum(w)
(negative weights count as 0; all weights 0 -> score 0). A *preferred* pair (either side lists
the other in ``Enrollment.preferred``) gets ``+0.1``, capped at 1.

The solver works on integer scores: ``points = floor(score * 1000 + 0.5)``; ``Match.score`` is
``points / 1000`` so reported objectives, brute-force checks and the solver agree exactly.
``min_score`` keeps a pair only if ``points >= ceil(min_score * 1000)``.

This module has a plain scalar reference (``pair_components``), used for explanations and by
the checker, and the vectorised block form used to build candidates; tests hold them equal.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .problem import Person, Program

SCORE_SCALE = 1000
PREFERRED_BONUS = 0.1
TZ_FULL_HOURS = 4.0
COMPONENTS = ("goals", "time_zone", "seniority", "cross_functional")
GOAL_PRIORITY_WEIGHT = {1: 3, 2: 2, 3: 1}
MAX_PROFICIENCY = 5


def component_weights(program: Program) -> tuple[float, float, float, float]:
    w = program.weights
    cf = 0.0 if program.rules.cross_functional == "ignore" else max(0.0, float(w.cross_functional))
    return (max(0.0, float(w.goals)), max(0.0, float(w.time_zone)), max(0.0, float(w.seniority)), cf)


def min_score_points(program: Program) -> int:
    return math.ceil(program.rules.min_score * SCORE_SCALE - 1e-9)


def to_points(score: float) -> int:
    return int(math.floor(score * SCORE_SCALE + 0.5))


# --- scalar reference -----------------------------------------------------------------------


def goal_weights_of(goals: tuple) -> dict[str, int]:
    """Skill -> priority weight of a goal list (a goal listed twice keeps its best priority)."""
    best: dict[str, int] = {}
    for goal in goals:
        weight = GOAL_PRIORITY_WEIGHT.get(goal.priority, 1)
        if weight > best.get(goal.skill, 0):
            best[goal.skill] = weight
    return best


def proficiency_of(skills: tuple) -> dict[str, int]:
    """Skill -> proficiency 0..5 (a skill listed twice keeps its best level)."""
    best: dict[str, int] = {}
    for skill in skills:
        level = skill.level
        level = 0 if level < 0 else MAX_PROFICIENCY if level > MAX_PROFICIENCY else level
        if level >= best.get(skill.name, 0):
            best[skill.name] = level
    return best


def goal_fit_of(goal_weights: dict[str, int], proficiency: dict[str, int]) -> float:
    """sum(pw * proficiency) / (5 * sum(pw)) over the learner's goals (0 without goals)."""
    weight_sum = sum(goal_weights.values())
    if not weight_sum:
        return 0.0
    numerator = sum(weight * proficiency.get(name, 0) for name, weight in goal_weights.items())
    return numerator / (MAX_PROFICIENCY * weight_sum)


def seniority_fit(mentor_level: int, mentee_level: int, program: Program) -> float:
    if program.relationship == "peer":
        return max(0.0, 1.0 - abs(mentor_level - mentee_level) / 2.0)
    rules = program.rules
    gap = mentor_level - mentee_level if program.relationship == "traditional" else mentee_level - mentor_level
    ideal = (rules.level_gap_min + rules.level_gap_max) / 2.0
    half_width = (rules.level_gap_max - rules.level_gap_min) / 2.0
    return max(0.0, 1.0 - abs(gap - ideal) / (half_width + 1.0))


def time_zone_fit(hours: float) -> float:
    return min(1.0, hours / TZ_FULL_HOURS)


def is_cross_functional(mentor: Person, mentee: Person) -> bool:
    return bool(mentor.department) and bool(mentee.department) and mentor.department != mentee.department


def pair_components(
    program: Program, mentor: Person, mentee: Person, hours: float, fit: Callable[[Person, Person], float]
) -> dict[str, float]:
    """The four components; ``fit(learner, teacher)`` is the goal fit, ``goal_fit_of`` over the
    learner's goal weights and the teacher's proficiencies (``PairJudge.goal_fit`` memoises both)."""
    if program.relationship == "peer":
        goals = (fit(mentee, mentor) + fit(mentor, mentee)) / 2.0
    else:
        goals = fit(mentee, mentor)
    return {
        "goals": goals,
        "time_zone": time_zone_fit(hours),
        "seniority": seniority_fit(mentor.level, mentee.level, program),
        "cross_functional": 1.0 if is_cross_functional(mentor, mentee) else 0.0,
    }


def combine(program: Program, components: dict[str, float], preferred: bool) -> float:
    wg, wt, ws, wc = component_weights(program)
    total = wg + wt + ws + wc
    if total <= 0:
        base = 0.0
    else:
        base = (
            wg * components["goals"]
            + wt * components["time_zone"]
            + ws * components["seniority"]
            + wc * components["cross_functional"]
        ) / total
    return min(1.0, base + PREFERRED_BONUS) if preferred else base


# --- vectorised -----------------------------------------------------------------------------


def block_components(
    program: Program,
    goals: np.ndarray,
    overlap_seconds: np.ndarray,
    mentor_level: np.ndarray,
    mentee_level: np.ndarray,
    cross_functional: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four components for a block of pairs (goals, time_zone, seniority, cross_functional),
    by the scalar formulas in the same operation order, so each equals ``pair_components``'s."""
    tz = np.minimum(1.0, (overlap_seconds / 3600.0) / TZ_FULL_HOURS)
    if program.relationship == "peer":
        sen = np.maximum(0.0, 1.0 - np.abs(mentor_level - mentee_level) / 2.0)
    else:
        rules = program.rules
        gap = mentor_level - mentee_level if program.relationship == "traditional" else mentee_level - mentor_level
        ideal = (rules.level_gap_min + rules.level_gap_max) / 2.0
        half_width = (rules.level_gap_max - rules.level_gap_min) / 2.0
        sen = np.maximum(0.0, 1.0 - np.abs(gap - ideal) / (half_width + 1.0))
    return goals, tz, sen, cross_functional


def block_points(program: Program, components: tuple, preferred: np.ndarray | None) -> np.ndarray:
    """Integer points for a block of pairs from their ``block_components``: ``combine`` then
    ``to_points``, in the scalar formulas' operation order."""
    wg, wt, ws, wc = component_weights(program)
    total = wg + wt + ws + wc
    goals, tz, sen, cross_functional = components
    if total <= 0:
        base = np.zeros(goals.shape)
    else:
        base = (wg * goals + wt * tz + ws * sen + wc * cross_functional) / total
    if preferred is not None:
        base = np.where(preferred, np.minimum(1.0, base + PREFERRED_BONUS), base)
    return np.floor(base * SCORE_SCALE + 0.5).astype(np.int32)
