"""``solve``: rules and scoring -> pruning -> exact solver -> explanations -> check.

Phases (``Solution.timings``): ``rules_scoring`` (encoding, hard rules and scores over the
level-compatible blocks), ``pruning`` (the pruning certificate: potentials, min cut, re-checked
rows), ``solve`` (min-cost flows / CP-SAT / quota search), ``explain`` (reasons, statistics and
the independent ``check``).
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Literal

import numpy as np

from . import candidates as cand_mod
from .candidates import build_candidates, build_candidates_fast
from .certify import certified_flow
from .fastscore import FastScorer
from .check import PairJudge, check
from .encode import Encoded, encode
from .explain import (
    PairExplainer,
    mentee_rule_counts,
    mentor_rule_counts,
    peer_rule_counts,
    rule_count_reasons,
)
from .flow import department_floors, potentials
from .peer import solve_peer
from .quota import enforce_quota
from .problem import Problem, Solution, SolverInfo, Unmatched
from .rules import BlockEvaluator
from .scoring import SCORE_SCALE



class _Clock:
    def __init__(self) -> None:
        self.phases: dict[str, float] = defaultdict(float)

    def add(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phases[phase] += now - since
        return now


def _validate_pins(problem: Problem, enc: Encoded) -> list[tuple[str, str]]:
    judge = PairJudge(problem)
    mentee_ids, mentor_ids = set(enc.mentees.ids), set(enc.mentors.ids)
    pins = sorted(set(problem.pins))
    used: Counter = Counter()
    taken: set[str] = set()
    for mentor_id, mentee_id in pins:
        if mentor_id not in mentor_ids:
            raise ValueError(f"pin ({mentor_id}, {mentee_id}): {mentor_id} is not enrolled as a mentor")
        if mentee_id not in mentee_ids:
            raise ValueError(f"pin ({mentor_id}, {mentee_id}): {mentee_id} is not enrolled as a mentee")
        broken = judge.violations(mentor_id, mentee_id)
        if broken:
            raise ValueError(f"pin ({mentor_id}, {mentee_id}) breaks hard rules: {', '.join(broken)}")
        if enc.peer:
            for person in (mentor_id, mentee_id):
                if person in taken:
                    raise ValueError(f"pin ({mentor_id}, {mentee_id}): {person} is pinned twice")
                taken.add(person)
        else:
            if mentee_id in taken:
                raise ValueError(f"pin ({mentor_id}, {mentee_id}): {mentee_id} is pinned to two mentors")
            taken.add(mentee_id)
            used[mentor_id] += 1
            if used[mentor_id] > judge.capacity(mentor_id):
                raise ValueError(f"pins give {mentor_id} more mentees than their capacity")
    return pins


def solve(problem: Problem, top_k: int | None | Literal["auto"] = "auto") -> Solution:
    """Optimal matching for the problem (see the package docstring). ``top_k``: mentors kept
    per mentee before the certificate ("auto": ``candidates.default_top_k``); None disables
    pruning. The result is the same optimum whatever it is; only the time changes."""
    clock = _Clock()
    t = t_start = time.perf_counter()
    enc = encode(problem)
    pins = _validate_pins(problem, enc)
    scorer = None if enc.peer else FastScorer(enc)
    if enc.peer or top_k is None:
        cands = build_candidates(enc)
    else:
        if top_k == "auto":
            top_k = cand_mod.default_top_k(enc.n_mentees)
        # Mentor side twice as deep: capacity is tight, so the first prices are set by the
        # competition for mentors (fewer violated arcs in the first certificate round).
        cands = build_candidates_fast(enc, scorer, top_k, mentor_k=2 * top_k)
    t = clock.add("rules_scoring", t)

    e_index = {pid: i for i, pid in enumerate(enc.mentees.ids)}
    m_index = {pid: i for i, pid in enumerate(enc.mentors.ids)}
    pinned_mentee = np.zeros(enc.n_mentees, bool)
    capacity = enc.mentors.capacity.copy()
    for mentor_id, mentee_id in pins:
        pinned_mentee[e_index[mentee_id]] = True
        if enc.peer:
            pinned_mentee[e_index[mentor_id]] = True
        else:
            capacity[m_index[mentor_id]] -= 1
    active = ~pinned_mentee

    pairs: list[tuple[int, int]] = []
    status, bound_points = "optimal", None
    if enc.peer:
        peer = solve_peer(enc, cands, active, problem.time_limit_seconds)
        chosen = np.flatnonzero(peer.chosen)
        pairs = list(zip(cands.mentee[chosen].tolist(), cands.mentor[chosen].tolist()))
        status, bound_points = peer.status, peer.score_bound
        t = clock.add("solve", t)
    else:
        floors = department_floors(enc, active, pinned_mentee)
        quota = problem.program.rules.min_cross_functional_share
        cands, network, result, certified, t = certified_flow(
            enc, scorer, cands, active, capacity, floors, clock, t, every_arc=bool(quota)
        )
        chosen = np.flatnonzero(result.flow[: network.n_pairs] > 0)
        pairs = list(zip(cands.mentee[chosen].tolist(), cands.mentor[chosen].tolist()))
        if quota:
            pairs, status, bound_points, t = enforce_quota(
                enc, scorer, (cands, network, result, certified), active, capacity, floors, pins, clock, t,
                deadline=time.monotonic() + problem.time_limit_seconds,
            )

    with _gc_paused():
        return _assemble(problem, enc, scorer, pins, pairs, status, bound_points, clock, t, t_start)


_gc_lock = threading.Lock()
_gc_pausers = 0  # solves explaining right now, in any thread
_gc_was_enabled = False


@contextmanager
def _gc_paused():
    """No cyclic garbage collection while the explanations are built: they allocate a dozen
    small objects per pair, none in a cycle, and each collection of the oldest generation
    walks every object of the problem (20k x 10k: ~0.25 s of ~1.2 s). Reference counting
    still frees everything. The pause is process-wide (a thread runner's other work waits
    for cycles to be collected a few seconds at most), so it is counted: the collector comes
    back as it was when the last solve in any thread leaves."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def warm_up() -> float:
    """Compile the engine's numba kernels (or load them from numba's on-disk cache) by solving a
    small synthetic round with a narrow pruning, so that rounds after it pay no compile time.
    Returns the seconds it took (a few on a first run, well under one from the cache)."""
    from dataclasses import replace
    from datetime import date

    from .problem import Program, Rules
    from .synthetic import synthetic_organisation

    started = time.perf_counter()
    people, enrollments = synthetic_organisation(120, 60, seed=1)
    # One preferred pair, so that the preferred bonus's kernel is compiled too.
    mentor = next(e.person_id for e in enrollments if e.role == "mentor")
    mentee = next(k for k, e in enumerate(enrollments) if e.role == "mentee")
    enrollments = (
        enrollments[:mentee] + (replace(enrollments[mentee], preferred=frozenset({mentor})),) + enrollments[mentee + 1 :]
    )
    # A minimum score, so that the kernel dropping the pairs below it is compiled too.
    program = Program(rules=Rules(min_score=0.01))
    solve(Problem(program=program, people=people, enrollments=enrollments, round_date=date(2025, 3, 12)), top_k=2)
    # The label-correcting search that sink potentials fall back to without a close guess.
    potentials(2, np.array([0, 1]), np.array([1, 0]), np.array([1, -1]))
    return time.perf_counter() - started


def _assemble(problem, enc, scorer, pins, pairs, status, bound_points, clock, t, t_start) -> Solution:
    explainer = PairExplainer(problem)
    matches = [explainer.match(m, e, pinned=True) for m, e in pins]
    if scorer is None:
        matches += [explainer.match(enc.mentors.ids[m], enc.mentees.ids[e]) for e, m in pairs]
    else:
        # Scores and components of all pairs at once (the scalar formulas, vectorised).
        e_idx = np.array([e for e, _ in pairs], np.int64)
        m_idx = np.array([m for _, m in pairs], np.int64)
        points, components, seconds = scorer.scored(e_idx, m_idx)
        values = zip(*(c.tolist() for c in components))
        matches += [
            explainer.match(enc.mentors.ids[m], enc.mentees.ids[e], scored=(p, v, s / 3600.0))
            for e, m, p, v, s in zip(e_idx.tolist(), m_idx.tolist(), points.tolist(), values, seconds.tolist())
        ]
    matches.sort(key=lambda match: (match.mentee_id, match.mentor_id))
    unmatched = _unmatched(problem, enc, matches)
    objective = sum(round(m.score * SCORE_SCALE) for m in matches) / SCORE_SCALE
    pinned_points = sum(round(m.score * SCORE_SCALE) for m in matches if m.pinned)
    if bound_points is None:
        bound = objective
    else:
        bound = max(objective, (bound_points + pinned_points) / SCORE_SCALE)
    gap = 0.0 if bound <= 0 else (bound - objective) / bound
    notes: tuple[str, ...] = ()
    if status == "quota_unmet":
        status = "feasible"
        notes = (
            f"the cross-functional quota of {problem.program.rules.min_cross_functional_share:.0%} cannot be met "
            "without matching fewer mentees; returned the highest share found at full coverage",
        )
    stats = _stats(enc, matches)
    violations = check(
        problem, Solution(tuple(matches), (), SolverInfo(status, objective, bound, 0.0), stats), judge=explainer.judge
    )
    if violations:
        raise RuntimeError(f"solver produced an invalid matching: {violations[:5]}")
    t = clock.add("explain", t)
    seconds = time.perf_counter() - t_start
    return Solution(
        matches=tuple(matches),
        unmatched=tuple(unmatched),
        solver=SolverInfo(status=status, objective=objective, bound=bound, seconds=seconds, gap=gap, notes=notes),
        stats=stats,
        timings={k: clock.phases.get(k, 0.0) for k in ("rules_scoring", "pruning", "solve", "explain")},
    )


def _stats(enc: Encoded, matches) -> dict[str, float]:
    n_matches = len(matches)
    if enc.peer:
        matched = 2 * n_matches  # people in a pair
    else:
        matched = len({m.mentee_id for m in matches})
    n_mentees = enc.n_mentees
    return {
        "mentees": n_mentees,
        "mentors": enc.n_mentors,
        "matched_mentees": matched,
        "coverage": matched / n_mentees if n_mentees else 0.0,
        "mean_score": sum(m.score for m in matches) / n_matches if n_matches else 0.0,
        "cross_functional_share": (
            sum(1 for m in matches if m.components["cross_functional"] >= 1.0) / n_matches if n_matches else 0.0
        ),
        "mean_overlap_hours": sum(m.overlap_hours for m in matches) / n_matches if n_matches else 0.0,
    }


def _unmatched(problem: Problem, enc: Encoded, matches) -> list[Unmatched]:
    evaluator = BlockEvaluator(enc)
    out: list[Unmatched] = []
    if enc.peer:
        paired = {m.mentor_id for m in matches} | {m.mentee_id for m in matches}
        for i, pid in enumerate(enc.mentees.ids):
            if pid in paired:
                continue
            counts = peer_rule_counts(enc, evaluator, i)
            out.append(_unmatched_entry(problem, pid, "both", counts, "peers", paired_partners=None))
        return out

    load = Counter(m.mentor_id for m in matches)
    matched_mentees = {m.mentee_id for m in matches}
    e_rows = np.array([i for i, pid in enumerate(enc.mentees.ids) if pid not in matched_mentees], np.int64)
    if e_rows.size:
        spare = np.array([load[pid] < enc.mentors.capacity[j] for j, pid in enumerate(enc.mentors.ids)])
        for row, counts, spare_eligible in zip(e_rows.tolist(), *mentee_rule_counts(enc, evaluator, e_rows, spare)):
            eligible = counts.pop("", 0)
            out.append(_mentee_entry(problem, enc.mentees.ids[row], counts, eligible, spare_eligible))
    idle = np.array([j for j, pid in enumerate(enc.mentors.ids) if load[pid] == 0], np.int64)
    if idle.size:
        for col, counts in zip(idle.tolist(), mentor_rule_counts(enc, evaluator, idle)):
            pid = enc.mentors.ids[col]
            if enc.mentors.capacity[col] <= 0:
                out.append(Unmatched(pid, "mentor", ("capacity is 0 this round",), {}))
                continue
            eligible = counts.pop("", 0)
            reasons = rule_count_reasons(counts, problem, "mentees")
            if eligible == 0:
                reasons.insert(0, "no eligible mentee")
            else:
                reasons.insert(
                    0,
                    f"all {eligible} eligible mentee{'s are' if eligible != 1 else ' is'} better served by other mentors"
                    if problem.program.objective == "coverage_first"
                    else f"{eligible} eligible mentee{'s' if eligible != 1 else ''}; pairing them here would not raise the total score",
                )
            out.append(Unmatched(pid, "mentor", tuple(reasons), dict(counts)))
    out.sort(key=lambda u: (u.role, u.person_id))
    return out


def _mentee_entry(problem: Problem, pid: str, counts: Counter, eligible: int, spare_eligible: int) -> Unmatched:
    reasons = []
    if eligible == 0:
        reasons.append("no eligible mentor")
    elif spare_eligible == 0:
        reasons.append(f"all {eligible} eligible mentor{'s are' if eligible != 1 else ' is'} at capacity")
    elif problem.program.rules.min_cross_functional_share:
        reasons.append(
            f"{spare_eligible} of {eligible} eligible mentors have spare capacity, but pairing would break "
            f"the cross-functional quota or lower the total score"
        )
    else:
        reasons.append(
            f"{spare_eligible} of {eligible} eligible mentors have spare capacity, but pairing would not raise the total score"
        )
    reasons += rule_count_reasons(counts, problem, "mentors")
    return Unmatched(pid, "mentee", tuple(reasons), dict(counts))


def _unmatched_entry(problem, pid, role, counts, other, paired_partners) -> Unmatched:
    eligible = counts.pop("", 0)
    reasons = []
    if eligible == 0:
        reasons.append("no eligible peer")
    else:
        reasons.append(f"all {eligible} eligible peer{'s are' if eligible != 1 else ' is'} paired with others")
    reasons += rule_count_reasons(counts, problem, other)
    return Unmatched(pid, role, tuple(reasons), dict(counts))
