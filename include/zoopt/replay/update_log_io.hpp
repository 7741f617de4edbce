// The update log's file format: UpdateLog::serialize and ::deserialize.
// Included by update_log.hpp; not meant to be included on its own.
//
// Binary format, version 2 (all integers little-endian, f64 = IEEE 754
// binary64 bits as a u64, str = u16 byte length + UTF-8 bytes; the same
// text is in FORMAT.md next to this header):
//
//   magic        8 bytes  "ZOOPTLOG"
//   version      u32      1 when no span has a shape, else 2
//   header_len   u32      byte length of the header body that follows
//   header body:
//     optimizer  str      "mezo", "kerzoo/<kernel>", "zo-finetuner", ...
//     sampler    str      Sampler::name ("gaussian", "rademacher", ...)
//     estimator  str      Estimator::name ("central", "forward")
//     storage    u8       1 float, 2 double, 3 half, 4 bfloat16
//     rounding   u8       1 nearest, 2 stochastic (update-pass rounding)
//     directions u32      default number of coefficients per record (>= 1)
//     seed       u64      default seed
//     spans      u32      number of spans (>= 1), then per span:
//       name     str
//       size     u64      elements (>= 1)
//       flags    u8       bit 0: weight decay applies; bit 1 (version 2
//                         only): a shape follows; other bits 0
//       rows u64, cols u64  -- only with bit 1: the span's matrix shape,
//                              rows * cols = size (samplers that use shapes)
//   header_crc   u32      CRC-32 of every byte before it (magic included)
//   records, each:
//     flags      u8       bit 0: seed follows        (else previous seed)
//                         bit 1: step follows        (else previous step + 1)
//                         bit 2: lr follows          (else previous lr)
//                         bit 3: weight_decay follows (else previous)
//                         bit 4: directions follows  (else previous)
//                         bit 5: scales follow       (else previous scales)
//                         bits 6-7: 0. The value 0xFF marks the end record.
//     seed u64, step u64, lr f64, weight_decay f64, directions u32,
//     scales f64 x spans                          -- each only if flagged
//     coefficients f64 x directions
//     crc        u32      CRC-32 of the record's bytes from flags on
//   end record:
//     0xFF u8, record_count u64, crc u32 (CRC-32 of those 9 bytes)
//   nothing may follow the end record.
// "Previous" for the first record: the header's seed and directions, step
// 2^64 - 1 (so the first step defaults to 0), lr 0, weight_decay 0, all
// scales 1. A steady run costs 1 + 8 n + 4 bytes per step (13 for n = 1).
// CRC-32 is IEEE 802.3 (reflected 0xEDB88320, init and xor-out 0xFFFFFFFF).
//
// Reading checks everything: magic, version, header CRC, each record's CRC,
// reserved bits, counts, the end record and its count; any mismatch or a
// file cut at any byte throws zoopt::FormatError naming the file, the byte
// offset and the field.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/core/binary_io.hpp"
#include "zoopt/replay/update_log.hpp"

namespace zoopt {

inline std::vector<unsigned char> UpdateLog::serialize() const {
  detail::bin::Writer w;
  bool shaped = false;
  for (const SpanInfo& s : header_.spans) shaped = shaped || !s.shape.empty();
  w.raw(magic, 8);
  w.u32(shaped ? 2 : 1);
  detail::bin::Writer body;
  body.str(header_.optimizer, "UpdateLog header optimizer");
  body.str(header_.sampler, "UpdateLog header sampler");
  body.str(header_.estimator, "UpdateLog header estimator");
  body.u8(header_.storage);
  body.u8(static_cast<std::uint8_t>(header_.rounding));
  body.u32(header_.directions);
  body.u64(header_.seed);
  body.u32(static_cast<std::uint32_t>(header_.spans.size()));
  for (const SpanInfo& s : header_.spans) {
    detail::bin::write_span_entry(body, {s.name, s.size, s.weight_decay, s.shape},
                                  "UpdateLog span name");
  }
  w.u32(static_cast<std::uint32_t>(body.size()));
  w.raw(body.bytes().data(), body.size());
  w.u32(w.crc_from(0));
  Prev prev = initial();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Step s = (*this)[i];
    const std::size_t start = w.size();
    std::uint8_t flags = 0;
    if (s.seed != prev.seed) flags |= 1u;
    if (s.step != prev.step + 1) flags |= 2u;
    if (!same_bits(s.lr, prev.lr)) flags |= 4u;
    if (!same_bits(s.weight_decay, prev.weight_decay)) flags |= 8u;
    if (s.coefficients.size() != prev.directions) flags |= 16u;
    if (!same_bits(s.scales, prev.scales)) flags |= 32u;
    w.u8(flags);
    if ((flags & 1u) != 0u) w.u64(s.seed);
    if ((flags & 2u) != 0u) w.u64(s.step);
    if ((flags & 4u) != 0u) w.f64(s.lr);
    if ((flags & 8u) != 0u) w.f64(s.weight_decay);
    if ((flags & 16u) != 0u) w.u32(static_cast<std::uint32_t>(s.coefficients.size()));
    if ((flags & 32u) != 0u) {
      for (const double v : s.scales) w.f64(v);
    }
    for (const double c : s.coefficients) w.f64(c);
    w.u32(w.crc_from(start));
    prev = Prev{
        s.seed,  s.step, s.lr, s.weight_decay, static_cast<std::uint32_t>(s.coefficients.size()),
        s.scales};
  }
  const std::size_t end = w.size();
  w.u8(0xff);
  w.u64(entries_.size());
  w.u32(w.crc_from(end));
  return std::move(w.bytes());
}

inline UpdateLog UpdateLog::deserialize(const std::vector<unsigned char>& bytes,
                                        const std::string& source) {
  detail::bin::Reader r(bytes, source, "update log");
  const std::uint32_t version = r.header(magic, "update log", format_version, 1);
  const std::uint32_t hlen = r.u32("header_len");
  r.need(static_cast<std::size_t>(hlen) + 4, "header");
  const std::size_t body_start = r.pos();
  const std::uint32_t want = detail::bin::crc32(r.at(0), body_start + hlen);
  Header h;
  h.optimizer = r.str("header optimizer");
  h.sampler = r.str("header sampler");
  h.estimator = r.str("header estimator");
  h.storage = r.u8("header storage");
  const std::uint8_t rounding = r.u8("header rounding");
  h.rounding = static_cast<Rounding>(rounding);
  h.directions = r.u32("header directions");
  h.seed = r.u64("header seed");
  const std::uint32_t spans = r.u32("header spans");
  if (static_cast<std::uint64_t>(spans) * 11 > hlen)
    r.fail("corrupt header: span count " + std::to_string(spans) + " does not fit the header",
           body_start);
  for (std::uint32_t i = 0; i < spans; ++i) {
    auto e = detail::bin::read_span_entry(r, version, "corrupt header");
    SpanInfo s{std::move(e.name), e.size, e.weight_decay, e.shape};
    h.spans.push_back(std::move(s));
  }
  if (version >= 2 && std::none_of(h.spans.begin(), h.spans.end(),
                                   [](const SpanInfo& s) { return !s.shape.empty(); })) {
    r.fail("corrupt header: version 2 without a span shape (such logs are version 1)", 8);
  }
  if (r.pos() != body_start + hlen) {
    r.fail("corrupt header: header_len says " + std::to_string(hlen) + " bytes, fields use " +
               std::to_string(r.pos() - body_start),
           body_start);
  }
  const std::size_t crc_at = r.pos();
  if (r.u32("header_crc") != want) r.fail("corrupt header: CRC mismatch", crc_at);
  try {
    h.check();
  } catch (const std::invalid_argument& e) {
    r.fail(std::string("corrupt header: ") + e.what(), body_start);
  }
  UpdateLog log(std::move(h));
  const std::size_t nspans = log.header_.spans.size();
  Prev prev = log.initial();
  std::vector<double> coefs;
  std::vector<double> scales(prev.scales.begin(), prev.scales.end());
  for (;;) {
    const std::size_t start = r.pos();
    if (r.remaining() == 0) r.fail("truncated file: the end record is missing", start);
    const std::uint8_t flags = r.u8("record flags");
    if (flags == 0xff) {
      const std::uint64_t count = r.u64("end record count");
      const std::uint32_t crc = detail::bin::crc32(r.at(start), r.pos() - start);
      const std::size_t crc_pos = r.pos();
      if (r.u32("end record crc") != crc) r.fail("corrupt end record: CRC mismatch", crc_pos);
      if (count != log.size()) {
        r.fail("corrupt end record: it counts " + std::to_string(count) +
                   " records, the file has " + std::to_string(log.size()),
               start);
      }
      if (r.remaining() != 0) r.fail("unexpected bytes after the end record", r.pos());
      break;
    }
    const std::string which = "record " + std::to_string(log.size());
    if ((flags & 0xc0u) != 0u) r.fail("corrupt " + which + ": reserved flag bits set", start);
    const std::uint64_t seed = (flags & 1u) != 0u ? r.u64("record seed") : prev.seed;
    const std::uint64_t step = (flags & 2u) != 0u ? r.u64("record step") : prev.step + 1;
    const double lr = (flags & 4u) != 0u ? r.f64("record lr") : prev.lr;
    const double wd = (flags & 8u) != 0u ? r.f64("record weight_decay") : prev.weight_decay;
    const std::uint32_t n = (flags & 16u) != 0u ? r.u32("record directions") : prev.directions;
    if (n == 0 || n > r.remaining() / 8) {
      r.fail("corrupt or truncated " + which + ": " + std::to_string(n) + " directions", start);
    }
    if ((flags & 32u) != 0u) {
      for (std::size_t k = 0; k < nspans; ++k) scales[k] = r.f64("record scales");
    }
    coefs.resize(n);
    for (std::uint32_t k = 0; k < n; ++k) coefs[k] = r.f64("record coefficients");
    const std::uint32_t crc = detail::bin::crc32(r.at(start), r.pos() - start);
    const std::size_t crc_pos = r.pos();
    if (r.u32("record crc") != crc) r.fail("corrupt " + which + ": CRC mismatch", crc_pos);
    try {
      log.append(seed, step, lr, wd, coefs, scales);
    } catch (const std::invalid_argument& e) {
      r.fail("corrupt " + which + ": " + e.what(), start);
    }
    const Step s = log[log.size() - 1];
    prev = Prev{s.seed, s.step, s.lr, s.weight_decay, n, s.scales};
  }
  return log;
}

}  // namespace zoopt
