// qmlp Verilator testbench for qmlp_top: streams packed input beats from a file into s_axis,
// collects m_axis beats into a file, with seeded random valid/ready back-pressure on both
// streams, then reads the AXI-Lite registers. Driven by qmlp/sim/rtl.py; the design only
// enters through the Verilated class, so one source serves every emitted design.
//
// usage: qmlp_sim RUN_DIR      (run with the rtl directory as working directory: $readmemh)
// RUN_DIR/config.txt: in_bytes out_bytes in_beats out_beats out_beats_per_vector
//                     p_in_valid p_out_ready seed max_cycles
// RUN_DIR/input.bin:  in_beats * in_bytes bytes (beat-major, little-endian within a beat)
// writes RUN_DIR/output.bin (out_beats * out_bytes), in_cycles.bin / out_cycles.bin (int64
// handshake cycle of every beat), out_last.bin (TLAST per beat), registers.txt.
#include "Vqmlp_top.h"
#include "qmlp_registers.h"  // generated from qmlp/interface.py by qmlp/sim/rtl.py
#include "verilated.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

// Verilator represents ports as CData/SData/IData/QData (<= 64 bits) or VlWide<N> words.
template <typename T>
void put_bits(T& port, const uint8_t* src, int nbytes) {
    uint64_t value = 0;
    for (int i = 0; i < nbytes && i < 8; ++i) value |= uint64_t(src[i]) << (8 * i);
    port = static_cast<T>(value);
}
template <std::size_t W>
void put_bits(VlWide<W>& port, const uint8_t* src, int nbytes) {
    for (std::size_t w = 0; w < W; ++w) {
        uint32_t word = 0;
        for (int b = 0; b < 4; ++b) {
            int i = int(w) * 4 + b;
            if (i < nbytes) word |= uint32_t(src[i]) << (8 * b);
        }
        port[w] = word;
    }
}
template <typename T>
void get_bits(const T& port, uint8_t* dst, int nbytes) {
    uint64_t value = port;
    for (int i = 0; i < nbytes; ++i) dst[i] = i < 8 ? uint8_t(value >> (8 * i)) : 0;
}
template <std::size_t W>
void get_bits(const VlWide<W>& port, uint8_t* dst, int nbytes) {
    for (int i = 0; i < nbytes; ++i) {
        std::size_t w = std::size_t(i) / 4;
        dst[i] = w < W ? uint8_t(port[w] >> (8 * (i % 4))) : 0;
    }
}

struct Rng {  // xorshift64*: fast, seeded, identical on every platform
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 2685821657736338717ULL + 0x9E3779B97F4A7C15ULL) {}
    double uniform() {
        s ^= s >> 12; s ^= s << 25; s ^= s >> 27;
        return double((s * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
    }
};

template <typename T>
void write_file(const std::string& path, const std::vector<T>& data) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(T)));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) { std::fprintf(stderr, "usage: %s RUN_DIR\n", argv[0]); return 2; }
    const std::string dir = argv[1];
    auto* ctx = new VerilatedContext;
    ctx->commandArgs(argc, argv);
    auto* top = new Vqmlp_top{ctx};

    long in_bytes, out_bytes, in_beats, out_beats, out_per_vec, seed, max_cycles;
    double p_in, p_out;
    {
        std::ifstream cfg(dir + "/config.txt");
        if (!(cfg >> in_bytes >> out_bytes >> in_beats >> out_beats >> out_per_vec >> p_in >> p_out >> seed >> max_cycles)) {
            std::fprintf(stderr, "qmlp_sim: cannot read %s/config.txt\n", dir.c_str());
            return 2;
        }
    }
    std::vector<uint8_t> input(size_t(in_beats * in_bytes));
    {
        std::ifstream f(dir + "/input.bin", std::ios::binary);
        f.read(reinterpret_cast<char*>(input.data()), std::streamsize(input.size()));
        if (f.gcount() != std::streamsize(input.size())) {
            std::fprintf(stderr, "qmlp_sim: input.bin too short\n");
            return 2;
        }
    }
    std::vector<uint8_t> output(size_t(out_beats * out_bytes));
    std::vector<int64_t> in_cycles, out_cycles;
    std::vector<uint8_t> out_last;
    in_cycles.reserve(size_t(in_beats));
    out_cycles.reserve(size_t(out_beats));
    Rng rng{uint64_t(seed)};

    auto tick = [&]() {
        top->ap_clk = 1; top->eval();
        top->ap_clk = 0; top->eval();
    };
    top->ap_clk = 0;
    top->ap_rst_n = 0;
    top->s_axis_tvalid = 0;
    top->m_axis_tready = 0;
    top->s_axi_awvalid = 0; top->s_axi_wvalid = 0; top->s_axi_bready = 0;
    top->s_axi_arvalid = 0; top->s_axi_rready = 0;
    top->s_axi_awaddr = 0; top->s_axi_wdata = 0; top->s_axi_wstrb = 0; top->s_axi_araddr = 0;
    top->eval();
    for (int i = 0; i < 4; ++i) tick();
    top->ap_rst_n = 1;
    top->eval();

    long sent = 0, received = 0, cycle = 0;
    bool offering = false;
    while (received < out_beats) {
        if (cycle >= max_cycles) {
            std::fprintf(stderr, "qmlp_sim: timeout after %ld cycles (%ld/%ld input beats accepted, %ld/%ld output beats)\n",
                         cycle, sent, in_beats, received, out_beats);
            return 3;
        }
        // AXI-Stream: once TVALID is up it stays up with the same data until accepted.
        if (!offering && sent < in_beats && (p_in >= 1.0 || rng.uniform() < p_in)) {
            offering = true;
            put_bits(top->s_axis_tdata, &input[size_t(sent * in_bytes)], int(in_bytes));
        }
        top->s_axis_tvalid = offering;
        top->m_axis_tready = (p_out >= 1.0 || rng.uniform() < p_out) ? 1 : 0;
        top->eval();
        if (offering && top->s_axis_tready) {
            in_cycles.push_back(cycle);
            ++sent;
            offering = false;
        }
        if (top->m_axis_tvalid && top->m_axis_tready) {
            get_bits(top->m_axis_tdata, &output[size_t(received * out_bytes)], int(out_bytes));
            out_cycles.push_back(cycle);
            out_last.push_back(top->m_axis_tlast ? 1 : 0);
            ++received;
        }
        tick();
        ++cycle;
    }
    top->s_axis_tvalid = 0;
    top->m_axis_tready = 0;
    top->eval();

    // AXI-Lite single transfers, one register at a time.
    auto axil_read = [&](uint32_t addr) -> uint32_t {
        top->s_axi_araddr = addr; top->s_axi_arvalid = 1; top->s_axi_rready = 0;
        top->eval();
        for (int t = 0; t < 64 && !top->s_axi_arready; ++t) { tick(); }
        tick();
        top->s_axi_arvalid = 0; top->s_axi_rready = 1;
        top->eval();
        for (int t = 0; t < 64 && !top->s_axi_rvalid; ++t) { tick(); }
        uint32_t data = top->s_axi_rdata;
        tick();
        top->s_axi_rready = 0; top->eval();
        return data;
    };
    auto axil_write = [&](uint32_t addr, uint32_t data) {
        top->s_axi_awaddr = addr; top->s_axi_wdata = data; top->s_axi_wstrb = 0xF;
        top->s_axi_awvalid = 1; top->s_axi_wvalid = 1; top->s_axi_bready = 1;
        top->eval();
        for (int t = 0; t < 64 && !top->s_axi_awready; ++t) { tick(); }
        tick();
        top->s_axi_awvalid = 0; top->s_axi_wvalid = 0;
        top->eval();
        for (int t = 0; t < 64 && !top->s_axi_bvalid; ++t) { tick(); }
        tick();
        top->s_axi_bready = 0; top->eval();
    };
    const uint32_t id = axil_read(QMLP_REG_ID), version = axil_read(QMLP_REG_VERSION);
    const uint32_t latency = axil_read(QMLP_REG_LAST_LATENCY);
    const uint32_t inferences = axil_read(QMLP_REG_INFERENCES), cycles = axil_read(QMLP_REG_CYCLES);
    axil_write(QMLP_REG_CTRL, 1);
    const uint32_t latency_c = axil_read(QMLP_REG_LAST_LATENCY), inferences_c = axil_read(QMLP_REG_INFERENCES);
    const uint32_t cycles_c = axil_read(QMLP_REG_CYCLES);

    write_file(dir + "/output.bin", output);
    write_file(dir + "/in_cycles.bin", in_cycles);
    write_file(dir + "/out_cycles.bin", out_cycles);
    write_file(dir + "/out_last.bin", out_last);
    {
        std::ofstream f(dir + "/registers.txt");
        f << "ID " << id << "\nVERSION " << version << "\nLAST_LATENCY " << latency << "\nINFERENCES "
          << inferences << "\nCYCLES " << cycles << "\nLAST_LATENCY_AFTER_CLEAR " << latency_c
          << "\nINFERENCES_AFTER_CLEAR " << inferences_c << "\nCYCLES_AFTER_CLEAR " << cycles_c
          << "\nSIM_CYCLES " << cycle << "\n";
    }
    top->final();
    delete top;
    delete ctx;
    return 0;
}
