// qmlp toggle-rate harness for qmlp_top, built by qmlp/profile/activity.py with
// verilator --coverage-toggle. Streams the packed input beats of input.bin into s_axis at full
// rate (TVALID held high as a DMA engine does), keeps m_axis always ready, zeroes the coverage
// counters after reset so only the streaming window counts, and writes coverage.dat plus
// window.txt ("cycles input_beats output_beats").
//
// usage: qmlp_toggle RUN_DIR IN_BYTES IN_BEATS OUT_BEATS MAX_CYCLES   (cwd = the rtl directory)
#include "Vqmlp_top.h"
#include "verilated.h"
#include "verilated_cov.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

template <typename T>
static void load_beat(T& port, const uint8_t* src, int nbytes) {
    uint64_t value = 0;
    for (int i = 0; i < nbytes && i < 8; ++i) value |= uint64_t(src[i]) << (8 * i);
    port = static_cast<T>(value);
}
template <std::size_t W>
static void load_beat(VlWide<W>& port, const uint8_t* src, int nbytes) {
    for (std::size_t w = 0; w < W; ++w) {
        uint32_t word = 0;
        for (int b = 0; b < 4 && int(w) * 4 + b < nbytes; ++b) word |= uint32_t(src[w * 4 + b]) << (8 * b);
        port[w] = word;
    }
}

int main(int argc, char** argv) {
    if (argc < 6) { std::fprintf(stderr, "usage: %s RUN_DIR IN_BYTES IN_BEATS OUT_BEATS MAX_CYCLES\n", argv[0]); return 2; }
    const std::string dir = argv[1];
    const long in_bytes = std::atol(argv[2]), in_beats = std::atol(argv[3]);
    const long out_beats = std::atol(argv[4]), max_cycles = std::atol(argv[5]);
    std::vector<uint8_t> input(size_t(in_bytes * in_beats));
    std::ifstream f(dir + "/input.bin", std::ios::binary);
    f.read(reinterpret_cast<char*>(input.data()), std::streamsize(input.size()));
    if (f.gcount() != std::streamsize(input.size())) { std::fprintf(stderr, "qmlp_toggle: input.bin too short\n"); return 2; }

    auto* ctx = new VerilatedContext;
    auto* top = new Vqmlp_top{ctx};
    auto tick = [&]() { top->ap_clk = 1; top->eval(); top->ap_clk = 0; top->eval(); };
    top->ap_clk = 0; top->ap_rst_n = 0; top->s_axis_tvalid = 0; top->m_axis_tready = 1;
    top->s_axi_awvalid = 0; top->s_axi_wvalid = 0; top->s_axi_bready = 0;
    top->s_axi_arvalid = 0; top->s_axi_rready = 0;
    top->eval();
    for (int i = 0; i < 4; ++i) tick();
    top->ap_rst_n = 1;
    top->eval();
    ctx->coveragep()->zero();  // count the streaming window only, not reset

    long sent = 0, received = 0, cycle = 0;
    while (received < out_beats) {
        if (cycle >= max_cycles) { std::fprintf(stderr, "qmlp_toggle: timeout after %ld cycles\n", cycle); return 3; }
        top->s_axis_tvalid = sent < in_beats;
        if (sent < in_beats) load_beat(top->s_axis_tdata, &input[size_t(sent * in_bytes)], int(in_bytes));
        top->eval();
        const bool accepted = top->s_axis_tvalid && top->s_axis_tready;
        const bool produced = top->m_axis_tvalid && top->m_axis_tready;
        tick();
        ++cycle;
        if (accepted) ++sent;
        if (produced) ++received;
    }
    ctx->coveragep()->write((dir + "/coverage.dat").c_str());
    std::ofstream(dir + "/window.txt") << cycle << " " << sent << " " << received << "\n";
    delete top;
    delete ctx;
    return 0;
}
