// qmlp_argmax: index of the largest of N elements arriving as BEATS beats of E elements
// (elements at index >= N are padding and ignored). Ties go to the lowest index, as
// numpy.argmax. The class index leaves as one beat, valid the cycle after the last input beat.
`default_nettype none

module qmlp_argmax #(
    parameter integer BITS = 8,
    parameter integer SIGNED = 1,
    parameter integer E = 1,
    parameter integer N = 2,
    parameter integer BEATS = 2,
    parameter integer IDX_BITS = 1
) (
    input  wire                 clk,
    input  wire                 rst_n,
    input  wire [E*BITS-1:0]    s_data,
    input  wire                 s_valid,
    output wire                 s_ready,
    output wire [IDX_BITS-1:0]  m_data,
    output wire                 m_valid,
    input  wire                 m_ready
);
    localparam integer BW = (BEATS > 1) ? $clog2(BEATS) : 1;
    localparam integer IW = $clog2(BEATS * E + 1);  // wide enough for any element index

    reg [BW-1:0] beat;
    reg [IW-1:0] base;  // index of this beat's element 0 (a running sum: no multiplier)
    reg signed [BITS:0] best;
    reg [IW-1:0] best_idx;
    reg out_valid;
    reg [IDX_BITS-1:0] out_idx;

    assign s_ready = !out_valid || m_ready;
    wire fire = s_valid && s_ready;
    wire first = beat == {BW{1'b0}};
    wire last = beat == BEATS[BW-1:0] - 1'b1 || BEATS == 1;

    // Best of (running best, this beat's elements), earliest index wins ties.
    reg signed [BITS:0] cand, value;
    reg [IW-1:0] cand_idx, index;
    reg have;
    integer e;
    always @* begin
        cand = best;
        cand_idx = best_idx;
        have = !first;
        for (e = 0; e < E; e = e + 1) begin
            index = base + e[IW-1:0];
            value = SIGNED != 0 ? $signed({s_data[e*BITS + BITS - 1], s_data[e*BITS +: BITS]})
                                : $signed({1'b0, s_data[e*BITS +: BITS]});
            if (index < N[IW-1:0] && (!have || value > cand)) begin
                cand = value;
                cand_idx = index;
                have = 1'b1;
            end
        end
    end

    always @(posedge clk) begin
        if (!rst_n) begin
            beat <= {BW{1'b0}};
            base <= {IW{1'b0}};
            out_valid <= 1'b0;
        end else begin
            if (fire) beat <= last ? {BW{1'b0}} : beat + 1'b1;
            if (fire) base <= last ? {IW{1'b0}} : base + E[IW-1:0];
            if (fire && last) out_valid <= 1'b1;
            else if (m_ready) out_valid <= 1'b0;
        end
    end
    always @(posedge clk) begin
        if (fire) begin
            best <= cand;
            best_idx <= cand_idx;
            if (last) out_idx <= cand_idx[IDX_BITS-1:0];
        end
    end

    assign m_data = out_idx;
    assign m_valid = out_valid;
endmodule

`default_nettype wire
