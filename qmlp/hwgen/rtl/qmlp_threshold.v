// qmlp_threshold: multi-threshold activation of one channel (combinational), one comparator per
// threshold (narrow outputs; qmlp_threshold_search serves wide ones).
//   v     = neg ? ~acc : acc     (~acc = -acc - 1 in the accumulator's own type: same width)
//   count = sum_i [v >= T_i]     (T_i ascending, STEPS of them)
//   code  = (count + OUT_BIAS) mod 2^OUT_BITS
// i.e. the two's-complement code of the IR's output value count + bias (an unsigned count when
// the bias is 0; for BIPOLAR, OUT_BITS = 1 and bias 0, so the code is the 0/1 count).
// `neg` is the direction of a channel whose level falls as the accumulator grows: the IR's
// [-acc >= T] equals [~acc >= T + acc_min + acc_max] of the accumulator type, and the emitter
// stores those shifted thresholds, so the comparison needs no extra bit.
// Comparisons run in a signed width one bit wider than both operands, so unsigned
// accumulators and thresholds outside the accumulator range compare exactly.
// CONSTANT = 1 (thresholds are elaboration constants, as in a fully parallel layer): each
// compare is an AND/OR chain from the LSB instead of `>=`. With a constant threshold every
// step is one gate, so LUT mapping packs ~5 bits per LUT, where `>=` becomes a carry chain of
// about one LUT per bit (Yosys xcup, seed fc0's 768 compares: 2,141 LUT against 3,678).
`default_nettype none

module qmlp_threshold #(
    parameter integer ACC_BITS = 8,
    parameter integer ACC_SIGNED = 1,
    parameter integer STEPS = 3,
    parameter integer T_BITS = 8,
    parameter integer OUT_BITS = 2,
    parameter integer OUT_BIAS = 0,
    parameter integer CONSTANT = 0
) (
    input  wire [ACC_BITS-1:0]       acc,
    input  wire                      neg,
    input  wire [STEPS*T_BITS-1:0]   thresholds,
    output wire [OUT_BITS-1:0]       code
);
    localparam integer CMP = ((ACC_BITS > T_BITS) ? ACC_BITS : T_BITS) + 1;
    localparam integer CNT = $clog2(STEPS + 1);
    localparam integer SUMW = ((CNT > OUT_BITS) ? CNT : OUT_BITS) + 1;
    localparam signed [SUMW-1:0] BIAS = OUT_BIAS[SUMW-1:0];

    wire [ACC_BITS-1:0] v = acc ^ {ACC_BITS{neg}};
    wire signed [CMP-1:0] value = ACC_SIGNED != 0
        ? {{(CMP - ACC_BITS){v[ACC_BITS-1]}}, v}
        : {{(CMP - ACC_BITS){1'b0}}, v};

    // [x >= y] of two signed CMP-bit numbers, read as offset binary (MSB flipped) from the LSB:
    // at each bit a 1 in y needs a 1 in x and the lower bits' verdict, a 0 in y takes either.
    function automatic at_least(input [CMP-1:0] x, input [CMP-1:0] y);
        integer b;
        reg [CMP-1:0] xo, yo;
        begin
            xo = x ^ {1'b1, {(CMP - 1){1'b0}}};
            yo = y ^ {1'b1, {(CMP - 1){1'b0}}};
            at_least = 1'b1;
            for (b = 0; b < CMP; b = b + 1)
                at_least = yo[b] ? (xo[b] & at_least) : (xo[b] | at_least);
        end
    endfunction

    reg [SUMW-1:0] count;
    reg signed [CMP-1:0] t;
    integer i;
    always @* begin
        count = {SUMW{1'b0}};
        for (i = 0; i < STEPS; i = i + 1) begin
            t = {{(CMP - T_BITS){thresholds[i*T_BITS + T_BITS - 1]}}, thresholds[i*T_BITS +: T_BITS]};
            if (CONSTANT != 0 ? at_least(value, t) : value >= t) count = count + 1'b1;
        end
    end

    wire [SUMW-1:0] biased = count + BIAS;
    assign code = biased[OUT_BITS-1:0];

    // Upper bits of the biased sum are zero/sign copies by construction (IR-checked range).
    wire _unused_ok = &{1'b0, biased[SUMW-1:OUT_BITS], 1'b0};
endmodule

`default_nettype wire
