"""Compiled top-k selection over a dense block of raw scores (numba).

One pass over the block keeps, with small min-heaps, each row's best ``k + 1`` eligible
entries and each column's best ``mentor_k`` entries seen in any block so far. ``np.argpartition``
did the same in two passes (the column side on a transposed copy) and took most of the
candidate build's time: a heap entry is compared with the new value and, for almost all
values, left alone.

Ties: a value equal to a heap's least entry does not enter it, so of equal values the one seen
first stays -- the block's order, which ``encode`` makes independent of the input order.

Compiled on first use and cached next to this file (``cache=True``); ``matching.warm_up``
compiles it ahead of the first round.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _sift_down(values, slots, start, size, at):
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
def _push(values, slots, start, size, value, slot):
    """Add to the min-heap ``values[start:start + size]`` (which has room): sift up."""
    at = size
    while at > 0:
        parent = (at - 1) // 2
        if values[start + parent] <= value:
            break
        values[start + at], slots[start + at] = values[start + parent], slots[start + parent]
        at = parent
    values[start + at], slots[start + at] = value, slot


@njit(cache=True, nogil=True)
def block_top(raw, rows, cols, floor, top_k, out_row, out_col, cut, col_values, col_rows, col_size):
    """Select from ``raw`` (float32, rows x cols) the entries above ``floor``.

    Row side: each row's best ``top_k`` entries go to ``out_row``/``out_col`` (as the block's
    row ids and column ids); ``cut[i]`` is the row's next best value (the best one left out),
    or ``-inf`` when the row has at most ``top_k`` entries above ``floor``. Returns the number
    of entries written.

    Column side: ``col_values``/``col_rows`` (n_columns x mentor_k, ``col_size`` filled, a
    min-heap per column) keep each column's best entries over every block passed so far.
    """
    n_r, n_c = raw.shape
    width = top_k + 1
    mentor_k = col_values.shape[1]
    heap_v = np.empty(width, np.float32)
    heap_j = np.empty(width, np.int64)
    col_v = col_values.reshape(-1)
    col_r = col_rows.reshape(-1)
    # What a value must exceed to enter column j's heap (a contiguous copy for the inner loop).
    col_floor = np.empty(n_c, np.float32)
    for j in range(n_c):
        col = cols[j]
        col_floor[j] = col_v[col * mentor_k] if col_size[col] == mentor_k else floor
    n_out = 0
    for i in range(n_r):
        size = 0
        row_floor = floor
        row_id = rows[i]
        for j in range(n_c):
            value = raw[i, j]
            if value > row_floor:
                if size < width:
                    _push(heap_v, heap_j, 0, size, value, j)
                    size += 1
                    if size == width:
                        row_floor = heap_v[0]
                else:
                    heap_v[0], heap_j[0] = value, j
                    _sift_down(heap_v, heap_j, 0, size, 0)
                    row_floor = heap_v[0]
            if value > col_floor[j]:
                col = cols[j]
                start = col * mentor_k
                filled = col_size[col]
                if filled < mentor_k:
                    _push(col_v, col_r, start, filled, value, row_id)
                    col_size[col] = filled + 1
                    if filled + 1 == mentor_k:
                        col_floor[j] = col_v[start]
                else:
                    col_v[start], col_r[start] = value, row_id
                    _sift_down(col_v, col_r, start, mentor_k, 0)
                    col_floor[j] = col_v[start]
        first = 0
        cut[i] = -np.inf
        if size == width:
            cut[i] = heap_v[0]  # the least of top_k + 1: the best entry left out
            first = 1
        for h in range(first, size):
            out_row[n_out] = row_id
            out_col[n_out] = cols[heap_j[h]]
            n_out += 1
    return n_out
