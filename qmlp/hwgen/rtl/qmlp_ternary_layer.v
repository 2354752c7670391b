// qmlp_ternary_layer: fully unrolled layer (PE = MH, SIMD = MW) whose weights are all in
// {-1, 0, +1}, specialised into constants: weight +1 adds the input, -1 subtracts it, 0 adds
// nothing (a constant-zero operand that synthesis deletes). No multipliers. One vector per
// cycle through a pipelined adder tree per channel, then the thresholds.
//
// POS / NEG are MH*MW-bit masks, bit c*MW + k set when W[c,k] = +1 / -1.
// Thresholds: SEARCH_LEVELS = 0: constants (THRESHOLDS, NEG: channel c's direction bit) compared
// by one qmlp_threshold per channel; SEARCH_LEVELS = L > 0: a qmlp_threshold_search per channel
// over THRESHOLD_FILE_k<k>.mem (ROM words of MH entries, one table row), adding L stages.
// Latency: input register (1) + adder tree (qmlp_adder_tree LATENCY) + search (L) + output register (1).
`default_nettype none

module qmlp_ternary_layer #(
    parameter integer MW = 4,
    parameter integer MH = 4,
    parameter integer IN_BITS = 2,
    parameter integer IN_KIND = 0,          // 0 UINT, 1 INT, 2 BIPOLAR
    parameter integer ACC_BITS = 8,
    parameter integer ACC_SIGNED = 1,
    parameter integer STEPS = 0,
    parameter integer T_BITS = 1,
    parameter integer OUT_BITS = 8,
    parameter integer OUT_BIAS = 0,
    parameter integer LEVELS_PER_STAGE = 2,
    parameter integer SEARCH_LEVELS = 0,
    parameter [MH*MW-1:0] POS = 0,
    parameter [MH*MW-1:0] NEG = 0,
    parameter [MH*(STEPS > 0 ? STEPS : 1)*T_BITS-1:0] THRESHOLDS = 0,  // channel-major, step-minor
    parameter [MH-1:0] NEGATE = 0,        // channel c compares ~acc (see qmlp_threshold)
    parameter THRESHOLD_FILE = "",        // SEARCH_LEVELS > 0: $readmemh prefix
    parameter integer SEARCH_BLOCK_FROM = 32  // search levels >= this are block-RAM ROMs
) (
    input  wire                     clk,
    input  wire                     rst_n,
    input  wire [MW*IN_BITS-1:0]    s_data,
    input  wire                     s_valid,
    output wire                     s_ready,
    output wire [MH*OUT_BITS-1:0]   m_data,
    output wire                     m_valid,
    input  wire                     m_ready
);
    localparam integer TREE_LEVELS = (MW > 1) ? $clog2(MW) : 0;
    localparam integer TREE_LAT = (TREE_LEVELS + LEVELS_PER_STAGE - 1) / LEVELS_PER_STAGE;
    localparam integer TS = (STEPS > 0 ? STEPS : 1) * T_BITS;
    localparam integer LAT = (STEPS > 0) ? SEARCH_LEVELS : 0;
    localparam integer PIPE = TREE_LAT + LAT;  // valid stages between input and output registers

    reg vout;
    wire en = !vout || m_ready;
    assign s_ready = en;

    reg [MW*IN_BITS-1:0] x1;
    always @(posedge clk) begin
        if (en) x1 <= s_data;
    end

    // Input element values as signed LW-bit numbers: exact (room for negating the most negative
    // INT or the largest UINT value) unless LW is capped at ACC_BITS, where modulo 2^ACC_BITS
    // arithmetic is exact for the final sum anyway.
    localparam integer LW = (IN_BITS + 2 < ACC_BITS) ? IN_BITS + 2 : ACC_BITS;
    wire [MW*LW-1:0] xv;
    genvar k, c;
    generate
        for (k = 0; k < MW; k = k + 1) begin : elem
            wire [IN_BITS-1:0] code = x1[k*IN_BITS +: IN_BITS];
            if (IN_KIND == 2) begin : bip
                assign xv[k*LW +: LW] = code[0] ? {{(LW - 1){1'b0}}, 1'b1} : {LW{1'b1}};
            end else if (LW <= IN_BITS) begin : narrow
                assign xv[k*LW +: LW] = code[LW-1:0];
            end else if (IN_KIND == 1) begin : sgn
                assign xv[k*LW +: LW] = {{(LW - IN_BITS){code[IN_BITS-1]}}, code};
            end else begin : uns
                assign xv[k*LW +: LW] = {{(LW - IN_BITS){1'b0}}, code};
            end
        end
    endgenerate

    wire [MH*ACC_BITS-1:0] sums;
    wire [MH*OUT_BITS-1:0] act;
    generate
        for (c = 0; c < MH; c = c + 1) begin : chan
            wire [MW*LW-1:0] terms;
            for (k = 0; k < MW; k = k + 1) begin : term
                if (POS[c*MW + k]) begin : add
                    assign terms[k*LW +: LW] = xv[k*LW +: LW];
                end else if (NEG[c*MW + k]) begin : sub
                    assign terms[k*LW +: LW] = -xv[k*LW +: LW];
                end else begin : zero
                    assign terms[k*LW +: LW] = {LW{1'b0}};
                end
            end
            qmlp_adder_tree #(.N(MW), .LEAF_W(LW), .W(ACC_BITS), .LEVELS_PER_STAGE(LEVELS_PER_STAGE)) tree (
                .clk(clk), .en(en), .operands(terms), .sum(sums[c*ACC_BITS +: ACC_BITS])
            );
            if (STEPS > 0 && SEARCH_LEVELS == 0) begin : thr
                qmlp_threshold #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .STEPS(STEPS), .T_BITS(T_BITS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS)
                ) unit (.acc(sums[c*ACC_BITS +: ACC_BITS]), .neg(NEGATE[c]), .thresholds(THRESHOLDS[c*TS +: TS]),
                        .code(act[c*OUT_BITS +: OUT_BITS]));
            end else if (STEPS > 0) begin : search
                qmlp_threshold_search #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .T_BITS(T_BITS), .LEVELS(SEARCH_LEVELS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .ROWS(1), .LANES(MH), .LANE(c),
                    .BLOCK_FROM(SEARCH_BLOCK_FROM), .TABLE_FILE(THRESHOLD_FILE)
                ) unit (.clk(clk), .en(en), .acc(sums[c*ACC_BITS +: ACC_BITS]), .row(1'b0),
                        .code(act[c*OUT_BITS +: OUT_BITS]));
            end else begin : raw
                assign act[c*OUT_BITS +: OUT_BITS] = sums[c*ACC_BITS +: ACC_BITS];
            end
        end
    endgenerate

    // Valid bits follow the data: input register, TREE_LAT tree and LAT search stages, output register.
    reg [PIPE:0] vpipe;
    wire [PIPE:0] shifted_in;
    generate
        if (PIPE > 0) begin : deep
            assign shifted_in = {vpipe[PIPE-1:0], s_valid};
        end else begin : shallow
            assign shifted_in = s_valid;
        end
    endgenerate
    reg [MH*OUT_BITS-1:0] out_q;
    always @(posedge clk) begin
        if (!rst_n) begin
            vpipe <= {(PIPE + 1){1'b0}};
            vout <= 1'b0;
        end else if (en) begin
            vpipe <= shifted_in;
            vout <= vpipe[PIPE];
        end
    end
    always @(posedge clk) begin
        if (en) out_q <= act;
    end

    assign m_data = out_q;
    assign m_valid = vout;
endmodule

`default_nettype wire
