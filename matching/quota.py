"""Minimum cross-functional share: a Lagrangian relaxation of the quota over the exact flow.

The quota ``sum over pairs of (cf - q) >= 0`` is moved into the objective with integer
multipliers: a cross-functional pair gains ``b1 = beta`` points and a same-department pair loses
``b0 = floor(beta * q / (1 - q))``. For every matching that meets the quota
``n1 * b1 - n0 * b0 >= 0`` (because n1 / n0 >= q / (1 - q)), so the optimum of the shifted
problem, solved exactly (certified flow on shifted scores), is an upper bound on the score of
any matching meeting the quota. ``beta`` is found by bisection: the smallest beta whose flow
meets the quota gives the primal solution; the smallest shifted optimum seen is the bound; the
gap is reported in ``SolverInfo``. Coverage stays first: the relaxation works among
maximum-coverage matchings (if none meets the quota, the best share found is returned with
status ``feasible``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .candidates import Candidates
from .certify import certified_flow
from .fastscore import FastScorer
from .scoring import SCORE_SCALE


class ShiftedScorer:
    """A FastScorer whose points include the Lagrangian shift b1 (cf) / -b0 (same dept)."""

    def __init__(self, base: FastScorer, gain: int, loss: int) -> None:
        self.base, self.gain, self.loss = base, gain, loss
        self.enc = base.enc
        self.to_points = base.to_points  # points_upper_bound(raw) = floor(raw * to_points + 0.5 + margin)

    def raw_block(self, rows, cols):
        raw = self.base.raw_block(rows, cols)
        cross = self.base.cross_functional(rows[:, None], cols[None, :])
        shift = np.where(cross, self.gain, -self.loss) / self.base.to_points if self.base.to_points else 0.0
        return (raw + shift).astype(np.float32)

    def eligible(self, raw):
        return raw > -1e5  # NEG stays far below any shift

    def points_upper_bound(self, raw):
        return self.base.points_upper_bound(raw)

    def exact_points(self, e_idx, m_idx):
        points = self.base.exact_points(e_idx, m_idx)
        shift = np.where(self.base.cross_functional(e_idx, m_idx), self.gain, -self.loss)
        return np.where(points >= 0, points + shift, -1)


def _shift(cands: Candidates, scorer: FastScorer, gain: int, loss: int) -> Candidates:
    cross = scorer.cross_functional(cands.mentee, cands.mentor)
    points = cands.points + np.where(cross, gain, -loss)
    threshold = np.where(cands.threshold >= 0, cands.threshold + gain, -1)
    return Candidates(cands.mentee, cands.mentor, points, threshold)


def enforce_quota(enc, scorer, cands, active, capacity, floors, pins, pairs, clock, t, deadline):
    """(pairs, status, bound in points of the free pairs, t) meeting the quota when possible."""
    q = float(enc.problem.program.rules.min_cross_functional_share)
    pin_cross = sum(
        1 for m, e in pins if scorer.cross_functional(np.array([enc.mentees.ids.index(e)]), np.array([enc.mentors.ids.index(m)]))[0]
    )
    n_pins = len(pins)

    def evaluate(chosen_pairs):
        e = np.array([p[0] for p in chosen_pairs], np.int64)
        m = np.array([p[1] for p in chosen_pairs], np.int64)
        cross = int(scorer.cross_functional(e, m).sum()) + pin_cross
        total = len(chosen_pairs) + n_pins
        points = int(scorer.exact_points(e, m).sum()) if e.size else 0
        return cross, total, points

    def meets(cross, total):
        return total == 0 or cross >= q * total - 1e-9

    cross, total, base_points = evaluate(pairs)
    if meets(cross, total) or q <= 0:
        return pairs, "optimal", None, t
    if q >= 1:
        loss_of = lambda beta: 10 * SCORE_SCALE * max(1, len(pairs))  # noqa: E731  (same-dept pairs are forbidden)
    else:
        loss_of = lambda beta: math.floor(beta * q / (1 - q))  # noqa: E731

    best_pairs, best_points, bound = None, -1, math.inf
    best_share_pairs, best_share = pairs, cross / max(total, 1)

    def run(beta):
        nonlocal cands, t, best_pairs, best_points, bound, best_share_pairs, best_share
        gain, loss = beta, loss_of(beta)
        shifted = ShiftedScorer(scorer, gain, loss)
        shifted_cands, network, result, t = certified_flow(
            enc, shifted, _shift(cands, scorer, gain, loss), active, capacity, floors, clock, t
        )
        chosen = np.flatnonzero(result.flow[: network.n_pairs] > 0)
        found = list(zip(shifted_cands.mentee[chosen].tolist(), shifted_cands.mentor[chosen].tolist()))
        c, n, p = evaluate(found)
        shifted_total = int(shifted_cands.points[chosen].sum())
        pin_shift = pin_cross * gain - (n_pins - pin_cross) * loss
        bound = min(bound, shifted_total + pin_shift)
        if meets(c, n) and p > best_points:
            best_pairs, best_points = found, p
        if c / max(n, 1) > best_share:
            best_share_pairs, best_share = found, c / max(n, 1)
        return meets(c, n)

    lo, hi = 0, 1
    while not run(hi):
        lo, hi = hi, hi * 4
        if hi > 64 * SCORE_SCALE:
            return best_share_pairs, "quota_unmet", None, t
        if time.monotonic() > deadline:
            return best_share_pairs, "feasible", None, t
    while hi - lo > 1 and time.monotonic() < deadline:
        mid = (lo + hi) // 2
        if run(mid):
            hi = mid
        else:
            lo = mid
    status = "optimal" if best_points >= bound else "feasible"
    return best_pairs, status, max(bound, best_points), t
