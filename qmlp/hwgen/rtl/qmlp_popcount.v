// qmlp_popcount: the SIMD sum of one PE lane of a bipolar-input MVAU as bit-plane popcounts.
//
// A bipolar input x in {-1, +1} arrives as its code c in {0, 1} (x = 2c - 1), so
//   sum_s w_s * x_s = 2 * P - S,   P = sum_s w_s * c_s,   S = sum_s w_s,
// and S is a constant of the weight row: the plan folds it into the thresholds
// (qmlp/hwgen/popcount.py), and this unit computes only P, which needs no products:
//   W_KIND 0/1 (UINT/INT, TERNARY): W_BITS bit planes, P = sum_b omega_b * popcount(c & plane_b),
//     omega_b = 2^b, the top plane of a two's-complement weight -2^(W_BITS-1);
//   W_KIND 2 (BIPOLAR code d): P = popcount(c XNOR d) (then S = the row length).
// Levels: 1 = counts of GROUP = 3 (c, weight bit) pairs, one LUT6 per count bit; 2.. = an exact
// unsigned pairwise tree per plane (a count of SIMD bits never exceeds CW bits); the last level
// combines the planes (several planes only) modulo 2^ACC_BITS. A register bank sits after every
// LEVELS_PER_STAGE levels and after the last level, so P appears LATENCY =
// ceil(LEVELS / LEVELS_PER_STAGE) enabled cycles after its operands (qmlp.hwgen.plan has the
// same formula). The caller guarantees the final P fits ACC_BITS (two's complement).
`default_nettype none

module qmlp_popcount #(
    parameter integer SIMD = 8,
    parameter integer W_BITS = 2,
    parameter integer W_KIND = 1,
    parameter integer ACC_BITS = 8,
    parameter integer LEVELS_PER_STAGE = 2
) (
    input  wire                     clk,
    input  wire                     en,
    input  wire [SIMD-1:0]          x,  // input codes (1 = +1)
    input  wire [SIMD*W_BITS-1:0]   w,  // weight codes, element s at bits [s*W_BITS, ...)
    output wire [ACC_BITS-1:0]      sum
);
    localparam integer GROUP = 3;
    localparam integer PLANES = (W_KIND == 2) ? 1 : W_BITS;
    localparam integer G = (SIMD + GROUP - 1) / GROUP;
    localparam integer CW = $clog2(SIMD + 1);               // width of a whole plane's count
    localparam integer LEAF_W = (CW < 2) ? CW : 2;          // a count of <= 3 bits
    localparam integer TREE = (G > 1) ? $clog2(G) : 0;       // pairwise levels after the leaves
    // a signed single plane (INT1) needs the negation of the combine level too
    localparam COMBINE = PLANES > 1 || W_KIND == 1;
    localparam integer LEVELS = 1 + TREE + (COMBINE ? 1 : 0);

    function automatic integer level_size(input integer l);  // nodes of tree level l >= 1
        integer i;
        begin
            level_size = G;
            for (i = 1; i < l; i = i + 1) level_size = (level_size + 1) / 2;
        end
    endfunction
    function automatic integer level_width(input integer l);
        level_width = (LEAF_W + l - 1 < CW) ? LEAF_W + l - 1 : CW;
    endfunction
    function automatic integer level_offset(input integer l);
        integer i;
        begin
            level_offset = 0;
            for (i = 1; i < l; i = i + 1) level_offset = level_offset + level_size(i) * level_width(i);
        end
    endfunction
    function automatic registered(input integer l);
        registered = (l % LEVELS_PER_STAGE == 0) || (l == LEVELS);
    endfunction

    localparam integer BITS = level_offset(TREE + 2);
    wire [PLANES*CW-1:0] counts;  // plane b's count at [b*CW, ...)

    genvar b, l, j;
    generate
        for (b = 0; b < PLANES; b = b + 1) begin : plane
            // The bits this plane counts, zero-extended to whole groups.
            wire [G*GROUP-1:0] hits;
            for (j = 0; j < G * GROUP; j = j + 1) begin : hit
                if (j >= SIMD) begin : pad
                    assign hits[j] = 1'b0;
                end else if (W_KIND == 2) begin : xnor_bit
                    assign hits[j] = ~(x[j] ^ w[j*W_BITS]);
                end else begin : and_bit
                    assign hits[j] = x[j] & w[j*W_BITS + b];
                end
            end
            wire [BITS-1:0] node;
            for (j = 0; j < G; j = j + 1) begin : leaf
                wire [1:0] c = {1'b0, hits[j*GROUP]} + {1'b0, hits[j*GROUP + 1]} + {1'b0, hits[j*GROUP + 2]};
                if (registered(1)) begin : r
                    reg [LEAF_W-1:0] q;
                    always @(posedge clk) if (en) q <= c[LEAF_W-1:0];
                    assign node[j*LEAF_W +: LEAF_W] = q;
                end else begin : n
                    assign node[j*LEAF_W +: LEAF_W] = c[LEAF_W-1:0];
                end
                if (LEAF_W < 2) begin : narrow  // SIMD = 1: the count is the single bit
                    wire _unused_ok = &{1'b0, c[1], 1'b0};
                end
            end
            for (l = 2; l <= TREE + 1; l = l + 1) begin : level
                localparam integer PREV = level_offset(l - 1);
                localparam integer PREV_N = level_size(l - 1);
                localparam integer PW = level_width(l - 1);
                localparam integer HERE = level_offset(l);
                localparam integer HW = level_width(l);
                for (j = 0; j < level_size(l); j = j + 1) begin : add
                    wire [HW-1:0] a, c;  // the two children, zero-extended
                    assign a[PW-1:0] = node[PREV + 2*j*PW +: PW];
                    if (2*j + 1 < PREV_N) begin : pair
                        assign c[PW-1:0] = node[PREV + (2*j + 1)*PW +: PW];
                    end else begin : odd
                        assign c[PW-1:0] = {PW{1'b0}};
                    end
                    if (HW > PW) begin : grow
                        assign a[HW-1:PW] = {(HW - PW){1'b0}};
                        assign c[HW-1:PW] = {(HW - PW){1'b0}};
                    end
                    if (registered(l)) begin : r
                        reg [HW-1:0] q;
                        always @(posedge clk) if (en) q <= a + c;
                        assign node[HERE + j*HW +: HW] = q;
                    end else begin : n
                        assign node[HERE + j*HW +: HW] = a + c;
                    end
                end
            end
            localparam integer TOP_W = level_width(TREE + 1);
            assign counts[b*CW +: TOP_W] = node[BITS-TOP_W +: TOP_W];
            if (CW > TOP_W) begin : grow
                assign counts[b*CW + TOP_W +: CW - TOP_W] = {(CW - TOP_W){1'b0}};
            end
        end

        // Combine the planes modulo 2^ACC_BITS (exact: the caller's P fits ACC_BITS).
        localparam integer XW = (CW + W_BITS > ACC_BITS) ? CW + W_BITS : ACC_BITS;
        wire [PLANES*XW-1:0] wide;  // the counts zero-extended to XW bits
        for (b = 0; b < PLANES; b = b + 1) begin : extend
            assign wide[b*XW +: CW] = counts[b*CW +: CW];
            assign wide[b*XW + CW +: XW - CW] = {(XW - CW){1'b0}};  // XW > CW always
        end
        if (COMBINE) begin : combine
            reg [XW-1:0] total;
            integer p;
            always @* begin
                total = {XW{1'b0}};
                for (p = 0; p < PLANES; p = p + 1) begin
                    if (W_KIND == 1 && p == PLANES - 1) total = total - (wide[p*XW +: XW] << p);
                    else total = total + (wide[p*XW +: XW] << p);
                end
            end
            reg [ACC_BITS-1:0] q;  // LEVELS is the combine level: always registered
            always @(posedge clk) if (en) q <= total[ACC_BITS-1:0];
            assign sum = q;
            if (XW > ACC_BITS) begin : drop
                wire _unused_ok = &{1'b0, total[XW-1:ACC_BITS], 1'b0};
            end
        end else begin : single
            wire [XW-1:0] total = wide;
            assign sum = total[ACC_BITS-1:0];
            if (XW > ACC_BITS) begin : drop
                wire _unused_ok = &{1'b0, total[XW-1:ACC_BITS], 1'b0};
            end
        end
    endgenerate
endmodule

`default_nettype wire
