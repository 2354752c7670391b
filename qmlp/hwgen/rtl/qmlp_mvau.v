// qmlp_mvau: streaming matrix-vector(-threshold) unit with PE/SIMD folding.
//
// Computes out[c] = act(sum_k W[c,k] * x[k]) for an MH x MW matrix (already zero-padded so
// that PE | MH and SIMD | MW). The input vector arrives as SF = MW/SIMD beats of SIMD
// elements; the output leaves as NF = MH/PE beats of PE elements. Work is issued one
// (nf, sf) pair per cycle, nf outer: during fold nf = 0 the beats come from the input stream
// and are also stored in the input buffer, which folds nf > 0 reread (SF = 1: the stage-1
// input register itself holds the beat, no buffer and no select). So a vector takes
// exactly NF*SF issue cycles and the next vector's fold 0 follows immediately.
//
// Pipeline (all stages advance together on `en`; a full output register stalls the unit):
//   issue -> [1] ROM word + input beat -> [2] SIMD products summed per PE by a qmlp_adder_tree
//         registered every LEVELS_PER_STAGE levels (SUM_LAT = max(1, its latency) registers)
//         -> [3] accumulator over SF beats -> [+L] threshold search -> [4] thresholds (or raw
//            accumulator) = m_*
// An output beat is valid 3 + SUM_LAT + L cycles after its last (sf = SF-1) issue, L = SEARCH_LEVELS.
//
// Thresholds (STEPS > 0) live in ROMs read from $readmemh files (README "Threshold memory
// format"): with SEARCH_LEVELS = 0, THRESHOLD_FILE.mem holds one word per output fold (PE lanes of
// STEPS thresholds and the direction bit), read with the accumulator's last sum so the row meets
// it in stage 4 (qmlp_threshold, one comparator per threshold); with SEARCH_LEVELS = L > 0 each
// lane g is a qmlp_threshold_search over its own THRESHOLD_FILE_g<g>_k<k>.mem, adding L pipeline stages.
//
// POPCOUNT = 1 (BIPOLAR inputs, IN_BITS = 1): stage 2 is a qmlp_popcount per PE, which sums
// P = sum w*c over the input codes c without products; the accumulator holds P and the
// thresholds are stored on P (the plan folds each row's constant in; qmlp/hwgen/popcount.py).
//
// PLANES = 1 (2-bit weights, inputs of at most 2 bits, SIMD > 1): stage 2 sums each weight bit
// plane b on its own tree, s_b = sum_s x_s * w_s[b] (the leaves are the inputs ANDed with one
// weight bit, which synthesis folds into the first adders' LUTs), and one more register stage
// combines them, sum = sum_b omega_b * s_b (omega_b = 2^b, the top bit of a signed weight
// -2^(W_BITS-1)): SUM_LAT = the trees' latency + 1. Two trees of narrow leaves take fewer LUTs
// than the products and one tree of their wider sums (qmlp/hwgen/plan.py, ``uses_planes``).
//
// Element encodings (KIND): 0 = UINT, 1 = INT (two's complement, also TERNARY), 2 = BIPOLAR
// (code 1 = +1, 0 = -1). Arithmetic is modulo 2^ACC_BITS: the IR guarantees the final and
// every partial sum fit in ACC_BITS, so the wrap-around never loses information.
`default_nettype none

module qmlp_mvau #(
    parameter integer MW = 4,
    parameter integer MH = 4,
    parameter integer SIMD = 1,
    parameter integer PE = 1,
    parameter integer IN_BITS = 2,
    parameter integer IN_KIND = 0,
    parameter integer W_BITS = 2,
    parameter integer W_KIND = 1,
    parameter integer ACC_BITS = 8,
    parameter integer ACC_SIGNED = 1,
    parameter integer STEPS = 0,          // 0: no activation, the output is the accumulator
    parameter integer T_BITS = 1,
    parameter integer OUT_BITS = 8,       // must equal ACC_BITS when STEPS = 0
    parameter integer OUT_BIAS = 0,
    parameter integer SEARCH_LEVELS = 0,  // 0: a comparator per threshold; L: binary search, 2^L - 1 thresholds
    parameter THRESHOLD_FILE = "",        // $readmemh file name without ".mem" (see above)
    parameter THRESHOLD_ROM_STYLE = "logic",  // SEARCH_LEVELS = 0: the table ROM's rom_style
    parameter integer SEARCH_BLOCK_FROM = 32, // search levels >= this are block-RAM ROMs
    parameter integer LEVELS_PER_STAGE = 3,  // adder-tree levels between pipeline registers
    parameter integer POPCOUNT = 0,  // 1: BIPOLAR inputs summed by qmlp_popcount (ACC_BITS holds its count P)
    parameter integer PRODUCT_BITS = IN_BITS + W_BITS + 1,  // the plan's exact width of one product
    parameter integer PLANES = 0,  // 1: one adder tree per weight bit plane, then their combination (above)
    parameter ROM_STYLE = "logic",  // "logic" (LUTs) or "block" (BRAM), the planner's choice
    parameter WEIGHT_FILE = ""  // $readmemh file: NF*SF words of PE*SIMD*W_BITS, see README
) (
    input  wire                     clk,
    input  wire                     rst_n,
    input  wire [SIMD*IN_BITS-1:0]  s_data,
    input  wire                     s_valid,
    output wire                     s_ready,
    output wire [PE*OUT_BITS-1:0]   m_data,
    output wire                     m_valid,
    input  wire                     m_ready
);
    localparam integer NF = MH / PE;
    localparam integer SF = MW / SIMD;
    localparam integer WORDS = NF * SF;
    localparam integer NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam integer SFW = (SF > 1) ? $clog2(SF) : 1;
    localparam integer AW = (WORDS > 1) ? $clog2(WORDS) : 1;
    localparam integer TE = (STEPS > 0 ? STEPS : 1) * T_BITS + 1;  // threshold entry: STEPS thresholds + neg
    localparam integer LAT = (STEPS > 0) ? SEARCH_LEVELS : 0;       // extra stages of the threshold search

    // ---- issue ----------------------------------------------------------------------------
    reg [NFW-1:0] nf;
    reg [SFW-1:0] sf;
    reg [AW-1:0] addr;
    reg v1, v4;
    wire en = !v4 || m_ready;
    wire fold0 = nf == {NFW{1'b0}};
    wire issue = en && (fold0 ? s_valid : 1'b1);
    wire last_sf = sf == SF[SFW-1:0] - 1'b1 || SF == 1;
    wire last_nf = nf == NF[NFW-1:0] - 1'b1 || NF == 1;
    assign s_ready = en && fold0;

    always @(posedge clk) begin
        if (!rst_n) begin
            nf <= {NFW{1'b0}};
            sf <= {SFW{1'b0}};
            addr <= {AW{1'b0}};
        end else if (issue) begin
            sf <= last_sf ? {SFW{1'b0}} : sf + 1'b1;
            if (last_sf) nf <= last_nf ? {NFW{1'b0}} : nf + 1'b1;
            addr <= (last_sf && last_nf) ? {AW{1'b0}} : addr + 1'b1;
        end
    end
    // ---- stage 1: weight ROM (registered read; rom_style as planned) -------------------------
    // The weight ROM is synthesized apart (keep_hierarchy): a LUT ROM mapped on its own is one
    // LUT6 per bit and 64 words; flattened with the products or popcount after its register, Yosys
    // spends far more on the pair (UNSW fc0, 1200 x 64 ROM + 600-input popcount, xc7: 5,865 LUT
    // flat, 3,127 apart; cause not traced). qmlp.hwgen.synth flattens after mapping.
    wire [PE*SIMD*W_BITS-1:0] w1;
    (* keep_hierarchy *)
    qmlp_rom #(.WIDTH(PE * SIMD * W_BITS), .DEPTH(WORDS), .ADDR_BITS(AW), .FILE(WEIGHT_FILE), .STYLE(ROM_STYLE))
        weight_rom (.clk(clk), .en(en), .addr(addr), .data(w1));

    reg [SIMD*IN_BITS-1:0] x1;
    generate
        if (SF > 1) begin : buffered
            reg [SIMD*IN_BITS-1:0] ibuf [0:SF-1];
            always @(posedge clk) begin
                if (issue && fold0) ibuf[sf] <= s_data;
                if (en) x1 <= fold0 ? s_data : ibuf[sf];
            end
        end else begin : held  // one beat per vector: x1 itself holds it through the folds nf > 0
            always @(posedge clk) if (issue && fold0) x1 <= s_data;
        end
    endgenerate

    reg first1, last1;
    reg [NFW-1:0] nf1, nf3;
    always @(posedge clk) begin
        if (en) begin
            first1 <= sf == {SFW{1'b0}};
            last1 <= last_sf;
            nf1 <= nf;
        end
    end

    // ---- stage 2: products and SIMD sum per PE -----------------------------------------------
    // Products are shift-and-add over the weight bits on PW = PRODUCT_BITS bits, the plan's exact
    // two's-complement width of x * w for the input and weight types (TERNARY x UINT2: 3 bits; the
    // default IN_BITS + W_BITS + 1 holds any product), computed modulo 2^PW, or modulo 2^ACC_BITS
    // when that is narrower; the adder tree's leaves are PW bits wide. No `*`, so no tool maps
    // these narrow products to DSP blocks (BIPOLAR: +-x, TERNARY/INT2: x*b0 - 2x*b1).
    localparam integer PW = (PRODUCT_BITS < ACC_BITS) ? PRODUCT_BITS : ACC_BITS;
    // qmlp_popcount's levels (its LEVELS; qmlp.hwgen.popcount.popcount_levels): leaf counts of 3,
    // the pairwise tree over them, the plane combination for several planes or signed weights
    localparam integer POP_GROUPS = (SIMD + 2) / 3;
    localparam integer POP_LEVELS = 1 + ((POP_GROUPS > 1) ? $clog2(POP_GROUPS) : 0)
                                    + ((W_KIND != 2 && (W_BITS > 1 || W_KIND == 1)) ? 1 : 0);
    localparam integer TREE_LEVELS = (POPCOUNT != 0) ? POP_LEVELS : (SIMD > 1) ? $clog2(SIMD) : 0;
    localparam integer TREE_LAT = (TREE_LEVELS + LEVELS_PER_STAGE - 1) / LEVELS_PER_STAGE;
    localparam integer SUM_LAT = (TREE_LAT > 0) ? TREE_LAT + ((PLANES != 0) ? 1 : 0) : 1;
    // a plane tree's leaf: the input masked by one weight bit, with a zero sign bit when unsigned
    localparam integer PLANE_LEAF = (IN_KIND == 1) ? IN_BITS : IN_BITS + 1;
    function automatic [PW-1:0] in_value(input [IN_BITS-1:0] code);
        // extended to IN_BITS + PW, then only the low PW bits matter (modular arithmetic)
        /* verilator lint_off UNUSEDSIGNAL */
        reg [IN_BITS+PW-1:0] wide;
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            if (IN_KIND == 2) wide = code[0] ? {{(IN_BITS + PW - 1){1'b0}}, 1'b1} : {(IN_BITS + PW){1'b1}};
            else if (IN_KIND == 1) wide = {{PW{code[IN_BITS-1]}}, code};
            else wide = {{PW{1'b0}}, code};
            in_value = wide[PW-1:0];
        end
    endfunction
    // Wide inputs (more than 6 input and weight bits: no longer one LUT6 per product bit) times
    // signed weights of 1-2 bits or BIPOLAR ones: a magnitude select and one conditional negation,
    // (m ^ {PW{n}}) + n, whose select and XOR fold into the incrementer's carry-chain LUTs, about
    // one LUT per product bit; the general shift-and-add builds x*b0 - 2x*b1 as two adders.
    localparam integer NEGATE_FORM = (IN_BITS + W_BITS > 6 && (W_KIND == 2 || (W_KIND == 1 && W_BITS <= 2))) ? 1 : 0;
    function automatic [PW-1:0] times(input [PW-1:0] x, input [W_BITS-1:0] code);
        integer b;
        reg [PW-1:0] m;
        reg n;
        begin
            if (NEGATE_FORM != 0) begin
                if (W_KIND == 2) begin  // BIPOLAR: code 1 = +1, 0 = -1
                    m = x;
                    n = !code[0];
                end else begin  // INT1 {0, -1}; INT2/TERNARY: 01 = 1, 10 = -2, 11 = -1
                    m = code[0] ? x : ((W_BITS > 1 && code[W_BITS-1]) ? x << 1 : {PW{1'b0}});
                    n = code[W_BITS-1];
                end
                times = (m ^ {PW{n}}) + {{(PW - 1){1'b0}}, n};
            end else if (W_KIND == 2) begin
                times = code[0] ? x : -x;
            end else begin
                times = {PW{1'b0}};
                for (b = 0; b < W_BITS; b = b + 1) begin
                    if (code[b]) begin
                        // the top bit of a two's-complement weight weighs -2^(W_BITS-1)
                        if (W_KIND == 1 && b == W_BITS - 1) times = times - (x << b);
                        else times = times + (x << b);
                    end
                end
            end
        end
    endfunction

    function automatic [PLANE_LEAF-1:0] plane_leaf(input [IN_BITS-1:0] code);
        /* verilator lint_off UNUSEDSIGNAL */
        reg [IN_BITS:0] wide;  // the sign bit of a signed code is its own top bit: dropped again
        /* verilator lint_on UNUSEDSIGNAL */
        begin
            wide = {1'b0, code};
            plane_leaf = wide[PLANE_LEAF-1:0];
        end
    endfunction

    wire [PE*ACC_BITS-1:0] psum2;
    genvar g, pb;
    generate
        if (POPCOUNT != 0) begin : popcount
            for (g = 0; g < PE; g = g + 1) begin : pe_sum
                qmlp_popcount #(.SIMD(SIMD), .W_BITS(W_BITS), .W_KIND(W_KIND), .ACC_BITS(ACC_BITS),
                                .LEVELS_PER_STAGE(LEVELS_PER_STAGE)) dot (
                    .clk(clk), .en(en), .x(x1), .w(w1[g*SIMD*W_BITS +: SIMD*W_BITS]),
                    .sum(psum2[g*ACC_BITS +: ACC_BITS])
                );
            end
        end else begin : products_sum
            for (g = 0; g < PE; g = g + 1) begin : pe_sum
                reg [SIMD*PW-1:0] products;
                integer s;
                always @* begin
                    for (s = 0; s < SIMD; s = s + 1)
                        products[s*PW +: PW] = times(in_value(x1[s*IN_BITS +: IN_BITS]), w1[(g*SIMD + s)*W_BITS +: W_BITS]);
                end
                if (PLANES != 0) begin : planes
                    reg [W_BITS*SIMD*PLANE_LEAF-1:0] masked;
                    wire [W_BITS*ACC_BITS-1:0] plane_sum;
                    integer b, e;
                    always @* begin
                        for (b = 0; b < W_BITS; b = b + 1)
                            for (e = 0; e < SIMD; e = e + 1)
                                masked[(b*SIMD + e)*PLANE_LEAF +: PLANE_LEAF] = w1[(g*SIMD + e)*W_BITS + b]
                                    ? plane_leaf(x1[e*IN_BITS +: IN_BITS]) : {PLANE_LEAF{1'b0}};
                    end
                    for (pb = 0; pb < W_BITS; pb = pb + 1) begin : plane
                        qmlp_adder_tree #(.N(SIMD), .LEAF_W(PLANE_LEAF), .W(ACC_BITS), .LEVELS_PER_STAGE(LEVELS_PER_STAGE)) adder (
                            .clk(clk), .en(en), .operands(masked[pb*SIMD*PLANE_LEAF +: SIMD*PLANE_LEAF]),
                            .sum(plane_sum[pb*ACC_BITS +: ACC_BITS])
                        );
                    end
                    reg [ACC_BITS-1:0] combined, q;
                    always @* begin
                        combined = {ACC_BITS{1'b0}};
                        for (b = 0; b < W_BITS; b = b + 1) begin
                            if (W_KIND == 1 && b == W_BITS - 1) combined = combined - (plane_sum[b*ACC_BITS +: ACC_BITS] << b);
                            else combined = combined + (plane_sum[b*ACC_BITS +: ACC_BITS] << b);
                        end
                    end
                    always @(posedge clk) if (en) q <= combined;
                    assign psum2[g*ACC_BITS +: ACC_BITS] = q;
                    wire _unused_products = &{1'b0, products, 1'b0};
                end else if (TREE_LAT > 0) begin : tree
                    qmlp_adder_tree #(.N(SIMD), .LEAF_W(PW), .W(ACC_BITS), .LEVELS_PER_STAGE(LEVELS_PER_STAGE)) adder (
                        .clk(clk), .en(en), .operands(products), .sum(psum2[g*ACC_BITS +: ACC_BITS])
                    );
                end else begin : single  // SIMD = 1: the product, sign-extended, registered
                    reg [ACC_BITS-1:0] q;
                    always @(posedge clk) if (en) q <= {{(ACC_BITS - PW + 1){products[PW-1]}}, products[PW-2:0]};
                    assign psum2[g*ACC_BITS +: ACC_BITS] = q;
                end
            end
        end
    endgenerate

    // The control bits travel alongside the sum: SUM_LAT registers.
    reg [SUM_LAT-1:0] vd, firstd, lastd;
    reg [SUM_LAT*NFW-1:0] nfd;
    integer d;
    always @(posedge clk) begin
        if (en) begin
            firstd[0] <= first1;
            lastd[0] <= last1;
            nfd[0 +: NFW] <= nf1;
            for (d = 1; d < SUM_LAT; d = d + 1) begin
                firstd[d] <= firstd[d-1];
                lastd[d] <= lastd[d-1];
                nfd[d*NFW +: NFW] <= nfd[(d-1)*NFW +: NFW];
            end
        end
    end
    wire v2 = vd[SUM_LAT-1];
    wire first2 = firstd[SUM_LAT-1];
    wire last2 = lastd[SUM_LAT-1];
    wire [NFW-1:0] nf2 = nfd[(SUM_LAT-1)*NFW +: NFW];

    // ---- stage 3: accumulate over the SF input folds -----------------------------------------
    reg [PE*ACC_BITS-1:0] acc;
    integer q;
    always @(posedge clk) begin
        if (en) begin
            if (v2) begin
                for (q = 0; q < PE; q = q + 1)
                    acc[q*ACC_BITS +: ACC_BITS] <= first2 ? psum2[q*ACC_BITS +: ACC_BITS]
                        : acc[q*ACC_BITS +: ACC_BITS] + psum2[q*ACC_BITS +: ACC_BITS];
            end
            nf3 <= nf2;
        end
    end

    // ---- stage 4: activation (after LAT search stages) ---------------------------------------
    wire [PE*OUT_BITS-1:0] act;
    generate
        if (STEPS > 0 && SEARCH_LEVELS == 0) begin : linear
            // One word per output fold, read with nf2 so that it is registered with acc (stage 3).
            wire [PE*TE-1:0] row;
            qmlp_rom #(.WIDTH(PE * TE), .DEPTH(NF), .ADDR_BITS(NFW), .FILE({THRESHOLD_FILE, ".mem"}),
                       .STYLE(THRESHOLD_ROM_STYLE))
                threshold_rom (.clk(clk), .en(en), .addr(nf2), .data(row));
            for (g = 0; g < PE; g = g + 1) begin : lane
                wire [TE-1:0] entry = row[g*TE +: TE];
                qmlp_threshold #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .STEPS(STEPS), .T_BITS(T_BITS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS)
                ) unit (.acc(acc[g*ACC_BITS +: ACC_BITS]), .neg(entry[TE-1]), .thresholds(entry[TE-2:0]),
                        .code(act[g*OUT_BITS +: OUT_BITS]));
            end
            wire _unused_ok = &{1'b0, nf3, 1'b0};
        end else if (STEPS > 0) begin : search
            for (g = 0; g < PE; g = g + 1) begin : lane
                qmlp_threshold_search #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .T_BITS(T_BITS), .LEVELS(SEARCH_LEVELS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .ROWS(NF), .LANE(g),
                    .BLOCK_FROM(SEARCH_BLOCK_FROM), .TABLE_FILE(THRESHOLD_FILE)
                ) unit (.clk(clk), .en(en), .acc(acc[g*ACC_BITS +: ACC_BITS]), .row(nf3),
                        .code(act[g*OUT_BITS +: OUT_BITS]));
            end
        end else begin : raw
            assign act = acc;
            wire _unused_ok = &{1'b0, nf3, 1'b0};
        end
    endgenerate

    reg [PE*OUT_BITS-1:0] out4;
    always @(posedge clk) begin
        if (en) out4 <= act;
    end

    // Valid bits: vsearch[0] (accumulator done) waits LAT cycles for the search, then becomes v4.
    reg [LAT:0] vsearch;
    wire [LAT:0] vsearch_next;
    generate
        if (LAT > 0) begin : delay
            assign vsearch_next = {vsearch[LAT-1:0], v2 && last2};
        end else begin : direct
            assign vsearch_next = v2 && last2;
        end
    endgenerate
    always @(posedge clk) begin
        if (!rst_n) begin
            v1 <= 1'b0;
            vd <= {SUM_LAT{1'b0}};
            vsearch <= {(LAT + 1){1'b0}};
            v4 <= 1'b0;
        end else if (en) begin
            v1 <= issue;
            vd <= (vd << 1) | {{(SUM_LAT - 1){1'b0}}, v1};
            vsearch <= vsearch_next;
            v4 <= vsearch[LAT];
        end
    end

    assign m_data = out4;
    assign m_valid = v4;

endmodule

`default_nettype wire
