// Testbench of qmlp_popcount: vectors {w, x} from stim.mem, the expected P = sum w*c (or the
// XNOR count for BIPOLAR weights) modulo 2^ACC_BITS from expect.mem (both written by the Python
// test). `en` is random (60% high): the unit must hold its pipeline while it is low. Inputs change
// on the falling edge; on the rising edge the output is checked against the vector presented LAT
// enabled cycles earlier (LAT = the plan's latency formula, so the test checks it too).
// Prints "PASS <vectors> <checks>" or "FAIL ...".
`default_nettype none

module tb #(
    parameter integer SIMD = 8,
    parameter integer W_BITS = 2,
    parameter integer W_KIND = 1,
    parameter integer ACC_BITS = 8,
    parameter integer LEVELS_PER_STAGE = 2,
    parameter integer LAT = 1,
    parameter integer N = 64
);
    reg clk = 1'b0;
    always #5 clk = ~clk;

    reg [SIMD*W_BITS+SIMD-1:0] stim [0:N-1];
    reg [ACC_BITS-1:0] expected [0:N-1];
    reg en = 1'b0;
    reg [SIMD-1:0] x = {SIMD{1'b0}};
    reg [SIMD*W_BITS-1:0] w = {(SIMD*W_BITS){1'b0}};
    wire [ACC_BITS-1:0] sum;

    qmlp_popcount #(.SIMD(SIMD), .W_BITS(W_BITS), .W_KIND(W_KIND), .ACC_BITS(ACC_BITS),
                    .LEVELS_PER_STAGE(LEVELS_PER_STAGE)) dut (.clk(clk), .en(en), .x(x), .w(w), .sum(sum));

    integer issued = 0, checks = 0, errors = 0;
    reg started = 1'b0;
    initial begin
        $readmemh("stim.mem", stim);
        $readmemh("expect.mem", expected);
    end

    always @(posedge clk) begin
        if (started && issued >= LAT && issued - LAT < N) begin
            checks <= checks + 1;
            if (sum !== expected[issued - LAT]) begin
                errors <= errors + 1;
                if (errors < 10)
                    $display("FAIL vector %0d: sum %0d, expected %0d", issued - LAT, sum, expected[issued - LAT]);
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
        {w, x} <= stim[(issued < N) ? issued : N - 1];
    end

    initial begin  // a hang is a failure, not a stuck test
        #(100 * (N + LAT) + 100000);
        $display("FAIL timeout after %0d of %0d vectors", issued, N);
        $finish;
    end
endmodule

`default_nettype wire
