#pragma once
// A reader for the header of a GGUF model file (ggml docs/gguf.md): magic "GGUF", version,
// tensor count, metadata key/values, tensor infos. Enough to know a model's shape and
// quantisation before benchmarking it; the tensor data is never read. Pure over bytes:
// every length is checked against what is left, so a truncated or hostile file is refused.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/error.hpp"
#include "node-agent/bench/probe.hpp"

namespace fleet::agent::bench {

// A metadata value: numbers widened, strings as is, arrays summarised by type and length.
struct GgufArray {
  std::uint32_t type = 0;
  std::uint64_t length = 0;
};
using GgufValue = std::variant<std::uint64_t, std::int64_t, double, bool, std::string, GgufArray>;

struct GgufTensor {
  std::string name;
  std::vector<std::uint64_t> dims;
  std::uint32_t type = 0;  // ggml_type: 0 F32, 1 F16, 2 Q4_0, 8 Q8_0, ...
  std::uint64_t offset = 0;
};

struct GgufHeader {
  std::uint32_t version = 0;
  std::uint64_t tensor_count = 0;
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensor> tensors;

  std::optional<std::string> string(const std::string& key) const;
  std::optional<std::uint64_t> integer(const std::string& key) const;  // any unsigned/signed >= 0
};

// `source` names the file in errors.
Result<GgufHeader> parse_gguf(std::span<const std::byte> bytes, std::string_view source);
// Maps the file read-only and parses its header.
Result<GgufHeader> read_gguf(const std::filesystem::path& file);

// The llama-shaped model the header describes ({arch}.embedding_length, .block_count,
// .feed_forward_length, .attention.head_count[_kv], vocabulary size), named after
// general.name or the file.
Result<ModelShape> shape_of(const GgufHeader& header, std::string_view source);

std::string_view ggml_type_name(std::uint32_t type);

}  // namespace fleet::agent::bench
