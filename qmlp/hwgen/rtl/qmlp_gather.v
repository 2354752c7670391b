// qmlp_gather: stream width converter for a consumer beat of B = K * A elements from producer
// beats of A elements (qmlp_dwc's contract, for vectors of N real elements: the producer's vector
// is IN_BEATS beats, elements at index >= N are padding and dropped; the consumer's is OUT_BEATS
// beats, elements at index >= N sent as zeros).
// Input beat i of a vector holds elements i*A ..: it lands whole in group i mod K of output beat
// i / K, so every element has one place and the unit is a register of B elements written a
// group at a time: no shifts, no selects (qmlp_dwc's element buffer shifts every slot). The beat
// is valid once its group K-1, or the vector's last input beat, is in; s_ready = !m_valid ||
// m_ready, a ready that passes through, as in a register slice (qmlp.hwgen.plan: ready_chain).
// Writing group 0 clears the groups the vector's last output beat does not fill (K_LAST and
// above), so that beat carries zeros there; the padding elements of the producer's last beat are
// zeroed too. Without padding (N = OUT_BEATS * B) neither is built.
`default_nettype none

module qmlp_gather #(
    parameter integer BITS = 2,
    parameter integer A = 1,
    parameter integer B = 1,   // a multiple of A
    parameter integer N = 1,
    parameter integer IN_BEATS = 1,
    parameter integer OUT_BEATS = 1
) (
    input  wire              clk,
    input  wire              rst_n,
    input  wire [A*BITS-1:0] s_data,
    input  wire              s_valid,
    output wire              s_ready,
    output wire [B*BITS-1:0] m_data,
    output wire              m_valid,
    input  wire              m_ready
);
    localparam integer K = B / A;
    localparam integer KW = (K > 1) ? $clog2(K) : 1;
    localparam integer IBW = (IN_BEATS > 1) ? $clog2(IN_BEATS) : 1;
    localparam PADDED = N < OUT_BEATS * B;  // else no element of either stream is padding
    localparam integer IN_TAIL = N - (IN_BEATS - 1) * A;  // real elements of the last input beat
    localparam integer K_LAST = IN_BEATS - (OUT_BEATS - 1) * K;  // input beats in the last output beat

    reg [B*BITS-1:0] beat;
    reg [KW-1:0] k;
    reg [IBW-1:0] ib;
    reg full;

    wire in_last = ib == IN_BEATS[IBW-1:0] - 1'b1 || IN_BEATS == 1;
    wire group_last = k == K[KW-1:0] - 1'b1 || K == 1;
    assign s_ready = !full || m_ready;
    assign m_valid = full;
    assign m_data = beat;
    wire fire_in = s_valid && s_ready;

    // The incoming group, its padding elements zeroed on the vector's last beat.
    reg [A*BITS-1:0] group;
    integer e;
    always @* begin
        for (e = 0; e < A; e = e + 1)
            group[e*BITS +: BITS] = (in_last && e >= IN_TAIL) ? {BITS{1'b0}} : s_data[e*BITS +: BITS];
    end

    integer g;
    always @(posedge clk) begin
        if (!rst_n) begin
            beat <= {B*BITS{1'b0}};
            k <= {KW{1'b0}};
            ib <= {IBW{1'b0}};
            full <= 1'b0;
        end else begin
            if (fire_in) begin
                for (g = 0; g < K; g = g + 1) begin
                    if (k == g[KW-1:0]) beat[g*A*BITS +: A*BITS] <= group;
                    else if (PADDED && g >= K_LAST && k == {KW{1'b0}}) beat[g*A*BITS +: A*BITS] <= {A*BITS{1'b0}};
                end
                k <= (group_last || in_last) ? {KW{1'b0}} : k + 1'b1;
                ib <= in_last ? {IBW{1'b0}} : ib + 1'b1;
            end
            if (fire_in && (group_last || in_last)) full <= 1'b1;
            else if (m_ready) full <= 1'b0;
        end
    end
endmodule

`default_nettype wire
