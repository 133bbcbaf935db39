"""``matching.warm_up`` compiles every numba kernel the engine calls, so that the first round
of a solver process pays no compile time (checked in a fresh interpreter: in this one earlier
tests have compiled them already)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Kernels called only from other kernels: compiled into their callers, never dispatched alone.
INLINED = {
    "matching.auction._options",
    "matching.auction._release",
    "matching.topk.heap_push",
    "matching.topk.sift_down",
    "matching.topk._apply_notes",
    "matching.flow.indexed_heap_pop",
    "matching.flow.indexed_heap_push",
    "matching.flow.indexed_heap_up",
    "matching.repair._residual_cost",
    "matching.repair._has_room",
    "matching.repair._mark_alive",
}

PROBE = """
import importlib, pkgutil
import matching
from numba.core.registry import CPUDispatcher
matching.warm_up()
found = []
for info in pkgutil.iter_modules(matching.__path__):
    module = importlib.import_module("matching." + info.name)
    for name, obj in vars(module).items():
        if isinstance(obj, CPUDispatcher) and obj.__module__ == module.__name__:
            found.append((module.__name__ + "." + name, len(obj.signatures)))
for name, compiled in sorted(found):
    print(name, compiled)
"""


def test_warm_up_compiles_every_kernel():
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    kernels = dict(line.rsplit(" ", 1) for line in out.splitlines())
    assert {
        "matching.topk._rows_top",
        "matching.topk._columns_top",
        "matching.auction._auction",
        "matching.fastscore._dense_raw",
        "matching.flow._relax_from",
        "matching.flow._dijkstra_from",
        "matching.repair._shortest_path_repair",
        "matching.repair._primal_dual",
    } <= set(kernels)
    cold = sorted(name for name, compiled in kernels.items() if compiled == "0" and name not in INLINED)
    assert cold == [], f"kernels warm_up leaves to compile in the first round: {cold}"
