"""Peer programs: a general (non-bipartite) matching in one pool, solved with CP-SAT.

A flow cannot express "each person in at most one pair" when anyone may pair with anyone,
so CP-SAT takes over: one Boolean per eligible (oriented) pair, at most one pair per person.
The objective is lexicographic and solved in stages, each stage fixing the previous optimum
(``coverage_first``: most people paired, then most sum of min(k, 3) over paired people
unmatched k times before, then highest total score; ``score_first``: highest total score).
Each stage is hinted with the previous stage's solution.

Safety (google/or-tools#5293, wrong "optimal" from inclusion presolve in 9.15): inclusion
presolve is switched off, the answer goes through ``check`` like every solution, and the
score bound is cross-checked against an independent upper bound (every person's best pair,
halved) -- a claimed bound above it is clipped, a claimed optimum above it is a bug.
One worker, fixed seed: the same model gives the same pairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from .candidates import Candidates
from .encode import Encoded


@dataclass
class PeerResult:
    chosen: np.ndarray  # bool per candidate
    status: str  # optimal | feasible
    score_bound: int  # proven upper bound on total points (among solutions optimal in earlier stages)


def _solver(seconds: float) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.presolve_inclusion_work_limit = 0
    return solver


def solve_peer(enc: Encoded, cands: Candidates, active: np.ndarray, time_limit: float) -> PeerResult:
    deadline = time.monotonic() + time_limit
    keep = active[cands.mentee] & active[cands.mentor]
    a, b, points = cands.mentee[keep], cands.mentor[keep], cands.points[keep]
    n_arcs = a.size
    chosen = np.zeros(cands.mentee.size, bool)
    if n_arcs == 0:
        return PeerResult(chosen, "optimal", 0)

    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(n_arcs)]
    by_person: dict[int, list[int]] = {}
    for i in range(n_arcs):
        by_person.setdefault(int(a[i]), []).append(i)
        by_person.setdefault(int(b[i]), []).append(i)
    for person in sorted(by_person):
        arcs = by_person[person]
        if len(arcs) > 1:
            model.add_at_most_one(x[i] for i in arcs)

    stages = []
    if enc.problem.program.objective == "coverage_first":
        stages.append([1] * n_arcs)
        priority = np.minimum(enc.mentee_priority, 3)
        weights = priority[a] + priority[b]
        if weights.any():
            stages.append([int(w) for w in weights])
    stages.append([int(p) for p in points])

    status = "optimal"
    values: list[int] | None = None
    score_bound = 0
    for k, coefficients in enumerate(stages):
        objective = sum(c * x[i] for i, c in enumerate(coefficients) if c)
        model.maximize(objective)
        if values is not None:
            model.clear_hints()
            for i, v in enumerate(values):
                model.add_hint(x[i], v)
        solver = _solver(deadline - time.monotonic())
        result = solver.solve(model)
        if result not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            raise RuntimeError(f"CP-SAT found no peer matching ({solver.status_name(result)})")
        values = [int(solver.value(v)) for v in x]
        achieved = sum(c * v for c, v in zip(coefficients, values))
        if result != cp_model.OPTIMAL:
            status = "feasible"
        if k == len(stages) - 1:
            score_bound = int(min(solver.best_objective_bound, _independent_bound(a, b, points)))
            if achieved > _independent_bound(a, b, points):
                raise RuntimeError("CP-SAT returned a peer matching above a proven upper bound")
            if status == "optimal" and score_bound < achieved:
                score_bound = achieved
        else:
            # Fix this stage's optimum (or what was reached) before the next stage.
            model.add(sum(c * x[i] for i, c in enumerate(coefficients) if c) >= achieved)
    chosen[np.flatnonzero(keep)] = np.array(values, bool)
    return PeerResult(chosen, status, score_bound)


def _independent_bound(a: np.ndarray, b: np.ndarray, points: np.ndarray) -> int:
    """Each pair's points counted at both people; each person keeps their best: sum / 2."""
    best = {}
    for person, p in zip(np.concatenate([a, b]).tolist(), np.concatenate([points, points]).tolist()):
        if p > best.get(person, 0):
            best[person] = p
    return sum(best.values()) // 2
