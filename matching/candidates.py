"""Candidate arcs: every eligible pair, pruned to the best ``top_k`` mentors per mentee.

Mentees are processed level by level: the level-gap rule leaves each level a contiguous slice
of the level-sorted mentors, so the dense blocks only cover pairs that can pass it. Blocks are
bounded in size (``BLOCK_PAIRS``) so memory stays flat however large the organisation.

Pruning is only a speed-up: ``threshold`` records, per mentee, the best score among the pairs
that were cut, and ``flow.certify`` later proves (by reduced costs and a min cut) that none of
them could improve the optimum, adding back any that could.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .encode import Encoded
from .rules import BlockEvaluator, level_bounds

BLOCK_PAIRS = 1 << 21  # ~2M pairs per dense block (a few tens of MB of temporaries)
DEFAULT_TOP_K = 16


@dataclass
class Candidates:
    mentee: np.ndarray  # int64, sorted by (mentee, mentor)
    mentor: np.ndarray  # int64
    points: np.ndarray  # int64 score points 0..1000
    threshold: np.ndarray  # per mentee: best points among pruned eligible pairs, -1 if none
    eligible: np.ndarray  # per mentee: number of eligible mentors (before pruning)

    @property
    def keys_count(self) -> int:
        return int(self.mentee.size)


def mentor_columns(enc: Encoded, include_zero_capacity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mentors (with capacity, unless asked otherwise) sorted by (level, index), and their levels."""
    usable = np.arange(enc.n_mentors) if include_zero_capacity else np.flatnonzero(enc.mentors.capacity > 0)
    order = usable[np.argsort(enc.mentors.level[usable], kind="stable")]
    return order, enc.mentors.level[order]


def level_blocks(enc: Encoded, rows: np.ndarray | None = None, include_zero_capacity: bool = False):
    """Yield (mentee rows, mentor cols) blocks covering every level-compatible pair."""
    cols_sorted, col_levels = mentor_columns(enc, include_zero_capacity)
    if rows is None:
        rows = np.arange(enc.n_mentees)
    rows = rows[np.argsort(enc.mentees.level[rows], kind="stable")]
    levels = enc.mentees.level[rows]
    boundaries = np.flatnonzero(np.diff(levels)) + 1
    for group in np.split(rows, boundaries):
        if group.size == 0:
            continue
        lo, hi = level_bounds(enc, int(enc.mentees.level[group[0]]))
        a, b = np.searchsorted(col_levels, lo, "left"), np.searchsorted(col_levels, hi, "right")
        cols = cols_sorted[a:b]
        if cols.size == 0:
            continue
        step = max(1, BLOCK_PAIRS // cols.size)
        for start in range(0, group.size, step):
            yield group[start : start + step], cols


def top_k_per_row(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col) of the kept pairs and the per-row best pruned points (-1 if none)."""
    n_rows, n_cols = points.shape
    if n_cols <= k:
        r, c = np.nonzero(points >= 0)
        return r, c, np.full(n_rows, -1, np.int64)
    part = np.argpartition(-points, k, axis=1)[:, : k + 1]
    kept = part[:, :k]
    threshold = np.take_along_axis(points, part[:, k : k + 1], axis=1)[:, 0].astype(np.int64)
    kept_points = np.take_along_axis(points, kept, axis=1)
    r, j = np.nonzero(kept_points >= 0)
    return r, kept[r, j], np.maximum(threshold, -1)


class MentorSideTop:
    """Running top ``k`` mentees per mentor across blocks.

    Mentee-side top-k alone concentrates on popular mentors and loses coverage (less popular
    mentors end up with no arcs); keeping each mentor's best mentees too restores it. Entries
    at or below a mentor's current k-th best are skipped, so the buffer stays small.
    """

    def __init__(self, n_mentors: int, k: int) -> None:
        self.k = k
        self.floor = np.full(n_mentors, -1, np.int64)
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.buffered = 0

    def add(self, rows: np.ndarray, cols: np.ndarray, points: np.ndarray) -> None:
        r, c = np.nonzero(points > self.floor[cols][None, :])
        if r.size == 0:
            return
        self.parts.append((rows[r], cols[c], points[r, c].astype(np.int64)))
        self.buffered += r.size
        if self.buffered > 4 * BLOCK_PAIRS:
            self._compact()

    def _compact(self) -> None:
        if not self.parts:
            return
        e = np.concatenate([p[0] for p in self.parts]).astype(np.int64)
        m = np.concatenate([p[1] for p in self.parts]).astype(np.int64)
        p = np.concatenate([p[2] for p in self.parts])
        order = np.lexsort((e, -p, m))
        e, m, p = e[order], m[order], p[order]
        starts = np.flatnonzero(np.r_[True, m[1:] != m[:-1]])
        rank = np.arange(m.size) - np.repeat(starts, np.diff(np.r_[starts, m.size]))
        keep = rank < self.k
        full = rank == self.k - 1
        self.floor[m[full]] = p[full]
        self.parts = [(e[keep], m[keep], p[keep])]
        self.buffered = int(keep.sum())

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._compact()
        if not self.parts:
            return (np.zeros(0, np.int64),) * 3
        return self.parts[0]


def build_candidates(enc: Encoded, top_k: int | None = DEFAULT_TOP_K, mentor_k: int | None = None) -> Candidates:
    evaluator = BlockEvaluator(enc)
    threshold = np.full(enc.n_mentees, -1, np.int64)
    eligible = np.zeros(enc.n_mentees, np.int64)
    parts_e, parts_m, parts_p = [], [], []
    mentor_side = MentorSideTop(enc.n_mentors, mentor_k or top_k) if top_k is not None else None
    for rows, cols in level_blocks(enc):
        points, _ = evaluator.evaluate(rows, cols)
        eligible[rows] = (points >= 0).sum(axis=1)
        if top_k is None:
            r, c = np.nonzero(points >= 0)
        else:
            r, c, thr = top_k_per_row(points, top_k)
            threshold[rows] = thr
            mentor_side.add(rows, cols, points)
        parts_e.append(rows[r])
        parts_m.append(cols[c])
        parts_p.append(points[r, c])
    if mentor_side is not None:
        e, m, p = mentor_side.result()
        parts_e.append(e)
        parts_m.append(m)
        parts_p.append(p)
    return _sorted_candidates(enc, parts_e, parts_m, parts_p, threshold, eligible)


def _sorted_candidates(enc, parts_e, parts_m, parts_p, threshold, eligible) -> Candidates:
    if parts_e:
        mentee = np.concatenate(parts_e).astype(np.int64)
        mentor = np.concatenate(parts_m).astype(np.int64)
        points = np.concatenate(parts_p).astype(np.int64)
    else:
        mentee = mentor = points = np.zeros(0, np.int64)
    keys, first = np.unique(mentee * enc.n_mentors + mentor, return_index=True)  # sorted, no duplicates
    return Candidates(mentee[first], mentor[first], points[first], threshold, eligible)


def full_rows(enc: Encoded, evaluator: BlockEvaluator, rows: np.ndarray, with_codes: bool = False):
    """Yield (rows, cols, points, codes) over every level-compatible mentor of these mentees."""
    for block_rows, cols in level_blocks(enc, rows):
        points, codes = evaluator.evaluate(block_rows, cols, with_codes=with_codes)
        yield block_rows, cols, points, codes


def merge(enc: Encoded, cands: Candidates, mentee: np.ndarray, mentor: np.ndarray, points: np.ndarray) -> Candidates:
    """Candidates plus extra arcs (assumed not yet present), re-sorted."""
    return _sorted_candidates(
        enc,
        [cands.mentee, mentee],
        [cands.mentor, mentor],
        [cands.points, points],
        cands.threshold,
        cands.eligible,
    )


def present_mask(cands: Candidates, rows: np.ndarray, cols: np.ndarray, n_mentors: int) -> np.ndarray:
    """Boolean (rows x cols): which pairs of the block are already candidate arcs."""
    start = np.searchsorted(cands.mentee, rows, "left")
    stop = np.searchsorted(cands.mentee, rows, "right")
    counts = stop - start
    total = int(counts.sum())
    mask = np.zeros((rows.size, cols.size), bool)
    if total == 0:
        return mask
    arcs = np.repeat(start - (np.cumsum(counts) - counts), counts) + np.arange(total)
    row_pos = np.repeat(np.arange(rows.size), counts)
    col_of = np.full(n_mentors, -1, np.int64)
    col_of[cols] = np.arange(cols.size)
    c = col_of[cands.mentor[arcs]]
    hit = c >= 0
    mask[row_pos[hit], c[hit]] = True
    return mask
