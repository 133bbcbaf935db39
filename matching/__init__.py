"""Kizuna's matching engine: pure, exact, explainable mentor-mentee pairing.

Public API (everything else is internal):

* ``solve(problem) -> Solution``: hard rules, scores, pruning with an optimality certificate,
  min-cost flow (CP-SAT for peer pools), explanations; the result is checked by ``check``.
* ``warm_up()``: compile the numba kernels ahead of the first round (a solver process calls it
  at start-up).
* ``check(problem, solution) -> list[Violation]``: independent per-pair re-derivation.
* ``pair_violations(problem, mentor_id, mentee_id) -> list[str]``: rule labels one pair breaks.
* ``overlap_windows(mentor, mentee, on)`` / ``overlap_hours(...)``: shared working time in UTC.
* ``synthetic_organisation(...)`` / ``person_to_api_payload(person)``: demo and benchmark data.

No I/O, no database, no HTTP: inputs are the frozen dataclasses of ``matching.problem``.
"""

from .check import check, pair_violations
from .engine import solve, warm_up
from .overlap import overlap_hours, overlap_windows
from .problem import (
    RULE_BLOCKED,
    RULE_CAPACITY,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_LABELS,
    RULE_LEVEL_GAP,
    RULE_MANAGEMENT_CHAIN,
    RULE_MIN_OVERLAP,
    RULE_MIN_SCORE,
    RULE_PIN,
    RULE_REPEAT_PAIR,
    RULE_SELF,
    Enrollment,
    Goal,
    Match,
    Person,
    Problem,
    Program,
    Rules,
    Skill,
    Solution,
    SolverInfo,
    Unmatched,
    Violation,
    Weights,
    Window,
)
from .synthetic import person_to_api_payload, synthetic_organisation

__all__ = [
    "solve",
    "warm_up",
    "check",
    "pair_violations",
    "overlap_windows",
    "overlap_hours",
    "synthetic_organisation",
    "person_to_api_payload",
    "Person",
    "Skill",
    "Goal",
    "Weights",
    "Rules",
    "Program",
    "Enrollment",
    "Problem",
    "Match",
    "Window",
    "Unmatched",
    "SolverInfo",
    "Solution",
    "Violation",
    "RULE_LABELS",
    "RULE_SELF",
    "RULE_MANAGEMENT_CHAIN",
    "RULE_LEVEL_GAP",
    "RULE_MIN_OVERLAP",
    "RULE_COMMON_LANGUAGE",
    "RULE_CROSS_FUNCTIONAL",
    "RULE_BLOCKED",
    "RULE_REPEAT_PAIR",
    "RULE_MIN_SCORE",
    "RULE_CAPACITY",
    "RULE_PIN",
]
