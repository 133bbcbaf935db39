"""Linear assignment instances with known optima, solved by the engine's flow core.

OR-Library's assignp instances (Beasley) cannot be shipped here, so instances of the same
kind (n x n, integer costs uniform in 1..100) are generated with fixed seeds and their optima
pinned from scipy's linear_sum_assignment; tiny classics are hand-checked.
"""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from matching.flow import build_network_arrays, solve_network


def min_cost_assignment(cost: np.ndarray, capacity: np.ndarray | None = None) -> int:
    """Minimum total cost with every row assigned (coverage_first on points = 1000 - cost)."""
    n_rows, n_cols = cost.shape
    rows, cols = np.nonzero(np.ones_like(cost, bool))
    network = build_network_arrays(
        n_mentees=n_rows,
        n_mentors=n_cols,
        mentee=rows.astype(np.int64),
        mentor=cols.astype(np.int64),
        points=(1000 - cost[rows, cols]).astype(np.int64),
        active_mentee=np.ones(n_rows, bool),
        mentor_capacity=np.ones(n_cols, np.int64) if capacity is None else capacity,
        coverage_first=True,
    )
    result = solve_network(network)
    assert result.maximum_flow == n_rows
    chosen = result.flow[: network.n_pairs] > 0
    return int(cost[rows[chosen], cols[chosen]].sum())


def test_scipy_docs_example():
    cost = np.array([[4, 1, 3], [2, 0, 5], [3, 2, 2]])
    assert min_cost_assignment(cost) == 5  # 1 + 2 + 2


def test_hungarian_textbook_example():
    cost = np.array([[82, 83, 69, 92], [77, 37, 49, 92], [11, 69, 5, 86], [8, 9, 98, 23]])
    assert min_cost_assignment(cost) == 140  # 69 + 37 + 11 + 23


def test_capacitated_hand_checked():
    # Two mentors with 2 slots each, four mentees: mentor 0 is cheap for rows 0, 1, 2 but only
    # takes two; the best is rows 0, 1 -> 0 (1 + 1) and rows 2, 3 -> 1 (4 + 2) = 8.
    cost = np.array([[1, 9], [1, 9], [3, 4], [9, 2]])
    assert min_cost_assignment(cost, np.array([2, 2])) == 8


# (n, seed) -> optimum, pinned once from scipy and re-verified against scipy on every run.
GENERATED = {(100, 1): 236, (200, 2): 279, (300, 3): 339}


@pytest.mark.parametrize("n, seed", sorted(GENERATED))
def test_or_library_style_instances(n, seed):
    cost = np.random.default_rng(seed).integers(1, 101, size=(n, n))
    rows, cols = linear_sum_assignment(cost)
    assert int(cost[rows, cols].sum()) == GENERATED[(n, seed)]
    assert min_cost_assignment(cost) == GENERATED[(n, seed)]
