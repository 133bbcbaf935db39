"""Hard rules, vectorised over a block of (mentee rows) x (mentor columns).

Every rule has a label from ``problem.RULE_*``. ``evaluate_block`` returns the integer score
of every pair in the block, with -1 where a hard rule removes the pair, and optionally the
code of the *first* failing rule (in ``RULE_ORDER``) so explanations can count, per person,
how many candidates each rule removed.

The independent, per-pair re-derivation of the same rules lives in ``check.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encode import Encoded
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
)
from .scoring import MAX_PROFICIENCY, block_components, block_points, min_score_points

# Order in which a removed pair is attributed to a rule (first failing rule counts). The level
# gap comes first: it is the rule that removes most pairs, and blocks only ever cover the
# level-compatible slice, so everything outside it is counted as level_gap without evaluation.
RULE_ORDER = (
    RULE_LEVEL_GAP,
    RULE_SELF,
    RULE_MANAGEMENT_CHAIN,
    RULE_MIN_OVERLAP,
    RULE_COMMON_LANGUAGE,
    RULE_CROSS_FUNCTIONAL,
    RULE_BLOCKED,
    RULE_REPEAT_PAIR,
    RULE_MIN_SCORE,
    RULE_CAPACITY,  # mentor with capacity 0 this round, otherwise eligible
)
SPARSE_RULES = (RULE_SELF, RULE_MANAGEMENT_CHAIN, RULE_BLOCKED, RULE_REPEAT_PAIR)


def level_bounds(enc: Encoded, mentee_level: int) -> tuple[int, int]:
    """Mentor levels [lo, hi] allowed for a mentee of this level."""
    rules = enc.problem.program.rules
    if enc.relationship == "traditional":
        return mentee_level + rules.level_gap_min, mentee_level + rules.level_gap_max
    if enc.relationship == "reverse":
        return mentee_level - rules.level_gap_max, mentee_level - rules.level_gap_min
    return mentee_level - 1, mentee_level + 1


def level_ok(enc: Encoded, mentee_level: np.ndarray, mentor_level: np.ndarray) -> np.ndarray:
    rules = enc.problem.program.rules
    if enc.relationship == "traditional":
        gap = mentor_level - mentee_level
    elif enc.relationship == "reverse":
        gap = mentee_level - mentor_level
    else:
        return np.abs(mentor_level - mentee_level) <= 1
    return (gap >= rules.level_gap_min) & (gap <= rules.level_gap_max)


@dataclass
class _SparseIndex:
    """A sorted key array split into (mentee, mentor) columns for fast block lookups."""

    mentee: np.ndarray
    mentor: np.ndarray


def _sparse_index(enc: Encoded, keys: np.ndarray) -> _SparseIndex:
    return _SparseIndex(keys // enc.n_mentors, keys % enc.n_mentors)


class BlockEvaluator:
    """Evaluates rules and scores on arbitrary (rows, cols) blocks of one encoded problem."""

    def __init__(self, enc: Encoded) -> None:
        self.enc = enc
        self.program = enc.problem.program
        self.rules = self.program.rules
        self.sparse = {label: _sparse_index(enc, enc.banned[label]) for label in SPARSE_RULES}
        self.preferred = _sparse_index(enc, enc.preferred)
        self.min_points = min_score_points(self.program)
        self.min_overlap_seconds = self.rules.min_overlap_hours * 3600.0 - 1e-6
        # Skill levels transposed once (skills x mentors, CSC) so column slices are cheap.
        self.mentor_skills_t = enc.mentors.skill_levels.T.tocsc()
        self.mentee_skills_t = enc.mentees.skill_levels.T.tocsc() if enc.peer else None
        self._row_pos = np.full(enc.n_mentees, -1, np.int64)
        self._col_pos = np.full(enc.n_mentors, -1, np.int64)

    def _sparse_mask(self, index: _SparseIndex, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        if index.mentee.size == 0:
            return None
        self._row_pos[rows] = np.arange(rows.size)
        self._col_pos[cols] = np.arange(cols.size)
        r = self._row_pos[index.mentee]
        c = self._col_pos[index.mentor]
        hit = (r >= 0) & (c >= 0)
        self._row_pos[rows] = -1
        self._col_pos[cols] = -1
        if not hit.any():
            return None
        mask = np.zeros((rows.size, cols.size), bool)
        mask[r[hit], c[hit]] = True
        return mask

    def goal_numerators(self, rows: np.ndarray, cols: np.ndarray, reverse: bool = False) -> np.ndarray:
        """Integer sum of pw * proficiency for (mentee goals x mentor skills), dense block."""
        enc = self.enc
        if not reverse:
            product = enc.mentees.goal_points[rows] @ self.mentor_skills_t[:, cols]
        else:  # the "mentee" teaches the "mentor" (peer, other direction)
            product = (enc.mentors.goal_points[cols] @ self.mentee_skills_t[:, rows]).T
        return product.toarray()

    def evaluate(
        self, rows: np.ndarray, cols: np.ndarray, with_codes: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(points with -1 for removed pairs, first-failing-rule codes or None).

        Code 0 = eligible, k = RULE_ORDER[k - 1] removed the pair.
        """
        enc, rules = self.enc, self.rules
        e, m = enc.mentees, enc.mentors
        shape = (rows.size, cols.size)
        e_level = e.level[rows][:, None]
        m_level = m.level[cols][None, :]
        failures: list[tuple[str, np.ndarray]] = [(RULE_LEVEL_GAP, ~level_ok(enc, e_level, m_level))]
        for label in (RULE_SELF, RULE_MANAGEMENT_CHAIN):
            mask = self._sparse_mask(self.sparse[label], rows, cols)
            if mask is not None:
                failures.append((label, mask))
        seconds = enc.overlap_seconds[e.tz_group[rows][:, None], m.tz_group[cols][None, :]]
        failures.append((RULE_MIN_OVERLAP, seconds < self.min_overlap_seconds))
        if rules.require_common_language:
            shared = np.zeros(shape, bool)
            for word in range(e.languages.shape[1]):
                shared |= (e.languages[rows, word][:, None] & m.languages[cols, word][None, :]) != 0
            failures.append((RULE_COMMON_LANGUAGE, ~shared))
        e_dept = e.department[rows][:, None]
        m_dept = m.department[cols][None, :]
        cross = (e_dept != m_dept) & (e_dept >= 0) & (m_dept >= 0)
        if rules.cross_functional == "require":
            failures.append((RULE_CROSS_FUNCTIONAL, ~cross))
        for label in (RULE_BLOCKED, RULE_REPEAT_PAIR):
            mask = self._sparse_mask(self.sparse[label], rows, cols)
            if mask is not None:
                failures.append((label, mask))

        # Score (computed for every pair of the block; cheap next to the rules above).
        goal_num = self.goal_numerators(rows, cols)
        e_den = MAX_PROFICIENCY * e.goal_weight_sum[rows][:, None].astype(np.float64)
        goals = np.divide(goal_num, e_den, out=np.zeros(shape), where=e_den > 0)
        if enc.peer:
            back_num = self.goal_numerators(rows, cols, reverse=True)
            m_den = MAX_PROFICIENCY * m.goal_weight_sum[cols][None, :].astype(np.float64)
            back = np.divide(back_num, m_den, out=np.zeros(shape), where=m_den > 0)
            goals = (goals + back) / 2.0
        preferred = self._sparse_mask(self.preferred, rows, cols)
        components = block_components(self.program, goals, seconds, m_level, e_level, cross.astype(np.float64))
        points = block_points(self.program, components, preferred)
        failures.append((RULE_MIN_SCORE, points < self.min_points))
        if enc.peer:
            # Each unordered pair appears once, oriented so the "mentor" is the one whose
            # skills better cover the other's goals (exact integer comparison), ties by id.
            e_w = np.maximum(e.goal_weight_sum[rows], 1)[:, None]
            m_w = np.maximum(m.goal_weight_sum[cols], 1)[None, :]
            lhs = goal_num.astype(np.int64) * m_w
            rhs = back_num.astype(np.int64) * e_w
            oriented = (lhs > rhs) | ((lhs == rhs) & (cols[None, :] < rows[:, None]))
        else:
            oriented = None
        failures.append((RULE_CAPACITY, np.broadcast_to((m.capacity[cols] <= 0)[None, :], shape)))

        removed = np.zeros(shape, bool)
        for _, mask in failures:
            removed |= mask
        if oriented is not None:
            removed |= ~oriented
        points = np.where(removed, -1, points).astype(np.int32)
        if not with_codes:
            return points, None
        codes = np.zeros(shape, np.int8)
        for label, mask in reversed(failures):  # earlier rules overwrite later ones
            codes[np.broadcast_to(mask, shape)] = RULE_ORDER.index(label) + 1
        if oriented is not None:
            codes[~oriented] = -1  # the other orientation of a peer pair: not a candidate here
        return points, codes
