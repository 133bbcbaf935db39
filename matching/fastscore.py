"""The hot path: rank candidate pairs in float32, then score the kept ones exactly.

Building candidates touches every level-compatible pair (73 M at 20k x 10k), so this path
avoids per-pair work wherever the attributes are shared:

* time zone, working window and language set are folded into one *contact group* per person;
  a (mentee group x mentor group) table holds ``w.time_zone * tz_fit`` or ``-inf`` when the
  pair shares too few hours or no language -- one gather per pair;
* department: a tiny (dept x dept) table with ``w.cross_functional * cf`` (or ``-inf`` when
  cross-functional is required and the pair is not);
* seniority depends only on the mentor's level inside a block (all mentees of a block share a
  level): one vector per block;
* goal fit: for each of a mentee's goals, the block's mentors with that skill (a skill -> mentors
  index), summed per pair in float64;
* sparse rules (self, management chain, blocked, repeat) and the preferred bonus are sparse.

The dense terms and the goal fit are one compiled pass per block (``_dense_raw``, numba): the
NumPy version made four block-sized temporaries and took 3x as long.

The result is a float32 *raw* score (the weighted sum before dividing by the weight total),
accurate to ~1e-4 points: good for ranking and, with a margin, for upper bounds. Every arc the
solver sees gets its exact integer points from ``exact_points`` (float64, same formula and
operation order as ``scoring``), and eligibility is identical to ``rules.BlockEvaluator``
except at the ``min_score`` boundary, which ``exact_points`` settles.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .candidates import mentor_columns
from .encode import Encoded, unique_keys
from .parallel import parts, run_parts
from .rules import SPARSE_RULES, level_ok
from .scoring import (
    MAX_PROFICIENCY,
    PREFERRED_BONUS,
    SCORE_SCALE,
    TZ_FULL_HOURS,
    component_weights,
    min_score_points,
)

NEG = np.float32(-1e6)
ELIGIBLE = -1.0  # raw > ELIGIBLE <=> no hard rule removed the pair (eligible raw scores are >= 0)
# A float32 raw score is within ~1e-4 points of the exact one; bounds use this margin.
POINTS_MARGIN = 0.01
# Blocks whose mentors are less than 1/NARROW_SHARE of their stretch of the level order get a
# skill index of their own for the goal fit (see raw_block). At 100k x 50k, 256 rows against a
# random pick of a 25k-mentor stretch: 3 % of it 205 against 548 us, 5 % 347 against 634 us,
# 10 % 669 against 748 us, 20 % 1064 against 1024 us (the index's build no longer pays).
NARROW_SHARE = 8
# An exactly scored pair (~90 ns, a merge of two skill lists) costs about as much as this many
# dense raw entries (~3 ns): the unit ``parallel.parts`` sizes its parts in. Counted as one,
# the certificate's screens (~11k near pairs per chunk of rows) scored theirs on one core.
EXACT_PAIR_ENTRIES = 32


def _language_sets(*masks: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Ids of distinct language bit masks (shared across sides) and the masks themselves."""
    stacked = np.concatenate(masks)
    uniq, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    out, start = [], 0
    for m in masks:
        out.append(inverse[start : start + m.shape[0]])
        start += m.shape[0]
    return out, uniq


class FastScorer:
    def __init__(self, enc: Encoded) -> None:
        assert not enc.peer, "peer pools use the exact evaluator"
        self.enc = enc
        program = enc.problem.program
        rules = program.rules
        self.program = program
        wg, wt, ws, wc = component_weights(program)
        self.weights = (wg, wt, ws, wc)
        self.total = wg + wt + ws + wc
        self.to_points = SCORE_SCALE / self.total if self.total > 0 else 0.0
        e, m = enc.mentees, enc.mentors

        (lang_e, lang_m), lang_masks = _language_sets(e.languages, m.languages)
        shares = (lang_masks[:, None, :] & lang_masks[None, :, :]).any(axis=2)
        if not rules.require_common_language:
            shares[:] = True
        # Contact group = (tz combo, language set).
        key_e = e.tz_group.astype(np.int64) * len(lang_masks) + lang_e
        key_m = m.tz_group.astype(np.int64) * len(lang_masks) + lang_m
        ge_keys, self.group_e = np.unique(key_e, return_inverse=True)
        gm_keys, self.group_m = np.unique(key_m, return_inverse=True)
        tz_e, l_e = ge_keys // len(lang_masks), ge_keys % len(lang_masks)
        tz_m, l_m = gm_keys // len(lang_masks), gm_keys % len(lang_masks)
        seconds = enc.overlap_seconds[tz_e[:, None], tz_m[None, :]].astype(np.float64)
        tz_fit = np.minimum(1.0, (seconds / 3600.0) / TZ_FULL_HOURS)
        contact = wt * tz_fit
        ok = (seconds >= rules.min_overlap_hours * 3600.0 - 1e-6) & shares[l_e[:, None], l_m[None, :]]
        self.contact = np.where(ok, contact, NEG).astype(np.float32)

        n_dept = int(max(e.department.max(initial=-1), m.department.max(initial=-1))) + 2
        known = np.arange(n_dept) < n_dept - 1  # the last index stands for "unknown"
        cross = (np.arange(n_dept)[:, None] != np.arange(n_dept)[None, :]) & known[:, None] & known[None, :]
        dept = wc * cross.astype(np.float64)
        if rules.cross_functional == "require":
            dept = np.where(cross, dept, NEG)
        self.dept = dept.astype(np.float32)
        self.dept_e = np.where(e.department >= 0, e.department, n_dept - 1)
        self.dept_m = np.where(m.department >= 0, m.department, n_dept - 1)

        self.goal_scale = np.divide(
            wg, MAX_PROFICIENCY * e.goal_weight_sum.astype(np.float64),
            out=np.zeros(len(e)), where=e.goal_weight_sum > 0,
        )
        goals = e.goal_points.tocsr().sorted_indices()
        self._goal_ptr, self._goal_skill = goals.indptr.astype(np.int64), goals.indices.astype(np.int64)
        self._goal_points = goals.data.astype(np.float64)
        # skill -> the mentors who have it and their level, each list in level order (the order
        # of ``candidates.mentor_columns``, mentors without capacity last): a block's columns are
        # a stretch of that order, so its mentors with a skill are a stretch of the list.
        by_skill = m.skill_levels.T.tocsr()
        cols_sorted, _ = mentor_columns(enc)
        self._position = np.full(enc.n_mentors, enc.n_mentors, np.int64)
        self._position[cols_sorted] = np.arange(cols_sorted.size)
        entry_skill = np.repeat(np.arange(by_skill.shape[0]), np.diff(by_skill.indptr))
        order = np.lexsort((self._position[by_skill.indices], entry_skill))
        self._skill_ptr = by_skill.indptr.astype(np.int64)
        self._skill_mentor = by_skill.indices[order].astype(np.int64)
        self._skill_level = by_skill.data[order].astype(np.float64)
        self._skill_position = self._position[self._skill_mentor]
        skills = m.skill_levels.tocsr().sorted_indices()  # mentor -> their skills, for exact_points
        self._m_skill_ptr, self._m_skill = skills.indptr.astype(np.int64), skills.indices.astype(np.int64)
        self._m_skill_level = skills.data.astype(np.float64)
        # Sparse pairs by mentee row (CSR over the sorted keys), so a block visits only its rows'.
        banned = unique_keys(np.concatenate([enc.banned[label] for label in SPARSE_RULES]))
        self._banned_ptr, self._banned_mentor = _rows_index(banned, enc.n_mentees, enc.n_mentors)
        self._preferred_ptr, self._preferred_mentor = _rows_index(
            unique_keys(enc.preferred), enc.n_mentees, enc.n_mentors
        )
        self.min_points = min_score_points(program)
        # raw >= min_raw  <=>  points >= min_points (minus the float32 margin: lenient).
        if self.min_points <= 0:
            self.min_raw = -np.inf
        elif self.to_points == 0:
            self.min_raw = np.inf  # every score is 0
        else:
            self.min_raw = (self.min_points - 0.5 - POINTS_MARGIN) / self.to_points

    def raw_block(self, rows: np.ndarray, cols: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """float32 raw scores (rows x cols), NEG where a hard rule removes the pair. The rows
        share one level (``candidates.level_blocks``). With ``out`` (a flat float32 buffer of
        at least rows x cols), the result is a view into it, valid until its next use. Parts of
        the rows run on every core (``parallel``); each row's scores depend on that row alone."""
        enc = self.enc
        e, m = enc.mentees, enc.mentors
        if rows.size == 0 or cols.size == 0:
            return np.empty((rows.size, cols.size), np.float32)
        e_level = float(e.level[rows[0]])
        m_level = m.level[cols].astype(np.float64)
        per_col = np.where(level_ok(enc, e_level, m_level), self._seniority(m_level, e_level), NEG).astype(np.float32)
        if out is None:
            raw = np.empty((rows.size, cols.size), np.float32)
        else:
            raw = out[: rows.size * cols.size].reshape(rows.size, cols.size)
        col_pos = np.full(enc.n_mentors, -1, np.int64)  # per call: calls may run in several threads
        col_pos[cols] = np.arange(cols.size)
        group_m, dept_m = self.group_m[cols], self.dept_m[cols]
        group_e, dept_e, goal_scale = self.group_e[rows], self.dept_e[rows], self.goal_scale[rows]
        at = self._position[cols]
        first, last = at.min(), at.max() + 1  # the block's stretch of the level order
        if cols.size * NARROW_SHARE < last - first:
            # A narrow pick of mentors (the certificate's partial and fresh screens): index the
            # block's own mentors by skill, so a goal visits only them and not the whole stretch.
            ptr, col, level = _block_skill_index(cols, self._m_skill_ptr, self._m_skill, self._m_skill_level, self._skill_ptr.size - 1)
            goal_index = (ptr, col, level, col, 0, cols.size, np.arange(cols.size))
        else:
            goal_index = (self._skill_ptr, self._skill_mentor, self._skill_level, self._skill_position, first, last, col_pos)
        bonus, cap, floor = np.float32(PREFERRED_BONUS * self.total), np.float32(self.total), np.float64(self.min_raw)

        def part(lo: int, hi: int) -> None:
            out, ids = raw[lo:hi], rows[lo:hi]
            _dense_raw(
                self.contact, group_e[lo:hi], group_m, self.dept, dept_e[lo:hi], dept_m, per_col, self._goal_ptr,
                self._goal_skill, self._goal_points, goal_scale[lo:hi], ids, *goal_index, out,
            )
            if self._preferred_mentor.size:
                _lift_pairs(out, ids, self._preferred_ptr, self._preferred_mentor, col_pos, bonus, cap)
            _ban_pairs(out, ids, self._banned_ptr, self._banned_mentor, col_pos, NEG)
            if self.min_raw > -np.inf:
                _floor_below(out, floor, NEG)

        run_parts(part, parts(rows.size, cols.size))
        return raw

    def _seniority(self, m_level, e_level):
        program = self.program
        ws = self.weights[2]
        if program.relationship == "peer":
            return ws * np.maximum(0.0, 1.0 - np.abs(m_level - e_level) / 2.0)
        rules = program.rules
        gap = m_level - e_level if program.relationship == "traditional" else e_level - m_level
        ideal = (rules.level_gap_min + rules.level_gap_max) / 2.0
        half_width = (rules.level_gap_max - rules.level_gap_min) / 2.0
        return ws * np.maximum(0.0, 1.0 - np.abs(gap - ideal) / (half_width + 1.0))

    def eligible(self, raw: np.ndarray) -> np.ndarray:
        return raw > ELIGIBLE

    def cross_functional(self, e_idx: np.ndarray, m_idx: np.ndarray) -> np.ndarray:
        e_dept, m_dept = self.enc.mentees.department[e_idx], self.enc.mentors.department[m_idx]
        return (e_dept != m_dept) & (e_dept >= 0) & (m_dept >= 0)

    def points_upper_bound(self, raw: np.ndarray) -> np.ndarray:
        """Integer points that the exact score cannot exceed (raw must be eligible)."""
        return np.floor(raw.astype(np.float64) * self.to_points + 0.5 + POINTS_MARGIN).astype(np.int64)

    def exact_points(self, e_idx: np.ndarray, m_idx: np.ndarray) -> np.ndarray:
        """Exact integer points for eligible pairs (float64, the scalar formula's order);
        -1 where the exact score falls below ``min_score``."""
        points, _ = self._pair_scores(e_idx, m_idx, components=False)
        return np.where(points >= self.min_points, points, -1)

    def scored(self, e_idx: np.ndarray, m_idx: np.ndarray) -> tuple[np.ndarray, tuple, np.ndarray]:
        """(integer points, the four components, shared seconds) of pairs: the scalar formulas
        (``scoring.pair_components`` and ``combine``) in the same operation order."""
        enc = self.enc
        points, components = self._pair_scores(e_idx, m_idx, components=True)
        return points, components, enc.overlap_seconds[enc.mentees.tz_group[e_idx], enc.mentors.tz_group[m_idx]]

    def _pair_scores(self, e_idx: np.ndarray, m_idx: np.ndarray, components: bool) -> tuple[np.ndarray, tuple]:
        """Points (int64) and, if asked, the four components (goals, time_zone, seniority,
        cross_functional; float64) of pairs: one compiled pass (``_pair_points``), parts of the
        pairs on every core. 100k x 50k: 5 M pairs in 0.46 s on one core, against 1.7 s for
        the same formulas as NumPy array passes."""
        enc, program = self.enc, self.program
        e, m = enc.mentees, enc.mentors
        n = e_idx.size
        e_idx, m_idx = e_idx.astype(np.int64, copy=False), m_idx.astype(np.int64, copy=False)
        points = np.empty(n, np.int64)
        parts_out = tuple(np.empty(n if components else 0, np.float64) for _ in range(4))
        rules = program.rules
        ideal = (rules.level_gap_min + rules.level_gap_max) / 2.0
        half_width = (rules.level_gap_max - rules.level_gap_min) / 2.0

        def part(lo: int, hi: int) -> None:
            out = tuple(a[lo:hi] for a in parts_out) if components else parts_out
            _pair_points(
                e_idx[lo:hi], m_idx[lo:hi], self._goal_ptr, self._goal_skill, self._goal_points, self._m_skill_ptr,
                self._m_skill, self._m_skill_level, e.goal_weight_sum, e.tz_group, m.tz_group, enc.overlap_seconds,
                e.level, m.level, e.department, m.department, self._preferred_ptr, self._preferred_mentor,
                *self.weights, program.relationship == "reverse", ideal, half_width, points[lo:hi], components, *out,
            )

        run_parts(part, parts(n, EXACT_PAIR_ENTRIES))
        return points, parts_out


def _rows_index(keys: np.ndarray, n_mentees: int, n_mentors: int) -> tuple[np.ndarray, np.ndarray]:
    """(row pointers, mentors) of sorted pair keys ``mentee * n_mentors + mentor``."""
    ptr = np.searchsorted(keys // n_mentors, np.arange(n_mentees + 1)).astype(np.int64)
    return ptr, (keys % n_mentors).astype(np.int64)


@njit(cache=True, nogil=True)
def _floor_below(raw, floor, neg):
    """``raw[raw < floor] = neg`` without a block-sized mask, compared in float64 (NumPy compares
    a float32 array with a Python float in float32; either way POINTS_MARGIN leaves room)."""
    n_r, n_c = raw.shape
    for i in range(n_r):
        for j in range(n_c):
            if np.float64(raw[i, j]) < floor:
                raw[i, j] = neg


@njit(cache=True, nogil=True)
def _ban_pairs(raw, rows, ptr, mentor, col_pos, neg):
    """``raw[i, j] = neg`` for the listed pairs inside the block (``col_pos``: column or -1)."""
    for i in range(rows.size):
        for k in range(ptr[rows[i]], ptr[rows[i] + 1]):
            j = col_pos[mentor[k]]
            if j >= 0:
                raw[i, j] = neg


@njit(cache=True, nogil=True)
def _lift_pairs(raw, rows, ptr, mentor, col_pos, bonus, cap):
    """The preferred bonus on the listed pairs inside the block, capped (float32, as the
    scalar's ``min(1, score + bonus)`` before dividing by the weight total)."""
    for i in range(rows.size):
        for k in range(ptr[rows[i]], ptr[rows[i] + 1]):
            j = col_pos[mentor[k]]
            if j >= 0:
                raw[i, j] = min(cap, raw[i, j] + bonus)


@njit(cache=True, nogil=True)
def _block_skill_index(cols, m_skill_ptr, m_skill, m_skill_level, n_skills):
    """The block's mentors by skill: (pointers per skill, column, proficiency), columns ascending
    within a skill (a counting sort of the mentors' own skill lists)."""
    start = np.zeros(n_skills + 1, np.int64)
    for j in range(cols.size):
        for k in range(m_skill_ptr[cols[j]], m_skill_ptr[cols[j] + 1]):
            start[m_skill[k] + 1] += 1
    for skill in range(n_skills):
        start[skill + 1] += start[skill]
    fill = start[:-1].copy()
    col = np.empty(start[n_skills], np.int64)
    level = np.empty(start[n_skills], np.float64)
    for j in range(cols.size):
        for k in range(m_skill_ptr[cols[j]], m_skill_ptr[cols[j] + 1]):
            at = fill[m_skill[k]]
            col[at] = j
            level[at] = m_skill_level[k]
            fill[m_skill[k]] = at + 1
    return start, col, level


@njit(cache=True, nogil=True)
def _dense_raw(
    contact, group_e, group_m, dept, dept_e, dept_m, per_col, goal_ptr, goal_skill, goal_points, goal_scale,
    rows, skill_ptr, skill_mentor, skill_level, skill_position, first, last, col_pos, raw,
):
    """``raw[i, j]`` = contact + department + per-column (seniority or NEG) terms, plus the goal
    fit: for each of row i's goals, every mentor of the block with that skill (``col_pos`` maps
    a mentor to its column, -1 outside the block) gains priority x proficiency, summed in
    float64 per pair and scaled by ``goal_scale[i]`` before the float32 add. A skill's mentors
    are visited only within the block's stretch ``first:last`` of the level order (each list
    is in that order): a level window holds about a third of the mentors."""
    n_r, n_c = raw.shape
    acc = np.zeros(n_c, np.float64)
    seen = np.zeros(n_c, np.bool_)
    touched = np.empty(n_c, np.int64)
    n_skills = skill_ptr.size - 1
    stretch_start = np.empty(n_skills, np.int64)
    stretch_stop = np.empty(n_skills, np.int64)
    for skill in range(n_skills):
        a, b = skill_ptr[skill], skill_ptr[skill + 1]
        stretch_start[skill] = a + np.searchsorted(skill_position[a:b], first)
        stretch_stop[skill] = a + np.searchsorted(skill_position[a:b], last)
    for i in range(n_r):
        c_row = contact[group_e[i]]
        d_row = dept[dept_e[i]]
        for j in range(n_c):
            raw[i, j] = c_row[group_m[j]] + d_row[dept_m[j]] + per_col[j]
        row = rows[i]
        n_touched = 0
        for g in range(goal_ptr[row], goal_ptr[row + 1]):
            skill = goal_skill[g]
            weight = goal_points[g]
            for k in range(stretch_start[skill], stretch_stop[skill]):
                j = col_pos[skill_mentor[k]]
                if j < 0:
                    continue
                if not seen[j]:
                    seen[j] = True
                    touched[n_touched] = j
                    n_touched += 1
                acc[j] += weight * skill_level[k]
        scale = goal_scale[i]
        for t in range(n_touched):
            j = touched[t]
            raw[i, j] += np.float32(acc[j] * scale)
            acc[j] = 0.0
            seen[j] = False


@njit(cache=True, nogil=True)
def _pair_points(
    e_idx, m_idx, goal_ptr, goal_skill, goal_points, skill_ptr, skill, skill_level, goal_weight_sum, tz_e, tz_m,
    overlap_seconds, level_e, level_m, dept_e, dept_m, pref_ptr, pref_mentor, wg, wt, ws, wc, reverse, ideal,
    half_width, points, components, goals_out, tz_out, seniority_out, cross_out,
):
    """``points[k]`` of pair (``e_idx[k]``, ``m_idx[k]``) and, with ``components``, its four
    components: ``scoring.pair_components``, ``combine`` and ``to_points`` for a traditional or
    reverse program, in their operation order (float64, no fast-math), so the points equal the
    scalar reference's. The goal fit's numerator is a merge of the two sorted skill lists; its
    terms are small integers, so the float64 sum is exact whatever the order."""
    total = wg + wt + ws + wc
    for k in range(e_idx.size):
        e = e_idx[k]
        m = m_idx[k]
        g, g_end = goal_ptr[e], goal_ptr[e + 1]
        s, s_end = skill_ptr[m], skill_ptr[m + 1]
        numerator = 0.0
        while g < g_end and s < s_end:
            if goal_skill[g] < skill[s]:
                g += 1
            elif goal_skill[g] > skill[s]:
                s += 1
            else:
                numerator += goal_points[g] * skill_level[s]
                g += 1
                s += 1
        den = MAX_PROFICIENCY * np.float64(goal_weight_sum[e])
        goals = numerator / den if den > 0 else 0.0
        tz = min(1.0, (overlap_seconds[tz_e[e], tz_m[m]] / 3600.0) / TZ_FULL_HOURS)
        gap = level_e[e] - level_m[m] if reverse else level_m[m] - level_e[e]
        seniority = max(0.0, 1.0 - abs(gap - ideal) / (half_width + 1.0))
        cross = 1.0 if dept_e[e] != dept_m[m] and dept_e[e] >= 0 and dept_m[m] >= 0 else 0.0
        score = (wg * goals + wt * tz + ws * seniority + wc * cross) / total if total > 0 else 0.0
        for q in range(pref_ptr[e], pref_ptr[e + 1]):
            if pref_mentor[q] == m:
                score = min(1.0, score + PREFERRED_BONUS)
                break
        points[k] = np.int64(np.floor(score * SCORE_SCALE + 0.5))
        if components:
            goals_out[k] = goals
            tz_out[k] = tz
            seniority_out[k] = seniority
            cross_out[k] = cross
