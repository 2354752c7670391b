// Testbench of the threshold units: UNIT = 1 drives qmlp_threshold_search (tables thr_k<k>.mem),
// UNIT = 0 drives qmlp_threshold fed by a row ROM as qmlp_mvau does (thr.mem), with its `>=`
// compares (CONSTANT = 0) or the AND/OR chains of fully parallel layers (CONSTANT = 1). Vectors {row, acc}
// come from stim.mem, the expected codes from expect.mem (both written by the Python test from the
// IR semantics). `en` is random (60% high): the unit must hold its results while it is low.
// Inputs change on the falling edge; on the rising edge the output is checked against the vector
// presented LAT enabled cycles earlier. Prints "PASS <vectors> <checks>" or "FAIL ...".
`default_nettype none

module tb #(
    parameter integer UNIT = 1,
    parameter integer ACC_BITS = 6,
    parameter integer ACC_SIGNED = 1,
    parameter integer T_BITS = 7,
    parameter integer LEVELS = 4,
    parameter integer STEPS = 15,
    parameter integer OUT_BITS = 4,
    parameter integer OUT_BIAS = 0,
    parameter integer CONSTANT = 0,
    parameter integer ROWS = 1,
    parameter integer LANES = 1,
    parameter integer LANE = 0,
    parameter integer N = 64
);
    localparam integer RW = (ROWS > 1) ? $clog2(ROWS) : 1;
    localparam integer LAT = (UNIT != 0) ? LEVELS : 0;
    localparam integer TE = STEPS * T_BITS + 1;

    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg [RW+ACC_BITS-1:0] stim [0:N-1];
    reg [OUT_BITS-1:0] expected [0:N-1];
    reg en = 1'b0;
    reg [ACC_BITS-1:0] acc = {ACC_BITS{1'b0}};
    reg [RW-1:0] row = {RW{1'b0}};
    wire [OUT_BITS-1:0] code;

    generate
        if (UNIT != 0) begin : search
            qmlp_threshold_search #(
                .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .T_BITS(T_BITS), .LEVELS(LEVELS),
                .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .ROWS(ROWS), .LANES(LANES), .LANE(LANE),
                .TABLE_FILE("thr")
            ) dut (.clk(clk), .en(en), .acc(acc), .row(row), .code(code));
        end else begin : linear
            reg [LANES*TE-1:0] trom [0:ROWS-1];
            initial $readmemh("thr.mem", trom);
            wire [LANES*TE-1:0] word = trom[row];
            wire [TE-1:0] entry = word[LANE*TE +: TE];
            qmlp_threshold #(
                .ACC_BITS(ACC_BITS), .ACC_SIGNED(ACC_SIGNED), .STEPS(STEPS), .T_BITS(T_BITS),
                .OUT_BITS(OUT_BITS), .OUT_BIAS(OUT_BIAS), .CONSTANT(CONSTANT)
            ) dut (.acc(acc), .neg(entry[TE-1]), .thresholds(entry[TE-2:0]), .code(code));
        end
    endgenerate

    integer issued = 0, checks = 0, errors = 0;
    reg started = 1'b0;  // the first vector is presented on the first falling edge
    initial begin
        $readmemh("stim.mem", stim);
        $readmemh("expect.mem", expected);
    end

    always @(posedge clk) begin
        if (started && issued >= LAT && issued - LAT < N) begin
            checks <= checks + 1;
            if (code !== expected[issued - LAT]) begin
                errors <= errors + 1;
                if (errors < 10)
                    $display("FAIL vector %0d (row %0d acc %0d): code %0d, expected %0d", issued - LAT,
                             stim[issued - LAT][RW+ACC_BITS-1:ACC_BITS], stim[issued - LAT][ACC_BITS-1:0],
                             code, expected[issued - LAT]);
            end
        end
        if (en) issued <= issued + 1;
    end

    always @(negedge clk) begin
        if (issued >= N + LAT) begin
            if (errors == 0) $display("PASS %0d %0d", N, checks);
            else $display("FAIL %0d errors", errors);
            $finish;
        end
        started <= 1'b1;
        en <= ($urandom % 100) < 60;
        {row, acc} <= stim[(issued < N) ? issued : N - 1];
    end

    initial begin  // a hang is a failure, not a stuck test
        #(100 * (N + LAT) + 100000);
        $display("FAIL timeout after %0d of %0d vectors", issued, N);
        $finish;
    end
endmodule

`default_nettype wire
