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

    // Real elements carried by input beat i / output beat o of a vector.
    function automatic [CW-1:0] in_count(input integer i);
        integer left;
        begin
            left = N - i * A;
            in_count = (left >= A) ? A[CW-1:0] : (left > 0 ? left[CW-1:0] : {CW{1'b0}});
        end
    endfunction
    function automatic [CW-1:0] out_count(input integer o);
        integer left;
        begin
            left = N - o * B;
            out_count = (left >= B) ? B[CW-1:0] : (left > 0 ? left[CW-1:0] : {CW{1'b0}});
        end
    endfunction

    reg [CAP*BITS-1:0] buffer;
    reg [CW-1:0] cnt;
    reg [IBW-1:0] ib;
    reg [OBW-1:0] ob;

    wire [CW-1:0] take = in_count({{(32 - IBW){1'b0}}, ib});
    wire [CW-1:0] need = out_count({{(32 - OBW){1'b0}}, ob});
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

    wire [CAP*BITS-1:0] shifted = buffer >> (removed * BITS);
    wire [CAP*BITS-1:0] appended = {{(CAP - A) * BITS{1'b0}}, in_clean} << (kept * BITS);

    always @(posedge clk) begin
        if (!rst_n) begin
            buffer <= {CAP*BITS{1'b0}};
            cnt <= {CW{1'b0}};
            ib <= {IBW{1'b0}};
            ob <= {OBW{1'b0}};
        end else begin
            buffer <= fire_in ? (shifted | appended) : shifted;
            cnt <= kept + (fire_in ? take : {CW{1'b0}});
            if (fire_in) ib <= (ib == IN_BEATS[IBW-1:0] - 1'b1) ? {IBW{1'b0}} : ib + 1'b1;
            if (fire_out) ob <= (ob == OUT_BEATS[OBW-1:0] - 1'b1) ? {OBW{1'b0}} : ob + 1'b1;
        end
    end
endmodule

`default_nettype wire
