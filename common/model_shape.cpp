#include "common/model_shape.hpp"

namespace fleet {

std::uint64_t ModelShape::layer_weights() const {
  const std::uint64_t d = std::uint64_t(dim), kv = std::uint64_t(kv_dim()), f = std::uint64_t(ffn);
  return d * d * 2 + kv * d * 2 + f * d * 3;  // wq, wo; wk, wv; w1, w3, w2
}

const std::vector<ModelShape>& known_shapes() {
  // Published shapes (config.json / params of each model); Q4_0 sizes in the README.
  static const std::vector<ModelShape> shapes = {
      {"7b", 4096, 32, 11008, 32, 32, 32000, "Llama 2 7B"},
      {"3b", 3072, 28, 8192, 24, 8, 128256, "Llama 3.2 3B"},
      {"1b", 2048, 16, 8192, 32, 8, 128256, "Llama 3.2 1B"},
      {"110m", 768, 12, 2048, 12, 12, 32000, "llama2.c stories110M"},
      {"15m", 288, 6, 768, 6, 6, 32000, "llama2.c stories15M"},
  };
  return shapes;
}

std::optional<ModelShape> shape_named(std::string_view name) {
  for (const auto& s : known_shapes()) {
    if (s.name == name) return s;
  }
  return std::nullopt;
}

Result<void> check_shape(const ModelShape& s) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::invalid_input, "model shape '" + s.name + "': " + why);
  };
  if (s.dim <= 0 || s.layers <= 0 || s.ffn <= 0 || s.heads <= 0 || s.kv_heads <= 0 || s.vocab <= 0) {
    return bad("every dimension must be positive (dim " + std::to_string(s.dim) + ", layers " +
               std::to_string(s.layers) + ", ffn " + std::to_string(s.ffn) + ", heads " + std::to_string(s.heads) +
               ", kv heads " + std::to_string(s.kv_heads) + ", vocab " + std::to_string(s.vocab) + ")");
  }
  if (s.dim % 32 || s.ffn % 32) {
    return bad("dim and ffn must be multiples of 32 (the Q4_0 block), got " + std::to_string(s.dim) + " and " +
               std::to_string(s.ffn));
  }
  if (s.dim % s.heads || s.heads % s.kv_heads) return bad("heads must divide dim and kv heads must divide heads");
  return {};
}

}  // namespace fleet
