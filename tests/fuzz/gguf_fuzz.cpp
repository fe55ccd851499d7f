// parse_gguf (node-agent/bench): whatever bytes a model file on a board holds, a Result and
// no crash, no read past the end and no allocation a length field asks for; an error names
// the file; an accepted header has as many tensors as it says, each of 1-8 dimensions.
#include <span>

#include "node-agent/bench/gguf.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet::agent::bench;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/model.gguf";
  auto h = parse_gguf(std::as_bytes(std::span(data, size)), k_source);
  if (!h) {
    fleet::fuzz::names_source(h.error().message, k_source);
    return 0;
  }
  if (h->tensors.size() != h->tensor_count) fleet::fuzz::broken("tensor count and tensors differ", "");
  for (const auto& t : h->tensors) {
    if (t.dims.empty() || t.dims.size() > 8) fleet::fuzz::broken("a tensor with 0 or more than 8 dimensions", t.name);
    if (ggml_type_name(t.type).empty()) fleet::fuzz::broken("a ggml type without a name", t.name);
  }
  auto shape = shape_of(*h, k_source);
  if (!shape) fleet::fuzz::names_source(shape.error().message, k_source);
  return 0;
}
