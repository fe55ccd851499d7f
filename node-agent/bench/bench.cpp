#include "node-agent/bench/bench.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>

#include "common/process.hpp"
#include "node-agent/bench/repack.hpp"

namespace fleet::agent::bench {

ModelShape auto_shape(const Topology& topo) {
  const auto& shapes = known_shapes();  // largest first
  for (const auto& s : shapes) {
    if (topo.mem_available_bytes == 0 || q4_0_bytes(s.weights()) <= topo.mem_available_bytes / 2) return s;
  }
  return shapes.back();
}

namespace {

std::optional<ModelFile> model_file(const std::filesystem::path& p, const GgufHeader& h) {
  ModelFile m;
  m.path = p;
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) m.bytes = std::uint64_t(st.st_size);
  std::map<std::uint32_t, std::uint64_t> elems;
  for (const auto& t : h.tensors) {
    std::uint64_t n = 1;
    for (auto d : t.dims) n *= d;
    elems[t.type] += n;
  }
  std::uint32_t best = 0;
  std::uint64_t most = 0;
  for (auto [type, n] : elems) {
    if (n > most) {
      most = n;
      best = type;
    }
  }
  m.weights_type = most ? std::string(ggml_type_name(best)) : "";
  return m;
}

std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace

Result<BenchReport> run_bench(const BenchOptions& o, const Progress& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  BenchReport r;
  r.topo = observe_topology("/");
  if (o.threads > int(r.topo.cpus.size()) * 4) {
    return fail(Errc::invalid_input, "--threads " + std::to_string(o.threads) + " is far more than the " +
                                         std::to_string(r.topo.cpus.size()) + " CPUs here");
  }
  ModelShape shape;
  if (o.model) {
    auto h = FLEET_TRY(read_gguf(*o.model));
    shape = FLEET_TRY(shape_of(h, o.model->string()));
    r.model = model_file(*o.model, h);
  } else if (o.shape && *o.shape != "auto") {
    auto s = shape_named(*o.shape);
    if (!s) return fail(Errc::invalid_input, "unknown model shape '" + *o.shape + "' (7b, 3b, 1b, 110m, 15m or auto)");
    shape = *s;
  } else {
    shape = auto_shape(r.topo);
  }
  r.health = observe_health("/");
  if (o.bandwidth) {
    auto bw = o.bw;
    if (o.threads > 0 && bw.thread_counts.empty()) bw.thread_counts = {1, o.threads};
    say("memory bandwidth: read, copy, triad; 1 and all threads; with and without MADV_HUGEPAGE");
    r.bandwidth = FLEET_TRY(measure_bandwidth(r.topo, bw));
  }
  if (o.probe) {
    auto po = o.probe_options;
    po.shape = shape;
    po.threads = o.threads;
    say("token-generation probe: " + shape.name + " shape (" + shape.source + "), " +
        std::to_string(q4_0_bytes(shape.weights()) >> 20) + " MiB of Q4_0 weights per token");
    r.probe = FLEET_TRY(run_probe(r.topo, po));
  }
  if (o.model && !o.llama_bench.empty()) {
    if (auto bin = find_program(o.llama_bench)) {
      auto lo = o.llama;
      lo.binary = *bin;
      lo.model = *o.model;
      if (o.threads > 0) lo.threads = o.threads;
      say("llama-bench: " + process::render(llama_bench_argv(lo)));
      auto lb = run_llama_bench(lo);
      if (lb) {
        r.llama = *lb;
      } else {
        r.llama_note = lb.error().message;
      }
    } else {
      r.llama_note = "no " + o.llama_bench + " on this board";
    }
  }
  r.health = worst(r.health, observe_health("/"));  // under load: hotter, and sags show now
  return r;
}

nlohmann::json bench_json(const BenchReport& r) {
  nlohmann::json j;
  j["machine"] = {{"cpus", r.topo.cpus.size()},
                  {"numa_nodes", r.topo.node_cpus.size()},
                  {"llc_bytes", r.topo.llc_bytes},
                  {"mem_available_bytes", r.topo.mem_available_bytes},
                  {"thp", r.topo.thp_mode},
                  {"pmd_bytes", r.topo.pmd_bytes}};
  j["health"] = nlohmann::json::object();
  add_health(j["health"], r.health);
  if (auto w = health_warning(j["health"]); !w.empty()) j["health"]["warning"] = w;
  if (r.bandwidth) {
    auto& b = j["bandwidth"];
    b["array_bytes"] = r.bandwidth->array_bytes;
    if (!r.bandwidth->note.empty()) b["note"] = r.bandwidth->note;
    b["results"] = nlohmann::json::array();
    for (const auto& x : r.bandwidth->results) {
      b["results"].push_back({{"kernel", kernel_name(x.kernel)},
                              {"threads", x.threads},
                              {"hugepage", x.huge == Huge::on},
                              {"gbps", x.gbps},
                              {"huge_fraction", x.huge_fraction}});
    }
  }
  if (r.probe) {
    const auto& p = *r.probe;
    j["probe"] = {{"what", "synthetic weights, real arithmetic, real memory traffic"},
                  {"shape", {{"name", p.shape.name},
                             {"source", p.shape.source},
                             {"dim", p.shape.dim},
                             {"layers", p.shape.layers},
                             {"ffn", p.shape.ffn},
                             {"heads", p.shape.heads},
                             {"kv_heads", p.shape.kv_heads},
                             {"vocab", p.shape.vocab}}},
                  {"threads", p.threads},
                  {"dot_path", p.dot_path},
                  {"layout", p.layout},
                  {"layout_mixed", p.layout_mixed},
                  {"kv_cache", p.kv_cache},
                  {"sync", sync_name(p.sync)},
                  {"context", p.context},
                  {"kv_mean", p.kv_mean},
                  {"kv_mean_pass", p.kv_mean_pass},
                  {"numa_nodes", p.numa_nodes},
                  {"layers_resident", p.layers_resident},
                  {"bytes_per_token", p.bytes_per_token},
                  {"resident_bytes", p.resident_bytes},
                  {"hugepage_advice", huge_name(p.huge)},
                  {"huge_fraction", p.huge_fraction},
                  {"tokens", p.tokens},
                  {"seconds_timed", p.seconds_timed},
                  {"spread", p.spread},
                  {"cut_short", p.cut_short},
                  {"seconds_per_token", p.seconds_per_token},
                  {"best_seconds_per_token", p.best_seconds_per_token},
                  {"tokens_per_s", p.tokens_per_s},
                  {"effective_gbps", p.effective_gbps},
                  {"last_token", p.last_token}};
    if (!p.note.empty()) j["probe"]["note"] = p.note;
  }
  if (r.model) j["model"] = {{"path", r.model->path.string()}, {"bytes", r.model->bytes}, {"weights_type", r.model->weights_type}};
  if (r.llama) {
    auto test = [](const std::optional<LlamaBenchTest>& t) -> nlohmann::json {
      if (!t) return nullptr;
      return {{"n_prompt", t->n_prompt}, {"n_gen", t->n_gen},     {"n_threads", t->n_threads},
              {"avg_ts", t->avg_ts},     {"stddev_ts", t->stddev_ts}, {"samples_ts", t->samples_ts},
              {"build_commit", t->build_commit}};
    };
    j["llama_bench"] = {{"prompt", test(r.llama->prompt)}, {"generation", test(r.llama->generation)}};
    if (!r.llama->skipped.empty()) j["llama_bench"]["skipped"] = r.llama->skipped;
  }
  if (!r.llama_note.empty()) j["llama_bench_note"] = r.llama_note;
  return j;
}

std::string bench_table(const BenchReport& r) {
  std::ostringstream o;
  o << "machine: " << r.topo.cpus.size() << " CPUs, " << r.topo.node_cpus.size() << " NUMA node(s), last-level cache "
    << (r.topo.llc_bytes >> 10) << " KiB, " << (r.topo.mem_available_bytes >> 20) << " MiB available, THP "
    << (r.topo.thp_mode.empty() ? "not built" : r.topo.thp_mode) << ", PMD huge page " << (r.topo.pmd_bytes >> 10)
    << " KiB\n";
  {
    nlohmann::json h = nlohmann::json::object();
    add_health(h, r.health);
    std::string line;
    auto add = [&](const std::string& x) { line += (line.empty() ? "" : ", ") + x; };
    if (h.contains("temperature_c")) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "SoC %.1f C", h["temperature_c"].get<double>());
      add(buf);
    }
    if (h.contains("undervoltage")) add(h["undervoltage"].get<bool>() ? "UNDER-VOLTAGE" : "no under-voltage");
    if (h.contains("cpu_mhz")) {
      add("CPU " + std::to_string(h["cpu_mhz"].get<int>()) +
          (h.contains("cpu_max_mhz") ? " of " + std::to_string(h["cpu_max_mhz"].get<int>()) : std::string()) + " MHz");
    }
    o << "board: " << (line.empty() ? "no temperature, voltage or clock sensors" : line) << "\n";
    if (auto w = health_warning(h); !w.empty()) o << "warning: " << w << "\n";
  }
  if (r.bandwidth) {
    o << "\nmemory bandwidth (GB/s, best of repetitions, " << (r.bandwidth->array_bytes >> 20) << " MiB arrays)\n";
    if (!r.bandwidth->note.empty()) o << "  note: " << r.bandwidth->note << "\n";
    o << "  kernel  threads  hugepage  GB/s     THP-backed\n";
    for (const auto& x : r.bandwidth->results) {
      o << "  " << std::left << std::setw(8) << kernel_name(x.kernel) << std::setw(9) << x.threads << std::setw(10)
        << (x.huge == Huge::on ? "madvise" : "off") << std::setw(9) << fixed(x.gbps, 2)
        << fixed(100 * x.huge_fraction, 0) << "%\n";
    }
  }
  if (r.probe) {
    const auto& p = *r.probe;
    o << "\ntoken-generation probe (synthetic weights, real arithmetic, real memory traffic)\n"
      << "  shape        " << p.shape.name << " (" << p.shape.source << "): dim " << p.shape.dim << ", " << p.shape.layers
      << " layers, ffn " << p.shape.ffn << ", vocab " << p.shape.vocab << "\n"
      << "  weights      Q4_0 x Q8_0, " << (p.bytes_per_token >> 20) << " MiB read per token, "
      << (p.resident_bytes >> 20) << " MiB held (" << p.layers_resident << "/" << p.shape.layers << " layers), "
      << fixed(100 * p.huge_fraction, 0) << "% THP-backed ("
      << (p.huge == Huge::unadvised ? "no advice, as llama.cpp's: the kernel's THP mode decides"
                                    : p.huge == Huge::on ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE")
      << ")\n"
      << "  threads      " << p.threads << " on " << p.numa_nodes << " NUMA node(s), " << p.dot_path << " dot product, meeting "
      << (p.sync == Sync::gomp ? "at libgomp's barrier (as llama.cpp's default build)" : "at a spinning barrier (as ggml without OpenMP)")
      << "\n"
      << "  layout       " << p.layout << (p.layout_mixed ? " (plain rows where the rows do not divide, as ggml)" : "")
      << ", attention over an " << p.kv_cache << " KV cache at positions 0-" << p.context - 1
      << " spread (cached positions read: " << fixed(p.kv_mean, 1) << " mean, a whole pass " << fixed(p.kv_mean_pass, 1) << ")\n"
      << "  per token    " << fixed(p.seconds_per_token * 1000, 2) << " ms median, " << fixed(p.best_seconds_per_token * 1000, 2)
      << " ms best, spread " << fixed(100 * p.spread, 1) << "% (interquartile / median), " << p.tokens << " tokens timed over "
      << fixed(p.seconds_timed, 2) << " s\n"
      << "  throughput   " << fixed(p.tokens_per_s, 2) << " tokens/s, " << fixed(p.effective_gbps, 2) << " GB/s effective\n";
    if (r.bandwidth) {
      // Over the read with huge pages, what the memory gives at best (the efficiency goal's
      // denominator), and over the read without, what weights without huge pages (the
      // probe's and llama.cpp's, under THP madvise) could get.
      const double read = r.bandwidth->gbps(Kernel::read, p.threads, Huge::on);
      const double plain = r.bandwidth->gbps(Kernel::read, p.threads, Huge::off);
      if (read > 0) {
        o << "  of read bw   " << fixed(p.effective_gbps / read, 2) << " of " << fixed(read, 2) << " GB/s (read with huge pages)";
        if (plain > 0) o << ", " << fixed(p.effective_gbps / plain, 2) << " of " << fixed(plain, 2) << " GB/s (without)";
        o << "\n";
      }
    }
    if (!p.note.empty()) o << "  note         " << p.note << "\n";
  }
  if (r.model) {
    o << "\nmodel file: " << r.model->path.string() << ", " << (r.model->bytes >> 20) << " MiB, mostly "
      << r.model->weights_type << "\n";
  }
  if (r.llama) {
    o << "\nllama-bench\n";
    for (const auto* t : {&r.llama->prompt, &r.llama->generation}) {
      if (!*t) continue;
      const auto& x = **t;
      o << "  " << (x.n_gen == 0 ? "pp" + std::to_string(x.n_prompt) : "tg" + std::to_string(x.n_gen)) << "  "
        << fixed(x.avg_ts, 2) << " +- " << fixed(x.stddev_ts, 2) << " tokens/s (" << x.n_threads << " threads)\n";
    }
  }
  if (!r.llama_note.empty()) o << "\nllama-bench: " << r.llama_note << "\n";
  return o.str();
}

namespace {
// The larger error; a NaN is the worst (std::max would keep the other and pass it).
double worse(double worst, double err) { return std::isnan(err) || err > worst ? err : worst; }
}  // namespace

Result<std::string> self_test_dot(int blocks, int trials) {
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> a(std::size_t(blocks) * k_block), b(a.size());
  std::vector<BlockQ4_0> qa(static_cast<std::size_t>(blocks));
  std::vector<BlockQ8_0> qb(static_cast<std::size_t>(blocks));
  std::ostringstream out;
  bool ok = true;
  constexpr DotPath paths[] = {DotPath::portable, DotPath::avx2, DotPath::avx_vnni, DotPath::neon_dotprod};
  for (DotPath p : paths) {
    auto fn = dot_fn(p);
    if (!fn) {
      out << dot_path_name(p) << ": not available on this CPU\n";
      continue;
    }
    double worst = 0;
    for (int t = 0; t < trials; ++t) {
      for (auto& v : a) v = normal(rng) * float(1 + t % 7);
      for (auto& v : b) v = normal(rng);
      quantize_q4_0(a, qa);
      quantize_q8_0(b, qb);
      // Odd block counts too: the paths that do two blocks per round have a tail.
      const std::size_t n = std::size_t(blocks) - std::size_t(t % 3);
      const double ref = dot_q4_0_q8_0_reference(qa.data(), qb.data(), n);
      const double got = fn(qa.data(), qb.data(), n);
      double scale = 0;  // the sum of |terms| bounds the float rounding of any order of summation
      for (std::size_t i = 0; i < n; ++i) scale += std::fabs(fp16_to_fp32(qa[i].d) * fp16_to_fp32(qb[i].d)) * 8 * 127 * 32;
      worst = worse(worst, std::fabs(got - ref) / scale);
    }
    const bool pass = worst < 1e-6;
    ok = ok && pass;
    out << dot_path_name(p) << ": " << (pass ? "ok" : "MISMATCH") << ", worst relative error " << worst << " over "
        << trials << " trials of " << blocks << " blocks\n";
  }
  // The repacked layouts: a matrix of random rows, repacked, times a random vector, against
  // the plain rows' reference dot product row by row. Each row has its own scales, the
  // column count is odd in blocks and the row count a few groups.
  for (Layout l : {Layout::q4_0_4x4, Layout::q4_0_4x8, Layout::q4_0_8x8}) {
    const std::size_t n = std::size_t(layout_rows(l)), rows = 3 * n, cols_blocks = 37;
    std::vector<float> wf(rows * cols_blocks * k_block), xf(cols_blocks * k_block);
    std::vector<BlockQ4_0> w(rows * cols_blocks);
    std::vector<BlockQ8_0> x(cols_blocks);
    std::vector<std::uint8_t> packed(w.size() * sizeof(BlockQ4_0));
    std::vector<float> got(rows), ref_out(rows);
    for (DotPath p : paths) {
      auto fn = gemv_fn(l, p);
      if (!fn) {
        if (dot_path_available(p) && p != DotPath::portable) {
          out << layout_name(l) << " " << dot_path_name(p) << ": no such kernel (ggml has none either)\n";
        }
        continue;
      }
      double worst = 0;
      for (int t = 0; t < trials; ++t) {
        for (std::size_t i = 0; i < wf.size(); ++i) wf[i] = normal(rng) * float(1 + (i / (cols_blocks * k_block)) % 5);
        for (auto& v : xf) v = normal(rng);
        quantize_q4_0(wf, w);
        quantize_q8_0(xf, x);
        repack(l, w.data(), rows, cols_blocks, packed.data());
        fn(packed.data(), x.data(), cols_blocks, rows / n, got.data());
        gemv_reference(l, packed.data(), x.data(), cols_blocks, rows / n, ref_out.data());
        for (std::size_t r = 0; r < rows; ++r) {
          const BlockQ4_0* row = w.data() + r * cols_blocks;
          const double ref = dot_q4_0_q8_0_reference(row, x.data(), cols_blocks);
          double scale = 0;
          for (std::size_t i = 0; i < cols_blocks; ++i) {
            scale += std::fabs(fp16_to_fp32(row[i].d) * fp16_to_fp32(x[i].d)) * 8 * 127 * 32;
          }
          worst = worse(worse(worst, std::fabs(got[r] - ref) / scale), std::fabs(ref_out[r] - ref) / scale);
        }
      }
      const bool pass = worst < 1e-6;
      ok = ok && pass;
      out << layout_name(l) << " " << dot_path_name(p) << ": " << (pass ? "ok" : "MISMATCH") << ", worst relative error "
          << worst << " over " << trials << " trials of " << rows << " x " << cols_blocks * k_block << "\n";
    }
  }
  // The F16 kernels of the attention, this CPU's and the portable ones: the conversion bit
  // for bit against fp32_to_fp16 (the edges of the range and of rounding, then random values:
  // normal, F16 subnormals, halfway cases, any finite float), the dot product against the
  // reference in double, at lengths with and without a tail.
  const float edges[] = {65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e30f, INFINITY, -INFINITY, 0.0f, -0.0f,
                         0x1p-24f, 0x1p-25f, 3 * 0x1p-25f, 0x1p-14f - 0x1p-25f, 0x1p-14f - 0x1p-26f,
                         1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 1e-10f};
  for (const F16Kernels& k : {f16_kernels(), f16_portable_kernels()}) {
    std::size_t wrong = 0, converted = 0;
    double worst = 0;
    std::uniform_int_distribution<std::uint32_t> bits(0, 0xffffffffu);
    F16 edge_out[std::size(edges)];
    k.to_f16(edges, edge_out, std::size(edges));
    for (std::size_t i = 0; i < std::size(edges); ++i) wrong += edge_out[i] != fp32_to_fp16(edges[i]);
    converted += std::size(edges);
    for (int t = 0; t < trials; ++t) {
      const std::size_t n = std::size_t(blocks) - std::size_t(t % 19);
      std::vector<float> fx(n), fy(n);
      for (std::size_t i = 0; i < n; ++i) {
        switch (i % 4) {
          case 0: fx[i] = normal(rng); break;
          case 1: fx[i] = normal(rng) * 1e-6f; break;                                  // F16 subnormals
          case 2: fx[i] = 1.0f + float(2 * (bits(rng) & 0x1ff) + 1) * 0x1p-11f; break;  // halfway between two halves
          default: {  // any float but NaN: infinities and overflow included
            const float f = std::bit_cast<float>(bits(rng));
            fx[i] = std::isnan(f) ? 1.0f : f;
          }
        }
        fy[i] = normal(rng);
      }
      std::vector<F16> hx(n), hy(n);
      k.to_f16(fx.data(), hx.data(), n);
      for (std::size_t i = 0; i < n; ++i) wrong += hx[i] != fp32_to_fp16(fx[i]);
      converted += n;
      for (std::size_t i = 0; i < n; ++i) hx[i] = fp32_to_fp16(normal(rng));  // finite values for the dot product
      k.to_f16(fy.data(), hy.data(), n);
      const double ref = dot_f16_reference(hx.data(), hy.data(), n);
      double scale = 0;
      for (std::size_t i = 0; i < n; ++i) scale += std::fabs(double(fp16_to_fp32(hx[i])) * fp16_to_fp32(hy[i]));
      worst = worse(worst, std::fabs(k.dot(hx.data(), hy.data(), n) - ref) / scale);
    }
    const bool pass = wrong == 0 && worst < 1e-6;
    ok = ok && pass;
    out << "f16 " << k.name << ": " << (pass ? "ok" : "MISMATCH") << ", " << wrong << " of " << converted
        << " conversions differ, worst relative error " << worst << " over " << trials
        << " trials of " << blocks << " elements\n";
  }
  // fp32_to_fp16 and fp16_to_fp32 themselves, which the x86 conversion, the portable kernels
  // and the reference run, against the CPU's own instructions: every half widened, the edges
  // and random floats of every kind narrowed (a NaN must stay a NaN).
  if (const F16Hardware hw = f16_hardware(); hw.to_f16 != nullptr) {
    std::size_t wrong_wide = 0, wrong_narrow = 0, narrowed = 0;
    std::vector<F16> halves(1u << 16);
    for (std::size_t i = 0; i < halves.size(); ++i) halves[i] = static_cast<F16>(i);
    std::vector<float> wide(halves.size());
    hw.to_f32(halves.data(), wide.data(), halves.size());
    for (std::size_t i = 0; i < halves.size(); ++i) {
      const float mine = fp16_to_fp32(halves[i]);
      wrong_wide += std::isnan(mine) ? !std::isnan(wide[i]) : std::bit_cast<std::uint32_t>(mine) != std::bit_cast<std::uint32_t>(wide[i]);
    }
    std::uniform_int_distribution<std::uint32_t> bits(0, 0xffffffffu);
    std::vector<float> fx(std::begin(edges), std::end(edges));
    for (int i = 0; i < 64 * trials; ++i) fx.push_back(std::bit_cast<float>(bits(rng)));
    for (int i = 0; i < 64 * trials; ++i) fx.push_back(normal(rng) * (i % 2 ? 1e-5f : 1.0f));
    std::vector<F16> hx(fx.size());
    hw.to_f16(fx.data(), hx.data(), fx.size());
    for (std::size_t i = 0; i < fx.size(); ++i) {
      const F16 mine = fp32_to_fp16(fx[i]);
      const bool nan = (mine & 0x7fff) > 0x7c00;
      wrong_narrow += nan ? (hx[i] & 0x7fff) <= 0x7c00 : hx[i] != mine;
    }
    narrowed = fx.size();
    const bool same = wrong_wide == 0 && wrong_narrow == 0;
    ok = ok && same;
    out << "f16 conversions against " << hw.name << "'s instructions: " << (same ? "ok" : "MISMATCH") << ", " << wrong_wide
        << " of " << halves.size() << " widenings and " << wrong_narrow << " of " << narrowed << " narrowings differ\n";
  } else {
    out << "f16 conversions against the CPU's instructions: not checked, this CPU has none\n";
  }
  if (!ok) return fail(Errc::mismatch, out.str());
  return out.str();
}

}  // namespace fleet::agent::bench
