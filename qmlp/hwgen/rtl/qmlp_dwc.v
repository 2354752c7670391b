// qmlp_dwc: stream width converter between a producer emitting A elements per beat and a
// consumer taking B elements per beat, for vectors of N real elements.
// The producer's vector is IN_BEATS beats long (elements at index >= N are padding and are
// dropped); the consumer's is OUT_BEATS beats (elements at index >= N are sent as zeros).
// Internally an element FIFO of CAP = A + 3B - 1 slots that takes a beat while it holds at most
// 3B - 1 elements (registered state only, no ready path through the unit): in steady state it
// emits a beat every cycle while taking input, even across the short last beat of a padded
// vector (after taking it, at least B elements remain for the next cycle). Because every vector contributes exactly N real
// elements on both sides, consecutive vectors share the buffer without any flushing.
// Buffer slots at or above `cnt` are kept zero so the appended beat can be OR-ed in.
`default_nettype none

module qmlp_dwc #(
    parameter integer BITS = 2,
    parameter integer A = 1,
    parameter integer B = 1,
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
    localparam integer CAP = A + 3 * B - 1;
    localparam integer CW = $clog2(CAP + 1);
    localparam integer IBW = (IN_BEATS > 1) ? $clog2(IN_BEATS) : 1;
    localparam integer OBW = (OUT_BEATS > 1) ? $clog2(OUT_BEATS) : 1;

    // Real elements per beat: all but the last beat of a vector are full (the emitter keeps
    // padding below one beat: (IN_BEATS-1)*A < N <= IN_BEATS*A, likewise for B / OUT_BEATS).
    localparam [CW-1:0] A_FULL = A[CW-1:0];
    localparam [CW-1:0] B_FULL = B[CW-1:0];
    localparam integer IN_TAIL = N - (IN_BEATS - 1) * A;
    localparam integer OUT_TAIL = N - (OUT_BEATS - 1) * B;
    localparam [CW-1:0] A_LAST = IN_TAIL[CW-1:0];
    localparam [CW-1:0] B_LAST = OUT_TAIL[CW-1:0];

    reg [CAP*BITS-1:0] buffer;
    reg [CW-1:0] cnt;
    reg [IBW-1:0] ib;
    reg [OBW-1:0] ob;

    wire in_last = ib == IN_BEATS[IBW-1:0] - 1'b1 || IN_BEATS == 1;
    wire out_last = ob == OUT_BEATS[OBW-1:0] - 1'b1 || OUT_BEATS == 1;
    wire [CW-1:0] take = in_last ? A_LAST : A_FULL;
    wire [CW-1:0] need = out_last ? B_LAST : B_FULL;
    localparam [CW-1:0] ROOM = CAP[CW-1:0] - A[CW-1:0];

    assign s_ready = cnt <= ROOM;
    assign m_valid = cnt >= need;

    wire fire_in = s_valid && s_ready;
    wire fire_out = m_valid && m_ready;
    wire [CW-1:0] removed = fire_out ? need : {CW{1'b0}};
    wire [CW-1:0] kept = cnt - removed;

    // Zero the padding elements of the incoming beat and the elements beyond `need` going out.
    reg [A*BITS-1:0] in_clean;
    reg [B*BITS-1:0] out_clean;
    integer e;
    always @* begin
        for (e = 0; e < A; e = e + 1)
            in_clean[e*BITS +: BITS] = (e < take) ? s_data[e*BITS +: BITS] : {BITS{1'b0}};
        for (e = 0; e < B; e = e + 1)
            out_clean[e*BITS +: BITS] = (e < need) ? buffer[e*BITS +: BITS] : {BITS{1'b0}};
    end
    assign m_data = out_clean;

    // Element-granular barrel shifts: stage j moves 2^j elements (a constant number of bits), so
    // no variable is ever multiplied (Yosys would turn `count * BITS` into a DSP block).
    function automatic [CAP*BITS-1:0] shift_down(input [CAP*BITS-1:0] v, input [CW-1:0] n);
        integer j;
        begin
            shift_down = v;
            for (j = 0; j < CW; j = j + 1)
                if (n[j]) shift_down = shift_down >> ((1 << j) * BITS);
        end
    endfunction
    function automatic [CAP*BITS-1:0] shift_up(input [CAP*BITS-1:0] v, input [CW-1:0] n);
        integer j;
        begin
            shift_up = v;
            for (j = 0; j < CW; j = j + 1)
                if (n[j]) shift_up = shift_up << ((1 << j) * BITS);
        end
    endfunction

    wire [CAP*BITS-1:0] shifted = shift_down(buffer, removed);
    wire [CAP*BITS-1:0] appended = shift_up({{(CAP - A) * BITS{1'b0}}, in_clean}, kept);

    always @(posedge clk) begin
        if (!rst_n) begin
            buffer <= {CAP*BITS{1'b0}};
            cnt <= {CW{1'b0}};
            ib <= {IBW{1'b0}};
            ob <= {OBW{1'b0}};
        end else begin
            buffer <= fire_in ? (shifted | appended) : shifted;
            cnt <= kept + (fire_in ? take : {CW{1'b0}});
            if (fire_in) ib <= in_last ? {IBW{1'b0}} : ib + 1'b1;
            if (fire_out) ob <= out_last ? {OBW{1'b0}} : ob + 1'b1;
        end
    end
endmodule

`default_nettype wire
