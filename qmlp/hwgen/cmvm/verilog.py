"""An adder graph as a Verilog module: one wire per adder, named after its graph node.

    module <name> (input clk, input en, input [MW*IN_BITS-1:0] x, output [MH*ACC_BITS-1:0] acc)

``x`` holds the input codes (from the shell's input register), ``acc`` the exact dot products
(two's complement, or plain binary for an unsigned accumulator; a node that is never negative
is plain binary, zero-extended), valid ``sched.stages - 1``
enabled clocks after ``x``. Node ``n<i>`` is graph node ``i`` on exactly its width; ``x<k>``
is input ``k`` decoded to its value; ``n<i>_d<j>`` is node ``i`` delayed by ``j`` register
banks (needed where a consumer sits ``j`` stages later). Every operand is sign-extended or
truncated to its adder's width explicitly, so the module is lint-clean under
``verilator --lint-only -Wall``; truncation is exact because every node's range fits its width.

Every adder's wire is ``(* keep *)``: without it Yosys (``alumacc``) merges chains of adders
read once into multi-operand ``$macc`` compressor trees of plain LUTs, which puts up to 14 LUT
levels into a stage planned for 5 (measured on the seed's int2 fc2: 7,601 LUT and 135 MHz
estimated without, 7,269 LUT and 290 MHz with; every adder then maps to one carry chain, as
``cost.adder_lut`` counts).
"""

from __future__ import annotations

from .graph import AdderGraph, Operand
from .schedule import Schedule

__all__ = ["render_graph_module"]


class _Names:
    """Signal names per (node, stage) and the bits of each signal that are read."""

    def __init__(self, graph: AdderGraph, sched: Schedule) -> None:
        self.graph, self.sched = graph, sched
        self.home = sched.homes(graph)
        self.used: dict[str, int] = {}  # signal -> highest bit read + 1

    def base(self, i: int) -> str:
        return f"x{i}" if i < self.graph.n_inputs else f"n{i}"

    def at(self, i: int, stage: int) -> str:
        delay = stage - self.home[i]
        assert delay >= 0, "a consumer is scheduled before its operand"
        return self.base(i) if delay == 0 else f"{self.base(i)}_d{delay}"

    def operand(self, op: Operand, stage: int, width: int) -> str:
        """``op`` (sign excluded) as a ``width``-bit expression read in ``stage``."""
        name, node = self.at(op.node, stage), self.graph.nodes[op.node]
        w, s = node.width, op.shift
        assert s < width, "an operand shifted out of its adder"
        keep = min(w, width - s)
        self.used[name] = max(self.used.get(name, 0), keep)
        body = name if keep == w else (f"{name}[{keep - 1}:0]" if keep > 1 else f"{name}[0]")
        parts = []
        if width - s > w:
            sign = f"{name}[{w - 1}]" if node.signed else "1'b0"
            parts.append(f"{{{width - s - w}{{{sign}}}}}" if width - s - w > 1 else sign)
            self.used[name] = w if node.signed else keep
        parts.append(body)
        if s:
            parts.append(f"{s}'b0")
        return parts[0] if len(parts) == 1 else "{" + ", ".join(parts) + "}"


def _decode(k: int, in_bits: int, in_kind: int, width: int) -> str:
    code = f"x[{k * in_bits + in_bits - 1}:{k * in_bits}]" if in_bits > 1 else f"x[{k}]"
    if in_kind == 2:  # BIPOLAR: code 1 -> +1, code 0 -> -1
        return f"{code} ? {width}'sd1 : -{width}'sd1"
    if width == in_bits:
        return code
    fill = f"x[{k * in_bits + in_bits - 1}]" if in_kind == 1 else "1'b0"
    return f"{{{{{width - in_bits}{{{fill}}}}}, {code}}}"


def render_graph_module(name: str, graph: AdderGraph, sched: Schedule, *, in_bits: int, in_kind: int,
                        acc_bits: int, header: str = "") -> str:
    """Verilog text of the graph module ``name`` (ports in the module docstring).
    ``in_kind``: 0 UINT, 1 two's complement, 2 BIPOLAR (the library's element codes)."""
    names = _Names(graph, sched)
    n_in, n_out = graph.n_inputs, len(graph.outputs)
    last = sched.stages - 1
    need = sched.last_use(graph)

    decl, logic = [], []
    used_inputs = {op.node for n in graph.adders for op in (n.a, n.b)} | {o.node for o in graph.outputs if o}
    for k in range(n_in):
        if k in used_inputs:
            w = graph.nodes[k].width
            decl.append(f"    wire [{w - 1}:0] x{k} = {_decode(k, in_bits, in_kind, w)};")
    for i, node in enumerate(graph.adders, start=n_in):
        st, w = sched.stage(node.level), node.width
        a = names.operand(node.a, st, w)
        b = names.operand(node.b, st, w)
        comment = f"  // [{node.lo}, {node.hi}] level {node.level}" + (" shared" if node.tag == "cse" else "")
        decl.append(f"    (* keep *) wire [{w - 1}:0] n{i};")
        logic.append(f"    assign n{i} = {a} {'-' if node.b.neg else '+'} {b};{comment}")

    regs = []
    for i, stop in enumerate(need):
        w = graph.nodes[i].width
        for d in range(1, stop - names.home[i] + 1):
            prev = names.at(i, names.home[i] + d - 1)
            names.used[prev] = w
            decl.append(f"    reg [{w - 1}:0] {names.base(i)}_d{d};")
            regs.append(f"        {names.base(i)}_d{d} <= {prev};")

    outs = []
    for c, op in enumerate(graph.outputs):
        dst = f"acc[{c * acc_bits + acc_bits - 1}:{c * acc_bits}]" if acc_bits > 1 else f"acc[{c}]"
        if op is None:
            outs.append(f"    assign {dst} = {acc_bits}'d0;")
        else:
            expr = names.operand(op, last, acc_bits)
            outs.append(f"    assign {dst} = {'-' if op.neg else ''}{expr};")

    unused = []
    for k in range(n_in):
        if k not in used_inputs:
            unused.append(f"x[{k * in_bits + in_bits - 1}:{k * in_bits}]" if in_bits > 1 else f"x[{k}]")
    for i, node in enumerate(graph.nodes):
        if i < n_in and i not in used_inputs:
            continue
        for d in range(0, need[i] - names.home[i] + 1):
            sig = names.at(i, names.home[i] + d)
            top = names.used.get(sig, 0)
            if top < node.width:
                unused.append(sig if top == 0 else f"{sig}[{node.width - 1}:{top}]")

    lines = [header.rstrip("\n")] if header else []
    lines += [
        "`default_nettype none",
        "",
        f"module {name} (",
        "    input  wire clk,",
        "    input  wire en,",
        f"    input  wire [{n_in * in_bits - 1}:0] x,",
        f"    output wire [{n_out * acc_bits - 1}:0] acc",
        ");",
        *decl,
        "",
        *logic,
    ]
    if regs:
        lines += ["", "    // Pipeline registers (every {} adder levels) and delay lines.".format(sched.k),
                  "    always @(posedge clk) begin", "        if (en) begin",
                  *("    " + r for r in regs), "        end", "    end"]
    else:
        lines.append("    wire _unused_clk = &{1'b0, clk, en, 1'b0};")
    lines += ["", *outs]
    if unused:
        lines.append(f"    wire _unused_ok = &{{1'b0, {', '.join(unused)}, 1'b0}};")
    lines += ["endmodule", "", "`default_nettype wire", ""]
    return "\n".join(lines)
