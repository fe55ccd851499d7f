#include "common/gzip.hpp"

#include <zlib.h>

#include <array>

namespace fleet::gzip {

Result<std::string> decompress(std::string_view compressed) {
  z_stream zs{};
  // 16 + MAX_WBITS: expect a gzip header, not a raw zlib stream.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return fail(Errc::io, "zlib: cannot initialise");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  std::string out;
  std::array<char, 1 << 15> buf{};
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = reinterpret_cast<Bytef*>(buf.data());
    zs.avail_out = static_cast<uInt>(buf.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf.data(), buf.size() - zs.avail_out);
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) break;
  }
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return fail(Errc::parse, "not a complete gzip stream");
  return out;
}

Result<std::string> compress(std::string_view data) {
  z_stream zs{};
  // 16 + MAX_WBITS: write a gzip header and trailer, not a raw zlib stream.
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return fail(Errc::io, "zlib: cannot initialise");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return fail(Errc::io, "zlib: cannot compress (" + std::to_string(rc) + ")");
  return out;
}

}  // namespace fleet::gzip
