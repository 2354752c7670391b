// Testbench of qmlp_tlast_batch: random valid/ready on both sides, vectors of 1..3 beats, packets of
// 1..9 vectors (and frames = 0, which must pass every TLAST). Checks that data passes unchanged and
// that TLAST leaves exactly at the end of each packet. Prints "PASS <packets> <beats>" or "FAIL ...".
// Stimulus changes on the falling edge, handshakes are counted on the rising edge (no races).
`default_nettype none

module tb;
    reg clk = 1'b0, rstn = 1'b0;
    always #5 clk = ~clk;

    reg  [31:0] frames;
    reg  [15:0] s_data;
    reg         s_valid, s_last, m_ready;
    wire        s_ready;
    wire [15:0] m_data;
    wire        m_valid, m_last;

    qmlp_tlast_batch #(.DATA_BYTES(2)) dut (
        .aclk(clk), .aresetn(rstn), .frames(frames),
        .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready), .s_axis_tlast(s_last),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tlast(m_last));

    reg     expect_last [0:65535];
    integer received, accepted, errors;

    // Rising edge: count accepted input beats, check output beats (numbered 0, 1, 2, ...).
    always @(posedge clk) begin
        if (s_valid && s_ready) accepted <= accepted + 1;
        if (m_valid && m_ready) begin
            if (m_data !== received[15:0] || m_last !== expect_last[received]) begin
                errors <= errors + 1;
                $display("FAIL beat %0d: data %0d last %0d, expected last %0d",
                         received, m_data, m_last, expect_last[received]);
            end
            received <= received + 1;
        end
    end
    // Falling edge: the receiver's random ready.
    always @(negedge clk) m_ready <= ($urandom % 100) < 60;

    integer packet, vec, beat, nvec, nbeats, sent;
    task send_beat(input last, input packet_last);
        begin
            expect_last[sent] = packet_last;
            while (($urandom % 100) >= 60) @(negedge clk);  // idle cycles before TVALID
            s_data = sent[15:0];
            s_last = last;
            s_valid = 1'b1;
            sent = sent + 1;
            @(negedge clk);
            while (accepted != sent) @(negedge clk);
            s_valid = 1'b0;
        end
    endtask

    initial begin  // a hang is a failure, not a stuck test
        #5000000;
        $display("FAIL timeout: sent %0d received %0d", sent, received);
        $finish;
    end

    initial begin
        frames = 0; s_data = 0; s_valid = 0; s_last = 0; m_ready = 0;
        received = 0; accepted = 0; errors = 0; sent = 0;
        repeat (3) @(negedge clk);
        rstn = 1'b1;
        for (packet = 0; packet < 60; packet = packet + 1) begin
            nvec = 1 + ($urandom % 9);
            // The driver's protocol: wait for the previous packet, write 0, then the batch size.
            while (received != sent) @(negedge clk);
            frames = 0;
            @(negedge clk);
            frames = (packet % 7 == 3) ? 0 : nvec;  // frames = 0: every vector ends a packet
            @(negedge clk);
            for (vec = 0; vec < nvec; vec = vec + 1) begin
                nbeats = 1 + ($urandom % 3);
                for (beat = 0; beat < nbeats; beat = beat + 1)
                    send_beat(beat == nbeats - 1, beat == nbeats - 1 && (frames == 0 || vec == nvec - 1));
            end
        end
        while (received != sent) @(negedge clk);
        if (errors == 0) $display("PASS %0d %0d", packet, received);
        else $display("FAIL %0d errors", errors);
        $finish;
    end
endmodule
`default_nettype wire
