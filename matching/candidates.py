"""Candidate arcs: every eligible pair, pruned to the best ``top_k`` mentors per mentee.

Mentees are processed level by level: the level-gap rule leaves each level a contiguous slice
of the level-sorted mentors, so the dense blocks only cover pairs that can pass it. Blocks are
bounded in size (``BLOCK_PAIRS``; the candidate pass's ``CANDIDATE_BLOCK_PAIRS``, in one reused
buffer) so memory stays flat however large the organisation.

Pruning is only a speed-up: ``threshold`` records, per mentee, the best score among the pairs
that were cut, and ``flow.certify`` later proves (by reduced costs and a min cut) that none of
them could improve the optimum, adding back any that could.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numba import njit

from .encode import Encoded
from .flow import stable_order
from .rules import BlockEvaluator, level_bounds
from .topk import block_top

BLOCK_PAIRS = 1 << 21  # ~2M pairs per dense block (a few tens of MB of temporaries)
# The candidate pass's blocks are larger (32 MB of raw scores, in one buffer): its column side
# loads a column's heap into cache once per block, so more rows per block mean fewer loads
# (100k x 50k: the build 9.1-10.6 s against 11.2-11.8 s at BLOCK_PAIRS; 20k x 10k alike).
CANDIDATE_BLOCK_PAIRS = 1 << 23
DEFAULT_TOP_K = 16  # up to TOP_K_GROWS_FROM mentees; see default_top_k
TOP_K_GROWS_FROM = 20_000


def default_top_k(n_mentees: int) -> int:
    """Mentors kept per mentee: 16 up to 20k mentees, then growing with the square root of the
    size. Larger organisations have more near-equal mentors per mentee, so a narrow first
    candidate set sets prices further from the full problem's and the certificate needs more
    fresh solves (measured on the synthetic organisation, same optimum each time: 50k x 25k
    35.5 s at 16 and 28.1 s at 25; 100k x 50k ~175 s at 16, 114 s at 40; 20k x 10k is
    slower at 24 than at 16)."""
    return max(DEFAULT_TOP_K, round(DEFAULT_TOP_K * math.sqrt(n_mentees / TOP_K_GROWS_FROM)))


@dataclass(frozen=True)
class Candidates:
    mentee: np.ndarray  # int64, sorted by (mentee, mentor)
    mentor: np.ndarray  # int64
    points: np.ndarray  # int64 score points 0..1000
    threshold: np.ndarray  # per mentee: best points among pruned eligible pairs, -1 if none
    _row_ptr: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def keys_count(self) -> int:
        return int(self.mentee.size)

    def row_ranges(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, stop) of each row's arcs. The pointers are built once per candidate set (the
        arrays are never changed in place): a binary search per row over millions of arcs misses
        the cache at every step (100k x 50k: 0.35 ms per partial screen of ~100 rows)."""
        if self._row_ptr is None:  # frozen: the arrays it points into are never reassigned
            object.__setattr__(self, "_row_ptr", np.searchsorted(self.mentee, np.arange(self.threshold.size + 1)))
        return self._row_ptr[rows], self._row_ptr[rows + 1]


def mentor_columns(enc: Encoded, include_zero_capacity: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Mentors (with capacity, unless asked otherwise) sorted by (level, index), and their levels."""
    usable = np.arange(enc.n_mentors) if include_zero_capacity else np.flatnonzero(enc.mentors.capacity > 0)
    order = usable[np.argsort(enc.mentors.level[usable], kind="stable")]
    return order, enc.mentors.level[order]


def level_blocks(
    enc: Encoded,
    rows: np.ndarray | None = None,
    include_zero_capacity: bool = False,
    block_pairs: int = BLOCK_PAIRS,
    mentors: np.ndarray | None = None,
):
    """Yield (mentee rows, mentor cols) blocks covering every level-compatible pair, each of at
    most ``block_pairs`` pairs (or one row); ``mentors`` (a boolean per mentor): only those
    columns, blocks sized to them."""
    cols_sorted, col_levels = mentor_columns(enc, include_zero_capacity)
    if mentors is not None:
        keep = mentors[cols_sorted]
        cols_sorted, col_levels = cols_sorted[keep], col_levels[keep]
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
        step = max(1, block_pairs // cols.size)
        for start in range(0, group.size, step):
            yield group[start : start + step], cols


def build_candidates(enc: Encoded) -> Candidates:
    """Every eligible arc, scored by the exact evaluator (peer pools, unpruned runs, tests)."""
    evaluator = BlockEvaluator(enc)
    threshold = np.full(enc.n_mentees, -1, np.int64)
    parts_e, parts_m, parts_p = [], [], []
    for rows, cols in level_blocks(enc):
        points, _ = evaluator.evaluate(rows, cols)
        r, c = np.nonzero(points >= 0)
        parts_e.append(rows[r])
        parts_m.append(cols[c])
        parts_p.append(points[r, c])
    return _sorted_candidates(enc, parts_e, parts_m, parts_p, threshold)


def _sorted_candidates(enc, parts_e, parts_m, parts_p, threshold) -> Candidates:
    if parts_e:
        mentee = np.concatenate(parts_e).astype(np.int64)
        mentor = np.concatenate(parts_m).astype(np.int64)
        points = np.concatenate(parts_p).astype(np.int64)
    else:
        mentee = mentor = points = np.zeros(0, np.int64)
    keys, first = np.unique(mentee * enc.n_mentors + mentor, return_index=True)  # sorted, no duplicates
    return Candidates(mentee[first], mentor[first], points[first], threshold)


def arc_positions(enc: Encoded, cands: Candidates, mentee: np.ndarray, mentor: np.ndarray) -> np.ndarray:
    """Index in ``cands`` of each pair (mentee, mentor), all of them arcs of ``cands``."""
    keys = cands.mentee * enc.n_mentors + cands.mentor
    return np.searchsorted(keys, mentee * enc.n_mentors + mentor)


class BlockArcs(NamedTuple):
    """The kept arcs of a block's rows: row i's mentors are ``mentor[start[i]:stop[i]]``, and
    ``col_of`` maps a mentor to its column of the block (-1 outside it)."""

    start: np.ndarray
    stop: np.ndarray
    mentor: np.ndarray
    col_of: np.ndarray


def block_arcs(cands: Candidates, rows: np.ndarray, cols: np.ndarray, n_mentors: int) -> BlockArcs:
    """Which pairs of the block are already candidate arcs, as a compiled pass reads them
    (marking a row's few arcs costs less than a block-sized mask: certify's screens)."""
    start, stop = cands.row_ranges(rows)
    col_of = np.full(n_mentors, -1, np.int64)
    col_of[cols] = np.arange(cols.size)
    return BlockArcs(start, stop, cands.mentor, col_of)


def present_mask(cands: Candidates, rows: np.ndarray, cols: np.ndarray, n_mentors: int) -> np.ndarray:
    """Boolean (rows x cols): which pairs of the block are already candidate arcs."""
    arcs = block_arcs(cands, rows, cols, n_mentors)
    counts = arcs.stop - arcs.start
    total = int(counts.sum())
    mask = np.zeros((rows.size, cols.size), bool)
    if total == 0:
        return mask
    at = np.repeat(arcs.start - (np.cumsum(counts) - counts), counts) + np.arange(total)
    row_pos = np.repeat(np.arange(rows.size), counts)
    c = arcs.col_of[arcs.mentor[at]]
    hit = c >= 0
    mask[row_pos[hit], c[hit]] = True
    return mask


# --- fast path (bipartite programs) ----------------------------------------------------------


def build_candidates_fast(enc: Encoded, scorer, top_k: int = DEFAULT_TOP_K, mentor_k: int | None = None) -> Candidates:
    """Top ``top_k`` mentors per mentee and top ``mentor_k`` mentees per mentor, ranked on the
    float32 raw score; kept arcs are then scored exactly. ``threshold`` is an upper bound on
    the exact points of every arc left out of a mentee's own top-k."""
    from .fastscore import ELIGIBLE

    mentor_k = mentor_k or top_k
    threshold = np.full(enc.n_mentees, -1, np.int64)
    best_raw = np.full((enc.n_mentors, mentor_k), -np.inf, np.float32)
    best_row = np.full((enc.n_mentors, mentor_k), -1, np.int64)
    best_size = np.zeros(enc.n_mentors, np.int64)
    parts_e, parts_m = [], []
    # One buffer for every block's raw scores: a fresh one per block of this size would be
    # mapped and faulted in anew each time (beyond malloc's reuse threshold).
    buffer = np.empty(max(CANDIDATE_BLOCK_PAIRS, enc.n_mentors), np.float32)
    for rows, cols in level_blocks(enc, block_pairs=CANDIDATE_BLOCK_PAIRS):
        raw = scorer.raw_block(rows, cols, out=buffer)
        out_e = np.empty(rows.size * top_k, np.int64)
        out_m = np.empty(rows.size * top_k, np.int64)
        cut = np.empty(rows.size, np.float32)
        n_out = block_top(
            raw, rows, cols, np.float32(ELIGIBLE), top_k, out_e, out_m, cut, best_raw, best_row, best_size
        )
        cut_rows = cut > ELIGIBLE
        threshold[rows[cut_rows]] = scorer.points_upper_bound(cut[cut_rows])
        parts_e.append(out_e[:n_out])
        parts_m.append(out_m[:n_out])
    m_idx, slot = np.nonzero(best_raw > ELIGIBLE)
    parts_e.append(best_row[m_idx, slot])
    parts_m.append(m_idx)
    mentee, mentor = unique_pairs(np.concatenate(parts_e), np.concatenate(parts_m), enc.n_mentees)
    points = scorer.exact_points(mentee, mentor)
    keep = points >= 0
    return Candidates(mentee[keep], mentor[keep], points[keep], threshold)


def unique_pairs(mentee: np.ndarray, mentor: np.ndarray, n_mentees: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (mentee, mentor) pairs, sorted by mentee then mentor (int64 arrays): what
    ``encode.unique_keys`` gives of their keys, but a counting sort by mentee
    (``flow.stable_order``) and a small sort per mentee (100k x 50k: the 8 M pairs of the
    candidate build in 0.3-0.7 s, against 0.74-0.83 s)."""
    order, ptr = stable_order(mentee, n_mentees)
    out_mentee = np.empty(mentee.size, np.int64)
    out_mentor = np.empty(mentee.size, np.int64)
    n = _unique_in_buckets(mentor[order].astype(np.int64), ptr, out_mentee, out_mentor)
    return out_mentee[:n], out_mentor[:n]


@njit(cache=True, nogil=True)
def _unique_in_buckets(bucket, ptr, out_mentee, out_mentor):
    """``unique_pairs``' kernel: each mentee's mentors (``bucket[ptr[i]:ptr[i + 1]]``) sorted in
    place and written without repeats; returns how many pairs were written."""
    n = 0
    for i in range(ptr.size - 1):
        row = bucket[ptr[i] : ptr[i + 1]]
        row.sort()
        for k in range(row.size):
            if k == 0 or row[k] != row[k - 1]:
                out_mentee[n] = i
                out_mentor[n] = row[k]
                n += 1
    return n
