#include "node-agent/bench/probe.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "node-agent/bench/phase_barrier.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace fleet::agent::bench {

std::uint64_t probe_min_bytes(const ModelShape& s) { return q4_0_bytes(s.layer_weights() + s.output_weights()); }

std::string probe_method(const ProbeOptions& o) {
  return "revision " + std::to_string(k_probe_revision) + ", " + std::string(dot_path_name(o.path)) + ", " +
         std::string(layout_name(o.layout)) + ", " + std::string(k_kv_type) + " KV (" + std::string(f16_kernels().name) +
         "), " + std::string(sync_name(o.sync)) + ", THP advice " + std::string(huge_name(o.huge));
}

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

}  // namespace

std::size_t kv_length(std::size_t pos, std::size_t context) {
  return std::min(context, (pos + k_kv_pad) / k_kv_pad * k_kv_pad);
}

std::vector<std::uint32_t> position_order(std::size_t context) {
  std::size_t bits = 0;
  while ((std::size_t(1) << bits) < context) ++bits;
  std::vector<std::uint32_t> order;
  order.reserve(context);
  for (std::size_t j = 0; j < (std::size_t(1) << bits); ++j) {
    std::size_t r = 0;
    for (std::size_t b = 0; b < bits; ++b) r |= ((j >> b) & 1) << (bits - 1 - b);
    if (r < context) order.push_back(std::uint32_t(r));
  }
  return order;
}

void attention_scores(const F16* q, const KvView& kv, std::size_t off, std::size_t head_dim, float* scores,
                      DotF16Fn dot) {
  const float scale = 1.0f / std::sqrt(float(head_dim));
  for (std::size_t j = 0; j < kv.n_kv; ++j) scores[j] = dot(kv.k + j * kv.width + off, q, head_dim) * scale;
}

void attention_softmax(const KvView& kv, float* scores) {
  // The mask: the positions after this one count for nothing (llama.cpp's KQ mask, -inf).
  float mx = -INFINITY;
  for (std::size_t j = 0; j <= kv.pos; ++j) mx = std::max(mx, scores[j]);
  float sum = 0;
  for (std::size_t j = 0; j < kv.n_kv; ++j) {
    scores[j] = j <= kv.pos ? std::exp(scores[j] - mx) : 0.0f;
    sum += scores[j];
  }
  for (std::size_t j = 0; j < kv.n_kv; ++j) scores[j] /= sum;
}

void attention_values(const F16* weights, const KvView& kv, std::size_t off, std::size_t head_dim, float* out,
                      DotF16Fn dot) {
  for (std::size_t i = 0; i < head_dim; ++i) out[i] = dot(kv.v_t + (off + i) * kv.context, weights, kv.n_kv);
}

void attention_step(Attention step, const AttentionBuffers& b, const KvView& kv, const F16Kernels& kernels, int t,
                    int threads) noexcept {
  if (step == Attention::q_to_f16 || step == Attention::weights_to_f16) {
    const bool q = step == Attention::q_to_f16;
    const float* from = q ? b.q : b.scores;
    F16* to = q ? b.q16 : b.w16;
    const std::size_t stride = q ? b.head_dim : kv.context;
    auto [lo, hi] = slice(q ? b.head_dim : kv.n_kv, t, threads);
    for (std::size_t h = 0; h < b.heads; ++h) kernels.to_f16(from + h * stride + lo, to + h * stride + lo, hi - lo);
    return;
  }
  auto [lo, hi] = slice(b.heads, t, threads);
  const std::size_t group = b.heads / std::max<std::size_t>(1, b.kv_heads);
  for (std::size_t h = lo; h < hi; ++h) {
    float* sc = b.scores + h * kv.context;
    const std::size_t off = (h / group) * b.head_dim;
    switch (step) {
      case Attention::scores: attention_scores(b.q16 + h * b.head_dim, kv, off, b.head_dim, sc, kernels.dot); break;
      case Attention::softmax: attention_softmax(kv, sc); break;
      case Attention::values:
        attention_values(b.w16 + h * kv.context, kv, off, b.head_dim, b.out + h * b.head_dim, kernels.dot);
        break;
      case Attention::q_to_f16:
      case Attention::weights_to_f16:
      case Attention::none: break;
    }
  }
}

namespace {

// One node of the decode graph as ggml runs it: the threads split its work (the rows of its
// matrix-vector products, or the heads of an attention step), then meet; the thread that
// arrives last runs its serial part (the ops ggml gives one thread when there is one token:
// norms, rope, copies into the KV cache, residual adds, SwiGLU, quantizing the activations)
// before any goes on.
enum class Serial { none, norm, quantize_x, rope, store_kv, quantize_att, residual, silu, mul, quantize_g, head };
struct Step {
  std::vector<MatVec> matvecs;
  Attention attention = Attention::none;
  Serial serial = Serial::none;
  int layer = 0;  // the layer whose KV cache the step uses
};

// The decoding state, the graph's steps and their serial parts. Tokens run at the positions
// 0 .. context - 1 that llama-bench's generation test runs (tg128 by default), in
// position_order's order, and attention reads the F16 KV cache up to n_kv (kv_length).
class Decoder {
 public:
  Decoder(const ModelShape& s, std::vector<Layer>& layers, Matrix& output, const ProbeOptions& options)
      : s_(s), layers_(layers), output_(output), options_(options), f16_(f16_kernels()) {
    const std::size_t d = std::size_t(s.dim), kv = std::size_t(s.kv_dim()), f = std::size_t(s.ffn);
    ctx_ = std::size_t(std::max(1, options.context));
    order_ = position_order(ctx_);
    hd_ = std::size_t(s.dim / s.heads);
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
    scores_.assign(std::size_t(s.heads) * ctx_, 0);
    q16_.assign(d, 0);
    w16_.assign(std::size_t(s.heads) * ctx_, 0);
    k_cache_.assign(std::size_t(s.layers) * ctx_ * kv, 0);
    v_cache_.assign(std::size_t(s.layers) * kv * ctx_, 0);  // transposed: a row per dimension
    rope_cos_.assign(hd_ / 2, 1);
    rope_sin_.assign(hd_ / 2, 0);
    embed(1);
    // The nodes of one llama layer in llama.cpp's graph (build_llama, llm_build_kv without
    // flash attention), each ending where ggml's threads meet; a matrix product meets twice
    // (its input is quantized, or converted to F16, by one thread first). Views, reshapes and
    // permutes compute nothing but are nodes all the same.
    auto sync = [&](Serial serial = Serial::none, int l = 0) { steps_.push_back({{}, Attention::none, serial, l}); };
    auto matvec = [&](Matrix& m, std::vector<BlockQ8_0>& in, std::vector<float>& out, Serial quantize) {
      sync(quantize);
      steps_.push_back({{{&m, &in, &out}}, Attention::none, Serial::none, 0});
    };
    for (int l = 0; l < s.layers; ++l) {
      Layer& L = layers_[std::size_t(l) % layers_.size()];
      sync(Serial::norm);  // rms_norm
      sync();              // mul by the norm's weight
      matvec(L.wq, xq_, q_, Serial::quantize_x);
      matvec(L.wk, xq_, k_, Serial::quantize_x);
      matvec(L.wv, xq_, v_, Serial::quantize_x);
      sync();                      // reshape q
      sync(Serial::rope, l);       // rope q and k (two nodes)
      sync();                      // reshape k
      sync();                      // rope k
      sync();                      // view of the K cache
      sync(Serial::store_kv, l);   // cpy k, then v (transposed) into the caches
      sync();                      // view of the V cache
      sync();                      // cpy v
      sync();                      // permute q
      sync();                      // view k
      steps_.push_back({{}, Attention::q_to_f16, Serial::none, l});  // kq: q converted to F16 first
      steps_.push_back({{}, Attention::scores, Serial::none, l});
      steps_.push_back({{}, Attention::softmax, Serial::none, l});
      sync();  // view v
      steps_.push_back({{}, Attention::weights_to_f16, Serial::none, l});  // kqv: the weights to F16 first
      steps_.push_back({{}, Attention::values, Serial::none, l});
      sync();  // permute
      sync();  // cont
      matvec(L.wo, aq_, o_, Serial::quantize_att);
      sync(Serial::residual);  // add
      sync(Serial::norm);      // rms_norm
      sync();                  // mul
      matvec(L.w3, xq_, h3_, Serial::quantize_x);  // up
      matvec(L.w1, xq_, h1_, Serial::quantize_x);  // gate
      sync(Serial::silu);
      sync(Serial::mul);
      matvec(L.w2, gq_, o_, Serial::quantize_g);  // down
      sync(Serial::residual);                     // add
    }
    sync(Serial::norm);  // rms_norm
    sync();              // mul
    matvec(output_, xq_, logits_, Serial::quantize_x);
    sync(Serial::head);  // the next token's embedding row (get_rows)
  }

  const std::vector<Step>& steps() const { return steps_; }
  bool done() const { return done_.load(std::memory_order_acquire); }
  std::size_t heads() const { return std::size_t(s_.heads); }

  // Thread t's share of an attention step (attention_step says how ggml splits each).
  void attend(const Step& st, int t, int threads) noexcept {
    const AttentionBuffers b{q_.data(), q16_.data(), scores_.data(), w16_.data(), att_.data(),
                             heads(), std::size_t(s_.kv_heads), hd_};
    attention_step(st.attention, b, kv_view(st.layer), f16_, t, threads);
  }

  // Called once after every step, by one thread, while the others wait.
  void after_step() noexcept {
    const Step& st = steps_[step_ % steps_.size()];
    switch (st.serial) {
      case Serial::none: break;
      case Serial::norm: rmsnorm(xn_, x_); break;
      case Serial::quantize_x: quantize(xq_, xn_); break;
      case Serial::rope:
        rope(q_, s_.heads);
        rope(k_, s_.kv_heads);
        break;
      case Serial::store_kv: {
        const KvView kv = kv_view(st.layer);
        F16* kc = k_cache_.data() + std::size_t(st.layer) * ctx_ * kv.width;
        F16* vc = v_cache_.data() + std::size_t(st.layer) * kv.width * ctx_;
        f16_.to_f16(k_.data(), kc + pos_ * kv.width, kv.width);  // a row: ggml's contiguous copy
        for (std::size_t i = 0; i < kv.width; ++i) vc[i * ctx_ + pos_] = fp32_to_fp16(v_[i]);  // element by element
        break;
      }
      case Serial::quantize_att: quantize(aq_, att_); break;
      case Serial::residual:
        for (std::size_t i = 0; i < x_.size(); ++i) x_[i] += o_[i];
        break;
      case Serial::silu:
        for (float& g : h1_) g = g / (1.0f + std::exp(-g));
        break;
      case Serial::mul:
        for (std::size_t i = 0; i < h1_.size(); ++i) h1_[i] *= h3_[i];
        break;
      case Serial::quantize_g: quantize(gq_, h1_); break;
      case Serial::head: {  // greedy next token, the next position
        last_token_ = std::uint32_t(std::max_element(logits_.begin(), logits_.end()) - logits_.begin());
        embed(last_token_);
        auto now = std::chrono::steady_clock::now();
        if (tokens_done_ > 0) {
          times_.push_back(std::chrono::duration<double>(now - last_end_).count());
          kv_sum_ += double(kv_length(pos_, ctx_));
        }
        last_end_ = now;
        // The warm-up token ran at order_[0]; the timed ones start the order again.
        pos_ = order_[std::size_t(tokens_done_) % order_.size()];
        set_rope();
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
    ++step_;
  }

  void start() { last_end_ = std::chrono::steady_clock::now(); }
  std::vector<double> times() const { return times_; }
  // The mean KV length the timed tokens' attention read, and a whole pass's.
  double kv_mean() const { return times_.empty() ? 0 : kv_sum_ / double(times_.size()); }
  double kv_mean_pass() const {
    double sum = 0;
    for (std::size_t p = 0; p < ctx_; ++p) sum += double(kv_length(p, ctx_));
    return sum / double(ctx_);
  }
  std::uint32_t last_token() const { return last_token_; }
  bool cut_short() const { return cut_short_; }

 private:
  void embed(std::uint32_t token) {  // a deterministic stand-in for the embedding row
    for (std::size_t i = 0; i < x_.size(); ++i) x_[i] = std::sin(float(token + 1) * float(i + 1) * 0.001f);
  }
  KvView kv_view(int layer) const {
    const std::size_t width = std::size_t(s_.kv_dim());
    return {k_cache_.data() + std::size_t(layer) * ctx_ * width, v_cache_.data() + std::size_t(layer) * width * ctx_,
            width, ctx_, pos_, kv_length(pos_, ctx_)};
  }
  // RoPE (llama's, neighbouring pairs) at this position: the angles once per token, as ggml
  // computes its rope cache once per row.
  void set_rope() {
    for (std::size_t i = 0; i < hd_ / 2; ++i) {
      const float theta = float(pos_) * std::pow(10000.0f, -2.0f * float(i) / float(hd_));
      rope_cos_[i] = std::cos(theta);
      rope_sin_[i] = std::sin(theta);
    }
  }
  void rope(std::vector<float>& v, int heads) {
    for (std::size_t h = 0; h < std::size_t(heads); ++h) {
      float* p = v.data() + h * hd_;
      for (std::size_t i = 0; i < hd_ / 2; ++i) {
        const float a = p[2 * i], b = p[2 * i + 1];
        p[2 * i] = a * rope_cos_[i] - b * rope_sin_[i];
        p[2 * i + 1] = a * rope_sin_[i] + b * rope_cos_[i];
      }
    }
  }

  const ModelShape& s_;
  std::vector<Layer>& layers_;
  Matrix& output_;
  const ProbeOptions& options_;
  F16Kernels f16_;
  std::size_t ctx_ = 1, hd_ = 1, pos_ = 0;
  double timed_ = 0, kv_sum_ = 0;
  std::vector<std::uint32_t> order_;
  bool cut_short_ = false;
  std::vector<float> x_, xn_, q_, k_, v_, att_, o_, h1_, h3_, logits_, scores_, rope_cos_, rope_sin_;
  std::vector<F16> q16_, w16_, k_cache_, v_cache_;
  std::vector<BlockQ8_0> xq_, aq_, gq_;
  std::vector<Step> steps_;
  std::size_t step_ = 0;
  std::atomic<bool> done_{false};
  std::chrono::steady_clock::time_point last_end_;
  std::vector<double> times_;
  int tokens_done_ = 0;
  std::uint32_t last_token_ = 0;
};

struct AfterStep {
  Decoder* d;
  void operator()() noexcept { d->after_step(); }
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
                                         std::string(dot_path_name(opt.path)) +
                                         " kernel here (on x86 the q4_0_8x8 kernels need F16C)");
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
  if (opt.context < 1 || opt.context > k_max_context) {
    return fail(Errc::invalid_input, "the context must be 1 to " + std::to_string(k_max_context) + " positions, got " +
                                         std::to_string(opt.context));
  }
  const std::uint64_t cache_bytes =
      2 * std::uint64_t(s.layers) * std::uint64_t(opt.context) * std::uint64_t(s.kv_dim()) * sizeof(F16);
  if (topo.mem_available_bytes && cache_bytes > topo.mem_available_bytes / 4) {
    return fail(Errc::invalid_input, "a KV cache of " + std::to_string(opt.context) + " positions for the " + s.name +
                                         " shape takes " + std::to_string(cache_bytes >> 20) + " MiB, over a quarter of the " +
                                         std::to_string(topo.mem_available_bytes >> 20) + " MiB free; pick a smaller --context");
  }
  const int resident = int(std::min<std::uint64_t>(std::uint64_t(s.layers), (budget - output_bytes) / layer_bytes));

  ProbeResult r;
  r.shape = s;
  r.threads = threads;
  r.dot_path = std::string(dot_path_name(opt.path));
  r.layout = std::string(layout_name(opt.layout));
  r.kv_cache = std::string(k_kv_type) + " (" + std::string(f16_kernels().name) + ")";
  r.context = std::max(1, opt.context);
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
    r.layout_mixed = !all_fit;
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
  r.huge = opt.huge;
  r.huge_fraction = double(region.huge_kb()) * 1024.0 / double(region.size());

  // Thread t's part of every step of one token, meeting the others after each.
  auto token = [&](int t, auto& sync) {
    for (const Step& step : decoder.steps()) {
      for (const MatVec& mv : step.matvecs) {
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
      if (step.attention != Attention::none) {
        decoder.attend(step, t, threads);
      }
      sync.arrive_and_wait();
    }
  };
  r.sync = opt.sync;
  decoder.start();
  if (opt.sync == Sync::spin) {
    PhaseBarrier sync(threads, AfterStep{&decoder}, opt.barrier_spin);
    team.run([&](int t) {
      while (!decoder.done()) token(t, sync);
    });
  } else {
#if defined(_OPENMP)
    // As llama.cpp's default build computes a graph: an `omp parallel` region of libgomp's
    // threads per token (ggml_graph_compute opens one per call; libgomp keeps its threads
    // between them), unpinned as llama-bench leaves them (no --numa).
    GompBarrier sync(threads, AfterStep{&decoder});
    int team_size = threads;
    // One thread: ggml opens no region and meets nobody; the barrier, outside a region,
    // binds to a team of one.
    while (threads == 1 && !decoder.done()) token(0, sync);
    while (!decoder.done() && team_size == threads) {
#pragma omp parallel num_threads(threads)
      {
#pragma omp single
        team_size = omp_get_num_threads();
        if (team_size == threads) token(omp_get_thread_num(), sync);
      }
    }
    if (team_size != threads) {
      return fail(Errc::unsupported, "libgomp ran " + std::to_string(team_size) + " threads of the " +
                                         std::to_string(threads) + " asked (OMP_THREAD_LIMIT?); measure with --sync spin");
    }
#else
    return fail(Errc::unsupported, "this agent was built without OpenMP: --sync gomp is not here, only spin");
#endif
  }

  const TokenTimes times = summarize(decoder.times());
  r.tokens = times.count;
  r.seconds_timed = times.total;
  r.spread = times.spread;
  r.cut_short = decoder.cut_short();
  r.seconds_per_token = times.median;
  r.best_seconds_per_token = times.best;
  r.tokens_per_s = r.seconds_per_token > 0 ? 1.0 / r.seconds_per_token : 0;
  r.effective_gbps = r.seconds_per_token > 0 ? double(r.bytes_per_token) / r.seconds_per_token / 1e9 : 0;
  r.kv_mean = decoder.kv_mean();
  r.kv_mean_pass = decoder.kv_mean_pass();
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
