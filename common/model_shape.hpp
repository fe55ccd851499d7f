#pragma once
// The llama-shaped models fleetctl knows by name: the agent's throughput probe decodes them,
// the controller checks inventory variables against them. Shapes are the published ones
// (each model's config.json / params).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet {

struct ModelShape {
  std::string name;
  int dim = 0;         // embedding length
  int layers = 0;
  int ffn = 0;         // feed-forward length
  int heads = 0;
  int kv_heads = 0;    // grouped-query attention when < heads
  int vocab = 0;
  std::string source;  // which published model has this shape
  int kv_dim() const { return heads ? dim / heads * kv_heads : 0; }
  std::uint64_t layer_weights() const;  // weights in one layer's 7 matrices
  std::uint64_t output_weights() const { return std::uint64_t(vocab) * std::uint64_t(dim); }
  std::uint64_t weights() const { return layer_weights() * std::uint64_t(layers) + output_weights(); }
};

const std::vector<ModelShape>& known_shapes();  // 7b, 3b, 1b, 110m, 15m
std::optional<ModelShape> shape_named(std::string_view name);
// Every dimension a positive multiple of 32 and heads dividing dim; else Errc::invalid_input.
Result<void> check_shape(const ModelShape& shape);

}  // namespace fleet
