"""RTL emitter: a folded Dataflow -> the Verilog library + a thin generated top ``qmlp_top``.

The logic lives in the hand-written, parameterized files of ``qmlp/hwgen/rtl/`` (microarchitecture
and cycle model in its README.md). This module only decides per layer which library unit to use
and with which parameters, writes the weight memories, and chains the units with width
converters and FIFOs:

    s_axis -> [dwc] -> fifo -> layer 0 -> [dwc] -> fifo -> layer 1 ... -> [argmax] -> [dwc] -> fifo -> m_axis

A layer whose weights are all in {-1, 0, +1} and which is fully parallel (one output fold, one
input fold) becomes ``qmlp_ternary_layer`` (weights as constants); every other layer is a
``qmlp_mvau`` with its weights in a ROM read from ``<layer>_weights.mem`` ($readmemh, relative
to the working directory of the simulator / synthesis tool, i.e. the rtl directory).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..datatypes import BIPOLAR, TERNARY, UINT, DataType, smallest_type_for_range
from ..errors import FoldingError
from ..ir import SCHEMA_VERSION, Dataflow, Layer
from ..packing import encode
from ..untrusted import quote_name

__all__ = ["LIBRARY_DIR", "LIBRARY_FILES", "TOP_NAME", "LayerPlan", "plan_layer", "plan_layers",
           "output_dtype", "check_emittable", "emit_rtl", "render_top", "Stage", "pipeline_stages",
           "weight_words", "weight_storage_dtype"]

LIBRARY_DIR = Path(__file__).parent / "rtl"
LIBRARY_FILES = ("qmlp_fifo.v", "qmlp_dwc.v", "qmlp_threshold.v", "qmlp_mvau.v", "qmlp_adder_tree.v",
                 "qmlp_ternary_layer.v", "qmlp_argmax.v", "qmlp_beats.v", "qmlp_control.v")
TOP_NAME = "qmlp_top"
FIFO_DEPTH = 2
LEVELS_PER_STAGE = 3  # adder-tree levels between pipeline registers in qmlp_ternary_layer (3 small adds fit 200 MHz)


def _kind(dtype: DataType) -> int:
    """Element encoding code used by the library: 0 UINT, 1 two's complement, 2 BIPOLAR."""
    if dtype == BIPOLAR:
        return 2
    return 1 if dtype.signed else 0


@dataclass(frozen=True)
class LayerPlan:
    """How one layer becomes hardware: padded sizes, folds, widths and the unit used."""

    index: int
    name: str
    unit: str  # "qmlp_mvau" or "qmlp_ternary_layer"
    mw: int  # padded input features
    mh: int  # padded output features
    simd: int
    pe: int
    in_bits: int
    out_bits: int
    acc_bits: int
    steps: int  # 0 = no activation
    t_bits: int

    @property
    def ident(self) -> str:
        """Verilog-safe instance prefix (IR names may hold '/', '.', ...)."""
        return f"l{self.index}"

    @property
    def sf(self) -> int:
        return self.mw // self.simd

    @property
    def nf(self) -> int:
        return self.mh // self.pe

    @property
    def cycles(self) -> int:
        return self.nf * self.sf


def weight_storage_dtype(layer: Layer) -> DataType:
    """Type of the ROM words: the weight type, except BIPOLAR layers with padded inputs are stored
    as TERNARY, because a padding column needs weight 0 (BIPOLAR has no zero; the padded input
    elements are code 0 = -1 for a BIPOLAR input and must not count)."""
    if layer.weight_dtype == BIPOLAR and layer.folding is not None and layer.folding.pad_in > 0:
        return TERNARY
    return layer.weight_dtype


def _padded_weights(layer: Layer) -> np.ndarray:
    f = layer.folding
    w = np.zeros((layer.out_features + f.pad_out, layer.in_features + f.pad_in), dtype=np.int64)
    w[: layer.out_features, : layer.in_features] = layer.weights
    return w


def _threshold_table(layer: Layer, mh: int) -> tuple[np.ndarray, DataType]:
    """Thresholds clipped to [acc.min, acc.max + 1] (same counts for every reachable accumulator),
    padded channels never fire; returns (table (mh, steps), storage type)."""
    acc = layer.acc_dtype
    values = np.clip(np.asarray(layer.activation.values, dtype=np.int64), acc.min, acc.max + 1)
    table = np.full((mh, values.shape[1]), acc.max + 1, dtype=np.int64)
    table[: values.shape[0]] = values
    ttype = smallest_type_for_range(min(int(table.min()), -1), int(table.max()))
    return table, ttype


def plan_layer(index: int, layer: Layer) -> LayerPlan:
    """Pick the library unit and widths for a folded layer (expects ``layer.folding`` set)."""
    f = layer.folding
    mw, mh = layer.in_features + f.pad_in, layer.out_features + f.pad_out
    unary = bool(np.all(np.abs(layer.weights) <= 1))
    fully_parallel = f.pe == mh and f.simd == mw
    steps, t_bits = 0, 1
    if layer.activation is not None:
        _, ttype = _threshold_table(layer, mh)
        steps, t_bits = layer.activation.steps, ttype.bits
    return LayerPlan(
        index=index, name=layer.name, unit="qmlp_ternary_layer" if unary and fully_parallel else "qmlp_mvau",
        mw=mw, mh=mh, simd=f.simd, pe=f.pe, in_bits=layer.in_dtype.bits, out_bits=layer.out_dtype.bits,
        acc_bits=layer.acc_dtype.bits, steps=steps, t_bits=t_bits,
    )


def plan_layers(df: Dataflow) -> tuple[LayerPlan, ...]:
    check_emittable(df)
    return tuple(plan_layer(i, layer) for i, layer in enumerate(df.layers))


def output_dtype(df: Dataflow) -> DataType:
    """Element type on m_axis (docs/interfaces.md): last layer's output, or the class index."""
    if df.argmax:
        return UINT(max(1, (df.layers[-1].out_features - 1).bit_length()))
    return df.layers[-1].out_dtype


def check_emittable(df: Dataflow) -> None:
    """Raise FoldingError unless every layer is folded legally and ``df.stream`` is set."""
    for index, layer in enumerate(df.layers):
        f = layer.folding
        where = f"layer {index} ({layer.name})"
        if f is None:
            raise FoldingError(f"{where}: no folding set; run qmlp.hwgen.fold.fold() or apply_folding() before emit_rtl")
        if (layer.out_features + f.pad_out) % f.pe or (layer.in_features + f.pad_in) % f.simd:
            raise FoldingError(f"{where}: PE={f.pe}/SIMD={f.simd} do not divide {layer.out_features}+{f.pad_out} x "
                               f"{layer.in_features}+{f.pad_in}; choose divisors or set the padding")
        if not (0 <= f.pad_out < f.pe and 0 <= f.pad_in < f.simd):
            raise FoldingError(f"{where}: padding pad_out={f.pad_out}, pad_in={f.pad_in} must be below PE/SIMD")
    if df.stream is None:
        raise FoldingError(f"dataflow {df.name}: stream format not set; run qmlp.hwgen.fold.with_stream() before emit_rtl")
    if df.stream.in_elems_per_beat < 1 or df.stream.out_elems_per_beat < 1:
        raise FoldingError(f"dataflow {df.name}: stream elements per beat must be >= 1, got {df.stream}")


# --- memory / parameter files ----------------------------------------------------------------

def _hex_words(words: list[int], bits: int) -> str:
    digits = max(1, -(-bits // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words)


def weight_words(layer: Layer, plan: LayerPlan) -> list[int]:
    """ROM word nf*SF + sf holds W[nf*PE + p, sf*SIMD + s] at bits [(p*SIMD + s)*w, ...)."""
    storage = weight_storage_dtype(layer)
    codes = encode(_padded_weights(layer), storage).astype(object)
    w = storage.bits
    # (nf, pe, sf, simd) -> (nf, sf, pe, simd): one ROM word per (nf, sf).
    blocks = codes.reshape(plan.nf, plan.pe, plan.sf, plan.simd).transpose(0, 2, 1, 3).reshape(plan.cycles, -1)
    shifts = [i * w for i in range(plan.pe * plan.simd)]
    return [sum(int(c) << s for c, s in zip(row, shifts)) for row in blocks]


def _pack_vector(values: np.ndarray, bits: int) -> str:
    """A flat list of integers -> Verilog sized hex literal, element 0 in the LSBs."""
    total = max(1, len(values) * bits)
    mask = (1 << bits) - 1
    number = 0
    for i, v in enumerate(values.tolist()):
        number |= (int(v) & mask) << (i * bits)
    return f"{total}'h{number:x}"


def _stamp(comment: str) -> str:
    return f"{comment} generated by qmlp {__version__} (qmlp.hwgen.emit); do not edit\n"


# --- top ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stream:
    """A stream wire bundle in the top: its name, elements per beat, padded length, beats."""

    name: str
    elems: int
    bits: int
    length: int  # elements per vector including padding (beats * elems)
    real: int  # real elements per vector

    @property
    def beats(self) -> int:
        return self.length // self.elems

    @property
    def width(self) -> int:
        return self.elems * self.bits


@dataclass(frozen=True)
class Stage:
    """One unit of the generated chain, as the cycle model (qmlp.hwgen.cycles) needs it:
    ``kind`` is dwc / layer / fifo / argmax; ``beats_in``/``beats_out`` per vector; for a dwc
    ``a``/``b`` elements per beat and ``n`` real elements; for a layer its plan."""

    kind: str
    name: str
    beats_in: int
    beats_out: int
    a: int = 0
    b: int = 0
    n: int = 0
    plan: LayerPlan | None = None
    depth: int = 0


def _wires(s: _Stream) -> str:
    return (f"    wire [{s.width - 1}:0] {s.name}_data;\n"
            f"    wire {s.name}_valid, {s.name}_ready;\n")


def _ports(s: _Stream, role: str) -> str:
    return f".{role}_data({s.name}_data), .{role}_valid({s.name}_valid), .{role}_ready({s.name}_ready)"


def _converter(src: _Stream, elems: int, beats: int, name: str, stages: list[Stage]) -> tuple[str, _Stream]:
    """Return (verilog, stream) converting ``src`` to ``elems`` per beat over ``beats`` beats;
    no logic when the formats already agree."""
    if src.elems == elems and src.beats == beats:
        return "", src  # padding elements pass through; the consumer's padded weights are zero
    dst = _Stream(name, elems, src.bits, beats * elems, src.real)
    stages.append(Stage("dwc", name, src.beats, beats, a=src.elems, b=elems, n=src.real))
    text = (_wires(dst)
            + f"    qmlp_dwc #(.BITS({src.bits}), .A({src.elems}), .B({elems}), .N({src.real}), "
              f".IN_BEATS({src.beats}), .OUT_BEATS({beats})) {name}_conv (\n"
              f"        .clk(ap_clk), .rst_n(ap_rst_n), {_ports(src, 's')},\n"
              f"        {_ports(dst, 'm')}\n    );\n")
    return text, dst


def _layer_instance(layer: Layer, plan: LayerPlan, src: _Stream, stages: list[Stage]) -> tuple[str, _Stream]:
    stages.append(Stage("layer", plan.ident, plan.sf, plan.nf, plan=plan))
    out = _Stream(f"{plan.ident}_out", plan.pe, plan.out_bits, plan.mh, layer.out_features)
    act = layer.activation
    params = [
        f".MW({plan.mw})", f".MH({plan.mh})", f".IN_BITS({plan.in_bits})", f".IN_KIND({_kind(layer.in_dtype)})",
        f".ACC_BITS({plan.acc_bits})", f".ACC_SIGNED({int(layer.acc_dtype.signed)})", f".STEPS({plan.steps})",
        f".T_BITS({plan.t_bits})", f".OUT_BITS({plan.out_bits})", f".OUT_BIAS({0 if act is None or act.out_dtype == BIPOLAR else act.bias})",
    ]
    if act is not None:
        table, _ = _threshold_table(layer, plan.mh)
        params.append(f".THRESHOLDS({_pack_vector(table.reshape(-1), plan.t_bits)})")
    if plan.unit == "qmlp_ternary_layer":
        w = _padded_weights(layer).reshape(-1)
        params += [f".LEVELS_PER_STAGE({LEVELS_PER_STAGE})",
                   f".POS({_pack_vector((w == 1).astype(np.int64), 1)})",
                   f".NEG({_pack_vector((w == -1).astype(np.int64), 1)})"]
    else:
        storage = weight_storage_dtype(layer)
        params += [f".SIMD({plan.simd})", f".PE({plan.pe})", f".W_BITS({storage.bits})",
                   f".W_KIND({_kind(storage)})", f'.WEIGHT_FILE("{plan.ident}_weights.mem")']
    text = (_wires(out)
            + f"    // {plan.ident} = {quote_name(plan.name)}: {layer.out_features}x{layer.in_features} {layer.weight_dtype} weights, "
              f"PE={plan.pe} SIMD={plan.simd}, {plan.cycles} cycles/vector\n"
            + f"    {plan.unit} #(\n        " + ",\n        ".join(params) + f"\n    ) {plan.ident}_unit (\n"
            + f"        .clk(ap_clk), .rst_n(ap_rst_n), {_ports(src, 's')},\n"
            + f"        {_ports(out, 'm')}\n    );\n")
    return text, out


def _fifo(src: _Stream, name: str, stages: list[Stage]) -> tuple[str, _Stream]:
    # A whole vector (+1 beat) of the consumer's input fits: the producer never waits while the
    # consumer runs its output folds nf > 0 (which take no input), and the consumer finds its next
    # vector complete, taking one beat per cycle. This keeps II = max over layers of NF*SF.
    depth = max(FIFO_DEPTH, src.beats + 1)
    stages.append(Stage("fifo", name, src.beats, src.beats, depth=depth))
    dst = _Stream(name, src.elems, src.bits, src.length, src.real)
    text = (_wires(dst)
            + f"    qmlp_fifo #(.WIDTH({src.width}), .DEPTH({depth})) {name}_fifo (\n"
            + f"        .clk(ap_clk), .rst_n(ap_rst_n), {_ports(src, 's')},\n"
            + f"        {_ports(dst, 'm')}\n    );\n")
    return text, dst


def _ts_depth(n_layers: int) -> int:
    """Power of two >= inferences that can be in flight: each unit holds parts of at most two
    vectors, and a layer brings three units (converter, layer, FIFO)."""
    return 1 << (6 * (n_layers + 2) - 1).bit_length()


def render_top(df: Dataflow, plans: tuple[LayerPlan, ...]) -> str:
    """The generated ``qmlp_top`` module: instantiations and wiring only."""
    return _build_top(df, plans)[0]


def pipeline_stages(df: Dataflow) -> tuple[Stage, ...]:
    """The chain of units between s_axis and m_axis, exactly as ``qmlp_top`` instantiates them."""
    return tuple(_build_top(df, plan_layers(df))[1])


def _build_top(df: Dataflow, plans: tuple[LayerPlan, ...]) -> tuple[str, list[Stage]]:
    stages: list[Stage] = []
    in_dtype, out_dtype = df.input.dtype, output_dtype(df)
    e_in, e_out = df.stream.in_elems_per_beat, df.stream.out_elems_per_beat
    n_in, n_out = df.input.features, df.layers[-1].out_features
    in_beats = -(-n_in // e_in)
    in_tbits = 8 * -(-e_in * in_dtype.bits // 8)
    vec_out = 1 if df.argmax else n_out
    out_beats = -(-vec_out // e_out)
    out_tbits = 8 * -(-e_out * out_dtype.bits // 8)

    body = []
    src = _Stream("in", e_in, in_dtype.bits, in_beats * e_in, n_in)
    body.append(_wires(src) + f"    assign in_data = s_axis_tdata[{src.width - 1}:0];\n"
                f"    assign in_valid = s_axis_tvalid;\n    assign s_axis_tready = in_ready;\n")
    if in_tbits > src.width:
        body.append(f"    wire _unused_tdata_pad = &{{1'b0, s_axis_tdata[{in_tbits - 1}:{src.width}], 1'b0}};\n")
    for layer, plan in zip(df.layers, plans):
        text, src = _converter(src, plan.simd, plan.sf, f"{plan.ident}_in", stages)
        body.append(text)
        text, src = _fifo(src, f"{plan.ident}_q", stages)
        body.append(text)
        text, src = _layer_instance(layer, plan, src, stages)
        body.append(text)
    if df.argmax:
        dst = _Stream("result", 1, out_dtype.bits, 1, 1)
        signed = int(df.layers[-1].out_dtype.signed and df.layers[-1].out_dtype != BIPOLAR)
        stages.append(Stage("argmax", "argmax", src.beats, 1))
        body.append(_wires(dst)
                    + f"    qmlp_argmax #(.BITS({src.bits}), .SIGNED({signed}), .E({src.elems}), .N({src.real}), "
                      f".BEATS({src.beats}), .IDX_BITS({out_dtype.bits})) argmax_unit (\n"
                      f"        .clk(ap_clk), .rst_n(ap_rst_n), {_ports(src, 's')},\n"
                      f"        {_ports(dst, 'm')}\n    );\n")
        src = dst
    needs_zeroing = src.length != src.real and not df.argmax
    if needs_zeroing or src.elems != e_out:
        # Distinct name even when only padded channels must be zeroed.
        dst = _Stream("result_conv", e_out, src.bits, out_beats * e_out, src.real)
        stages.append(Stage("dwc", "result_conv", src.beats, out_beats, a=src.elems, b=e_out, n=src.real))
        body.append(_wires(dst)
                    + f"    qmlp_dwc #(.BITS({src.bits}), .A({src.elems}), .B({e_out}), .N({src.real}), "
                      f".IN_BEATS({src.beats}), .OUT_BEATS({out_beats})) result_conv (\n"
                      f"        .clk(ap_clk), .rst_n(ap_rst_n), {_ports(src, 's')},\n"
                      f"        {_ports(dst, 'm')}\n    );\n")
        src = dst
    text, src = _fifo(src, "result_q", stages)
    body.append(text)
    pad = out_tbits - src.width
    data = f"{{{pad}'d0, {src.name}_data}}" if pad else f"{src.name}_data"
    body.append(f"    assign m_axis_tdata = {data};\n    assign m_axis_tvalid = {src.name}_valid;\n"
                f"    assign {src.name}_ready = m_axis_tready;\n")

    version = (SCHEMA_VERSION << 16) | len(df.layers)
    body.append(
        "    // Inference boundaries on the two streams drive the AXI-Lite counters.\n"
        "    wire in_first, in_last, out_first, out_last;\n"
        f"    qmlp_beats #(.BEATS({in_beats})) in_beats (.clk(ap_clk), .rst_n(ap_rst_n), "
        ".fire(s_axis_tvalid && s_axis_tready), .first(in_first), .last(in_last));\n"
        f"    qmlp_beats #(.BEATS({out_beats})) out_beats (.clk(ap_clk), .rst_n(ap_rst_n), "
        ".fire(m_axis_tvalid && m_axis_tready), .first(out_first), .last(out_last));\n"
        "    assign m_axis_tlast = out_last;\n"
        f"    qmlp_control #(.VERSION(32'h{version:08x}), .TS_DEPTH({_ts_depth(len(df.layers))})) control (\n"
        "        .clk(ap_clk), .rst_n(ap_rst_n),\n"
        "        .start(s_axis_tvalid && s_axis_tready && in_first),\n"
        "        .done(m_axis_tvalid && m_axis_tready && out_last),\n"
        "        .s_axi_awaddr(s_axi_awaddr), .s_axi_awvalid(s_axi_awvalid), .s_axi_awready(s_axi_awready),\n"
        "        .s_axi_wdata(s_axi_wdata), .s_axi_wstrb(s_axi_wstrb), .s_axi_wvalid(s_axi_wvalid),\n"
        "        .s_axi_wready(s_axi_wready), .s_axi_bresp(s_axi_bresp), .s_axi_bvalid(s_axi_bvalid),\n"
        "        .s_axi_bready(s_axi_bready), .s_axi_araddr(s_axi_araddr), .s_axi_arvalid(s_axi_arvalid),\n"
        "        .s_axi_arready(s_axi_arready), .s_axi_rdata(s_axi_rdata), .s_axi_rresp(s_axi_rresp),\n"
        "        .s_axi_rvalid(s_axi_rvalid), .s_axi_rready(s_axi_rready)\n    );\n"
        "    wire _unused_beats = &{1'b0, in_last, out_first, 1'b0};\n")

    header = (_stamp("//")
              + f"// {TOP_NAME} for dataflow '{quote_name(df.name)}': {len(df.layers)} layers, "
                f"{n_in} x {in_dtype} in ({e_in}/beat), {vec_out} x {out_dtype} out ({e_out}/beat)\n"
              + "`default_nettype none\n\n"
              + f"module {TOP_NAME} (\n"
              + "    input  wire        ap_clk,\n    input  wire        ap_rst_n,\n"
              + f"    input  wire [{in_tbits - 1}:0] s_axis_tdata,\n"
              + "    input  wire        s_axis_tvalid,\n    output wire        s_axis_tready,\n"
              + f"    output wire [{out_tbits - 1}:0] m_axis_tdata,\n"
              + "    output wire        m_axis_tvalid,\n    input  wire        m_axis_tready,\n"
              + "    output wire        m_axis_tlast,\n"
              + "    input  wire [5:0]  s_axi_awaddr,\n    input  wire        s_axi_awvalid,\n"
              + "    output wire        s_axi_awready,\n    input  wire [31:0] s_axi_wdata,\n"
              + "    input  wire [3:0]  s_axi_wstrb,\n    input  wire        s_axi_wvalid,\n"
              + "    output wire        s_axi_wready,\n    output wire [1:0]  s_axi_bresp,\n"
              + "    output wire        s_axi_bvalid,\n    input  wire        s_axi_bready,\n"
              + "    input  wire [5:0]  s_axi_araddr,\n    input  wire        s_axi_arvalid,\n"
              + "    output wire        s_axi_arready,\n    output wire [31:0] s_axi_rdata,\n"
              + "    output wire [1:0]  s_axi_rresp,\n    output wire        s_axi_rvalid,\n"
              + "    input  wire        s_axi_rready\n);\n")
    return header + "\n".join(body) + "endmodule\n\n`default_nettype wire\n", stages


def emit_rtl(df: Dataflow, rtl_dir: str | Path) -> list[Path]:
    """Write the Verilog for ``df`` into ``rtl_dir``: library files, ``qmlp_top.v`` and one
    ``<layer>_weights.mem`` per ROM-based layer. Expects every layer folded and ``df.stream``
    set (FoldingError otherwise; nothing is written then). Returns the written paths, top last."""
    plans = plan_layers(df)
    files: dict[str, str] = {}
    for layer, plan in zip(df.layers, plans):
        if plan.unit == "qmlp_mvau":
            w_bits = weight_storage_dtype(layer).bits
            bits = plan.pe * plan.simd * w_bits
            files[f"{plan.ident}_weights.mem"] = (
                _stamp("//") + f"// {plan.ident} = {quote_name(plan.name)}: {plan.cycles} words of PE*SIMD*{w_bits} = {bits} bits\n"
                + _hex_words(weight_words(layer, plan), bits))
    files[f"{TOP_NAME}.v"] = render_top(df, plans)
    out = Path(rtl_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in LIBRARY_FILES:
        shutil.copyfile(LIBRARY_DIR / name, out / name)
        written.append(out / name)
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    return written
