// qmlp_fifo: small synchronous FIFO between dataflow stages.
// DEPTH >= 2: s_ready and m_valid depend on registered state only, so the FIFO cuts the
// combinational ready chain between layers. DEPTH = 1: a register slice in flip-flops (no
// memory, no read multiplexer) whose s_ready = !full || m_ready passes the ready chain through;
// used in front of a fully parallel layer, which takes a vector every cycle it is not stalled.
// One item in and one out per cycle; an item written in cycle t is visible on m_* in cycle t+1.
`default_nettype none

module qmlp_fifo #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2
) (
    input  wire             clk,
    input  wire             rst_n,
    input  wire [WIDTH-1:0] s_data,
    input  wire             s_valid,
    output wire             s_ready,
    output wire [WIDTH-1:0] m_data,
    output wire             m_valid,
    input  wire             m_ready
);
generate
    if (DEPTH == 1) begin : slice
        reg full;
        reg [WIDTH-1:0] q;
        assign s_ready = !full || m_ready;
        assign m_valid = full;
        assign m_data = q;
        always @(posedge clk) begin
            if (!rst_n) full <= 1'b0;
            else if (s_ready) full <= s_valid;
        end
        always @(posedge clk) begin
            if (s_ready) q <= s_data;  // enable only: a bubble's data is never read (full = 0)
        end
    end else begin : ring
        localparam integer AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
        localparam [AW:0] FULL = DEPTH[AW:0];
        localparam [AW-1:0] LAST = DEPTH[AW-1:0] - 1'b1;

        reg [WIDTH-1:0] mem [0:DEPTH-1];
        reg [AW-1:0] rptr, wptr;
        reg [AW:0] count;

        wire push = s_valid && s_ready;
        wire pop = m_valid && m_ready;

        assign s_ready = count != FULL;
        assign m_valid = count != {(AW + 1){1'b0}};
        assign m_data = mem[rptr];

        always @(posedge clk) begin
            if (!rst_n) begin
                rptr <= {AW{1'b0}};
                wptr <= {AW{1'b0}};
                count <= {(AW + 1){1'b0}};
            end else begin
                if (push) wptr <= (wptr == LAST) ? {AW{1'b0}} : wptr + 1'b1;
                if (pop) rptr <= (rptr == LAST) ? {AW{1'b0}} : rptr + 1'b1;
                if (push && !pop) count <= count + 1'b1;
                else if (pop && !push) count <= count - 1'b1;
            end
        end

        always @(posedge clk) begin
            if (push) mem[wptr] <= s_data;
        end
    end
endgenerate
endmodule

`default_nettype wire
