"""Human explanations that cite only evidence present in the input.

Per pair: the score components (scalar reference formulas) and reasons naming the shared
goals, the shared hours with both local windows, the level gap, the departments, a shared
language, and who asked for the pair. Per unmatched person: how many candidates each hard rule
removed (the first failing rule in ``rules.RULE_ORDER`` counts), or why the eligible ones were
taken.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from .check import PairJudge
from .encode import Encoded
from .overlap import format_hhmm
from .problem import (
    RULE_BLOCKED,
    RULE_CAPACITY,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_LEVEL_GAP,
    RULE_MANAGEMENT_CHAIN,
    RULE_MIN_OVERLAP,
    RULE_MIN_SCORE,
    RULE_REPEAT_PAIR,
    RULE_SELF,
    Match,
    Person,
    Problem,
)
from .candidates import level_blocks
from .rules import RULE_ORDER, BlockEvaluator
from .scoring import COMPONENTS, SCORE_SCALE, to_points

BLOCK_PAIRS = 1 << 21


def _window_text(person: Person) -> str:
    return f"{format_hhmm(person.work_start_min)}–{format_hhmm(person.work_end_min)} {person.time_zone}"


def ranked_goals(person: Person) -> list[str]:
    """The person's goal skills, most important first, then by name (each once, at its most
    important priority: the first time it comes in that order)."""
    out: list[str] = []
    for _, name in sorted({(goal.priority if goal.priority < 9 else 9, goal.skill) for goal in person.goals}):
        if name not in out:  # a handful of goals: a list beats a set
            out.append(name)
    return out


def skill_names(person: Person) -> frozenset[str]:
    """Skills the person has (level above 0): a goal is shared when it is one of them."""
    return frozenset(s.name for s in person.skills if s.level > 0)


class PairExplainer:
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.program = problem.program
        self.judge = PairJudge(problem)
        self._ranked_goals: dict[str, list[str]] = {}
        self._skill_names: dict[str, frozenset[str]] = {}
        # Reasons that depend on a few attributes of the pair, built once per distinct value
        # (an organisation has a few hundred working windows, a dozen departments...).
        self._texts: dict[tuple, str | None] = {}

    def _text(self, key: tuple, build) -> str | None:
        text = self._texts.get(key, self)
        if text is self:
            text = self._texts[key] = build()
        return text

    def match(self, mentor_id: str, mentee_id: str, pinned: bool = False, scored: tuple | None = None) -> Match:
        """The pair's match. ``scored``: its (points, the four components in ``COMPONENTS``
        order, shared hours) when already computed by the vectorised scalar formulas
        (``FastScorer.scored``); otherwise the judge computes them."""
        people = self.problem.people
        mentor, mentee = people[mentor_id], people[mentee_id]
        windows = self.judge.windows(mentor, mentee)
        if scored is None:
            raw_score, components, hours = self.judge.score(mentor_id, mentee_id)
            points, values = to_points(raw_score), components.values()
        else:
            points, values, hours = scored
        preferred = self.judge.is_preferred(mentor_id, mentee_id)
        return Match(
            mentor_id=mentor_id,
            mentee_id=mentee_id,
            score=points / SCORE_SCALE,
            components={k: round(v, 4) for k, v in zip(COMPONENTS, values)},
            reasons=tuple(self.reasons(mentor, mentee, hours, preferred, pinned)),
            overlap_hours=round(hours, 2),
            overlap_windows=windows,
            pinned=pinned,
        )

    def _goal_reason(self, learner: Person, teacher: Person, teacher_role: str, learner_role: str) -> str | None:
        goals = self._ranked_goals.get(learner.id)
        if goals is None:
            goals = self._ranked_goals[learner.id] = ranked_goals(learner)
        skills = self._skill_names.get(teacher.id)
        if skills is None:
            skills = self._skill_names[teacher.id] = skill_names(teacher)
        shared = [name for name in goals if name in skills]
        if not shared:
            return None
        prefix = "shares" if teacher_role == "mentor" and learner_role == "mentee" else f"{teacher_role} covers"
        return f"{prefix} {len(shared)} of the {learner_role}'s goals: {', '.join(shared)}"

    def reasons(self, mentor: Person, mentee: Person, hours: float, preferred: bool, pinned: bool) -> list[str]:
        relationship = self.program.relationship
        out: list[str] = []
        if pinned:
            out.append("pinned by a program admin")
        texts = [self._goal_reason(mentee, mentor, "mentor", "mentee")]
        if relationship == "peer":
            texts.append(self._goal_reason(mentor, mentee, "mentee", "mentor"))
        out.extend(t for t in texts if t)
        windows = (mentor.time_zone, mentor.work_start_min, mentor.work_end_min,
                   mentee.time_zone, mentee.work_start_min, mentee.work_end_min)
        out.append(self._text(("hours", hours) + windows, lambda: (
            f"{hours:.1f} h of shared working hours (mentor {_window_text(mentor)}, mentee {_window_text(mentee)})"
        )))
        out.append(self._text(("gap", mentor.level - mentee.level), lambda: _gap_text(relationship, mentor.level - mentee.level)))
        department = self._text(("dept", mentor.department, mentee.department), lambda: _department_text(mentor, mentee))
        if department:
            out.append(department)
        languages = self.judge.languages(mentor), self.judge.languages(mentee)
        common = self._text(("lang",) + languages, lambda: ", ".join(sorted(languages[0] & languages[1])))
        if common:
            out.append(f"common language: {common}")
        enrollments = self.judge.enrollments
        if preferred:
            askers = [
                who
                for who, person, other in (("mentor", mentor, mentee), ("mentee", mentee, mentor))
                if person.id in enrollments and other.id in enrollments[person.id].preferred
            ]
            out.append(f"requested by the {' and the '.join(askers)}")
        return out


def _gap_text(relationship: str, gap: int) -> str:
    plural = "s" if abs(gap) != 1 else ""
    if relationship == "traditional":
        return f"mentor is {gap} level{plural} senior"
    if relationship == "reverse":
        return f"reverse mentoring: mentee is {-gap} level{plural} senior"
    return "same level" if gap == 0 else f"{abs(gap)} level{plural} apart"


def _department_text(mentor: Person, mentee: Person) -> str | None:
    if mentor.department and mentee.department and mentor.department != mentee.department:
        return f"cross-functional: {mentor.department} → {mentee.department}"
    if mentor.department and mentor.department == mentee.department:
        return f"same department: {mentor.department}"
    return None


# --- unmatched ------------------------------------------------------------------------------


def _rule_phrase(label: str, problem: Problem, plural: bool) -> str:
    """Verb phrase for "N mentors ..." (plural) or "1 mentor ..." (singular)."""
    rules = problem.program.rules
    are, share, were, have, score = ("are", "share", "were", "have", "score") if plural else ("is", "shares", "was", "has", "scores")
    if label == RULE_LEVEL_GAP:
        if problem.program.relationship == "peer":
            return f"{are} more than 1 level apart"
        senior = "mentor" if problem.program.relationship == "traditional" else "mentee"
        return f"{are} outside the level gap ({senior} {rules.level_gap_min}–{rules.level_gap_max} levels senior)"
    return {
        RULE_SELF: f"{are} the same person",
        RULE_MANAGEMENT_CHAIN: f"{are} in the same management chain",
        RULE_MIN_OVERLAP: f"{share} fewer than {rules.min_overlap_hours:g} working hours",
        RULE_COMMON_LANGUAGE: f"{share} no language",
        RULE_CROSS_FUNCTIONAL: f"{are} in the same (or an unknown) department",
        RULE_BLOCKED: f"{are} blocked",
        RULE_REPEAT_PAIR: f"{were} paired in an earlier round",
        RULE_MIN_SCORE: f"{score} below the minimum of {rules.min_score:g}",
        RULE_CAPACITY: f"{have} no capacity this round",
    }[label]


def rule_count_reasons(counts: dict[str, int], problem: Problem, other: str) -> list[str]:
    """["412 mentors are outside the level gap (...)", "1 mentor shares no language", ...]."""
    out = []
    for label in RULE_ORDER:
        n = counts.get(label, 0)
        if n:
            noun = other if n != 1 else other[:-1]
            out.append(f"{n} {noun} {_rule_phrase(label, problem, n != 1)}")
    return out


def _histogram(codes: np.ndarray) -> Counter:
    labels = ("",) + RULE_ORDER
    values, counts = np.unique(codes[codes >= 0], return_counts=True)
    return Counter({labels[v]: int(c) for v, c in zip(values, counts)})


def mentee_rule_counts(
    enc: Encoded, evaluator: BlockEvaluator, rows: np.ndarray, spare: np.ndarray | None = None
) -> tuple[list[Counter], list[int]]:
    """Per mentee row: Counter of first-failing rule labels over all mentors ("" = eligible),
    and how many of the eligible mentors are marked in ``spare`` (0 without it).

    Only the level-compatible slice is evaluated; everyone outside it fails level_gap first.
    """
    out = {int(r): Counter() for r in rows}
    seen = {int(r): 0 for r in rows}
    spare_eligible = {int(r): 0 for r in rows}
    for block_rows, cols in level_blocks(enc, rows, include_zero_capacity=True):
        _, codes = evaluator.evaluate(block_rows, cols, with_codes=True)
        on_spare = None if spare is None else ((codes == 0) & spare[cols]).sum(axis=1)
        for k, r in enumerate(block_rows.tolist()):
            out[r].update(_histogram(codes[k]))
            seen[r] += cols.size
            if on_spare is not None:
                spare_eligible[r] += int(on_spare[k])
    for r in out:
        if enc.n_mentors - seen[r]:
            out[r][RULE_LEVEL_GAP] += enc.n_mentors - seen[r]
    return [out[int(r)] for r in rows], [spare_eligible[int(r)] for r in rows]


def mentor_rule_counts(enc: Encoded, evaluator: BlockEvaluator, cols: np.ndarray) -> list[Counter]:
    """Per mentor column: Counter of first-failing rule labels over all mentees."""
    out = []
    order = np.argsort(enc.mentees.level, kind="stable")
    levels = enc.mentees.level[order]
    rules = enc.problem.program.rules
    for m in cols.tolist():
        level = int(enc.mentors.level[m])
        if enc.relationship == "traditional":
            lo, hi = level - rules.level_gap_max, level - rules.level_gap_min
        elif enc.relationship == "reverse":
            lo, hi = level + rules.level_gap_min, level + rules.level_gap_max
        else:
            lo, hi = level - 1, level + 1
        rows = order[np.searchsorted(levels, lo, "left") : np.searchsorted(levels, hi, "right")]
        counts = Counter()
        step = max(1, BLOCK_PAIRS)
        for start in range(0, rows.size, step):
            _, codes = evaluator.evaluate(rows[start : start + step], np.array([m]), with_codes=True)
            counts.update(_histogram(codes[:, 0]))
        if enc.n_mentees - rows.size:
            counts[RULE_LEVEL_GAP] += enc.n_mentees - rows.size
        out.append(counts)
    return out


def peer_rule_counts(enc: Encoded, evaluator: BlockEvaluator, person: int) -> Counter:
    """Counts over every other pool member, each pair judged in its own orientation."""
    everyone = np.arange(enc.n_mentees)
    _, as_mentee = evaluator.evaluate(np.array([person]), everyone, with_codes=True)
    _, as_mentor = evaluator.evaluate(everyone, np.array([person]), with_codes=True)
    codes = np.where(as_mentee[0] >= 0, as_mentee[0], as_mentor[:, 0])
    codes = np.delete(codes, person)  # yourself is not a candidate in a pool
    return _histogram(codes)
