// qmlp_rom: a read-only memory of DEPTH words x WIDTH bits, initialised from the $readmemh file
// FILE, with a registered read (data = rom[addr] of the last cycle with `en`), so synthesis can
// build it in block RAM or LUTs; STYLE ("logic" or "block") becomes its rom_style attribute,
// the plan's choice. Two branches because a Verilog attribute cannot take a parameter value.
// An empty FILE leaves the ROM uninitialised (tools that elaborate every module with its default
// parameters find no file to open).
`default_nettype none

module qmlp_rom #(
    parameter integer WIDTH = 8,
    parameter integer DEPTH = 2,
    parameter integer ADDR_BITS = 1,
    parameter FILE = "",
    parameter STYLE = "logic"
) (
    input  wire                 clk,
    input  wire                 en,
    input  wire [ADDR_BITS-1:0] addr,
    output wire [WIDTH-1:0]     data
);
    generate
        if (STYLE == "block") begin : brom
            (* rom_style = "block" *) reg [WIDTH-1:0] rom [0:DEPTH-1];
            reg [WIDTH-1:0] q;
            if (FILE != "") begin : init
                initial $readmemh(FILE, rom);
            end
            always @(posedge clk) if (en) q <= rom[addr];
            assign data = q;
        end else begin : lrom
            (* rom_style = "logic" *) reg [WIDTH-1:0] rom [0:DEPTH-1];
            reg [WIDTH-1:0] q;
            if (FILE != "") begin : init
                initial $readmemh(FILE, rom);
            end
            always @(posedge clk) if (en) q <= rom[addr];
            assign data = q;
        end
    endgenerate
endmodule

`default_nettype wire
