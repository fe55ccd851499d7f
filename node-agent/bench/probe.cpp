#include "node-agent/bench/probe.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "node-agent/bench/phase_barrier.hpp"

namespace fleet::agent::bench {

std::uint64_t probe_min_bytes(const ModelShape& s) { return q4_0_bytes(s.layer_weights() + s.output_weights()); }

namespace {

struct Matrix {
  std::uint8_t* w = nullptr;
  int rows = 0;
  int cols = 0;  // weights per row
  Layout layout = Layout::rows;
  std::size_t row_blocks() const { return std::size_t(cols) / k_block; }
};

struct Layer {
  Matrix wq, wk, wv, wo, w1, w3, w2;
};

// One matrix-vector product of a phase: out = W . in (in quantized to Q8_0).
struct MatVec {
  const Matrix* m;
  const std::vector<BlockQ8_0>* in;
  std::vector<float>* out;
};

std::uint64_t xorshift(std::uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void rmsnorm(std::vector<float>& out, const std::vector<float>& x) {
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const float scale = float(1.0 / std::sqrt(ss / double(x.size()) + 1e-5));
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] * scale;
}

void quantize(std::vector<BlockQ8_0>& q, const std::vector<float>& x) { quantize_q8_0(x, q); }

// The decoding state and its serial steps (run by the barrier's completion, between the
// parallel matrix-vector phases).
class Decoder {
 public:
  Decoder(const ModelShape& s, std::vector<Layer>& layers, Matrix& output, const ProbeOptions& options)
      : s_(s), layers_(layers), output_(output), options_(options) {
    const std::size_t d = std::size_t(s.dim), kv = std::size_t(s.kv_dim()), f = std::size_t(s.ffn);
    x_.assign(d, 0);
    xn_.assign(d, 0);
    q_.assign(d, 0);
    k_.assign(kv, 0);
    v_.assign(kv, 0);
    att_.assign(d, 0);
    o_.assign(d, 0);
    h1_.assign(f, 0);
    h3_.assign(f, 0);
    logits_.assign(std::size_t(s.vocab), 0);
    xq_.resize(d / k_block);
    aq_.resize(d / k_block);
    gq_.resize(f / k_block);
    embed(1);
    // Phases per layer: qkv, wo, w1+w3, w2; then the output head.
    for (int l = 0; l < s.layers; ++l) {
      Layer& L = layers_[std::size_t(l) % layers_.size()];
      phases_.push_back({{&L.wq, &xq_, &q_}, {&L.wk, &xq_, &k_}, {&L.wv, &xq_, &v_}});
      phases_.push_back({{&L.wo, &aq_, &o_}});
      phases_.push_back({{&L.w1, &xq_, &h1_}, {&L.w3, &xq_, &h3_}});
      phases_.push_back({{&L.w2, &gq_, &o_}});
    }
    phases_.push_back({{&output_, &xq_, &logits_}});
  }

  const std::vector<std::vector<MatVec>>& phases() const { return phases_; }
  bool done() const { return done_.load(std::memory_order_acquire); }

  // Called once after every phase, by one thread, while the others wait.
  void after_phase() noexcept {
    const std::size_t p = phase_ % phases_.size();
    const std::size_t kind = p == phases_.size() - 1 ? 4 : p % 4;
    switch (kind) {
      case 0: {  // attention at the first position: softmax of one score is 1, output = v
        const int group = s_.heads / s_.kv_heads, hd = s_.dim / s_.heads;
        for (int h = 0; h < s_.heads; ++h) {
          const float* vh = v_.data() + std::size_t(h / group) * std::size_t(hd);
          std::copy(vh, vh + hd, att_.begin() + std::ptrdiff_t(h) * hd);
        }
        quantize(aq_, att_);
        break;
      }
      case 1:
      case 3:  // residual, then the next norm
        for (std::size_t i = 0; i < x_.size(); ++i) x_[i] += o_[i];
        rmsnorm(xn_, x_);
        quantize(xq_, xn_);
        break;
      case 2: {  // SwiGLU
        std::vector<float>& g = h1_;
        for (std::size_t i = 0; i < g.size(); ++i) g[i] = h1_[i] / (1.0f + std::exp(-h1_[i])) * h3_[i];
        quantize(gq_, g);
        break;
      }
      case 4: {  // the output head: greedy next token
        last_token_ = std::uint32_t(std::max_element(logits_.begin(), logits_.end()) - logits_.begin());
        embed(last_token_);
        auto now = std::chrono::steady_clock::now();
        if (tokens_done_ > 0) times_.push_back(std::chrono::duration<double>(now - last_end_).count());
        last_end_ = now;
        ++tokens_done_;
        if (!times_.empty()) timed_ += times_.back();
        const Timing t = timing(int(times_.size()), timed_, options_);
        if (t != Timing::go_on) {
          cut_short_ = t == Timing::cut_short;
          done_.store(true, std::memory_order_release);
        }
        break;
      }
    }
    ++phase_;
  }

  void start() { last_end_ = std::chrono::steady_clock::now(); }
  std::vector<double> times() const { return times_; }
  std::uint32_t last_token() const { return last_token_; }
  bool cut_short() const { return cut_short_; }

 private:
  void embed(std::uint32_t token) {  // a deterministic stand-in for the embedding row
    for (std::size_t i = 0; i < x_.size(); ++i) x_[i] = std::sin(float(token + 1) * float(i + 1) * 0.001f);
    rmsnorm(xn_, x_);
    quantize(xq_, xn_);
  }

  const ModelShape& s_;
  std::vector<Layer>& layers_;
  Matrix& output_;
  const ProbeOptions& options_;
  double timed_ = 0;
  bool cut_short_ = false;
  std::vector<float> x_, xn_, q_, k_, v_, att_, o_, h1_, h3_, logits_;
  std::vector<BlockQ8_0> xq_, aq_, gq_;
  std::vector<std::vector<MatVec>> phases_;
  std::size_t phase_ = 0;
  std::atomic<bool> done_{false};
  std::chrono::steady_clock::time_point last_end_;
  std::vector<double> times_;
  int tokens_done_ = 0;
  std::uint32_t last_token_ = 0;
};

struct AfterPhase {
  Decoder* d;
  void operator()() noexcept { d->after_phase(); }
};

}  // namespace

TokenTimes summarize(std::vector<double> times) {
  TokenTimes t;
  t.count = int(times.size());
  if (times.empty()) return t;
  std::sort(times.begin(), times.end());
  for (double x : times) t.total += x;
  const std::size_t n = times.size();
  // The median of an even count is the mean of the middle two.
  t.median = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  t.best = times.front();
  // Quartiles interpolated between ranks (as numpy's default): robust to the odd token a
  // scheduler delayed. Fewer than k_min_spread_tokens give no spread (0: unknown).
  auto quantile = [&](double q) {
    const double pos = q * double(n - 1);
    const std::size_t lo = std::size_t(pos);
    const std::size_t hi = std::min(lo + 1, n - 1);
    return times[lo] + (pos - double(lo)) * (times[hi] - times[lo]);
  };
  if (n >= std::size_t(k_min_spread_tokens) && t.median > 0) t.spread = (quantile(0.75) - quantile(0.25)) / t.median;
  return t;
}

Timing timing(int timed_tokens, double timed_seconds, const ProbeOptions& o) {
  const double ms = timed_seconds * 1000;
  if (timed_tokens >= std::max(1, o.min_tokens) && ms >= double(o.min_time.count())) return Timing::done;
  if (ms >= double(o.max_time.count())) return Timing::cut_short;
  return Timing::go_on;
}

Result<ProbeResult> run_probe(const Topology& topo, const ProbeOptions& opt) {
  FLEET_TRY(check_shape(opt.shape));
  const ModelShape& s = opt.shape;
  auto dot = dot_fn(opt.path);
  if (!dot) return fail(Errc::unsupported, "this CPU cannot run the " + std::string(dot_path_name(opt.path)) + " path");
  GemvFn gemv = nullptr;
  if (opt.layout != Layout::rows) {
    gemv = gemv_fn(opt.layout, opt.path);
    if (!gemv) {
      return fail(Errc::unsupported, "the " + std::string(layout_name(opt.layout)) + " layout has no " +
                                         std::string(dot_path_name(opt.path)) + " kernel here");
    }
  }
  const int threads = opt.threads > 0 ? opt.threads : int(topo.cpus.size());
  const std::uint64_t layer_bytes = q4_0_bytes(s.layer_weights());
  const std::uint64_t output_bytes = q4_0_bytes(s.output_weights());
  const std::uint64_t model_bytes = layer_bytes * std::uint64_t(s.layers) + output_bytes;
  std::uint64_t budget = opt.memory_budget;
  if (budget == 0) {
    budget = model_bytes;
    if (topo.mem_available_bytes) budget = std::min(budget, topo.mem_available_bytes / 2);
  }
  if (budget < layer_bytes + output_bytes) {
    return fail(Errc::unsupported,
                "the " + s.name + " shape needs at least " + std::to_string((layer_bytes + output_bytes) >> 20) +
                    " MiB (one layer and the output head) and " + std::to_string(budget >> 20) +
                    " MiB may be used here; pick a smaller --model-shape");
  }
  const int resident = int(std::min<std::uint64_t>(std::uint64_t(s.layers), (budget - output_bytes) / layer_bytes));

  ProbeResult r;
  r.shape = s;
  r.threads = threads;
  r.dot_path = std::string(dot_path_name(opt.path));
  r.layout = std::string(layout_name(opt.layout));
  r.numa_nodes = int(topo.node_cpus.size());
  r.layers_resident = resident;
  r.bytes_per_token = model_bytes;
  r.resident_bytes = layer_bytes * std::uint64_t(resident) + output_bytes;

  auto region = FLEET_TRY(Region::map(r.resident_bytes, topo.pmd_bytes, opt.huge));
  std::vector<Layer> layers(static_cast<std::size_t>(resident));
  Matrix output;
  {
    auto* next = reinterpret_cast<std::uint8_t*>(region.data());
    bool all_fit = true;
    auto take = [&](Matrix& m, int rows, int cols) {
      const Layout l = layout_fits(opt.layout, std::size_t(rows), std::size_t(cols)) ? opt.layout : Layout::rows;
      all_fit = all_fit && l == opt.layout;
      m = {next, rows, cols, l};
      next += std::size_t(rows) * m.row_blocks() * sizeof(BlockQ4_0);
    };
    for (auto& L : layers) {
      take(L.wq, s.dim, s.dim);
      take(L.wk, s.kv_dim(), s.dim);
      take(L.wv, s.kv_dim(), s.dim);
      take(L.wo, s.dim, s.dim);
      take(L.w1, s.ffn, s.dim);
      take(L.w3, s.ffn, s.dim);
      take(L.w2, s.dim, s.ffn);
    }
    take(output, s.vocab, s.dim);
    if (!all_fit) r.layout += " (plain rows where the rows do not divide, as ggml)";
  }
  Decoder decoder(s, layers, output, opt);

  const auto cpus = spread_over_nodes(topo.node_cpus, topo.cpus);
  Team team(threads, cpus);
  // Each thread writes the rows it will read (first touch places them on its node).
  team.run([&](int t) {
    // A thread writes the rows it will read. Each row's nibbles come from its own seed (the
    // matrix and the row), written as plain rows and repacked group by group: every layout and
    // thread count holds the same matrices, so the tokens decoded are the same. Every scale
    // is the same.
    std::vector<BlockQ4_0> plain;
    auto fill = [&](const Matrix& m, std::uint64_t id) {
      auto [lo, hi] = layout_slice(m.layout, std::size_t(m.rows), t, threads);
      const std::uint16_t d = fp32_to_fp16(0.25f / std::sqrt(float(m.cols)));
      const std::size_t n = std::size_t(layout_rows(m.layout)), nb = m.row_blocks();
      plain.resize(n * nb);
      for (std::size_t g = lo / n; g < hi / n; ++g) {
        for (std::size_t i = 0; i < n; ++i) {
          std::uint64_t seed = (id << 32 | (g * n + i)) * 0x9e3779b97f4a7c15ull + 1;
          for (std::size_t k = 0; k < nb; ++k) {
            BlockQ4_0& b = plain[i * nb + k];
            b.d = d;
            for (std::size_t j = 0; j < sizeof b.qs; j += 8) {
              const std::uint64_t v = xorshift(seed);
              std::memcpy(b.qs + j, &v, 8);
            }
          }
        }
        repack(m.layout, plain.data(), n, nb, m.w + g * n * nb * sizeof(BlockQ4_0));
      }
    };
    std::uint64_t id = 0;
    for (const auto& L : layers) {
      for (const Matrix* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w1, &L.w3, &L.w2}) fill(*m, ++id);
    }
    fill(output, ++id);
  });
  r.huge_fraction = double(region.huge_kb()) * 1024.0 / double(region.size());

  PhaseBarrier sync(threads, AfterPhase{&decoder}, opt.barrier_spin);
  decoder.start();
  team.run([&](int t) {
    while (!decoder.done()) {
      for (const auto& phase : decoder.phases()) {
        for (const MatVec& mv : phase) {
          const Matrix& m = *mv.m;
          auto [lo, hi] = layout_slice(m.layout, std::size_t(m.rows), t, threads);
          const std::size_t nb = m.row_blocks();
          const BlockQ8_0* in = mv.in->data();
          float* out = mv.out->data();
          if (m.layout == Layout::rows) {
            const auto* w = reinterpret_cast<const BlockQ4_0*>(m.w);
            for (std::size_t row = lo; row < hi; ++row) out[row] = dot(w + row * nb, in, nb);
          } else if (hi > lo) {
            gemv(m.w + lo * nb * sizeof(BlockQ4_0), in, nb, (hi - lo) / std::size_t(layout_rows(m.layout)), out + lo);
          }
        }
        sync.arrive_and_wait();
      }
    }
  });

  const TokenTimes times = summarize(decoder.times());
  r.tokens = times.count;
  r.seconds_timed = times.total;
  r.spread = times.spread;
  r.cut_short = decoder.cut_short();
  r.seconds_per_token = times.median;
  r.best_seconds_per_token = times.best;
  r.tokens_per_s = r.seconds_per_token > 0 ? 1.0 / r.seconds_per_token : 0;
  r.effective_gbps = r.seconds_per_token > 0 ? double(r.bytes_per_token) / r.seconds_per_token / 1e9 : 0;
  r.last_token = decoder.last_token();
  if (r.cut_short) {
    r.note = "cut at the bound of " + std::to_string(opt.max_time.count() / 1000) + " s after " + std::to_string(r.tokens) +
             " tokens (fewer than " + std::to_string(opt.min_tokens) + " or under " +
             std::to_string(opt.min_time.count() / 1000) + " s): a less certain figure";
  }
  if (resident < s.layers) {
    if (!r.note.empty()) r.note += "; ";
    r.note += std::to_string(resident) + " of " + std::to_string(s.layers) +
             " layers held in memory, each reused in turn (every layer is read from memory per token as in the model)";
    if (topo.llc_bytes && r.resident_bytes < 2 * topo.llc_bytes) {
      r.note += "; the held weights fit the " + std::to_string(topo.llc_bytes >> 20) +
                " MiB cache, so the figure is optimistic";
    }
  }
  return r;
}

}  // namespace fleet::agent::bench
