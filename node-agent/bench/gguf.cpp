#include "node-agent/bench/gguf.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

namespace fleet::agent::bench {

namespace {

constexpr std::uint64_t k_max_dims = 8;          // ggml's GGML_MAX_DIMS is 4
constexpr std::uint64_t k_max_string = 1u << 24;  // a key or value longer than 16 MiB is not a header

class Reader {
 public:
  Reader(std::span<const std::byte> b, std::string_view source) : b_(b), source_(source) {}

  template <class T>
  Result<T> get(const char* what) {
    if (b_.size() - pos_ < sizeof(T)) return truncated(what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // GGUF is little-endian, as are our targets
    pos_ += sizeof(T);
    return v;
  }
  Result<std::string> str(const char* what) {
    auto n = FLEET_TRY(get<std::uint64_t>(what));
    if (n > k_max_string) return bad(std::string(what) + " claims " + std::to_string(n) + " bytes");
    if (b_.size() - pos_ < n) return truncated(what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  Result<void> skip(std::uint64_t n, const char* what) {
    if (b_.size() - pos_ < n) return truncated(what);
    pos_ += n;
    return {};
  }
  std::size_t left() const { return b_.size() - pos_; }
  std::size_t pos() const { return pos_; }
  std::unexpected<Error> truncated(const std::string& what) const {
    return fail(Errc::parse, std::string(source_) + ": truncated GGUF header: " + what + " at byte " +
                                 std::to_string(pos_) + " runs past the end (" + std::to_string(b_.size()) +
                                 " bytes)");
  }
  std::unexpected<Error> bad(const std::string& why) const {
    return fail(Errc::parse, std::string(source_) + ": bad GGUF header at byte " + std::to_string(pos_) + ": " + why);
  }

 private:
  std::span<const std::byte> b_;
  std::string_view source_;
  std::size_t pos_ = 0;
};

// gguf_type: 0 u8 1 i8 2 u16 3 i16 4 u32 5 i32 6 f32 7 bool 8 string 9 array 10 u64 11 i64 12 f64
std::size_t scalar_size(std::uint32_t type) {
  switch (type) {
    case 0: case 1: case 7: return 1;
    case 2: case 3: return 2;
    case 4: case 5: case 6: return 4;
    case 10: case 11: case 12: return 8;
    default: return 0;
  }
}

Result<GgufValue> value(Reader& r, std::uint32_t type, const std::string& key) {
  const std::string what = "value of '" + key + "'";
  switch (type) {
    case 0: return GgufValue(std::uint64_t(FLEET_TRY(r.get<std::uint8_t>(what.c_str()))));
    case 1: return GgufValue(std::int64_t(FLEET_TRY(r.get<std::int8_t>(what.c_str()))));
    case 2: return GgufValue(std::uint64_t(FLEET_TRY(r.get<std::uint16_t>(what.c_str()))));
    case 3: return GgufValue(std::int64_t(FLEET_TRY(r.get<std::int16_t>(what.c_str()))));
    case 4: return GgufValue(std::uint64_t(FLEET_TRY(r.get<std::uint32_t>(what.c_str()))));
    case 5: return GgufValue(std::int64_t(FLEET_TRY(r.get<std::int32_t>(what.c_str()))));
    case 6: return GgufValue(double(FLEET_TRY(r.get<float>(what.c_str()))));
    case 7: return GgufValue(FLEET_TRY(r.get<std::uint8_t>(what.c_str())) != 0);
    case 8: return GgufValue(FLEET_TRY(r.str(what.c_str())));
    case 10: return GgufValue(FLEET_TRY(r.get<std::uint64_t>(what.c_str())));
    case 11: return GgufValue(FLEET_TRY(r.get<std::int64_t>(what.c_str())));
    case 12: return GgufValue(FLEET_TRY(r.get<double>(what.c_str())));
    case 9: {
      GgufArray a;
      a.type = FLEET_TRY(r.get<std::uint32_t>(what.c_str()));
      a.length = FLEET_TRY(r.get<std::uint64_t>(what.c_str()));
      if (a.type == 8) {
        for (std::uint64_t i = 0; i < a.length; ++i) FLEET_TRY(r.str(what.c_str()));
      } else if (auto sz = scalar_size(a.type)) {
        if (a.length > r.left() / sz) return r.truncated(what + " (array of " + std::to_string(a.length) + ")");
        FLEET_TRY(r.skip(a.length * sz, what.c_str()));
      } else {
        return r.bad("array '" + key + "' has element type " + std::to_string(a.type) + " (nested or unknown)");
      }
      return GgufValue(a);
    }
    default: return r.bad("key '" + key + "' has unknown value type " + std::to_string(type));
  }
}

}  // namespace

std::optional<std::string> GgufHeader::string(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return std::nullopt;
  if (auto* s = std::get_if<std::string>(&it->second)) return *s;
  return std::nullopt;
}

std::optional<std::uint64_t> GgufHeader::integer(const std::string& key) const {
  auto it = metadata.find(key);
  if (it == metadata.end()) return std::nullopt;
  if (auto* u = std::get_if<std::uint64_t>(&it->second)) return *u;
  if (auto* i = std::get_if<std::int64_t>(&it->second); i && *i >= 0) return std::uint64_t(*i);
  return std::nullopt;
}

Result<GgufHeader> parse_gguf(std::span<const std::byte> bytes, std::string_view source) {
  Reader r(bytes, source);
  if (bytes.size() < 4) return r.truncated("the magic");
  if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
    return fail(Errc::parse, std::string(source) + ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  }
  FLEET_TRY(r.skip(4, "the magic"));
  GgufHeader h;
  h.version = FLEET_TRY(r.get<std::uint32_t>("the version"));
  if (h.version < 2 || h.version > 3) {
    return r.bad("version " + std::to_string(h.version) + " (this reader knows 2 and 3)");
  }
  h.tensor_count = FLEET_TRY(r.get<std::uint64_t>("the tensor count"));
  const auto kv_count = FLEET_TRY(r.get<std::uint64_t>("the metadata count"));
  // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes: a count beyond that is a lie.
  if (kv_count > r.left() / 13) return r.truncated(std::to_string(kv_count) + " metadata entries");
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    auto key = FLEET_TRY(r.str(("metadata key " + std::to_string(i)).c_str()));
    auto type = FLEET_TRY(r.get<std::uint32_t>(("type of '" + key + "'").c_str()));
    h.metadata[key] = FLEET_TRY(value(r, type, key));
  }
  if (h.tensor_count > r.left() / 24) return r.truncated(std::to_string(h.tensor_count) + " tensor infos");
  for (std::uint64_t i = 0; i < h.tensor_count; ++i) {
    GgufTensor t;
    t.name = FLEET_TRY(r.str(("tensor name " + std::to_string(i)).c_str()));
    const auto n_dims = FLEET_TRY(r.get<std::uint32_t>(("dimensions of '" + t.name + "'").c_str()));
    if (n_dims == 0 || n_dims > k_max_dims) {
      return r.bad("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions");
    }
    for (std::uint32_t d = 0; d < n_dims; ++d) t.dims.push_back(FLEET_TRY(r.get<std::uint64_t>("a dimension")));
    t.type = FLEET_TRY(r.get<std::uint32_t>(("type of '" + t.name + "'").c_str()));
    t.offset = FLEET_TRY(r.get<std::uint64_t>(("offset of '" + t.name + "'").c_str()));
    h.tensors.push_back(std::move(t));
  }
  return h;
}

Result<GgufHeader> read_gguf(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(Errc::not_found, "cannot open model " + file.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
    ::close(fd);
    return fail(Errc::parse, file.string() + ": empty or unreadable model file");
  }
  void* p = ::mmap(nullptr, std::size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return fail(Errc::io, "cannot map " + file.string() + ": " + std::strerror(errno));
  auto h = parse_gguf({static_cast<const std::byte*>(p), std::size_t(st.st_size)}, file.string());
  ::munmap(p, std::size_t(st.st_size));
  return h;
}

Result<ModelShape> shape_of(const GgufHeader& h, std::string_view source) {
  auto arch = h.string("general.architecture");
  if (!arch) return fail(Errc::invalid_input, std::string(source) + ": no general.architecture in the GGUF metadata");
  auto need = [&](const std::string& key) -> Result<int> {
    auto v = h.integer(*arch + "." + key);
    if (!v || *v == 0 || *v > (1u << 30)) {
      return fail(Errc::invalid_input, std::string(source) + ": GGUF metadata lacks " + *arch + "." + key);
    }
    return int(*v);
  };
  ModelShape s;
  s.name = h.string("general.name").value_or(std::filesystem::path(source).stem().string());
  s.source = std::string(source);
  s.dim = FLEET_TRY(need("embedding_length"));
  s.layers = FLEET_TRY(need("block_count"));
  s.ffn = FLEET_TRY(need("feed_forward_length"));
  s.heads = FLEET_TRY(need("attention.head_count"));
  s.kv_heads = h.integer(*arch + ".attention.head_count_kv").transform([](auto v) { return int(v); }).value_or(s.heads);
  if (auto v = h.integer(*arch + ".vocab_size")) {
    s.vocab = int(*v);
  } else if (auto it = h.metadata.find("tokenizer.ggml.tokens"); it != h.metadata.end()) {
    if (auto* a = std::get_if<GgufArray>(&it->second)) s.vocab = int(a->length);
  }
  if (s.vocab <= 0) {
    return fail(Errc::invalid_input, std::string(source) + ": GGUF metadata has no vocabulary size (" + *arch +
                                         ".vocab_size or tokenizer.ggml.tokens)");
  }
  FLEET_TRY(with_context(check_shape(s), std::string(source)));  // the error names the file (tests/fuzz/gguf_fuzz)
  return s;
}

std::string_view ggml_type_name(std::uint32_t type) {
  static constexpr std::string_view names[] = {"F32",  "F16",  "Q4_0", "Q4_1", "Q4_2?", "Q4_3?", "Q5_0", "Q5_1",
                                               "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",  "Q5_K",  "Q6_K", "Q8_K"};
  return type < std::size(names) ? names[type] : "other";
}

}  // namespace fleet::agent::bench
