// qmlp_threshold_search: multi-threshold activation of one lane as a pipelined binary search
// over its sorted thresholds, for wide outputs (LEVELS = count bits, up to 2^LEVELS - 1
// thresholds per channel) where one comparator per threshold would cost 2^LEVELS comparators.
//
//   v     = neg ? ~acc : acc      (~acc = -acc - 1 in the accumulator's own type: same width)
//   count = sum_i [v >= T_i]      (T_1 <= ... <= T_S, S = 2^LEVELS - 1, padded with never-firing
//                                  values by the emitter)
//   code  = (count + OUT_BIAS) mod 2^OUT_BITS
//
// Level k (k = 0 .. LEVELS-1) decides count bit LEVELS-1-k: with p = the k bits decided so far,
// it compares v with T_{(2p+1) * 2^(LEVELS-1-k)}. So level k reads only 2^k thresholds per table
// row and the levels partition the table (no entry is stored twice). Level k's table is this
// lane's own ROM of ROWS * 2^k entries at address {row, p} ($readmemh file
// TABLE_FILE + "_g<LANE, 4 digits>_k<k>.mem"); level 0's entries carry the direction bit `neg` on
// top of the threshold. One ROM per lane and level, exactly as wide as its entry: a block-RAM
// level then maps to the tiles the plan counts (a ROM of all lanes' words, trimmed to one entry
// by synthesis, could straddle tiles: ternary-a8 measured 55.5 BRAM36 for 55 planned).
// Levels from BLOCK_FROM on are marked rom_style "block" (block RAM), the others "logic".
//
// Pipeline: stage 0 registers acc/row and the level-0 entry (a registered ROM read, BRAM/LUTRAM
// friendly); stage k+1 registers the level-(k+1) entry addressed by stage k's decision. One result
// per enabled cycle; `code` is valid LEVELS enabled cycles after `acc`/`row` were presented
// (combinational from the last stage's registers). Everything advances on `en` only, so a held
// `en` freezes the search with the data in it.
`default_nettype none

module qmlp_threshold_search #(
    parameter integer ACC_BITS = 8,
    parameter integer ACC_SIGNED = 1,
    parameter integer T_BITS = 8,
    parameter integer LEVELS = 4,
    parameter integer OUT_BITS = 4,
    parameter integer OUT_BIAS = 0,
    parameter integer ROWS = 1,          // tables per lane (a folded MVAU: one per output fold)
    parameter integer LANE = 0,          // this lane's tables (0 .. 9999, a file-name tag)
    parameter integer BLOCK_FROM = 32,   // levels k >= BLOCK_FROM get rom_style "block", the rest "logic"
    parameter TABLE_FILE = ""            // level k reads TABLE_FILE_g<LANE>_k<k>.mem (k < 10); "": no tables
) (
    input  wire                  clk,
    input  wire                  en,
    input  wire [ACC_BITS-1:0]   acc,
    input  wire [RW-1:0]         row,
    output wire [OUT_BITS-1:0]   code
);
    localparam integer RW = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer CMP = ((ACC_BITS > T_BITS) ? ACC_BITS : T_BITS) + 1;
    localparam integer SUMW = ((LEVELS > OUT_BITS) ? LEVELS : OUT_BITS) + 1;
    localparam signed [SUMW-1:0] BIAS = OUT_BIAS[SUMW-1:0];
    // "_g" and LANE in four decimal digits (qmlp.hwgen.thresholds.search_file)
    localparam integer D3 = 48 + (LANE / 1000) % 10, D2 = 48 + (LANE / 100) % 10;
    localparam integer D1 = 48 + (LANE / 10) % 10, D0 = 48 + LANE % 10;
    localparam [6*8-1:0] LANE_TAG = {"_g", D3[7:0], D2[7:0], D1[7:0], D0[7:0]};

    // Into stage k: the value (oriented from stage 1 on), the row and the decided prefix.
    wire [ACC_BITS-1:0] value [0:LEVELS];
    wire [RW-1:0] rows [0:LEVELS];
    wire [LEVELS-1:0] prefix [0:LEVELS];  // bits [k-1:0] valid at stage k (MSB decided first)
    assign value[0] = acc;
    assign rows[0] = row;
    assign prefix[0] = {LEVELS{1'b0}};

    genvar k;
    generate
        for (k = 0; k < LEVELS; k = k + 1) begin : level
            localparam integer E = T_BITS + ((k == 0) ? 1 : 0);  // level 0 also holds `neg`
            localparam integer DEPTH = ROWS << k;
            localparam integer RB = (ROWS > 1) ? RW : 0;
            localparam integer AW = (RB + k > 0) ? RB + k : 1;
            localparam [7:0] DIGIT = 8'd48 + k[7:0];


            // Address row * 2^k + p, i.e. {row, p}: ROWS need not be a power of two.
            wire [AW-1:0] addr;
            if (k == 0 && ROWS == 1) begin : a_single
                assign addr = 1'b0;
            end else if (k == 0) begin : a_row
                assign addr = rows[0];
            end else if (ROWS == 1) begin : a_prefix
                assign addr = prefix[k][k-1:0];
            end else begin : a_both
                assign addr = {rows[k], prefix[k][k-1:0]};
            end

            wire [E-1:0] entry;
            qmlp_rom #(.WIDTH(E), .DEPTH(DEPTH), .ADDR_BITS(AW),
                       .FILE(TABLE_FILE == "" ? "" : {TABLE_FILE, LANE_TAG, "_k", DIGIT, ".mem"}),
                       .STYLE(k >= BLOCK_FROM ? "block" : "logic"))
                table_rom (.clk(clk), .en(en), .addr(addr), .data(entry));
            reg [ACC_BITS-1:0] v_q;
            reg [RW-1:0] row_q;
            always @(posedge clk) begin
                if (en) begin
                    v_q <= value[k];
                    row_q <= rows[k];
                end
            end

            wire [T_BITS-1:0] t_code = entry[T_BITS-1:0];
            wire [ACC_BITS-1:0] v;
            if (k == 0) begin : orient
                assign v = v_q ^ {ACC_BITS{entry[T_BITS]}};
            end else begin : keep
                assign v = v_q;
            end
            wire signed [CMP-1:0] v_ext = ACC_SIGNED != 0
                ? {{(CMP - ACC_BITS){v[ACC_BITS-1]}}, v}
                : {{(CMP - ACC_BITS){1'b0}}, v};
            wire signed [CMP-1:0] t_ext = {{(CMP - T_BITS){t_code[T_BITS-1]}}, t_code};
            wire hit = v_ext >= t_ext;

            assign value[k + 1] = v;
            assign rows[k + 1] = row_q;
            if (k == 0) begin : p0
                assign prefix[1] = {{(LEVELS - 1){1'b0}}, hit};
            end else begin : pk
                reg [k-1:0] prefix_q;
                always @(posedge clk) begin
                    if (en) prefix_q <= prefix[k][k-1:0];
                end
                if (k + 1 < LEVELS) begin : pad
                    assign prefix[k + 1] = {{(LEVELS - k - 1){1'b0}}, prefix_q, hit};
                end else begin : full
                    assign prefix[k + 1] = {prefix_q, hit};
                end
            end
        end
    endgenerate

    wire [SUMW-1:0] biased = {{(SUMW - LEVELS){1'b0}}, prefix[LEVELS]} + BIAS;
    assign code = biased[OUT_BITS-1:0];

    // The last stage's value/row feed nothing; upper sum bits are copies (IR-checked range).
    wire _unused_ok = &{1'b0, value[LEVELS], rows[LEVELS], biased[SUMW-1:OUT_BITS], 1'b0};
endmodule

`default_nettype wire
