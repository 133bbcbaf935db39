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

# The column side updates the heaps of this many columns at a time, over all of a block's
# rows: row by row across every column, each push missed the cache (100k x 50k, mentor_k 72,
# one core over every block: 8.6 s against 6.4 s in tiles). 256 columns' heaps (~220 KB) stay
# in a core's cache; 64 to 1024 measured alike, 16 half as fast.
COLUMN_TILE = 256


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
        lambda lo, hi: _columns_top(raw, rows, cols, lo, hi, floor, col_values, col_rows, col_size), parts(n_c, n_r)
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
def _columns_top(raw, rows, cols, lo, hi, floor, col_values, col_rows, col_size):
    """The column side of ``block_top`` for columns ``lo:hi`` of the block, rows in order."""
    n_r = raw.shape[0]
    mentor_k = col_values.shape[1]
    col_v = col_values.reshape(-1)
    col_r = col_rows.reshape(-1)
    # What a value must exceed to enter column j's heap (a contiguous copy for the inner loop).
    col_floor = np.empty(hi - lo, np.float32)
    for j in range(lo, hi):
        col = cols[j]
        col_floor[j - lo] = col_v[col * mentor_k] if col_size[col] == mentor_k else floor
    # Tiles of columns, each over every row: a column's heap sees the rows in the same order,
    # and the tile's heaps stay in cache between its pushes.
    for tile in range(lo, hi, COLUMN_TILE):
        for i in range(n_r):
            row_id = rows[i]
            for j in range(tile, min(tile + COLUMN_TILE, hi)):
                value = raw[i, j]
                if value > col_floor[j - lo]:
                    col = cols[j]
                    start = col * mentor_k
                    filled = col_size[col]
                    if filled < mentor_k:
                        heap_push(col_v, col_r, start, filled, value, row_id)
                        col_size[col] = filled + 1
                        if filled + 1 == mentor_k:
                            col_floor[j - lo] = col_v[start]
                    else:
                        col_v[start], col_r[start] = value, row_id
                        sift_down(col_v, col_r, start, mentor_k, 0)
                        col_floor[j - lo] = col_v[start]
