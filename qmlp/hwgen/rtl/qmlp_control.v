// qmlp_control: AXI4-Lite slave with the qmlp_top register map (docs/interfaces.md) and the
// hardware counters behind it.
//   0x00 ID            0x514D4C50 ("QMLP")
//   0x04 VERSION       schema version << 16 | number of layers
//   0x08 LAST_LATENCY  cycles from the first input beat to the last output beat of the most
//                      recently finished inference (difference of the two handshake cycles)
//   0x0C INFERENCES    output vectors completed since reset / clear
//   0x10 CYCLES        free-running cycle counter (low 32 bits)
//   0x14 CTRL          write 1 to bit 0: clear LAST_LATENCY, INFERENCES, CYCLES
// Several inferences can be in flight, so the start cycle of each one is queued in a small
// FIFO (TS_DEPTH entries, a bound on inferences in flight computed by the emitter) stamped
// from a counter that CTRL never clears.
`default_nettype none

module qmlp_control #(
    parameter [31:0] VERSION = 32'h0001_0001,
    parameter integer TS_DEPTH = 16
) (
    input  wire        clk,
    input  wire        rst_n,
    input  wire        start,   // first input beat of an inference accepted this cycle
    input  wire        done,    // last output beat of an inference accepted this cycle
    input  wire [5:0]  s_axi_awaddr,
    input  wire        s_axi_awvalid,
    output wire        s_axi_awready,
    input  wire [31:0] s_axi_wdata,
    input  wire [3:0]  s_axi_wstrb,
    input  wire        s_axi_wvalid,
    output wire        s_axi_wready,
    output wire [1:0]  s_axi_bresp,
    output wire        s_axi_bvalid,
    input  wire        s_axi_bready,
    input  wire [5:0]  s_axi_araddr,
    input  wire        s_axi_arvalid,
    output wire        s_axi_arready,
    output wire [31:0] s_axi_rdata,
    output wire [1:0]  s_axi_rresp,
    output wire        s_axi_rvalid,
    input  wire        s_axi_rready
);
    localparam [31:0] ID = 32'h514D_4C50;
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
    assign clear = write && s_axi_awaddr[5:2] == 4'h5 && s_axi_wstrb[0] && s_axi_wdata[0];
    always @(posedge clk) begin
        if (!rst_n) bvalid <= 1'b0;
        else if (write) bvalid <= 1'b1;
        else if (s_axi_bready) bvalid <= 1'b0;
    end

    // ---- AXI4-Lite read --------------------------------------------------------------------
    reg rvalid;
    reg [31:0] rdata;
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
            case (s_axi_araddr[5:2])
                4'h0: rdata <= ID;
                4'h1: rdata <= VERSION;
                4'h2: rdata <= last_latency;
                4'h3: rdata <= inferences;
                4'h4: rdata <= cycles;
                default: rdata <= 32'd0;
            endcase
        end
    end

    wire _unused_ok = &{1'b0, s_axi_awaddr[1:0], s_axi_araddr[1:0], s_axi_wstrb[3:1],
                        s_axi_wdata[31:1], 1'b0};
endmodule

`default_nettype wire
