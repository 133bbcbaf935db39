"""Turn a ``Problem`` into canonical numpy arrays (the only input the vectorised code sees).

Canonical means: every list is sorted by person id, so the same problem gives the same
arrays (and therefore the same pairs) whatever order the caller listed people in.

Pairs are addressed by ``key = mentee_index * n_mentors + mentor_index`` (int64); the sparse
rules (self, management chain, blocked, repeat pair) and the preferred bonus are sorted key
arrays, looked up per block with ``np.isin``/``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .overlap import overlap_seconds_table
from .scoring import GOAL_PRIORITY_WEIGHT, MAX_PROFICIENCY
from .problem import (
    RULE_BLOCKED,
    RULE_MANAGEMENT_CHAIN,
    RULE_REPEAT_PAIR,
    RULE_SELF,
    Person,
    Problem,
)

def unique_keys(keys) -> np.ndarray:
    """Sorted distinct values of an integer array.

    ``np.unique`` without index outputs hashes since NumPy 2.3; on large unsorted int64 arrays
    that is ~100x slower than sorting (measured here: 0.5 s against 5 ms for 560k pair keys).
    """
    ordered = np.sort(np.asarray(keys, np.int64))
    if ordered.size:
        ordered = ordered[np.r_[True, ordered[1:] != ordered[:-1]]]
    return ordered


@dataclass
class Side:
    """Attributes of one side (mentees or mentors) as arrays indexed 0..n-1 (sorted by id)."""

    ids: list[str]
    people: list[Person]
    level: np.ndarray  # int32
    tz_group: np.ndarray  # int32, index into the side's combo list
    combos: list[tuple[str, int, int]]
    department: np.ndarray  # int32, -1 = unknown
    languages: np.ndarray  # (n, words) uint64 bit masks
    goal_weights: sp.csr_matrix  # (n, n_skills) priority weight / sum of weights (rows sum to 1)
    goal_weight_sum: np.ndarray  # int64 sum of priority weights (0 = no goals)
    goal_points: sp.csr_matrix  # (n, n_skills) integer priority weights (for exact comparisons)
    skill_levels: sp.csr_matrix  # (n, n_skills) proficiency 1..5
    capacity: np.ndarray  # int64 (mentor side; 0 on the mentee side)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Encoded:
    problem: Problem
    relationship: str
    mentees: Side
    mentors: Side
    peer: bool
    overlap_seconds: np.ndarray  # (mentee combos, mentor combos) int32
    # Sparse rule keys (sorted unique int64) and the preferred-pair keys.
    banned: dict[str, np.ndarray] = field(default_factory=dict)
    preferred: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mentee_priority: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_mentees(self) -> int:
        return len(self.mentees)

    @property
    def n_mentors(self) -> int:
        return len(self.mentors)

    def key(self, mentee_idx, mentor_idx):
        return np.asarray(mentee_idx, np.int64) * self.n_mentors + np.asarray(mentor_idx, np.int64)


def participants(problem: Problem) -> tuple[list[str], list[str]]:
    """(mentee ids, mentor ids), sorted. In peer programs both are the whole pool."""
    seen: set[str] = set()
    mentees, mentors = [], []
    for enrollment in problem.enrollments:
        if enrollment.person_id in seen:
            raise ValueError(f"person {enrollment.person_id!r} is enrolled twice")
        if enrollment.person_id not in problem.people:
            raise ValueError(f"enrolled person {enrollment.person_id!r} is not in problem.people")
        seen.add(enrollment.person_id)
        if problem.program.relationship == "peer":
            mentees.append(enrollment.person_id)
            mentors.append(enrollment.person_id)
            continue
        if enrollment.role in ("mentee", "both"):
            mentees.append(enrollment.person_id)
        if enrollment.role in ("mentor", "both"):
            mentors.append(enrollment.person_id)
    return sorted(mentees), sorted(mentors)


def mentor_capacity(problem: Problem, enrollment) -> int:
    if problem.program.relationship == "peer":
        return 1
    cap = enrollment.capacity if enrollment.capacity is not None else problem.program.rules.default_mentor_capacity
    return max(0, int(cap))


class _Vocab:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def codes(self, names: list[str]) -> list[int]:
        """Codes of the names, new names added (one loop, no call per name: goals and skills
        run to hundreds of thousands)."""
        index, codes = self.index, []
        for name in names:
            found = index.get(name)
            if found is None:
                found = index[name] = len(index)
            codes.append(found)
        return codes


def _side(
    ids: list[str],
    problem: Problem,
    skills: _Vocab,
    departments: _Vocab,
    languages: _Vocab,
    capacities: dict[str, int],
) -> tuple[Side, tuple, tuple]:
    people = [problem.people[i] for i in ids]
    combo_index: dict[tuple[str, int, int], int] = {}
    tz_group = np.empty(len(ids), np.int32)
    for n, p in enumerate(people):
        combo = (p.time_zone, p.work_start_min % 1440, p.work_end_min % 1440)
        tz_group[n] = combo_index.setdefault(combo, len(combo_index))
    lang_entries = (
        [n for n, p in enumerate(people) for _ in p.languages],
        languages.codes([lang for p in people for lang in p.languages]),
    )
    # Flat (row, skill code, value) columns: these run once per goal and skill of every
    # participant (~15 per person), so they avoid per-item function calls.
    goal_entries = (
        [n for n, p in enumerate(people) for _ in p.goals],
        skills.codes([g.skill for p in people for g in p.goals]),
        [GOAL_PRIORITY_WEIGHT.get(g.priority, 1) for p in people for g in p.goals],
    )
    skill_entries = (
        [n for n, p in enumerate(people) for _ in p.skills],
        skills.codes([sk.name for p in people for sk in p.skills]),
        np.clip(np.array([sk.level for p in people for sk in p.skills], np.int64), 0, MAX_PROFICIENCY),
    )
    side = Side(
        ids=ids,
        people=people,
        level=np.array([p.level for p in people], np.int32),
        tz_group=tz_group,
        combos=list(combo_index),
        department=_department_codes(people, departments),
        languages=np.zeros((len(ids), 1), np.uint64),  # filled once the vocabulary is known
        goal_weights=None,  # type: ignore[arg-type]
        goal_weight_sum=np.zeros(len(ids), np.int64),
        goal_points=None,  # type: ignore[arg-type]
        skill_levels=None,  # type: ignore[arg-type]
        capacity=np.array([capacities.get(i, 0) for i in ids], np.int64),
    )
    side._lang_entries = lang_entries  # type: ignore[attr-defined]
    return side, goal_entries, skill_entries


def _department_codes(people, departments: _Vocab) -> np.ndarray:
    """Per person, the department's code, -1 without one."""
    codes = np.full(len(people), -1, np.int32)
    named = [n for n, p in enumerate(people) if p.department]
    codes[named] = departments.codes([people[n].department for n in named])
    return codes


def _sparse(entries, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """CSR from (rows, cols, values) columns keeping the largest value of duplicates."""
    rows, cols, vals = (np.asarray(x, np.int64) for x in entries)
    if rows.size == 0:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float64)
    # Keep one entry per (row, col): the largest value (a skill listed twice counts once,
    # at its best level; a goal listed twice counts once, at its most important priority).
    order = np.lexsort((-vals, cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    first = np.ones(len(rows), bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return sp.csr_matrix((vals[first].astype(np.float64), (rows[first], cols[first])), shape=(n_rows, n_cols))


def _finish_side(side: Side, goal_entries, skill_entries, n_skills: int, n_langs: int) -> None:
    n = len(side)
    words = max(1, (n_langs + 63) // 64)
    masks = np.zeros((n, words), np.uint64)
    rows, codes = (np.asarray(x, np.int64) for x in side._lang_entries)  # type: ignore[attr-defined]
    np.bitwise_or.at(masks, (rows, codes // 64), np.left_shift(np.uint64(1), (codes % 64).astype(np.uint64)))
    side.languages = masks
    del side._lang_entries  # type: ignore[attr-defined]
    side.goal_points = _sparse(goal_entries, n, n_skills)
    side.goal_weight_sum = np.asarray(side.goal_points.sum(axis=1)).ravel().astype(np.int64)
    inv = np.divide(1.0, side.goal_weight_sum, out=np.zeros(n), where=side.goal_weight_sum > 0)
    side.goal_weights = sp.csr_matrix(sp.diags(inv) @ side.goal_points)
    side.skill_levels = _sparse(skill_entries, n, n_skills)


def encode(problem: Problem) -> Encoded:
    mentee_ids, mentor_ids = participants(problem)
    enrollments = {e.person_id: e for e in problem.enrollments}
    capacities = {i: mentor_capacity(problem, enrollments[i]) for i in mentor_ids}
    skills, departments, languages = _Vocab(), _Vocab(), _Vocab()
    mentees, e_goals, e_skills = _side(mentee_ids, problem, skills, departments, languages, {})
    if problem.program.relationship == "peer":
        mentors, m_goals, m_skills = mentees, e_goals, e_skills
        mentees.capacity = np.array([capacities[i] for i in mentee_ids], np.int64)
    else:
        mentors, m_goals, m_skills = _side(mentor_ids, problem, skills, departments, languages, capacities)
    n_skills, n_langs = max(1, len(skills.index)), len(languages.index)
    _finish_side(mentees, e_goals, e_skills, n_skills, n_langs)
    if mentors is not mentees:
        _finish_side(mentors, m_goals, m_skills, n_skills, n_langs)
    enc = Encoded(
        problem=problem,
        relationship=problem.program.relationship,
        mentees=mentees,
        mentors=mentors,
        peer=problem.program.relationship == "peer",
        overlap_seconds=overlap_seconds_table(mentees.combos, mentors.combos, problem.round_date),
    )
    enc.banned = sparse_rule_keys(enc, enrollments)
    enc.preferred = preferred_keys(enc, enrollments)
    enc.mentee_priority = np.array(
        [min(3, max(0, int(problem.previously_unmatched.get(i, 0)))) for i in mentee_ids], np.int64
    )
    return enc


def _index(ids: list[str]) -> dict[str, int]:
    return {pid: n for n, pid in enumerate(ids)}


def _keys(enc: Encoded, pairs, both_orientations: bool) -> np.ndarray:
    """Keys of (mentor_id, mentee_id) pairs whose people are both participants."""
    e_index, m_index = _index(enc.mentees.ids), _index(enc.mentors.ids)
    out = []
    for mentor_id, mentee_id in pairs:
        orientations = [(mentor_id, mentee_id), (mentee_id, mentor_id)] if both_orientations else [(mentor_id, mentee_id)]
        for m, e in orientations:
            if m in m_index and e in e_index:
                out.append(e_index[e] * enc.n_mentors + m_index[m])
    return unique_keys(out)


def manager_chains(problem: Problem) -> dict[str, tuple[str, ...]]:
    """Lazily memoised manager chains: ``chain(pid)`` = everyone above pid, nearest first.

    Chains share their upper part, so each person is walked once. Dangling manager ids are
    ancestors with nothing above them; a cycle gives each member the rest of the cycle.
    """
    memo: dict[str, tuple[str, ...]] = {}
    people = problem.people

    def chain(pid: str) -> tuple[str, ...]:
        if pid in memo:
            return memo[pid]
        path: list[str] = []
        position: dict[str, int] = {}
        cur: str | None = pid
        while cur is not None and cur not in memo and cur not in position:
            position[cur] = len(path)
            path.append(cur)
            person = people.get(cur)
            cur = person.manager_id if person is not None else None
        if cur is None:
            rest = path
            above_last = None
        elif cur in memo:
            rest = path
            above_last = cur
        else:  # cycle back to path[position[cur]]
            start = position[cur]
            cycle = path[start:]
            for k, member in enumerate(cycle):
                memo[member] = tuple(cycle[k + 1 :] + cycle[:k])
            rest = path[:start]
            above_last = cycle[0]
        for member in reversed(rest):
            if above_last is None:
                memo[member] = ()
            else:
                memo[member] = (above_last,) + memo[above_last]
            above_last = member
        return memo[pid]

    return chain  # type: ignore[return-value]


# Levels of the manager chains walked for all people at once; a chain still going after this
# many (a cycle above the person, or an unusually deep tree) is finished by ``manager_chains``.
PLAIN_LEVELS = 64


class _Chains:
    """Everyone's manager as an index (-1: none, or an id nobody has), for walking all the
    chains one level at a time with NumPy (20k x 10k: 16 levels deep, 0.25 s in Python)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.index = {pid: k for k, pid in enumerate(problem.people)}
        self.parent = np.array(
            [self.index.get(p.manager_id, -1) if p.manager_id is not None else -1 for p in problem.people.values()],
            np.int64,
        ).reshape(-1)
        self._walk = None

    def pairs(self, below_ids: list[str], above_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(below index, above index) for each person of ``below_ids`` with a person of
        ``above_ids`` somewhere above them (repeats possible)."""
        start = np.array([self.index[pid] for pid in below_ids], np.int64)
        above_pos = np.full(len(self.index), -1, np.int64)
        above_pos[np.array([self.index[pid] for pid in above_ids], np.int64)] = np.arange(len(above_ids))
        rows, origin = np.arange(start.size), start
        ancestor = self.parent[start] if start.size else start
        out_rows, out_above = [], []
        for _ in range(PLAIN_LEVELS):
            live = (ancestor >= 0) & (ancestor != origin)  # the top, or round a cycle to the person
            rows, origin, ancestor = rows[live], origin[live], ancestor[live]
            if rows.size == 0:
                break
            hit = above_pos[ancestor] >= 0
            out_rows.append(rows[hit])
            out_above.append(above_pos[ancestor[hit]])
            ancestor = self.parent[ancestor]
        else:
            if self._walk is None:
                self._walk = manager_chains(self.problem)
            for row in rows.tolist():
                found = [above_pos[self.index[b]] for b in self._walk(below_ids[row]) if b in self.index]
                found = np.array([j for j in found if j >= 0], np.int64)
                out_rows.append(np.full(found.size, row, np.int64))
                out_above.append(found)
        if not out_rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(out_rows), np.concatenate(out_above)


def sparse_rule_keys(enc: Encoded, enrollments) -> dict[str, np.ndarray]:
    problem = enc.problem
    rules = problem.program.rules
    e_index, m_index = _index(enc.mentees.ids), _index(enc.mentors.ids)
    n_m = enc.n_mentors
    banned: dict[str, np.ndarray] = {}
    same = [e_index[pid] * n_m + m_index[pid] for pid in enc.mentees.ids if pid in m_index]
    banned[RULE_SELF] = unique_keys(same)
    if rules.exclude_management_chain:
        chains = _Chains(problem)
        e_below, m_above = chains.pairs(enc.mentees.ids, enc.mentors.ids)
        m_below, e_above = chains.pairs(enc.mentors.ids, enc.mentees.ids)
        banned[RULE_MANAGEMENT_CHAIN] = unique_keys(np.concatenate([e_below * n_m + m_above, e_above * n_m + m_below]))
    else:
        banned[RULE_MANAGEMENT_CHAIN] = np.zeros(0, np.int64)
    blocked = list(problem.blocks)
    for pid, enrollment in enrollments.items():
        for other in enrollment.blocked:
            blocked.append((pid, other))
            blocked.append((other, pid))
    # Blocks are symmetric in meaning ("never pair these two"), whoever is mentor.
    banned[RULE_BLOCKED] = _keys(enc, blocked, both_orientations=True)
    if rules.avoid_repeat_pairs:
        banned[RULE_REPEAT_PAIR] = _keys(enc, problem.past_pairs, both_orientations=enc.peer)
    else:
        banned[RULE_REPEAT_PAIR] = np.zeros(0, np.int64)
    return banned


def preferred_keys(enc: Encoded, enrollments) -> np.ndarray:
    pairs = []
    for pid, enrollment in enrollments.items():
        for other in enrollment.preferred:
            pairs.append((pid, other))
            pairs.append((other, pid))
    return _keys(enc, pairs, both_orientations=False)
