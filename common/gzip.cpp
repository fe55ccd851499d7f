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

}  // namespace fleet::gzip
