"""Independent checker: re-derives every hard rule per pair in plain Python.

Nothing here uses the vectorised rule code, the encoder or the solver; it reads the ``Problem``
and the ``Solution`` directly, so a bug in the fast path shows up as a violation instead of
a silently wrong pairing. ``solve`` runs ``check`` on its own result and raises if anything
is reported. The score (needed for ``min_score``) comes from the scalar reference formulas in
``scoring.py``; the shared hours from the scalar ``overlap.overlap_windows``.
"""

from __future__ import annotations

import math
from collections import Counter

from .overlap import overlap_windows, windows_hours
from .problem import (
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
    Problem,
    Solution,
    Violation,
)
from .scoring import SCORE_SCALE, combine, goal_fit_of, goal_weights_of, pair_components, proficiency_of


# A manager chain longer than this is walked with a set of the ids seen (a cycle further up).
_PLAIN_STEPS = 64


class PairJudge:
    """Per-pair rule evaluation over one problem (lookups built once, results memoised:
    ``solve`` shares one judge between the explanations and ``check``)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.rules = problem.program.rules
        self.relationship = problem.program.relationship
        self.enrollments = {e.person_id: e for e in problem.enrollments}
        self.blocks = set(problem.blocks)
        # Each person's blocked and preferred ids, from either side's enrolment (both symmetric).
        self._blocked: dict[str, frozenset[str]] = {pid: e.blocked for pid, e in self.enrollments.items() if e.blocked}
        self._preferred: dict[str, frozenset[str]] = {pid: e.preferred for pid, e in self.enrollments.items() if e.preferred}
        self._min_points = math.ceil(self.rules.min_score * SCORE_SCALE - 1e-9)
        self._windows: dict[tuple, tuple] = {}
        self._goal_weights: dict[str, dict[str, int]] = {}
        self._proficiency: dict[str, dict[str, int]] = {}
        self._languages: dict[str, frozenset[str]] = {}
        self._depths: dict[str, int] = {}
        self._scores: dict[tuple[str, str], tuple[float, dict[str, float], float]] = {}

    def manages(self, boss_id: str, person_id: str) -> bool:
        """Whether ``boss_id`` is somewhere above the person in the manager chain. In a tree
        the boss can only be the person's ancestor ``depth(person) - depth(boss)`` levels up,
        so one short walk answers (and a boss as deep as the person is no boss). Chains that
        run into a cycle have no depth and are walked in full."""
        known = self._depths
        boss_depth, depth = known.get(boss_id), known.get(person_id)  # memoised: the usual case
        if boss_depth is None:
            boss_depth = self._depth(boss_id)
        if depth is None:
            depth = self._depth(person_id)
        if boss_depth < 0 or depth < 0:
            return self._walk_finds(boss_id, person_id)
        people = self.problem.people
        current = person_id
        for _ in range(depth - boss_depth):
            current = people[current].manager_id
        return depth > boss_depth and current == boss_id

    def _depth(self, person_id: str) -> int:
        """How many managers are above the person (an id nobody has counts, with none above
        it), or -1 when the chain runs into a cycle. Memoised: a walk stops at a known depth."""
        known = self._depths
        found = known.get(person_id)
        if found is not None:
            return found
        people = self.problem.people
        path: list[str] = []
        on_path: set[str] = set()
        current: str | None = person_id
        while current is not None and current not in known and current not in on_path:
            path.append(current)
            on_path.add(current)
            record = people.get(current)
            current = record.manager_id if record is not None else None
        if current is None:
            base = -1  # the last of the path is a top
        elif current in known and known[current] >= 0:
            base = known[current]
        else:
            base = -2  # round a cycle, here or further up: no depth
        for k, pid in enumerate(reversed(path), start=1):
            known[pid] = base + k if base >= -1 else -1
        return known[person_id]

    def _walk_finds(self, boss_id: str, person_id: str) -> bool:
        """``manages`` by a walk up the manager ids that stops at the top, at an id nobody has,
        or when it comes round a cycle (the person's own, or one further up: after a few dozen
        steps the walk keeps a set of the ids it has seen)."""
        people = self.problem.people
        record = people.get(person_id)
        current = record.manager_id if record is not None else None
        seen: set[str] | None = None
        steps = 0
        while current is not None and current != person_id:
            if current == boss_id:
                return True
            steps += 1
            if steps > _PLAIN_STEPS:
                if seen is None:
                    seen = set()
                elif current in seen:
                    return False
                seen.add(current)
            record = people.get(current)
            current = record.manager_id if record is not None else None
        return False

    def windows(self, mentor, mentee):
        """Shared windows, memoised per (time zone, working window) of both sides."""
        key = (mentor.time_zone, mentor.work_start_min, mentor.work_end_min,
               mentee.time_zone, mentee.work_start_min, mentee.work_end_min)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = overlap_windows(mentor, mentee, self.problem.round_date)
        return found

    def is_preferred(self, mentor_id: str, mentee_id: str) -> bool:
        preferred = self._preferred
        return mentee_id in preferred.get(mentor_id, ()) or mentor_id in preferred.get(mentee_id, ())

    def languages(self, person) -> frozenset[str]:
        found = self._languages.get(person.id)
        if found is None:
            found = self._languages[person.id] = frozenset(person.languages)
        return found

    def goal_fit(self, learner, teacher) -> float:
        """``scoring.goal_fit_of`` with each person's goal weights and proficiencies built once."""
        weights = self._goal_weights.get(learner.id)
        if weights is None:
            weights = self._goal_weights[learner.id] = goal_weights_of(learner.goals)
        proficiency = self._proficiency.get(teacher.id)
        if proficiency is None:
            proficiency = self._proficiency[teacher.id] = proficiency_of(teacher.skills)
        return goal_fit_of(weights, proficiency)

    def score(self, mentor_id: str, mentee_id: str) -> tuple[float, dict[str, float], float]:
        """(score, components, shared hours) by the scalar reference formulas.

        Memoised per (mentor, mentee): the components dict is shared, callers must not change it."""
        found = self._scores.get((mentor_id, mentee_id))
        if found is not None:
            return found
        mentor = self.problem.people[mentor_id]
        mentee = self.problem.people[mentee_id]
        windows = self.windows(mentor, mentee)
        hours = windows_hours(windows)
        components = pair_components(self.problem.program, mentor, mentee, hours, fit=self.goal_fit)
        found = combine(self.problem.program, components, self.is_preferred(mentor_id, mentee_id)), components, hours
        self._scores[(mentor_id, mentee_id)] = found
        return found

    def violations(self, mentor_id: str, mentee_id: str) -> list[str]:
        people = self.problem.people
        if mentor_id not in people or mentee_id not in people:
            raise ValueError(f"unknown person in pair ({mentor_id!r}, {mentee_id!r})")
        mentor, mentee = people[mentor_id], people[mentee_id]
        rules = self.rules
        found: list[str] = []
        if mentor_id == mentee_id:
            found.append(RULE_SELF)
        if rules.exclude_management_chain and (self.manages(mentor_id, mentee_id) or self.manages(mentee_id, mentor_id)):
            found.append(RULE_MANAGEMENT_CHAIN)
        if self.relationship == "peer":
            level_fine = abs(mentor.level - mentee.level) <= 1
        else:
            gap = mentor.level - mentee.level if self.relationship == "traditional" else mentee.level - mentor.level
            level_fine = rules.level_gap_min <= gap <= rules.level_gap_max
        if not level_fine:
            found.append(RULE_LEVEL_GAP)
        hours = windows_hours(self.windows(mentor, mentee))
        if hours * 3600.0 < rules.min_overlap_hours * 3600.0 - 1e-6:
            found.append(RULE_MIN_OVERLAP)
        if rules.require_common_language and self.languages(mentor).isdisjoint(self.languages(mentee)):
            found.append(RULE_COMMON_LANGUAGE)
        if rules.cross_functional == "require" and not (
            mentor.department and mentee.department and mentor.department != mentee.department
        ):
            found.append(RULE_CROSS_FUNCTIONAL)
        blocked = self._blocked
        if (
            (self.blocks and ((mentor_id, mentee_id) in self.blocks or (mentee_id, mentor_id) in self.blocks))
            or mentee_id in blocked.get(mentor_id, ())
            or mentor_id in blocked.get(mentee_id, ())
        ):
            found.append(RULE_BLOCKED)
        if rules.avoid_repeat_pairs and (
            (mentor_id, mentee_id) in self.problem.past_pairs
            or (self.relationship == "peer" and (mentee_id, mentor_id) in self.problem.past_pairs)
        ):
            found.append(RULE_REPEAT_PAIR)
        # Points are floor(score * 1000 + 0.5); a pair is kept if points >= ceil(min * 1000).
        # The tiny tolerance keeps the checker from disagreeing with the solver on float noise.
        # Scores are never negative: without a minimum there is nothing to compute.
        if self._min_points > 0:
            score = self.score(mentor_id, mentee_id)[0]
            if math.floor(score * SCORE_SCALE + 0.5 + 1e-7) < self._min_points:
                found.append(RULE_MIN_SCORE)
        return found

    def capacity(self, mentor_id: str) -> int:
        enrollment = self.enrollments.get(mentor_id)
        if enrollment is None:
            return 0
        if self.relationship == "peer":
            return 1
        if enrollment.role not in ("mentor", "both"):
            return 0
        cap = enrollment.capacity if enrollment.capacity is not None else self.rules.default_mentor_capacity
        return max(0, cap)

    def may_be_mentee(self, mentee_id: str) -> bool:
        enrollment = self.enrollments.get(mentee_id)
        if enrollment is None:
            return False
        return self.relationship == "peer" or enrollment.role in ("mentee", "both")


def pair_violations(problem: Problem, mentor_id: str, mentee_id: str) -> list[str]:
    """Labels of the hard rules one pair breaks (capacity is not a pair rule and is excluded)."""
    return PairJudge(problem).violations(mentor_id, mentee_id)


def check(problem: Problem, solution: Solution, judge: PairJudge | None = None) -> list[Violation]:
    """Every rule the solution breaks: pair rules, capacities, roles, and pins not honoured.

    ``judge``: a ``PairJudge`` of the same problem whose memoised scalar results to reuse."""
    if judge is None:
        judge = PairJudge(problem)
    elif judge.problem is not problem:
        raise ValueError("the judge belongs to another problem")
    found: list[Violation] = []
    for match in solution.matches:
        for label in judge.violations(match.mentor_id, match.mentee_id):
            found.append(Violation(label, match.mentor_id, match.mentee_id, f"pair breaks rule {label}"))

    as_mentor = Counter(m.mentor_id for m in solution.matches)
    as_mentee = Counter(m.mentee_id for m in solution.matches)
    pairs = Counter((m.mentor_id, m.mentee_id) for m in solution.matches)
    # Each list below is sorted once it is cut down to the people at fault (20k x 10k: sorting
    # every pair and person took ~30 ms of a check that finds nothing).
    for (mentor_id, mentee_id), count in sorted(item for item in pairs.items() if item[1] > 1):
        found.append(Violation(RULE_CAPACITY, mentor_id, mentee_id, f"pair listed {count} times"))
    if problem.program.relationship == "peer":
        # One pool: everyone is in at most one pair, whichever side they are on.
        appearances = as_mentor + as_mentee
        at_fault = (item for item in appearances.items() if item[1] > 1 or not judge.may_be_mentee(item[0]))
        for person_id, count in sorted(at_fault):
            if count > 1:
                found.append(Violation(RULE_CAPACITY, None, person_id, f"{person_id} is in {count} peer pairs"))
            if not judge.may_be_mentee(person_id):
                found.append(Violation(RULE_CAPACITY, None, person_id, f"{person_id} is not enrolled"))
    else:
        over = sorted(item for item in as_mentor.items() if item[1] > judge.capacity(item[0]))
        for mentor_id, count in over:
            cap = judge.capacity(mentor_id)
            found.append(Violation(RULE_CAPACITY, mentor_id, None, f"{mentor_id} has {count} mentees, capacity {cap}"))
        at_fault = (item for item in as_mentee.items() if item[1] > 1 or not judge.may_be_mentee(item[0]))
        for mentee_id, count in sorted(at_fault):
            if count > 1:
                found.append(Violation(RULE_CAPACITY, None, mentee_id, f"{mentee_id} has {count} mentors"))
            if not judge.may_be_mentee(mentee_id):
                found.append(Violation(RULE_CAPACITY, None, mentee_id, f"{mentee_id} is not enrolled as a mentee"))

    present = set(pairs)
    for mentor_id, mentee_id in problem.pins:
        honoured = (mentor_id, mentee_id) in present or (
            problem.program.relationship == "peer" and (mentee_id, mentor_id) in present
        )
        if not honoured:
            found.append(Violation(RULE_PIN, mentor_id, mentee_id, "pinned pair is missing from the solution"))
    return found
