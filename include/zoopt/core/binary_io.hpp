// Little-endian byte encoding, CRC-32, the header check and file helpers
// shared by zoopt's three file formats: update logs, checkpoints and learned
// perturbation models.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <ios>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/params/matrix_shape.hpp"

namespace zoopt {

/// Thrown when a zoopt file (update log, checkpoint, learned model) is
/// corrupt, truncated, of an unknown version, or cannot be read or written.
/// The message names the file (or "<memory>"), the byte offset and the field.
class FormatError : public StdError<std::runtime_error> {
 public:
  using StdError<std::runtime_error>::StdError;
};

namespace detail::bin {

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial value and
/// final xor 0xFFFFFFFF): crc32("123456789") = 0xCBF43926.
inline std::uint32_t crc32(const unsigned char* p, std::size_t n, std::uint32_t crc = 0) {
  static constexpr auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) != 0u ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

/// Appends little-endian values to a byte buffer.
class Writer {
 public:
  std::vector<unsigned char>& bytes() noexcept { return buf_; }
  [[nodiscard]] std::size_t size() const noexcept { return buf_.size(); }

  void u8(std::uint8_t v) { buf_.push_back(v); }
  void u16(std::uint16_t v) { le(v); }
  void u32(std::uint32_t v) { le(v); }
  void u64(std::uint64_t v) { le(v); }
  void f64(double v) { le(std::bit_cast<std::uint64_t>(v)); }
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  /// u16 length + bytes; throws std::invalid_argument over 65535 bytes.
  void str(std::string_view s, const char* field) {
    if (s.size() > 0xffffu) {
      throw InvalidArgument(std::string("zoopt: ") + field + " is longer than 65535 bytes");
    }
    u16(static_cast<std::uint16_t>(s.size()));
    raw(s.data(), s.size());
  }
  /// CRC-32 of bytes [from, size()).
  [[nodiscard]] std::uint32_t crc_from(std::size_t from) const {
    return crc32(buf_.data() + from, buf_.size() - from);
  }

 private:
  template <class U>
  void le(U v) {
    for (std::size_t i = 0; i < sizeof(U); ++i)
      buf_.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  std::vector<unsigned char> buf_;
};

/// Reads little-endian values from a byte buffer; every read names its field
/// so a short buffer gives "truncated at byte N while reading <field>".
/// Errors are thrown as E (a FormatError or a type derived from it).
template <class E = FormatError>
class Reader {
  static_assert(std::is_base_of_v<FormatError, E>, "zoopt: Reader errors derive from FormatError");

 public:
  Reader(std::span<const unsigned char> buf, std::string source, const char* kind)
      : buf_(buf), source_(std::move(source)), kind_(kind) {}

  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return buf_.size() - pos_; }
  [[nodiscard]] const unsigned char* at(std::size_t p) const noexcept { return buf_.data() + p; }

  std::uint8_t u8(const char* field) { return le<std::uint8_t>(field); }
  std::uint16_t u16(const char* field) { return le<std::uint16_t>(field); }
  std::uint32_t u32(const char* field) { return le<std::uint32_t>(field); }
  std::uint64_t u64(const char* field) { return le<std::uint64_t>(field); }
  double f64(const char* field) { return std::bit_cast<double>(le<std::uint64_t>(field)); }
  void raw(void* out, std::size_t n, const char* field) {
    need(n, field);
    std::memcpy(out, buf_.data() + pos_, n);
    pos_ += n;
  }
  std::string str(const char* field) {
    const std::uint16_t n = u16(field);
    need(n, field);
    std::string s(reinterpret_cast<const char*>(buf_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  /// Reads and checks the 8-byte magic and the u32 format version that
  /// every zoopt file starts with (`name` is the file kind in the message);
  /// versions oldest..newest are accepted. Returns the version.
  std::uint32_t header(const char* magic, const char* name, std::uint32_t newest,
                       std::uint32_t oldest = 0) {
    if (oldest == 0) oldest = newest;
    char m[8];
    raw(m, 8, "magic");
    if (std::memcmp(m, magic, 8) != 0) {
      fail(std::string("not a zoopt ") + name + " (bad magic; expected \"" + std::string(magic, 8) +
               "\")",
           0);
    }
    const std::uint32_t v = u32("version");
    if (v < oldest || v > newest) {
      fail("unsupported format version " + std::to_string(v) + " (this zoopt reads " +
               (oldest == newest ? std::to_string(newest)
                                 : std::to_string(oldest) + " to " + std::to_string(newest)) +
               ")",
           8);
    }
    return v;
  }
  /// For a framed file (see framed()), after header(): reads the u64 body
  /// length and checks that exactly the body and its CRC-32 follow and that
  /// the CRC matches, before anything in the body is parsed. Returns the
  /// offset where the body ends (the CRC's offset).
  std::size_t framed_body() {
    const std::size_t length_at = pos_;
    const std::uint64_t body_len = u64("body_len");
    if (body_len > remaining() || remaining() - body_len < 4) {
      fail("truncated file: body_len says " + std::to_string(body_len) + " bytes plus a CRC, " +
               std::to_string(remaining()) + " left",
           length_at);
    }
    if (remaining() - body_len > 4) {
      fail("unexpected bytes after the CRC", static_cast<std::size_t>(pos_ + body_len + 4));
    }
    const std::size_t crc_pos = pos_ + static_cast<std::size_t>(body_len);
    std::uint32_t stored = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      stored |= static_cast<std::uint32_t>(buf_[crc_pos + k]) << (8 * k);
    }
    if (crc32(buf_.data(), crc_pos) != stored) fail("corrupt file: CRC mismatch", crc_pos);
    return crc_pos;
  }
  /// Throws E "zoopt: <kind> '<source>': <what> (at byte <offset>)".
  [[noreturn]] void fail(const std::string& what, std::size_t offset) const {
    throw E(std::string("zoopt: ") + kind_ + " '" + source_ + "': " + what + " (at byte " +
            std::to_string(offset) + ")");
  }
  void need(std::size_t n, const char* field) const {
    if (remaining() < n) {
      fail(std::string("truncated file: ") + std::to_string(n) + " bytes needed for " + field +
               ", " + std::to_string(remaining()) + " left",
           pos_);
    }
  }

 private:
  template <class U>
  U le(const char* field) {
    need(sizeof(U), field);
    U v = 0;
    for (std::size_t i = 0; i < sizeof(U); ++i)
      v |= static_cast<U>(static_cast<U>(buf_[pos_ + i]) << (8 * i));
    pos_ += sizeof(U);
    return v;
  }
  std::span<const unsigned char> buf_;
  std::string source_;
  const char* kind_;
  std::size_t pos_ = 0;
};

/// The frame of checkpoint and learned-model files: 8-byte magic, u32
/// version, u64 body length, the body, and the CRC-32 of every byte before
/// it (Reader::framed_body checks it).
inline std::vector<unsigned char> framed(const char* magic, std::uint32_t version, Writer& body) {
  Writer w;
  w.raw(magic, 8);
  w.u32(version);
  w.u64(body.size());
  w.raw(body.bytes().data(), body.size());
  w.u32(w.crc_from(0));
  return std::move(w.bytes());
}

/// One span's entry in an update log or a checkpoint: name, size, and flags
/// (bit 0: weight decay; bit 1, format version 2 only: the matrix shape
/// follows as rows u64, cols u64).
struct SpanEntry {
  std::string name;
  std::uint64_t size = 0;
  bool weight_decay = true;
  MatrixShape shape{};
};

/// Writes a span entry; returns true when it carries a shape (the file is
/// then version 2).
inline bool write_span_entry(Writer& w, const SpanEntry& s, const char* name_field) {
  w.str(s.name, name_field);
  w.u64(s.size);
  w.u8(static_cast<std::uint8_t>((s.weight_decay ? 1 : 0) | (s.shape.empty() ? 0 : 2)));
  if (s.shape.empty()) return false;
  w.u64(s.shape.rows);
  w.u64(s.shape.cols);
  return true;
}

/// Reads a span entry of a file of format `version`; `corrupt` starts the
/// messages of invalid flags or shapes ("corrupt header", "corrupt file").
template <class E>
SpanEntry read_span_entry(Reader<E>& r, std::uint32_t version, const char* corrupt) {
  SpanEntry s;
  s.name = r.str("span name");
  s.size = r.u64("span size");
  const std::uint8_t f = r.u8("span flags");
  const unsigned allowed = version >= 2 ? 3u : 1u;
  if ((f & ~allowed) != 0u) {
    r.fail(std::string(corrupt) + ": reserved span flag bits set", r.pos() - 1);
  }
  s.weight_decay = (f & 1u) != 0u;
  if ((f & 2u) != 0u) {
    s.shape.rows = r.u64("span rows");
    s.shape.cols = r.u64("span cols");
    if (!s.shape.fits(s.size)) {
      r.fail(std::string(corrupt) + ": span '" + s.name + "' shape does not match its size",
             r.pos() - 16);
    }
  }
  return s;
}

/// Whole file into memory; E if it cannot be opened or read.
template <class E = FormatError>
std::vector<unsigned char> read_file(const std::string& path, const char* kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw E(std::string("zoopt: ") + kind + " '" + path + "': cannot open for reading");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (in.bad()) throw E(std::string("zoopt: ") + kind + " '" + path + "': read error");
  return bytes;
}

/// Writes the buffer to `path` (truncating); E on failure.
template <class E = FormatError>
void write_file(const std::string& path, std::span<const unsigned char> bytes, const char* kind) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw E(std::string("zoopt: ") + kind + " '" + path + "': cannot open for writing");
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.flush();
  if (!out) throw E(std::string("zoopt: ") + kind + " '" + path + "': write error");
}

}  // namespace detail::bin
}  // namespace zoopt
