"""Compiled top-k selection over a dense block of raw scores (numba).

Small min-heaps keep each row's best ``k + 1`` eligible entries and each column's best
``mentor_k`` entries seen in any block so far: a heap entry is compared with the new value and,
for almost all values, left alone (``np.argpartition`` did the same and took most of the
candidate build's time). The row side runs over parts of the rows, the column side over parts
of the columns, each part on its own core (``parallel``).

Ties: a value equal to a heap's least entry does not enter it, so of equal values the one seen
first stays -- the block's order, which ``encode`` makes independent of the input order.

Compiled on first use and cached next to this file (``cache=True``); ``matching.warm_up``
compiles it ahead of the first round.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .parallel import parts, run_parts

# The column side notes at most this many entries (20 bytes each, with their sorted copy)
# before it applies them to the heaps (see ``_columns_top``); a block's first rows, before the
# heaps fill, note most of their entries. 2^18 and 2^20 measured alike at 100k x 50k.
HIT_NOTES = 1 << 18


@njit(cache=True, nogil=True)
def sift_down(values, slots, start, size, at):
    """Restore the min-heap ``values[start:start + size]`` (with ``slots`` alongside) below ``at``."""
    value, slot = values[start + at], slots[start + at]
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and values[start + child + 1] < values[start + child]:
            child += 1
        if values[start + child] >= value:
            break
        values[start + at], slots[start + at] = values[start + child], slots[start + child]
        at = child
    values[start + at], slots[start + at] = value, slot


@njit(cache=True, nogil=True)
def heap_push(values, slots, start, size, value, slot):
    """Add to the min-heap ``values[start:start + size]`` (which has room): sift up."""
    at = size
    while at > 0:
        parent = (at - 1) // 2
        if values[start + parent] <= value:
            break
        values[start + at], slots[start + at] = values[start + parent], slots[start + parent]
        at = parent
    values[start + at], slots[start + at] = value, slot


def block_top(raw, rows, cols, floor, top_k, out_row, out_col, cut, col_values, col_rows, col_size) -> int:
    """Select from ``raw`` (float32, rows x cols) the entries above ``floor``.

    Row side: each row's best ``top_k`` entries go to ``out_row``/``out_col`` (as the block's
    row ids and column ids, rows in order); ``cut[i]`` is the row's next best value (the best
    one left out), or ``-inf`` when the row has at most ``top_k`` entries above ``floor``.
    Returns the number of entries written.

    Column side: ``col_values``/``col_rows`` (n_columns x mentor_k, ``col_size`` filled, a
    min-heap per column) keep each column's best entries over every block passed so far.

    Parts of the rows, then parts of the columns, run on every core (``parallel``): a row's
    entries depend on that row alone, and a column's heap sees the rows in order whatever the
    split, so the result is the same as one pass.
    """
    n_r, n_c = raw.shape

    def row_part(lo: int, hi: int) -> int:
        return _rows_top(raw[lo:hi], rows[lo:hi], cols, floor, top_k, out_row[lo * top_k :], out_col[lo * top_k :], cut[lo:hi])

    split = parts(n_r, n_c)
    counts = run_parts(row_part, split)
    n_out = 0
    for (lo, _), count in zip(split, counts):
        if lo * top_k != n_out:
            out_row[n_out : n_out + count] = out_row[lo * top_k : lo * top_k + count]
            out_col[n_out : n_out + count] = out_col[lo * top_k : lo * top_k + count]
        n_out += count
    run_parts(
        lambda lo, hi: _columns_top(raw, rows, cols, lo, hi, floor, col_values, col_rows, col_size, HIT_NOTES),
        parts(n_c, n_r),
    )
    return n_out


@njit(cache=True, nogil=True)
def _rows_top(raw, rows, cols, floor, top_k, out_row, out_col, cut):
    """The row side of ``block_top`` for these rows; returns the number of entries written."""
    n_r, n_c = raw.shape
    width = top_k + 1
    heap_v = np.empty(width, np.float32)
    heap_j = np.empty(width, np.int64)
    n_out = 0
    for i in range(n_r):
        size = 0
        row_floor = floor
        for j in range(n_c):
            value = raw[i, j]
            if value > row_floor:
                if size < width:
                    heap_push(heap_v, heap_j, 0, size, value, j)
                    size += 1
                    if size == width:
                        row_floor = heap_v[0]
                else:
                    heap_v[0], heap_j[0] = value, j
                    sift_down(heap_v, heap_j, 0, size, 0)
                    row_floor = heap_v[0]
        first = 0
        cut[i] = -np.inf
        if size == width:
            cut[i] = heap_v[0]  # the least of top_k + 1: the best entry left out
            first = 1
        for h in range(first, size):
            out_row[n_out] = rows[i]
            out_col[n_out] = cols[heap_j[h]]
            n_out += 1
    return n_out


@njit(cache=True, nogil=True)
def _columns_top(raw, rows, cols, lo, hi, floor, col_values, col_rows, col_size, hit_capacity):
    """The column side of ``block_top`` for columns ``lo:hi`` of the block, rows in order.

    The block is read row by row (in tiles of columns over every row, each row's stretch of a
    tile missed the cache: 100k x 50k, 3.8 of the 4.3 s this pass took on one core). An entry
    above its column's least heap value is only noted (``hit_capacity`` notes at most); the
    notes are then applied column by column, rows in order, each checked again against the
    heap as it is by then, so every heap sees what a pass of its column alone would (the
    least value only rises: an entry not noted would not have entered either)."""
    n_r = raw.shape[0]
    mentor_k = col_values.shape[1]
    col_v = col_values.reshape(-1)
    col_r = col_rows.reshape(-1)
    width = hi - lo
    # What a value must exceed to enter column j's heap (a contiguous copy for the scan).
    col_floor = np.empty(width, np.float32)
    for j in range(width):
        col = cols[lo + j]
        col_floor[j] = col_v[col * mentor_k] if col_size[col] == mentor_k else floor
    hit_capacity = max(hit_capacity, width)  # room for a whole row
    hit_row = np.empty(hit_capacity, np.int32)
    hit_col = np.empty(hit_capacity, np.int32)
    hit_value = np.empty(hit_capacity, np.float32)
    by_col = np.empty(hit_capacity, np.int32)
    value_by_col = np.empty(hit_capacity, np.float32)
    start = np.zeros(width + 1, np.int64)
    heaps = (col_floor, col_v, col_r, col_size, mentor_k)
    n_hits = 0
    for i in range(n_r):
        if n_hits + width > hit_capacity:
            _apply_notes(rows, cols, lo, hit_row, hit_col, hit_value, n_hits, by_col, value_by_col, start, *heaps)
            n_hits = 0
        line = raw[i, lo:hi]
        for j in range(width):
            if line[j] > col_floor[j]:
                hit_row[n_hits] = i
                hit_col[n_hits] = j
                hit_value[n_hits] = line[j]
                n_hits += 1
    _apply_notes(rows, cols, lo, hit_row, hit_col, hit_value, n_hits, by_col, value_by_col, start, *heaps)


@njit(cache=True, nogil=True)
def _apply_notes(
    rows, cols, lo, hit_row, hit_col, hit_value, n_hits, by_col, value_by_col, start, col_floor, col_v, col_r, col_size, mentor_k
):
    """``_columns_top``'s noted entries into the heaps: sorted by column (a stable counting
    sort, rows stay in order), then each column's in turn, its heap in cache meanwhile."""
    width = col_floor.size
    start[:] = 0
    for h in range(n_hits):
        start[hit_col[h] + 1] += 1
    for j in range(width):
        start[j + 1] += start[j]
    for h in range(n_hits):
        j = hit_col[h]
        by_col[start[j]] = hit_row[h]
        value_by_col[start[j]] = hit_value[h]
        start[j] += 1
    first = 0  # start[j] is now the end of column j's notes
    for j in range(width):
        last = start[j]
        if last > first:
            col = cols[lo + j]
            at = col * mentor_k
            for h in range(first, last):
                i = by_col[h]
                value = value_by_col[h]
                if value > col_floor[j]:
                    filled = col_size[col]
                    if filled < mentor_k:
                        heap_push(col_v, col_r, at, filled, value, rows[i])
                        col_size[col] = filled + 1
                        if filled + 1 == mentor_k:
                            col_floor[j] = col_v[at]
                    else:
                        col_v[at], col_r[at] = value, rows[i]
                        sift_down(col_v, col_r, at, mentor_k, 0)
                        col_floor[j] = col_v[at]
        first = last
