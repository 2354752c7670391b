// qmlp_tlast_batch: lets one AXI DMA S2MM transfer receive a whole batch.
//
// qmlp_top ends every output vector with TLAST, and an AXI DMA S2MM transfer completes at the first
// TLAST, so without this block the host must start one transfer per vector. This block passes the
// stream through unchanged (no added latency, no buffering) but keeps only every `frames`-th TLAST:
// the host sets `frames` (through an AXI GPIO) to the number of vectors in its next transfer.
// `frames` of 0 or 1 passes every TLAST. Any change of `frames` restarts the count, so the host
// re-synchronises by writing 0 and then the batch size before each transfer.
`default_nettype none

module qmlp_tlast_batch #(
    parameter integer DATA_BYTES = 1,
    parameter integer COUNT_BITS = 32
) (
    (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF s_axis:m_axis, ASSOCIATED_RESET aresetn" *)
    (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)
    input  wire                    aclk,
    (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)
    (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)
    input  wire                    aresetn,
    input  wire [COUNT_BITS-1:0]   frames,

    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 s_axis TDATA" *)
    input  wire [8*DATA_BYTES-1:0] s_axis_tdata,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 s_axis TVALID" *)
    input  wire                    s_axis_tvalid,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 s_axis TREADY" *)
    output wire                    s_axis_tready,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 s_axis TLAST" *)
    input  wire                    s_axis_tlast,

    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 m_axis TDATA" *)
    output wire [8*DATA_BYTES-1:0] m_axis_tdata,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 m_axis TVALID" *)
    output wire                    m_axis_tvalid,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 m_axis TREADY" *)
    input  wire                    m_axis_tready,
    (* X_INTERFACE_INFO = "xilinx.com:interface:axis:1.0 m_axis TLAST" *)
    output wire                    m_axis_tlast
);
    reg [COUNT_BITS-1:0] seen;      // vectors already completed in the current packet
    reg [COUNT_BITS-1:0] frames_q;  // the `frames` value `seen` counts towards

    wire packet_end = (frames <= 1) || (seen == frames - 1);

    assign m_axis_tdata  = s_axis_tdata;
    assign m_axis_tvalid = s_axis_tvalid;
    assign s_axis_tready = m_axis_tready;
    assign m_axis_tlast  = s_axis_tlast && packet_end;

    always @(posedge aclk) begin
        if (!aresetn || frames != frames_q) begin
            seen     <= {COUNT_BITS{1'b0}};
            frames_q <= frames;
        end else if (s_axis_tvalid && m_axis_tready && s_axis_tlast) begin
            seen <= packet_end ? {COUNT_BITS{1'b0}} : seen + 1'b1;
        end
    end
endmodule

`default_nettype wire
