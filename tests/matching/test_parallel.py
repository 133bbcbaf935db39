"""Kernels split over threads give exactly what one thread gives: the same input, the same pairs."""

from __future__ import annotations

import numpy as np
import pytest

from matching import Problem, Program, Rules, solve
from matching import parallel
from matching.candidates import block_arcs, build_candidates_fast, level_blocks
from matching.certify import screen_block
from matching.encode import encode
from matching.fastscore import FastScorer
from matching.synthetic import synthetic_organisation

from .factory import ROUND


def _problem(min_score: float = 0.0) -> Problem:
    people, enrollments = synthetic_organisation(500, 240, seed=4)
    return Problem(
        program=Program(rules=Rules(min_score=min_score)), people=people, enrollments=enrollments, round_date=ROUND
    )


@pytest.fixture
def threads(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART", 1)  # split even the smallest blocks

    def use(n: int) -> None:
        monkeypatch.setattr(parallel, "THREADS", n)

    return use


def test_parts_cover_the_range_in_order(threads):
    threads(3)
    assert parallel.parts(10, 1) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.parts(2, 1) == [(0, 1), (1, 2)]
    assert parallel.parts(0, 5) == [(0, 0)]
    assert parallel.run_parts(lambda lo, hi: list(range(lo, hi)), parallel.parts(7, 1)) == [[0, 1], [2, 3], [4, 5, 6]]


@pytest.mark.parametrize("min_score", [0.0, 0.4])
def test_dense_passes_equal_one_thread(threads, min_score):
    enc = encode(_problem(min_score))
    scorer = FastScorer(enc)
    results = []
    for n in (1, 2, 3):
        threads(n)
        cands = build_candidates_fast(enc, scorer, top_k=4, mentor_k=8)
        raws, screens = [], []
        rng = np.random.default_rng(0)
        for rows, cols in level_blocks(enc):
            raw = scorer.raw_block(rows, cols)
            raws.append(raw)
            kept = block_arcs(cands, rows, cols, enc.n_mentors)
            col_value = rng.normal(0, 50, cols.size)
            row_limit = rng.normal(600, 100, rows.size)
            screens.append(
                screen_block(raw, kept, scorer.to_points, col_value, row_limit, rng.random(rows.size) < 0.2, rng.random(cols.size) < 0.2)
            )
        results.append((cands, raws, screens))
    (cands1, raws1, screens1) = results[0]
    for cands, raws, screens in results[1:]:
        for field in ("mentee", "mentor", "points", "threshold"):
            assert np.array_equal(getattr(cands, field), getattr(cands1, field))
        for a, b in zip(raws, raws1):
            assert np.array_equal(a, b)
        for a, b in zip(screens, screens1):
            for x, y in zip(a, b):
                assert np.array_equal(x, y)


def test_solve_equals_one_thread(threads):
    prob = _problem()
    threads(1)
    one = solve(prob, top_k=3)
    threads(3)
    three = solve(prob, top_k=3)
    assert three.matches == one.matches
    assert three.solver.objective == one.solver.objective


def test_thread_count_from_the_environment_and_the_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(parallel, "CPU_MAX", str(tmp_path / "absent"))
    monkeypatch.setenv("KIZUNA_ENGINE_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.setenv("KIZUNA_ENGINE_THREADS", "0")
    assert parallel._default_threads() == 1
    monkeypatch.setenv("KIZUNA_ENGINE_THREADS", "many")  # not a number: every core, no crash
    every_core = parallel._default_threads()
    assert 1 <= every_core <= parallel.MAX_THREADS
    monkeypatch.delenv("KIZUNA_ENGINE_THREADS")
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(parallel, "CPU_MAX", str(quota))
    quota.write_text("100000 100000\n")  # docker --cpus=1
    assert parallel._default_threads() == 1
    quota.write_text("max 100000\n")
    assert parallel._default_threads() == every_core
    quota.write_text("garbage\n")
    assert parallel._default_threads() == every_core


def test_a_forked_child_runs_parts_on_a_pool_of_its_own(threads):
    import multiprocessing as mp

    threads(2)
    assert parallel.run_parts(lambda lo, hi: hi - lo, [(0, 3), (3, 7)]) == [3, 4]  # the parent's pool exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_split_in_child) == [3, 4]


def _split_in_child():
    parallel.THREADS = 2
    return parallel.run_parts(lambda lo, hi: hi - lo, [(0, 3), (3, 7)])


@pytest.mark.parametrize("block_pairs", [1, 300, 5_000])
def test_candidates_do_not_depend_on_the_block_size(monkeypatch, block_pairs):
    """The candidate pass's blocks (one raw buffer reused by all of them) split each level's
    rows in order: down to a row per block, every row keeps the same mentors and threshold,
    and every mentor the same best mentees."""
    import matching.candidates as candidates

    enc = encode(_problem(0.0))
    scorer = FastScorer(enc)
    buffers = []
    real = scorer.raw_block

    def recording(rows, cols, out=None):
        raw = real(rows, cols, out=out)
        buffers.append(out if out is not None and np.shares_memory(raw, out) else None)
        return raw

    monkeypatch.setattr(scorer, "raw_block", recording)
    whole = build_candidates_fast(enc, scorer, top_k=4, mentor_k=8)
    monkeypatch.setattr(candidates, "CANDIDATE_BLOCK_PAIRS", block_pairs)
    split = build_candidates_fast(enc, scorer, top_k=4, mentor_k=8)
    for field in ("mentee", "mentor", "points", "threshold"):
        assert np.array_equal(getattr(split, field), getattr(whole, field))
    # Every block of a pass is scored into (a view of) that pass's one buffer.
    assert len(buffers) > 2 and all(out is not None for out in buffers)
    assert len({id(out) for out in buffers}) == 2
