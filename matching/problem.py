"""Input and output model of the matcher: plain frozen dataclasses, no I/O.

This module is the contract between the service (``app/``) and the engine.
Fields may be added with defaults; nothing here is renamed without updating
both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Mapping

Relationship = Literal["traditional", "reverse", "peer"]
Objective = Literal["coverage_first", "score_first"]
CrossFunctional = Literal["prefer", "require", "ignore"]
Role = Literal["mentor", "mentee", "both"]

# Labels of the hard rules. They appear in explanations, in `check` results and in the API.
RULE_SELF = "self"
RULE_MANAGEMENT_CHAIN = "management_chain"
RULE_LEVEL_GAP = "level_gap"
RULE_MIN_OVERLAP = "min_overlap"
RULE_COMMON_LANGUAGE = "common_language"
RULE_CROSS_FUNCTIONAL = "cross_functional"
RULE_BLOCKED = "blocked"
RULE_REPEAT_PAIR = "repeat_pair"
RULE_MIN_SCORE = "min_score"
RULE_CAPACITY = "capacity"
# Not a pair rule: a pin (forced pair) that the solution does not contain. Used by `check` only.
RULE_PIN = "pin"
RULE_LABELS = (
    RULE_SELF,
    RULE_MANAGEMENT_CHAIN,
    RULE_LEVEL_GAP,
    RULE_MIN_OVERLAP,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_BLOCKED,
    RULE_REPEAT_PAIR,
    RULE_MIN_SCORE,
    RULE_CAPACITY,
)


@dataclass(frozen=True, slots=True)
class Skill:
    name: str  # normalised (lower case, single spaces)
    level: int  # proficiency 1..5


@dataclass(frozen=True, slots=True)
class Goal:
    skill: str  # normalised like Skill.name
    priority: int  # 1 (most important) .. 3


@dataclass(frozen=True, slots=True)
class Person:
    id: str  # the external id
    level: int  # 1..20
    time_zone: str  # IANA name
    # Local working window in minutes after midnight; end <= start means it crosses midnight.
    work_start_min: int = 9 * 60
    work_end_min: int = 17 * 60
    department: str | None = None
    division: str | None = None
    manager_id: str | None = None
    languages: tuple[str, ...] = ()
    skills: tuple[Skill, ...] = ()
    goals: tuple[Goal, ...] = ()


@dataclass(frozen=True, slots=True)
class Weights:
    goals: float = 0.4
    time_zone: float = 0.2
    seniority: float = 0.2
    cross_functional: float = 0.2


@dataclass(frozen=True, slots=True)
class Rules:
    level_gap_min: int = 1
    level_gap_max: int = 4
    min_overlap_hours: float = 2.0
    exclude_management_chain: bool = True
    cross_functional: CrossFunctional = "prefer"
    min_cross_functional_share: float | None = None  # 0..1 quota over the matched pairs
    require_common_language: bool = True
    avoid_repeat_pairs: bool = True
    min_score: float = 0.0
    default_mentor_capacity: int = 2
    # Fairness floor: each department's mentees are matched at least at this rate
    # (as far as its eligible candidates allow).
    min_department_match_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Program:
    relationship: Relationship = "traditional"
    objective: Objective = "coverage_first"
    weights: Weights = field(default_factory=Weights)
    rules: Rules = field(default_factory=Rules)


@dataclass(frozen=True, slots=True)
class Enrollment:
    person_id: str
    role: Role
    capacity: int | None = None  # mentor slots left this round; None = rules.default_mentor_capacity
    blocked: frozenset[str] = frozenset()  # people this participant refuses to be paired with
    preferred: frozenset[str] = frozenset()  # people this participant would like (lifts the score)


@dataclass(frozen=True, slots=True)
class Problem:
    program: Program
    # Everyone the management-chain rule may need to walk through, enrolled or not.
    people: Mapping[str, Person]
    enrollments: tuple[Enrollment, ...]
    round_date: date
    pins: tuple[tuple[str, str], ...] = ()  # (mentor_id, mentee_id) the admin forces
    blocks: tuple[tuple[str, str], ...] = ()  # (mentor_id, mentee_id) the admin forbids
    past_pairs: frozenset[tuple[str, str]] = frozenset()  # (mentor_id, mentee_id) of earlier rounds
    # mentee id -> how many earlier rounds left them unmatched (they weigh more under coverage_first)
    previously_unmatched: Mapping[str, int] = field(default_factory=dict)
    time_limit_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class Window:
    start_utc: datetime
    end_utc: datetime


@dataclass(frozen=True, slots=True)
class Match:
    mentor_id: str
    mentee_id: str
    score: float  # 0..1
    components: Mapping[str, float]  # goals, time_zone, seniority, cross_functional (each 0..1)
    reasons: tuple[str, ...]
    overlap_hours: float
    overlap_windows: tuple[Window, ...] = ()
    pinned: bool = False


@dataclass(frozen=True, slots=True)
class Unmatched:
    person_id: str
    role: Role
    reasons: tuple[str, ...]
    # rule label -> how many candidates that rule removed (first failing rule counts)
    rule_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SolverInfo:
    status: Literal["optimal", "feasible", "infeasible"]
    objective: float
    bound: float
    seconds: float
    gap: float = 0.0
    # Human-readable caveats, e.g. a cross-functional quota that cannot be met at full coverage.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Solution:
    matches: tuple[Match, ...]
    unmatched: tuple[Unmatched, ...]
    solver: SolverInfo
    # mentees, mentors, matched_mentees, coverage, mean_score, cross_functional_share, mean_overlap_hours
    stats: Mapping[str, float]
    timings: Mapping[str, float] = field(default_factory=dict)  # phase -> seconds


@dataclass(frozen=True, slots=True)
class Violation:
    label: str  # one of RULE_LABELS, or RULE_PIN
    mentor_id: str | None
    mentee_id: str | None
    detail: str
