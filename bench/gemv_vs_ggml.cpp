// The probe's gemv against llama.cpp's own, one thread, on the same Q4_0 weights and the same
// Q8_0 activation (bench/gemv_vs_ggml.sh builds and runs it; --help there): q4_0_8x8 with AVX2
// on x86, q4_0_4x4 with the dot product on aarch64 (the Pi 5's layout, run under qemu).
//
//   ours : fleet::agent::bench::gemv_fn(LAYOUT, best_dot_path()) from libagent_bench.a.
//   ggml : the linked ggml library: the weight tensor in ggml's CPU repack ("aarch64") buffer,
//          repacked by ggml_backend_tensor_set, and a GGML_OP_MUL_MAT by a vector run on one
//          thread through the CPU backend. That runs ggml's (file-static) gemv kernel, but each
//          call also quantizes the f32 activation to Q8_0 and goes through the graph executor,
//          so its time is an upper bound for the kernel's; the row "ggml x -> Q8_0" times the
//          quantization alone.
//
// Weights: random floats -> Q4_0 by ggml_quantize_chunk; activation: random floats -> Q8_0 by
// ggml's CPU from_float (what GGML_OP_MUL_MAT does to it). Our repack is compared byte for byte
// with the bytes ggml's repack left in its buffer; when they are equal, ours reads that very
// buffer. The outputs are compared with each other and with an exact sum in double.
//
// Usage: gemv_vs_ggml [--shape ROWSxCOLS]... [--reps N]
// Exit: 0 the outputs agree, 1 they do not (or the repacks differ), 2 bad usage or no such kernel
// on this CPU (AVX2 with F16C; the aarch64 dot product).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "node-agent/bench/quant.hpp"
#include "node-agent/bench/repack.hpp"

// The one internal ggml function used: declared in ggml's internal header
// ggml/src/ggml-cpu/ggml-cpu-aarch64.h, defined in libggml-cpu.a with C++ linkage (not extern
// "C"). Checked against ggml-org/llama.cpp at c392e50.
ggml_backend_buffer_type_t ggml_backend_cpu_aarch64_buffer_type(void);

namespace fb = fleet::agent::bench;

namespace {

constexpr std::size_t k_q4_bytes = sizeof(fb::BlockQ4_0), k_q8_bytes = sizeof(fb::BlockQ8_0), k_qk = fb::k_block;
constexpr int k_max_reps = 100;
constexpr std::size_t k_max_weight_bytes = std::size_t(1) << 30;  // three copies are held: q4, ours, ggml's
// Outputs agree when they differ by at most this much of the largest |output|: the two sum
// the same integer products but may round the float scale sums in another order.
constexpr double k_tolerance = 1e-5;

struct Shape {
  std::size_t rows, cols;
};

struct AlignedBuf {
  std::uint8_t* p = nullptr;
  explicit AlignedBuf(std::size_t bytes) {
    p = static_cast<std::uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    if (!p) {
      std::fprintf(stderr, "gemv_vs_ggml: out of memory (%zu bytes)\n", bytes);
      std::exit(2);
    }
  }
  ~AlignedBuf() { std::free(p); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
};

// ggml's library path: W (Q4_0, repacked by ggml) in the repack buffer, x and y in a CPU buffer.
struct GgmlOp {
  ggml_context* ctx_w = nullptr;
  ggml_context* ctx_a = nullptr;
  ggml_backend_buffer_t buf_w = nullptr, buf_a = nullptr;
  ggml_tensor *w = nullptr, *x = nullptr, *y = nullptr;
  ggml_cgraph* graph = nullptr;

  GgmlOp(const Shape& s, const void* q4_rows) {
    ggml_init_params pw{ggml_tensor_overhead() * 2, nullptr, true};
    ctx_w = ggml_init(pw);
    w = ggml_new_tensor_2d(ctx_w, GGML_TYPE_Q4_0, std::int64_t(s.cols), std::int64_t(s.rows));
    buf_w = ggml_backend_alloc_ctx_tensors_from_buft(ctx_w, ggml_backend_cpu_aarch64_buffer_type());
    if (!buf_w) {
      std::fprintf(stderr, "gemv_vs_ggml: ggml cannot allocate its repack buffer\n");
      std::exit(2);
    }
    ggml_backend_tensor_set(w, q4_rows, 0, ggml_nbytes(w));  // ggml repacks here

    ggml_init_params pa{ggml_tensor_overhead() * 4 + ggml_graph_overhead(), nullptr, true};
    ctx_a = ggml_init(pa);
    x = ggml_new_tensor_2d(ctx_a, GGML_TYPE_F32, std::int64_t(s.cols), 1);
    y = ggml_mul_mat(ctx_a, w, x);
    buf_a = ggml_backend_alloc_ctx_tensors_from_buft(ctx_a, ggml_backend_cpu_buffer_type());
    graph = ggml_new_graph(ctx_a);
    ggml_build_forward_expand(graph, y);
  }
  ~GgmlOp() {
    ggml_backend_buffer_free(buf_a);
    ggml_backend_buffer_free(buf_w);
    ggml_free(ctx_a);
    ggml_free(ctx_w);
  }
  GgmlOp(const GgmlOp&) = delete;
  GgmlOp& operator=(const GgmlOp&) = delete;
};

// ggml's warnings and errors only: its debug log names every tensor it repacks.
void ggml_log_warnings(ggml_log_level level, const char* text, void*) {
  if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Exact reference in double from the plain (unrepacked) blocks.
std::vector<double> reference(const std::uint8_t* q4, const std::uint8_t* q8, const Shape& s) {
  const std::size_t nb = s.cols / k_qk;
  std::vector<double> out(s.rows, 0.0);
  for (std::size_t r = 0; r < s.rows; ++r) {
    double acc = 0;
    for (std::size_t k = 0; k < nb; ++k) {
      const std::uint8_t* w = q4 + (r * nb + k) * k_q4_bytes;
      const std::uint8_t* a = q8 + k * k_q8_bytes;
      std::uint16_t dw, da;
      std::memcpy(&dw, w, 2);
      std::memcpy(&da, a, 2);
      long sum = 0;
      for (std::size_t j = 0; j < 16; ++j) {
        const int lo = (w[2 + j] & 0x0f) - 8, hi = (w[2 + j] >> 4) - 8;
        sum += long(lo) * std::int8_t(a[2 + j]) + long(hi) * std::int8_t(a[2 + 16 + j]);
      }
      acc += double(sum) * double(ggml_fp16_to_fp32(dw)) * double(ggml_fp16_to_fp32(da));
    }
    out[r] = acc;
  }
  return out;
}

struct Diff {
  double max_abs = 0;
  std::size_t bit_equal = 0;
};

Diff compare(const std::vector<float>& a, const std::vector<float>& b) {
  Diff d;
  for (std::size_t i = 0; i < a.size(); ++i) {
    d.max_abs = std::max(d.max_abs, std::fabs(double(a[i]) - double(b[i])));
    if (std::memcmp(&a[i], &b[i], sizeof(float)) == 0) ++d.bit_equal;
  }
  return d;
}

double max_diff(const std::vector<float>& a, const std::vector<double>& ref) {
  double m = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - ref[i]));
  return m;
}

std::optional<std::size_t> parse_count(std::string_view s) {
  std::size_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "ROWSxCOLS": rows a multiple of 8 (ggml repacks only then), cols of 32, at most 1 GiB of Q4_0.
std::optional<Shape> parse_shape(std::string_view s) {
  const std::size_t x = s.find('x');
  if (x == std::string_view::npos) return std::nullopt;
  const auto rows = parse_count(s.substr(0, x)), cols = parse_count(s.substr(x + 1));
  if (!rows || !cols || *rows == 0 || *cols == 0 || *rows % 8 || *cols % k_qk) return std::nullopt;
  if (*rows > k_max_weight_bytes || *cols / k_qk * k_q4_bytes > k_max_weight_bytes / *rows) return std::nullopt;
  return Shape{*rows, *cols};
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  std::vector<Shape> shapes;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--shape" && i + 1 < argc) {
      const auto s = parse_shape(argv[++i]);
      if (!s) {
        std::fprintf(stderr,
                     "gemv_vs_ggml: bad --shape '%s': want ROWSxCOLS, rows a multiple of 8, cols of 32, "
                     "at most 1 GiB of Q4_0\n",
                     argv[i]);
        return 2;
      }
      shapes.push_back(*s);
    } else if (a == "--reps" && i + 1 < argc) {
      const auto n = parse_count(argv[++i]);
      if (!n || *n == 0 || *n > std::size_t(k_max_reps)) {
        std::fprintf(stderr, "gemv_vs_ggml: --reps takes 1 to %d, got '%s'\n", k_max_reps, argv[i]);
        return 2;
      }
      reps = int(*n);
    } else {
      std::fprintf(stderr, "usage: %s [--shape ROWSxCOLS]... [--reps N]\n", argv[0]);
      return 2;
    }
  }
  if (shapes.empty()) {
    shapes = {
        {512, 768},     // 216 KiB of weights: fits L2 (256 KiB or more), compute-bound
        {3072, 768},    // 1.3 MiB: spills L2, fits L3
        {2048, 2048},   // 2.3 MiB: spills L2, fits L3
        {16384, 4096},  // 36 MiB: spills a 32 MiB L3, memory-bound
    };
  }

  ggml_log_set(ggml_log_warnings, nullptr);
  ggml_cpu_init();  // also ggml_init: ggml's fp16 tables, which its quantizers read
  ggml_backend_t backend = ggml_backend_cpu_init();
  ggml_backend_cpu_set_n_threads(backend, 1);

  const fb::DotPath path = fb::best_dot_path();
#if defined(__aarch64__)
  const fb::Layout layout = fb::Layout::q4_0_4x4;  // what ggml repacks into on a Cortex-A76
  const bool have = ggml_cpu_has_dotprod() && path == fb::DotPath::neon_dotprod;
  char features[64];
  std::snprintf(features, sizeof features, "ggml's dot product: %d", ggml_cpu_has_dotprod());
#else
  const fb::Layout layout = fb::Layout::q4_0_8x8;
  const bool have = ggml_cpu_has_avx2() && (path == fb::DotPath::avx2 || path == fb::DotPath::avx_vnni);
  char features[64];
  std::snprintf(features, sizeof features, "ggml's AVX2: %d, F16C: %d", ggml_cpu_has_avx2(), ggml_cpu_has_f16c());
#endif
  const fb::GemvFn ours = fb::gemv_fn(layout, path);
  if (!have || !ours) {
    std::fprintf(stderr, "gemv_vs_ggml: no %s kernel to compare on this CPU (%s; fleet's best path: %s, its %s kernel: %s)\n",
                 std::string(fb::layout_name(layout)).c_str(), features, std::string(fb::dot_path_name(path)).c_str(),
                 std::string(fb::layout_name(layout)).c_str(), ours ? "yes" : "none");
    return 2;
  }
  const std::size_t group_rows = std::size_t(fb::layout_rows(layout));
  const ggml_from_float_t q8_from_float = ggml_get_type_traits_cpu(GGML_TYPE_Q8_0)->from_float;
  std::printf("one thread; ours: fleet %s on %s; ggml: GGML_OP_MUL_MAT on its repack buffer\n",
              std::string(fb::layout_name(layout)).c_str(), std::string(fb::dot_path_name(path)).c_str());

  bool all_ok = true;
  std::mt19937_64 rng(12345);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);

  for (const Shape& s : shapes) {
    const std::size_t nb = s.cols / k_qk, groups = s.rows / group_rows;
    const std::size_t wbytes = s.rows * nb * k_q4_bytes;
    std::printf("\n== rows %zu x cols %zu: %.1f KiB of Q4_0 weights ==\n", s.rows, s.cols, double(wbytes) / 1024.0);

    // Q4_0 rows, quantized by ggml 256 rows at a time (no huge f32 matrix).
    AlignedBuf q4(wbytes);
    {
      std::vector<float> f(std::min<std::size_t>(s.rows, 256) * s.cols);
      for (std::size_t r0 = 0; r0 < s.rows; r0 += 256) {
        const std::size_t nr = std::min<std::size_t>(256, s.rows - r0);
        for (std::size_t i = 0; i < nr * s.cols; ++i) f[i] = uni(rng);
        ggml_quantize_chunk(GGML_TYPE_Q4_0, f.data(), q4.p + r0 * nb * k_q4_bytes, 0, std::int64_t(nr),
                            std::int64_t(s.cols), nullptr);
      }
    }
    std::vector<float> xf(s.cols);
    for (float& v : xf) v = uni(rng);
    AlignedBuf q8(nb * k_q8_bytes);
    q8_from_float(xf.data(), q8.p, std::int64_t(s.cols));
    const auto* x8 = reinterpret_cast<const fb::BlockQ8_0*>(q8.p);

    AlignedBuf packed_ours(wbytes);
    fb::repack(layout, reinterpret_cast<const fb::BlockQ4_0*>(q4.p), s.rows, nb, packed_ours.p);
    GgmlOp op(s, q4.p);
    const auto* packed_ggml = static_cast<const std::uint8_t*>(op.w->data);
    const bool same_repack = std::memcmp(packed_ours.p, packed_ggml, wbytes) == 0;
    std::printf("repacked bytes (%zu): fleet repack %s ggml library repack; ours reads %s\n", wbytes,
                same_repack ? "==" : "!=", same_repack ? "ggml's buffer" : "its own buffer");
    if (!same_repack) all_ok = false;
    const std::uint8_t* w_ours = same_repack ? packed_ggml : packed_ours.p;

    // Agreement: 3 calls of each; repeat calls must give the same bits.
    std::vector<float> out_ours(s.rows), out_ggml(s.rows), again(s.rows);
    bool stable = true;
    for (int c = 0; c < 3; ++c) {
      ours(w_ours, x8, nb, groups, c ? again.data() : out_ours.data());
      if (c && again != out_ours) stable = false;
    }
    ggml_backend_tensor_set(op.x, xf.data(), 0, s.cols * sizeof(float));
    for (int c = 0; c < 3; ++c) {
      ggml_backend_graph_compute(backend, op.graph);
      ggml_backend_tensor_get(op.y, c ? again.data() : out_ggml.data(), 0, s.rows * sizeof(float));
      if (c && again != out_ggml) stable = false;
    }
    const std::vector<double> ref = reference(q4.p, q8.p, s);
    double scale = 0;
    for (double v : ref) scale = std::max(scale, std::fabs(v));
    auto line = [&](const char* what, double diff, const Diff* bits) {
      const bool ok = diff <= k_tolerance * scale;
      if (!ok) all_ok = false;
      std::printf("  %-22s max |diff| %.3g (%.3g of max |y| %.4g)", what, diff, scale > 0 ? diff / scale : diff, scale);
      if (bits) std::printf(", bit-identical %zu/%zu", bits->bit_equal, s.rows);
      std::printf("  %s\n", ok ? "OK" : "MISMATCH");
    };
    std::printf("agreement (3 calls each, repeat calls %s):\n", stable ? "identical" : "DIFFER");
    if (!stable) all_ok = false;
    const Diff d = compare(out_ours, out_ggml);
    line("ours vs ggml", d.max_abs, &d);
    line("ours vs exact (double)", max_diff(out_ours, ref), nullptr);
    line("ggml vs exact (double)", max_diff(out_ggml, ref), nullptr);

    // Timing: ours and ggml alternate within each repetition (who goes first too); median over reps.
    const long iters = std::min<long>(2000, std::max<long>(20, long((std::size_t(512) << 20) / wbytes)));
    AlignedBuf q8_scratch(nb * k_q8_bytes);
    auto run_ours = [&] { ours(w_ours, x8, nb, groups, out_ours.data()); };
    auto run_ggml = [&] { ggml_backend_graph_compute(backend, op.graph); };
    auto run_quant = [&] { q8_from_float(xf.data(), q8_scratch.p, std::int64_t(s.cols)); };
    auto timed = [&](auto& f) {
      f();  // warm
      const auto t0 = std::chrono::steady_clock::now();
      for (long i = 0; i < iters; ++i) f();
      return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(iters);
    };
    std::vector<double> t_ours, t_ggml, t_quant;
    for (int r = 0; r < reps; ++r) {
      if (r % 2 == 0) {
        t_ours.push_back(timed(run_ours));
        t_ggml.push_back(timed(run_ggml));
      } else {
        t_ggml.push_back(timed(run_ggml));
        t_ours.push_back(timed(run_ours));
      }
      t_quant.push_back(timed(run_quant));
    }
    auto row = [&](const char* name, const std::vector<double>& t, bool weights) {
      std::printf("  %-16s %12.0f ns/call", name, median(t));
      if (weights) std::printf("  %7.2f GB/s", double(wbytes) / median(t));  // bytes per ns
      std::printf("  (min %.0f, max %.0f)\n", *std::min_element(t.begin(), t.end()),
                  *std::max_element(t.begin(), t.end()));
    };
    std::printf("timing: %ld calls x %d reps, median (GB/s of Q4_0 weights):\n", iters, reps);
    row("ours", t_ours, true);
    row("ggml (op)", t_ggml, true);
    row("ggml x -> Q8_0", t_quant, false);
    std::printf("  ratio ours/ggml = %.3f (<1: ours faster; ggml's time includes x -> Q8_0 and the graph)\n",
                median(t_ours) / median(t_ggml));
  }

  ggml_backend_free(backend);
  std::printf("\n%s\n", all_ok ? "ALL AGREE" : "DISAGREEMENT (see above)");
  return all_ok ? 0 : 1;
}
