// qmlp_control: AXI4-Lite slave with the qmlp_top register map and the hardware counters
// behind it. The addresses, widths and the ID constant come from qmlp_registers.vh, which the
// emitter generates from the one table in qmlp/interface.py (docs/interfaces.md lists the map);
// here each register name is bound to the counter it reads or the action it triggers.
// Several inferences can be in flight, so the start cycle of each one is queued in a small
// FIFO (TS_DEPTH entries, a bound on inferences in flight computed by the emitter) stamped
// from a counter that CTRL never clears.
`include "qmlp_registers.vh"
`default_nettype none

module qmlp_control #(
    parameter [31:0] VERSION = 32'h0001_0001,
    parameter integer TS_DEPTH = 16
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        start,   // first input beat of an inference accepted this cycle
    input  wire        done,    // last output beat of an inference accepted this cycle
    input  wire [`QMLP_ADDR_BITS-1:0] s_axi_awaddr,
    input  wire        s_axi_awvalid,
    output wire        s_axi_awready,
    input  wire [`QMLP_DATA_BITS-1:0] s_axi_wdata,
    input  wire [3:0]  s_axi_wstrb,
    input  wire        s_axi_wvalid,
    output wire        s_axi_wready,
    output wire [1:0]  s_axi_bresp,
    output wire        s_axi_bvalid,
    input  wire        s_axi_bready,
    input  wire [`QMLP_ADDR_BITS-1:0] s_axi_araddr,
    input  wire        s_axi_arvalid,
    output wire        s_axi_arready,
    output wire [`QMLP_DATA_BITS-1:0] s_axi_rdata,
    output wire [1:0]  s_axi_rresp,
    output wire        s_axi_rvalid,
    input  wire        s_axi_rready
);
    localparam integer AW = `QMLP_ADDR_BITS;
    localparam integer TW = $clog2(TS_DEPTH);

    // ---- counters --------------------------------------------------------------------------
    reg [31:0] stamp, cycles, inferences, last_latency;
    reg [31:0] starts [0:TS_DEPTH-1];
    reg [TW-1:0] head, tail;
    wire clear;

    always @(posedge clk) begin
        if (!rst_n) begin
            stamp <= 32'd0;
            head <= {TW{1'b0}};
            tail <= {TW{1'b0}};
        end else begin
            stamp <= stamp + 32'd1;
            if (start) tail <= tail + 1'b1;
            if (done) head <= head + 1'b1;
        end
    end
    always @(posedge clk) begin
        if (start) starts[tail] <= stamp;
    end
    always @(posedge clk) begin
        if (!rst_n || clear) begin
            cycles <= 32'd0;
            inferences <= 32'd0;
            last_latency <= 32'd0;
        end else begin
            cycles <= cycles + 32'd1;
            if (done) begin
                inferences <= inferences + 32'd1;
                last_latency <= stamp - starts[head];
            end
        end
    end

    // ---- AXI4-Lite write: address and data are taken together -----------------------------
    reg bvalid;
    wire write = s_axi_awvalid && s_axi_wvalid && !bvalid;
    assign s_axi_awready = write;
    assign s_axi_wready = write;
    assign s_axi_bvalid = bvalid;
    assign s_axi_bresp = 2'b00;
    // registers are word-aligned: the two low address bits are ignored
    wire [AW-1:0] waddr = {s_axi_awaddr[AW-1:2], 2'b00};
    assign clear = write && waddr == `QMLP_REG_CTRL && s_axi_wstrb[0] && s_axi_wdata[0];
    always @(posedge clk) begin
        if (!rst_n) bvalid <= 1'b0;
        else if (write) bvalid <= 1'b1;
        else if (s_axi_bready) bvalid <= 1'b0;
    end

    // ---- AXI4-Lite read --------------------------------------------------------------------
    reg rvalid;
    reg [`QMLP_DATA_BITS-1:0] rdata;
    wire [AW-1:0] raddr = {s_axi_araddr[AW-1:2], 2'b00};
    assign s_axi_arready = !rvalid;
    assign s_axi_rvalid = rvalid;
    assign s_axi_rdata = rdata;
    assign s_axi_rresp = 2'b00;
    always @(posedge clk) begin
        if (!rst_n) rvalid <= 1'b0;
        else if (s_axi_arvalid && !rvalid) rvalid <= 1'b1;
        else if (s_axi_rready) rvalid <= 1'b0;
    end
    always @(posedge clk) begin
        if (s_axi_arvalid && !rvalid) begin
            case (raddr)
                `QMLP_REG_ID:           rdata <= `QMLP_ID_VALUE;
                `QMLP_REG_VERSION:      rdata <= VERSION;
                `QMLP_REG_LAST_LATENCY: rdata <= last_latency;
                `QMLP_REG_INFERENCES:   rdata <= inferences;
                `QMLP_REG_CYCLES:       rdata <= cycles;
                default:                rdata <= 32'd0;
            endcase
        end
    end

    wire _unused_ok = &{1'b0, s_axi_awaddr[1:0], s_axi_araddr[1:0], s_axi_wstrb[3:1],
                        s_axi_wdata[`QMLP_DATA_BITS-1:1], 1'b0};
endmodule

`default_nettype wire
