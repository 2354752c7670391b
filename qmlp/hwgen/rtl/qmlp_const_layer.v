// qmlp_const_layer: the handshake, thresholds and output register around a fully parallel layer
// (PE = MH, SIMD = MW) whose weights are constants of a generated adder graph
// (qmlp.hwgen.cmvm: one module `l<i>_graph` per layer, instantiated beside this shell in qmlp_top
// and connected through g_x / g_en / g_acc). One vector per cycle; the whole pipeline stalls
// while the output is held (en = 0).
//
// No input register: the graph reads s_data straight from the FIFO in front of the layer (its
// read multiplexer is budgeted in the graph's first stage by qmlp/hwgen/cmvm/schedule.py) or,
// behind another fully parallel layer, from that layer's output register (no FIFO between them:
// s_ready = en is combinational in m_ready, so the two stall together).
// Thresholds: SEARCH_LEVELS = 0: constants (THRESHOLDS; NEGATE bit c: channel c compares ~acc)
// by one combinational qmlp_threshold per channel, in the graph's last stage (the schedule
// reserves its levels); SEARCH_LEVELS = L > 0: a qmlp_threshold_search per channel over
// THRESHOLD_FILE_g<c>_k<k>.mem (channel c's own ROMs of one table row), whose first register takes
// the graph's output, adding L stages.
// Latency: GRAPH_LAT register banks inside the graph + L search stages + output register (1).
`default_nettype none

module qmlp_const_layer #(
    parameter integer MW = 4,
    parameter integer MH = 4,
    parameter integer IN_BITS = 2,
    parameter integer ACC_BITS = 8,
    parameter integer ACC_SIGNED = 1,
    parameter integer STEPS = 0,
    parameter integer T_BITS = 1,
    parameter integer OUT_BITS = 8,
    parameter integer OUT_BIAS = 0,
    parameter integer GRAPH_LAT = 0,      // register banks inside the graph
    parameter integer SEARCH_LEVELS = 0,
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
    input  wire                     m_ready,
    // to / from the adder graph
    output wire [MW*IN_BITS-1:0]    g_x,
    output wire                     g_en,
    input  wire [MH*ACC_BITS-1:0]   g_acc
);
    localparam integer TS = (STEPS > 0 ? STEPS : 1) * T_BITS;
    localparam integer LAT = (STEPS > 0) ? SEARCH_LEVELS : 0;
    localparam integer PIPE = GRAPH_LAT + LAT;  // valid stages before the output register

    reg vout;
    wire en = !vout || m_ready;
    assign s_ready = en;
    assign g_en = en;
    assign g_x = s_data;

    wire [MH*OUT_BITS-1:0] act;
    genvar c;
    generate
        for (c = 0; c < MH; c = c + 1) begin : chan
            if (STEPS > 0 && SEARCH_LEVELS == 0) begin : thr
                qmlp_threshold #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .STEPS(STEPS), .T_BITS(T_BITS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .CONSTANT(1)
                ) unit (.acc(g_acc[c*ACC_BITS +: ACC_BITS]), .neg(NEGATE[c]), .thresholds(THRESHOLDS[c*TS +: TS]),
                        .code(act[c*OUT_BITS +: OUT_BITS]));
            end else if (STEPS > 0) begin : search
                qmlp_threshold_search #(
                    .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .T_BITS(T_BITS), .LEVELS(SEARCH_LEVELS),
                    .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .ROWS(1), .LANE(c),
                    .BLOCK_FROM(SEARCH_BLOCK_FROM), .TABLE_FILE(THRESHOLD_FILE)
                ) unit (.clk(clk), .en(en), .acc(g_acc[c*ACC_BITS +: ACC_BITS]), .row(1'b0),
                        .code(act[c*OUT_BITS +: OUT_BITS]));
            end else begin : raw
                assign act[c*OUT_BITS +: OUT_BITS] = g_acc[c*ACC_BITS +: ACC_BITS];
            end
        end
    endgenerate

    // Valid bits follow the data: PIPE stages (graph banks, search levels), then the output register.
    wire v_last;
    generate
        if (PIPE > 0) begin : deep
            reg [PIPE-1:0] vpipe;
            wire [PIPE-1:0] shifted;
            if (PIPE > 1) begin : chain
                assign shifted = {vpipe[PIPE-2:0], s_valid};
            end else begin : one
                assign shifted = s_valid;
            end
            always @(posedge clk) begin
                if (!rst_n) vpipe <= {PIPE{1'b0}};
                else if (en) vpipe <= shifted;
            end
            assign v_last = vpipe[PIPE-1];
        end else begin : shallow
            assign v_last = s_valid;
        end
    endgenerate
    reg [MH*OUT_BITS-1:0] out_q;
    always @(posedge clk) begin
        if (!rst_n) vout <= 1'b0;
        else if (en) vout <= v_last;
    end
    always @(posedge clk) begin
        if (en) out_q <= act;
    end

    assign m_data = out_q;
    assign m_valid = vout;
endmodule

`default_nettype wire
