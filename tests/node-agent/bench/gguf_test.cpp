#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "node-agent/bench/gguf.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet::agent::bench;

namespace {

// Writes GGUF the way ggml's gguf_write does (little-endian, strings as u64 length + bytes).
class GgufWriter {
 public:
  // Not inlined: GCC 12 at -O3, inlining this into put<T> with a constant size, reports a
  // bogus -Wstringop-overflow (and, written with resize + memcpy, -Warray-bounds) inside
  // libstdc++ (GCC bug 107852). Test code: the call costs nothing that matters.
  [[gnu::noinline]] GgufWriter& raw(const void* p, std::size_t n) {
    auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  template <class T>
  GgufWriter& put(T v) {
    return raw(&v, sizeof v);
  }
  GgufWriter& str(const std::string& s) {
    put<std::uint64_t>(s.size());
    return raw(s.data(), s.size());
  }
  GgufWriter& kv_u32(const std::string& k, std::uint32_t v) { return str(k).put<std::uint32_t>(4).put(v); }
  GgufWriter& kv_str(const std::string& k, const std::string& v) { return str(k).put<std::uint32_t>(8).str(v); }
  GgufWriter& kv_f32(const std::string& k, float v) { return str(k).put<std::uint32_t>(6).put(v); }
  GgufWriter& kv_str_array(const std::string& k, const std::vector<std::string>& v) {
    str(k).put<std::uint32_t>(9).put<std::uint32_t>(8).put<std::uint64_t>(v.size());
    for (const auto& s : v) str(s);
    return *this;
  }
  GgufWriter& tensor(const std::string& name, std::vector<std::uint64_t> dims, std::uint32_t type, std::uint64_t off) {
    str(name).put<std::uint32_t>(std::uint32_t(dims.size()));
    for (auto d : dims) put(d);
    return put(type).put(off);
  }
  std::vector<std::byte> bytes;
};

// A llama-shaped header: 64 dims, 2 blocks, ffn 128, 4 heads (2 kv), vocab of 5 tokens.
std::vector<std::byte> small_model() {
  GgufWriter w;
  w.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(2).put<std::uint64_t>(9);
  w.kv_str("general.architecture", "llama")
      .kv_str("general.name", "tiny-test")
      .kv_u32("llama.embedding_length", 64)
      .kv_u32("llama.block_count", 2)
      .kv_u32("llama.feed_forward_length", 128)
      .kv_u32("llama.attention.head_count", 4)
      .kv_u32("llama.attention.head_count_kv", 2)
      .kv_f32("llama.rope.freq_base", 10000.0f)
      .kv_str_array("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b", "c"});
  w.tensor("token_embd.weight", {64, 5}, 2, 0).tensor("blk.0.ffn_up.weight", {64, 128}, 2, 192);
  return w.bytes;
}

}  // namespace

TEST_CASE("a GGUF header the test writes is read back with its shape") {
  auto bytes = small_model();
  auto h = parse_gguf(bytes, "tiny.gguf");
  REQUIRE(h);
  CHECK(h->version == 3);
  CHECK(h->tensor_count == 2);
  CHECK(h->string("general.architecture") == "llama");
  CHECK(h->integer("llama.block_count") == 2u);
  CHECK_FALSE(h->integer("general.name"));
  REQUIRE(h->tensors.size() == 2);
  CHECK(h->tensors[1].name == "blk.0.ffn_up.weight");
  CHECK(h->tensors[1].dims == std::vector<std::uint64_t>{64, 128});
  CHECK(ggml_type_name(h->tensors[1].type) == "Q4_0");
  auto s = shape_of(*h, "tiny.gguf");
  REQUIRE(s);
  CHECK(s->name == "tiny-test");
  CHECK(s->dim == 64);
  CHECK(s->layers == 2);
  CHECK(s->ffn == 128);
  CHECK(s->heads == 4);
  CHECK(s->kv_heads == 2);
  CHECK(s->vocab == 5);
}

TEST_CASE("every truncation of a GGUF header is refused with the file named, never read past") {
  auto bytes = small_model();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto r = parse_gguf(std::span(bytes.data(), n), "cut.gguf");
    INFO("cut at " << n);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == fleet::Errc::parse);
    CHECK(r.error().message.starts_with("cut.gguf: "));
  }
}

TEST_CASE("a file that is not GGUF, or a version we do not know, is refused") {
  auto bytes = small_model();
  std::memcpy(bytes.data(), "GGML", 4);
  auto r = parse_gguf(bytes, "old.bin");
  REQUIRE_FALSE(r);
  CHECK(r.error().message == "old.bin: not a GGUF file (the first 4 bytes are not \"GGUF\")");

  bytes = small_model();
  bytes[4] = std::byte{1};  // version 1
  r = parse_gguf(bytes, "v1.gguf");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("version 1") != std::string::npos);
}

TEST_CASE("lying counts and lengths are refused before anything is allocated") {
  GgufWriter w;
  w.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(~0ull);
  auto r = parse_gguf(w.bytes, "lie.gguf");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("truncated") != std::string::npos);

  GgufWriter s;
  s.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(1).put<std::uint64_t>(1ull << 40);
  s.put<std::uint64_t>(0).put<std::uint64_t>(0);  // enough bytes left for one entry to be plausible
  r = parse_gguf(s.bytes, "longkey.gguf");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("claims") != std::string::npos);

  GgufWriter t;  // a value type that does not exist
  t.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(1).str("k").put<std::uint32_t>(99);
  t.put<std::uint64_t>(0);
  r = parse_gguf(t.bytes, "type.gguf");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("unknown value type 99") != std::string::npos);
}

TEST_CASE("a header without the llama keys names the one it lacks") {
  GgufWriter w;
  w.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(2);
  w.kv_str("general.architecture", "llama").kv_u32("llama.embedding_length", 64);
  auto h = parse_gguf(w.bytes, "half.gguf");
  REQUIRE(h);
  auto s = shape_of(*h, "half.gguf");
  REQUIRE_FALSE(s);
  CHECK(s.error().message == "half.gguf: GGUF metadata lacks llama.block_count");
}

TEST_CASE("read_gguf maps a file and names it in errors") {
  fleet::test::TempDir dir;
  auto bytes = small_model();
  {
    std::ofstream f(dir / "m.gguf", std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  }
  auto h = read_gguf(dir / "m.gguf");
  REQUIRE(h);
  CHECK(h->tensors.size() == 2);
  auto missing = read_gguf(dir / "none.gguf");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("none.gguf") != std::string::npos);
  dir.write("empty.gguf", "");
  CHECK_FALSE(read_gguf(dir / "empty.gguf"));
}

// Found by tests/fuzz/gguf_fuzz: a shape that fails check_shape was refused without the file's name.
TEST_CASE("a header whose shape does not add up is refused with the file named") {
  GgufWriter w;
  w.raw("GGUF", 4).put<std::uint32_t>(3).put<std::uint64_t>(0).put<std::uint64_t>(6);
  w.kv_str("general.architecture", "llama")
      .kv_u32("llama.embedding_length", 64)
      .kv_u32("llama.block_count", 2)
      .kv_u32("llama.feed_forward_length", 128)
      .kv_u32("llama.attention.head_count", 5)  // does not divide 64
      .kv_u32("llama.vocab_size", 5);
  auto h = parse_gguf(w.bytes, "odd.gguf");
  REQUIRE(h);
  auto s = shape_of(*h, "odd.gguf");
  REQUIRE_FALSE(s);
  CHECK(s.error().message.starts_with("odd.gguf: "));
  CHECK(s.error().message.find("heads must divide dim") != std::string::npos);
}
