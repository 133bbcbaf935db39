"""The compiled top-k selection (``topk.block_top``) against a plain NumPy selection."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import parallel, topk

FLOOR = np.float32(-1.0)
COLUMNS = 256  # blocks span up to 3x as many columns (a thread's part of them varies)


def _blocks(rng, n_cols_total, n_blocks):
    """Blocks of distinct raw values (so every top-k is one set), about a third ineligible."""
    out, first_row, used = [], 0, 0
    values = rng.permutation(1 << 20).astype(np.float32)  # distinct across blocks too (exact below 2**24)
    for _ in range(n_blocks):
        n_r = int(rng.integers(1, 40))
        cols = np.sort(rng.choice(n_cols_total, int(rng.integers(COLUMNS + 1, 3 * COLUMNS)), replace=False))
        raw = values[used : used + n_r * cols.size].reshape(n_r, cols.size).copy()
        used += raw.size
        raw[rng.random(raw.shape) < 0.35] = -1e6
        out.append((np.arange(first_row, first_row + n_r, dtype=np.int64), cols.astype(np.int64), raw))
        first_row += n_r
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 8))
def test_block_top_keeps_each_row_s_and_each_column_s_best_entries(seed, top_k, mentor_k):
    rng = np.random.default_rng(seed)
    n_cols_total = 3 * COLUMNS
    col_values = np.full((n_cols_total, mentor_k), -np.inf, np.float32)
    col_rows = np.full((n_cols_total, mentor_k), -1, np.int64)
    col_size = np.zeros(n_cols_total, np.int64)
    seen: dict[int, list[tuple[float, int]]] = {}  # column -> (value, row) of its eligible entries
    for rows, cols, raw in _blocks(rng, n_cols_total, int(rng.integers(1, 4))):
        out_row = np.empty(rows.size * top_k, np.int64)
        out_col = np.empty(rows.size * top_k, np.int64)
        cut = np.empty(rows.size, np.float32)
        n_out = topk.block_top(raw, rows, cols, FLOOR, top_k, out_row, out_col, cut, col_values, col_rows, col_size)
        # Row side: each row's best top_k eligible entries, and the best one left out.
        got = {}
        for r, c in zip(out_row[:n_out].tolist(), out_col[:n_out].tolist()):
            got.setdefault(r, set()).add(c)
        for i, row in enumerate(rows.tolist()):
            eligible = np.flatnonzero(raw[i] > FLOOR)
            ranked = eligible[np.argsort(-raw[i, eligible])]
            assert got.get(row, set()) == set(cols[ranked[:top_k]].tolist())
            assert cut[i] == (raw[i, ranked[top_k]] if ranked.size > top_k else -np.inf)
        for j, col in enumerate(cols.tolist()):
            for i in np.flatnonzero(raw[:, j] > FLOOR):
                seen.setdefault(col, []).append((float(raw[i, j]), int(rows[i])))
    # Column side: each column's best mentor_k entries over every block so far.
    for col in range(n_cols_total):
        best = sorted(seen.get(col, []), reverse=True)[:mentor_k]
        kept = col_rows[col, : col_size[col]]
        assert col_size[col] == len(best)
        assert set(kept.tolist()) == {row for _, row in best}
        assert set(col_values[col, : col_size[col]].tolist()) == {value for value, _ in best}


def _column_alone(values, rows, col, heap_values, heap_rows, size):
    """One column's heap over the rows in order, in plain Python (the heap helpers themselves
    are shared): a value above the least entry of a full heap replaces it."""
    k = heap_values.shape[1]
    flat_values, flat_rows = heap_values.reshape(-1), heap_rows.reshape(-1)
    for value, row in zip(values.tolist(), rows.tolist()):
        least = flat_values[col * k] if size[col] == k else FLOOR
        if not value > least:
            continue
        if size[col] < k:
            topk.heap_push(flat_values, flat_rows, col * k, size[col], np.float32(value), row)
            size[col] += 1
        else:
            flat_values[col * k], flat_rows[col * k] = value, row
            topk.sift_down(flat_values, flat_rows, col * k, k, 0)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 2**32 - 1), st.integers(1, 8), st.sampled_from([2, 5, None]), st.integers(1, 3),
    st.sampled_from([1, 700, topk.HIT_NOTES]),
)
def test_the_column_side_equals_each_column_taken_alone(seed, mentor_k, distinct, n_threads, notes):
    """Split over threads, its entries noted and applied in batches (``notes``: 1 applies them
    after every row), the column side leaves every column's heap as passing that column alone
    over the rows in order does -- with many tied values too (``distinct`` values, or all
    distinct), where the order the rows arrive in decides."""
    rng = np.random.default_rng(seed)
    n_cols_total = 3 * COLUMNS
    blocks = _blocks(rng, n_cols_total, int(rng.integers(1, 4)))
    if distinct is not None:
        for _, _, raw in blocks:
            eligible = raw > FLOOR
            raw[eligible] = rng.integers(0, distinct, int(eligible.sum()))

    def heaps():
        return (
            np.full((n_cols_total, mentor_k), -np.inf, np.float32),
            np.full((n_cols_total, mentor_k), -1, np.int64),
            np.zeros(n_cols_total, np.int64),
        )

    together, alone = heaps(), heaps()
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(parallel, "MIN_PART", 1)  # split even these small blocks
        patched.setattr(parallel, "THREADS", n_threads)
        patched.setattr(topk, "HIT_NOTES", notes)
        for rows, cols, raw in blocks:
            out = np.empty(rows.size * 2, np.int64)
            topk.block_top(raw, rows, cols, FLOOR, 2, out, out.copy(), np.empty(rows.size, np.float32), *together)
            for j in range(cols.size):
                _column_alone(raw[:, j], rows, int(cols[j]), *alone)
    for a, b in zip(together, alone):
        assert np.array_equal(a, b)
