"""Benchmark of the matching engine on a synthetic organisation.

    python bench/engine.py --size 20000x10000 [--baselines] [--seed N] [--quota 0.9]
                           [--cross-functional-weight 0]

``--cross-functional-weight 0`` drops the score's cross-functional component (default 0.2): the
synthetic organisation's optimum is then ~89 % cross-functional instead of ~100 %, so a 90 %
``--quota`` binds and goes through the Lagrangian (bound and gap in the JSON line).

Prints a table (phases, peak memory, coverage, objective, bound; with --baselines the dense
scipy assignment and a greedy matcher, their time and objective as a ratio of ours) and ends
with one JSON line.

* ``seconds`` is the whole ``matching.solve`` call (rules and scoring, pruning certificate,
  solve, explanations and the independent check); generating the organisation is not counted.
  Before it the child calls ``matching.warm_up()``, as a solver process does at start-up:
  ``warm_up_seconds`` is that once-per-process cost (compiling the numba kernels, a few seconds,
  or loading them from numba's on-disk cache, well under one), reported apart, not hidden.
* ``peak_mb`` is the process's peak resident set size (``resource.getrusage`` ``ru_maxrss``),
  measured in a fresh child process that only generates the organisation and runs the engine,
  so it includes the input (people) as well as the engine; ``input_mb`` is the peak just
  before the engine starts, so ``peak_mb - input_mb`` is what the engine added.
* scipy baseline: what a user would write by hand -- the dense mentee x mentor-slot matrix
  (mentor columns replicated ``capacity`` times, ineligible pairs at 0, eligible pairs at
  ``B + points`` with ``B = 1000 * mentees + 1`` so coverage comes first like ours) and
  ``scipy.optimize.linear_sum_assignment``; ``scipy_seconds`` counts building the matrix and
  solving. Skipped above 5k x 2.5k unless ``--force-scipy`` (20k x 10k needs ~7 GB).
* greedy baseline: pairs sorted by points, taken while both sides are free (over all eligible
  pairs up to 5k x 2.5k, over each mentee's top 64 above that).
Objectives are total points / 1000 (the sum of match scores), the same scale as ours.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from matching import Problem, Program, Rules, Weights, solve, warm_up  # noqa: E402
from matching.synthetic import synthetic_organisation  # noqa: E402

ROUND_DATE = date(2025, 3, 12)
DENSE_LIMIT = 5000 * 2500


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_problem(
    n_mentees: int, n_mentors: int, seed: int, quota: float | None, objective: str, cross_weight: float | None = None
) -> Problem:
    people, enrollments = synthetic_organisation(n_mentees, n_mentors, seed=seed)
    weights = Weights() if cross_weight is None else Weights(cross_functional=cross_weight)
    return Problem(
        program=Program(objective=objective, weights=weights, rules=Rules(min_cross_functional_share=quota)),
        people=people,
        enrollments=enrollments,
        round_date=ROUND_DATE,
        time_limit_seconds=120.0,
    )


def _engine_child(args, out) -> None:
    n_mentees, n_mentors = args["size"]
    problem = make_problem(n_mentees, n_mentors, args["seed"], args["quota"], args["objective"], args["cross_weight"])
    warm_up_seconds = warm_up()  # what a solver process pays once at start-up (app/runner.py)
    input_mb = _maxrss_mb()
    start = time.perf_counter()
    solution = solve(problem)
    seconds = time.perf_counter() - start
    out.put(
        {
            "seconds": seconds,
            "warm_up_seconds": warm_up_seconds,
            "peak_mb": _maxrss_mb(),
            "input_mb": input_mb,
            "timings": dict(solution.timings),
            "stats": dict(solution.stats),
            "status": solution.solver.status,
            "objective": solution.solver.objective,
            "bound": solution.solver.bound,
            "gap": solution.solver.gap,
        }
    )


def run_engine(size, seed, quota, objective, cross_weight=None) -> dict:
    """The engine in a fresh process so ru_maxrss is its own peak."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    settings = {"size": size, "seed": seed, "quota": quota, "objective": objective, "cross_weight": cross_weight}
    child = ctx.Process(target=_engine_child, args=(settings, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def dense_points(problem: Problem):
    from matching.encode import encode
    from matching.rules import BlockEvaluator

    enc = encode(problem)
    evaluator = BlockEvaluator(enc)
    points = np.empty((enc.n_mentees, enc.n_mentors), np.int32)
    step = max(1, (1 << 21) // max(1, enc.n_mentors))
    cols = np.arange(enc.n_mentors)
    for start in range(0, enc.n_mentees, step):
        rows = np.arange(start, min(start + step, enc.n_mentees))
        points[rows], _ = evaluator.evaluate(rows, cols)
    return enc, points


def scipy_baseline(problem: Problem) -> dict:
    from scipy.optimize import linear_sum_assignment

    start = time.perf_counter()
    enc, points = dense_points(problem)
    slots = np.repeat(np.arange(enc.n_mentors), enc.mentors.capacity)
    weights = points[:, slots].astype(np.float64)
    big = 1000.0 * enc.n_mentees + 1
    weights = np.where(weights >= 0, weights + big, 0.0)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    seconds = time.perf_counter() - start
    chosen = weights[rows, cols] > 0
    return {
        "scipy_seconds": seconds,
        "scipy_objective": float(points[rows[chosen], slots[cols[chosen]]].sum()) / 1000.0,
        "scipy_matched": int(chosen.sum()),
    }


def greedy_baseline(problem: Problem, dense: bool) -> dict:
    from matching.encode import encode
    from matching.candidates import build_candidates_fast
    from matching.fastscore import FastScorer

    start = time.perf_counter()
    if dense:
        enc, points = dense_points(problem)
        e, m = np.nonzero(points >= 0)
        p = points[e, m].astype(np.int64)
    else:
        enc = encode(problem)
        cands = build_candidates_fast(enc, FastScorer(enc), top_k=64)
        e, m, p = cands.mentee, cands.mentor, cands.points
    order = np.lexsort((m, e, -p))
    load = np.zeros(enc.n_mentors, np.int64)
    taken = np.zeros(enc.n_mentees, bool)
    total = matched = 0
    for k in order.tolist():
        a, b = e[k], m[k]
        if not taken[a] and load[b] < enc.mentors.capacity[b]:
            taken[a] = True
            load[b] += 1
            total += int(p[k])
            matched += 1
    return {"greedy_seconds": time.perf_counter() - start, "greedy_objective": total / 1000.0, "greedy_matched": matched}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="20000x10000", help="mentees x mentors, e.g. 20000x10000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quota", type=float, default=None, help="minimum cross-functional share, e.g. 0.9")
    parser.add_argument("--objective", default="coverage_first", choices=["coverage_first", "score_first"])
    parser.add_argument(
        "--cross-functional-weight", type=float, default=None, help="weight of the cross-functional component (default 0.2)"
    )
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--force-scipy", action="store_true")
    args = parser.parse_args(argv)
    n_mentees, n_mentors = (int(x) for x in args.size.lower().split("x"))

    engine = run_engine((n_mentees, n_mentors), args.seed, args.quota, args.objective, args.cross_functional_weight)
    stats = engine["stats"]
    record = {
        "size": f"{n_mentees}x{n_mentors}",
        "seed": args.seed,
        "quota": args.quota,
        "cross_functional_weight": args.cross_functional_weight,
        "seconds": round(engine["seconds"], 3),
        "warm_up_seconds": round(engine["warm_up_seconds"], 3),
        "peak_mb": round(engine["peak_mb"], 1),
        "input_mb": round(engine["input_mb"], 1),
        "matched": int(stats["matched_mentees"]),
        "coverage": round(stats["coverage"], 5),
        "status": engine["status"],
        "objective": engine["objective"],
        "bound": engine["bound"],
        "gap": engine["gap"],
        "cross_functional_share": round(stats["cross_functional_share"], 5),
        "timings": {k: round(v, 3) for k, v in engine["timings"].items()},
    }
    if args.baselines:
        problem = make_problem(
            n_mentees, n_mentors, args.seed, args.quota, args.objective, args.cross_functional_weight
        )
        dense = n_mentees * n_mentors <= DENSE_LIMIT
        if dense or args.force_scipy:
            record.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in scipy_baseline(problem).items()})
        record.update({k: (round(v, 3) if isinstance(v, float) else v) for k, v in greedy_baseline(problem, dense).items()})

    rows = [
        ("size (mentees x mentors)", record["size"]),
        ("rules + scoring (s)", record["timings"].get("rules_scoring")),
        ("pruning certificate (s)", record["timings"].get("pruning")),
        ("solve (s)", record["timings"].get("solve")),
        ("explanations + check (s)", record["timings"].get("explain")),
        ("engine total (s)", record["seconds"]),
        ("kernel warm-up, once per process (s)", record["warm_up_seconds"]),
        ("peak RSS (MB) / input only", f"{record['peak_mb']} / {record['input_mb']}"),
        ("matched / coverage", f"{record['matched']} / {record['coverage']:.4%}"),
        ("cross-functional share", f"{record['cross_functional_share']:.4%}"),
        ("objective / bound / status", f"{record['objective']:.3f} / {record['bound']:.3f} / {record['status']}"),
    ]
    if "scipy_seconds" in record:
        rows.append(("scipy dense (s) / x ours", f"{record['scipy_seconds']} / {record['scipy_seconds'] / record['seconds']:.1f}x"))
        rows.append(("scipy objective / matched", f"{record['scipy_objective']:.3f} / {record['scipy_matched']}"))
    if "greedy_objective" in record:
        rows.append(("greedy objective / of ours", f"{record['greedy_objective']:.3f} / {record['greedy_objective'] / max(record['objective'], 1e-9):.2%}"))
        rows.append(("greedy matched / unmatched vs ours", f"{record['greedy_matched']} / {record['matched'] - record['greedy_matched']}"))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
