// qmlp_beats: position of the current beat within a vector of BEATS beats on a stream,
// advanced on every handshake; `first`/`last` mark the vector's first and last beat.
`default_nettype none

module qmlp_beats #(
    parameter integer BEATS = 1
) (
    input  wire clk,
    input  wire rst_n,
    input  wire fire,
    output wire first,
    output wire last
);
    localparam integer BW = (BEATS > 1) ? $clog2(BEATS) : 1;
    reg [BW-1:0] beat;
    assign first = beat == {BW{1'b0}};
    assign last = beat == BEATS[BW-1:0] - 1'b1 || BEATS == 1;
    always @(posedge clk) begin
        if (!rst_n) beat <= {BW{1'b0}};
        else if (fire) beat <= last ? {BW{1'b0}} : beat + 1'b1;
    end
endmodule

`default_nettype wire
