"""Run da4ml 0.6.0 on one constant matrix (inside .venv-da4ml; `make peers-da4ml`).

    .venv-da4ml/bin/python bench/da4ml_layer.py LAYER.npz OUT_DIR NAME LATENCY_CUTOFF

LAYER.npz holds ``w`` (outputs, inputs) integers and the input format per element as da4ml's
(k, i, f) = (signed, integer bits, fraction bits). Writes da4ml's Verilog project to OUT_DIR
(pipelined at LATENCY_CUTOFF, clock period 5 ns) and prints one JSON line: compile seconds,
da4ml's own cost estimate, adder count, adder depth, pipeline stages. bench/adder_graph.py synthesizes the
Verilog with the same Yosys flow as qmlp's.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from da4ml.codegen import VerilogModel
from da4ml.trace import FixedVariableArray, comb_trace


def main(npz: str, out_dir: str, name: str, cutoff: float) -> None:
    data = np.load(npz)
    w = data["w"].astype(np.float64)
    start = time.perf_counter()
    x = FixedVariableArray.from_kif(data["k"], data["i"], data["f"])
    comb = comb_trace(x, x @ w.T)
    model = VerilogModel(comb, name, out_dir, latency_cutoff=cutoff, clock_period=5.0, print_latency=False)
    model.write()
    seconds = time.perf_counter() - start
    stages = len(model._pipe.solutions) if model._pipe is not None else 1  # noqa: SLF001 - no public accessor
    adders = sum(1 for op in comb.ops if op.opcode in (0, 1))
    level: list[int] = []  # adder levels: inputs 0, add/sub one more than their operands
    for op in comb.ops:
        if op.opcode in (0, 1):
            level.append(1 + max(level[op.id0], level[op.id1]))
        elif op.opcode == -1:
            level.append(0)
        else:  # negation, shift, constant: no adder
            level.append(level[op.id0] if op.id0 >= 0 else 0)
    print(json.dumps({"compile_s": round(seconds, 2), "cost": float(comb.cost), "adders": adders,
                      "stages": stages, "latency": float(max(comb.out_latency)), "depth": max(level, default=0)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
