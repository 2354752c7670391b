// qmlp_adder_tree: pipelined sum of N operands of W bits (modulo 2^W).
// A binary tree of LEVELS = ceil(log2 N) levels; a register bank sits after every
// LEVELS_PER_STAGE levels and after the last level, so the sum appears
// LATENCY = ceil(LEVELS / LEVELS_PER_STAGE) cycles after its operands (0 when N = 1).
// Operands that are constant zero (vanished weights) make their adders and registers
// constant-foldable, which synthesis removes.
`default_nettype none

module qmlp_adder_tree #(
    parameter integer N = 4,
    parameter integer W = 8,
    parameter integer LEVELS_PER_STAGE = 2
) (
    input  wire           clk,
    input  wire           en,
    input  wire [N*W-1:0] operands,
    output wire [W-1:0]   sum
);
    localparam integer LEVELS = (N > 1) ? $clog2(N) : 0;

    // Nodes of level l (level 0 = operands) and where level l starts in the node array.
    function automatic integer level_size(input integer l);
        integer i;
        begin
            level_size = N;
            for (i = 0; i < l; i = i + 1) level_size = (level_size + 1) / 2;
        end
    endfunction
    function automatic integer level_offset(input integer l);
        integer i;
        begin
            level_offset = 0;
            for (i = 0; i < l; i = i + 1) level_offset = level_offset + level_size(i);
        end
    endfunction

    localparam integer NODES = level_offset(LEVELS + 1);
    wire [NODES*W-1:0] node;
    assign node[N*W-1:0] = operands;

    genvar l, j;
    generate
        for (l = 1; l <= LEVELS; l = l + 1) begin : level
            localparam integer PREV = level_offset(l - 1);
            localparam integer PREV_N = level_size(l - 1);
            localparam integer HERE = level_offset(l);
            localparam integer HERE_N = level_size(l);
            for (j = 0; j < HERE_N; j = j + 1) begin : add
                wire [W-1:0] a = node[(PREV + 2*j)*W +: W];
                wire [W-1:0] b;
                if (2*j + 1 < PREV_N) begin : pair
                    assign b = node[(PREV + 2*j + 1)*W +: W];
                end else begin : odd
                    assign b = {W{1'b0}};
                end
                if ((l % LEVELS_PER_STAGE == 0) || (l == LEVELS)) begin : r
                    reg [W-1:0] q;
                    always @(posedge clk) if (en) q <= a + b;
                    assign node[(HERE + j)*W +: W] = q;
                end else begin : c
                    assign node[(HERE + j)*W +: W] = a + b;
                end
            end
        end
    endgenerate

    assign sum = node[(NODES - 1)*W +: W];
endmodule

`default_nettype wire
