#pragma once
// The token-generation probe: decodes tokens of a llama-shaped model held in memory the way
// llama.cpp's CPU backend does: Q4_0 weights repacked as ggml repacks them on this CPU times
// Q8_0 activations, every matrix of every layer and the output head, attention over an F16 KV
// cache at the positions llama-bench's generation test runs, the graph's nodes each ending
// where the threads meet, weights spread over the NUMA nodes. It is a measurement, not
// inference: the weights are synthetic, the arithmetic and the memory traffic are real. Left
// out: the embedding lookup (one row per token).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/model_shape.hpp"
#include "node-agent/bench/f16.hpp"
#include "node-agent/bench/memory.hpp"
#include "node-agent/bench/phase_barrier.hpp"
#include "node-agent/bench/quant.hpp"
#include "node-agent/bench/repack.hpp"
#include "node-agent/bench/topology.hpp"

namespace fleet::agent::bench {

using fleet::ModelShape;
using fleet::known_shapes;
using fleet::shape_named;
using fleet::check_shape;

// Q4_0 bytes of n weights (18 bytes per 32).
inline std::uint64_t q4_0_bytes(std::uint64_t weights) { return weights / k_block * sizeof(BlockQ4_0); }


struct ProbeOptions {
  ModelShape shape;
  int threads = 0;                    // 0: every CPU
  DotPath path = best_dot_path();
  // How the weights are held: ggml's repacked row groups where ggml would repack them on this
  // CPU (a matrix whose rows do not divide stays plain rows, as in ggml), or plain rows.
  Layout layout = best_layout();
  // The weights' THP advice: none by default, as llama.cpp gives its own (memory.hpp), so the
  // probe gets the huge pages llama.cpp gets under the kernel's THP mode.
  Huge huge = Huge::unadvised;
  std::uint64_t memory_budget = 0;    // bytes of weights to hold; 0: the model, at most half of MemAvailable
  // The measurement ends when both minimums are met, or at max_time whatever was timed (a
  // bound on the boot's wait, set per board class). A small shape is timed for the whole
  // min_time, not cut after a count of tokens (0.13 s for 32 tokens of 110m: a spread of 30%).
  int min_tokens = 16;                          // timed tokens (after one warm-up token)
  std::chrono::milliseconds min_time{2000};     // timed at least this long
  std::chrono::milliseconds max_time{60000};    // and never longer than this
  // How the threads meet after each node: libgomp's barrier as llama.cpp's default build, or
  // PhaseBarrier (spin barrier_spin, then sleep) as ggml's without OpenMP.
  Sync sync = best_sync();
  std::chrono::microseconds barrier_spin{200};
  // The tokens' positions, 0 .. context - 1 (llama-bench's generation test, tg128, by
  // default), attention reading the KV cache that far: in position_order's order, so that the
  // few tokens a slow board times read the KV lengths a whole tg128 run reads.
  int context = 128;
};

struct ProbeResult {
  ModelShape shape;
  int threads = 0;
  std::string dot_path;
  std::string layout;                  // the weights' layout (repack.hpp): q4_0_8x8, q4_0_4x4, ... or rows
  bool layout_mixed = false;           // some matrices stayed plain rows (their rows do not divide), as in ggml
  std::string kv_cache;                // the KV cache's type and the kernels its attention ran: "f16 (f16c)"
  Sync sync = Sync::spin;              // how the threads met
  int context = 0;                     // positions the tokens cycle through (the KV cache's length)
  int numa_nodes = 1;
  int layers_resident = 0;             // distinct layers in memory; the others reuse them in turn
  std::uint64_t bytes_per_token = 0;   // weight bytes one token reads
  std::uint64_t resident_bytes = 0;
  Huge huge = Huge::unadvised;         // the weights' THP advice
  double huge_fraction = 0;            // share of the weights backed by THP
  int tokens = 0;                      // timed tokens
  double seconds_timed = 0;            // their time, together
  double spread = 0;                   // interquartile range of the token times / their median
  bool cut_short = false;              // max_time ended it before min_tokens and min_time were met
  double seconds_per_token = 0;        // median
  double best_seconds_per_token = 0;
  double tokens_per_s = 0;             // 1 / median
  double effective_gbps = 0;           // bytes_per_token / median
  double kv_mean = 0;                  // the KV cache's length attention read, mean over the timed tokens
  double kv_mean_pass = 0;             // the same over a whole pass of the context (what tg runs)
  std::uint32_t last_token = 0;        // argmax of the last logits: the work was done
  std::string note;
};

// The KV cache's type: llama-bench's default (type_k, type_v).
inline constexpr std::string_view k_kv_type = "f16";
// The probe's revision: raise it with any change to what the probe computes or how that is
// not one of its options (a kernel, a step of the graph), so that no figure of the old
// probe serves as a baseline for the new one. 2: the F16 KV cache and unadvised weights.
// 3: the positions in position_order's order, not 0, 1, 2, ...
inline constexpr int k_probe_revision = 3;

// How the probe measures with these options on this CPU, in words: "revision 3, avx2,
// q4_0_8x8, f16 KV (f16c), gomp, THP advice none". A figure serves as another's baseline
// only if both were taken the same way: the agent keys kept figures and names measurements
// with it.
std::string probe_method(const ProbeOptions& options);

// Memory the probe needs at least: the output head and one layer.
std::uint64_t probe_min_bytes(const ModelShape& shape);

Result<ProbeResult> run_probe(const Topology& topo, const ProbeOptions& options);

// Below this many token times a spread says nothing (it is reported as 0: unknown).
inline constexpr int k_min_spread_tokens = 8;

// The figures of a list of token times (seconds): median, best, spread (pure; the probe's).
struct TokenTimes {
  double median = 0, best = 0, total = 0, spread = 0;
  int count = 0;
};
TokenTimes summarize(std::vector<double> times);

// Attention over a KV cache at one position (pure; the probe's, split by heads over threads).
// llama.cpp pads the cache's length it reads to a multiple of 32 without flash attention
// (llama_kv_cache_get_padding); the positions past this one are masked out.
inline constexpr std::size_t k_kv_pad = 32;
inline constexpr int k_max_context = 32768;
std::size_t kv_length(std::size_t pos, std::size_t context);  // n_kv: pos + 1 rounded up to 32, at most context
// The order the probe's tokens take the positions 0 .. context - 1 in: each once a pass, in
// bit-reversed order (0, 64, 32, 96, 16, ... for 128; past the context skipped). llama-bench's
// tg128 runs positions 0 .. 127 in turn, its attention reading 32 to 128 cached positions, so
// its figure is the mean over all of them. A board that times 19 tokens (110m under qemu) in
// turn reads 32 every time, and its figure came out 6-10% faster than tg128's there. In this
// order a stretch of tokens reads about the mix of lengths the whole pass does: exactly at
// 128 (any 4 in a row, across the wrap too: one each of 32, 64, 96 and 128), within 3% for
// the first 20 tokens up to a context of 200, 9% short of the mean at 32768.
std::vector<std::uint32_t> position_order(std::size_t context);
// The caches are F16, as llama-bench's (type_k, type_v f16); V is held transposed, as
// llama.cpp holds it without flash attention.
struct KvView {
  const F16* k;        // context rows of `width` (every KV head's dimensions)
  const F16* v_t;      // transposed: `width` rows of context
  std::size_t width = 0, context = 0, pos = 0, n_kv = 0;
};
// scores[j] = q . k_j[off .. off + head_dim) / sqrt(head_dim), j < n_kv; q already F16
// (ggml converts a matrix product's F32 operand to its F16 weights' type first).
void attention_scores(const F16* q, const KvView& kv, std::size_t off, std::size_t head_dim, float* scores,
                      DotF16Fn dot);
// softmax over j <= pos; 0 for the masked rest up to n_kv.
void attention_softmax(const KvView& kv, float* scores);
// out[i] = sum over j < n_kv of weights[j] * v_j[off + i]; the weights already F16.
void attention_values(const F16* weights, const KvView& kv, std::size_t off, std::size_t head_dim, float* out,
                      DotF16Fn dot);

// The steps of one token's attention in one layer, as ggml's graph runs them without flash
// attention: q converted to F16, the scores K.q, the softmax, the weights converted to F16,
// V.weights (none: a step of the graph that is not attention).
enum class Attention { none, q_to_f16, scores, softmax, weights_to_f16, values };
struct AttentionBuffers {
  const float* q = nullptr;  // heads rows of head_dim, roped
  F16* q16 = nullptr;        // q as F16
  float* scores = nullptr;   // heads rows of the KV cache's context: the scores, then the softmax's weights
  F16* w16 = nullptr;        // the weights as F16, in the same rows
  float* out = nullptr;      // heads rows of head_dim
  std::size_t heads = 0, kv_heads = 0, head_dim = 0;
};
// Thread t of `threads`' share of one step, as ggml splits it: a conversion to F16 (a matrix
// product's F32 operand) by elements of every head's row, the products and the softmax by
// heads; query head h reads KV head h / (heads / kv_heads). The threads meet between steps.
void attention_step(Attention step, const AttentionBuffers& buffers, const KvView& kv, const F16Kernels& kernels, int t,
                    int threads) noexcept;

// Whether a measurement is done: both minimums met, or the bound reached.
enum class Timing { go_on, done, cut_short };
Timing timing(int timed_tokens, double timed_seconds, const ProbeOptions& options);

}  // namespace fleet::agent::bench
