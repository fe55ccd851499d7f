// The Q4_0 x Q8_0 dot product alone, per path, on one thread: GB/s of weights from cache
// (a 256 KiB matrix read over and over) and from memory (a 512 MiB one). Tells whether the
// probe on this machine is bound by arithmetic or by memory.
#include <chrono>
#include <cstdio>
#include <vector>

#include "node-agent/bench/memory.hpp"
#include "node-agent/bench/quant.hpp"

using namespace fleet::agent::bench;

int main() {
  constexpr std::size_t k_row = 128;  // blocks per row: a 4096-wide matrix
  std::vector<BlockQ8_0> y(k_row);
  for (auto& b : y) {
    b.d = fp32_to_fp16(0.01f);
    for (int j = 0; j < 32; ++j) b.qs[j] = std::int8_t(j - 16);
  }
  std::printf("Q4_0 x Q8_0 dot product, one thread, GB/s of Q4_0 weights\n");
  std::printf("  path          from cache (256 KiB)   from memory (512 MiB)\n");
  for (DotPath p : {DotPath::neon_dotprod, DotPath::avx_vnni, DotPath::avx2, DotPath::portable}) {
    auto dot = dot_fn(p);
    if (!dot) continue;
    double gbps[2] = {};
    int i = 0;
    for (std::size_t bytes : {std::size_t(256) << 10, std::size_t(512) << 20}) {
      const std::size_t blocks = bytes / sizeof(BlockQ4_0) / k_row * k_row;
      auto region = Region::map(blocks * sizeof(BlockQ4_0), 2u << 20, Huge::on);
      if (!region) return 1;
      auto* x = reinterpret_cast<BlockQ4_0*>(region->data());
      for (std::size_t b = 0; b < blocks; ++b) {
        x[b].d = fp32_to_fp16(0.02f);
        for (int j = 0; j < 16; ++j) x[b].qs[j] = std::uint8_t(b * 7 + std::size_t(j));
      }
      volatile float sink = 0;
      std::size_t done = 0;
      const auto t0 = std::chrono::steady_clock::now();
      while (done < (std::size_t(4) << 30) / sizeof(BlockQ4_0)) {  // 4 GiB of weights in all
        for (std::size_t r = 0; r < blocks; r += k_row) sink = sink + dot(x + r, y.data(), k_row);
        done += blocks;
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      gbps[i++] = double(done * sizeof(BlockQ4_0)) / s / 1e9;
    }
    std::printf("  %-13s %10.2f %22.2f\n", std::string(dot_path_name(p)).c_str(), gbps[0], gbps[1]);
  }
  return 0;
}
