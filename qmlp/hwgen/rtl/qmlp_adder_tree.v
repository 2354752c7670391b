// qmlp_adder_tree: pipelined sum of N signed operands of LEAF_W bits, result on W bits.
// A binary tree of LEVELS = ceil(log2 N) levels; level l is computed on
// min(W, LEAF_W + l) bits — exact while the width grows one bit per level, modulo 2^W once
// capped (the caller guarantees the final sum fits W bits, so the wrap-around is harmless).
// A register bank sits after every LEVELS_PER_STAGE levels and after the last level, so the
// sum appears LATENCY = ceil(LEVELS / LEVELS_PER_STAGE) cycles after its operands (0 when
// N = 1). Operands that are constant zero (vanished weights) make their adders and registers
// constant-foldable, which synthesis removes.
`default_nettype none

module qmlp_adder_tree #(
    parameter integer N = 4,
    parameter integer LEAF_W = 8,
    parameter integer W = 8,
    parameter integer LEVELS_PER_STAGE = 2
) (
    input  wire                clk,
    input  wire                en,
    input  wire [N*LEAF_W-1:0] operands,
    output wire [W-1:0]        sum
);
    localparam integer LEVELS = (N > 1) ? $clog2(N) : 0;

    // Nodes of level l (level 0 = operands), their width, and where level l starts (in bits).
    function automatic integer level_size(input integer l);
        integer i;
        begin
            level_size = N;
            for (i = 0; i < l; i = i + 1) level_size = (level_size + 1) / 2;
        end
    endfunction
    function automatic integer level_width(input integer l);
        level_width = (LEAF_W + l < W) ? LEAF_W + l : W;
    endfunction
    function automatic integer level_offset(input integer l);
        integer i;
        begin
            level_offset = 0;
            for (i = 0; i < l; i = i + 1) level_offset = level_offset + level_size(i) * level_width(i);
        end
    endfunction

    localparam integer BITS = level_offset(LEVELS + 1);
    localparam integer TOP_W = level_width(LEVELS);
    wire [BITS-1:0] node;
    assign node[N*LEAF_W-1:0] = operands;

    genvar l, j;
    generate
        for (l = 1; l <= LEVELS; l = l + 1) begin : level
            localparam integer PREV = level_offset(l - 1);
            localparam integer PREV_N = level_size(l - 1);
            localparam integer PW = level_width(l - 1);
            localparam integer HERE = level_offset(l);
            localparam integer HW = level_width(l);
            for (j = 0; j < level_size(l); j = j + 1) begin : add
                wire [PW-1:0] a = node[PREV + 2*j*PW +: PW];
                wire [PW-1:0] b;
                wire [HW-1:0] a_ext, b_ext;
                if (2*j + 1 < PREV_N) begin : pair
                    assign b = node[PREV + (2*j + 1)*PW +: PW];
                end else begin : odd
                    assign b = {PW{1'b0}};
                end
                if (HW > PW) begin : grow  // one more bit: sign-extend both operands
                    assign a_ext = {a[PW-1], a};
                    assign b_ext = {b[PW-1], b};
                end else begin : capped
                    assign a_ext = a;
                    assign b_ext = b;
                end
                if ((l % LEVELS_PER_STAGE == 0) || (l == LEVELS)) begin : r
                    reg [HW-1:0] q;
                    always @(posedge clk) if (en) q <= a_ext + b_ext;
                    assign node[HERE + j*HW +: HW] = q;
                end else begin : c
                    assign node[HERE + j*HW +: HW] = a_ext + b_ext;
                end
            end
        end
        if (TOP_W < W) begin : extend
            wire [TOP_W-1:0] top = node[BITS-TOP_W +: TOP_W];
            assign sum = {{(W - TOP_W){top[TOP_W-1]}}, top};
        end else begin : full
            assign sum = node[BITS-W +: W];
        end
    endgenerate
endmodule

`default_nettype wire
