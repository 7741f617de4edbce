// Checkpoints: an optimizer's resumable state, optionally with the
// parameters, in one file.
//
// Resuming from (parameters, state) or from (base parameters + UpdateLog
// replayed, state) continues bit-identically to an uninterrupted run: MeZO's
// and KerZOO's noise, KerZOO's r and its range schedule a_t are functions of
// (seed, step) only, so the state is the step counter and the forward-pass
// count plus its extra values: a stateful update rule's per-element state
// (UpdateRuleState::save: element count, update count, the values; 8 bytes
// per value), then what an optimizer adds via save_extra_state /
// load_extra_state (the ZO Fine-tuner's previous scales and L+/L-).
//
// Binary format, version 2 (little-endian; str = u16 length + bytes; f64 =
// IEEE binary64 bits as u64):
//   magic          8 bytes "ZOOPTCKP"
//   version        u32     1 when no span has a shape, else 2 (both read)
//   body_len       u64     bytes of the body
//   body:
//     optimizer    str     optimizer_identity()
//     sampler      str     Sampler::name
//     estimator    str     Estimator::name
//     storage      u8      1 float, 2 double, 3 half, 4 bfloat16
//     seed         u64     the optimizer's seed
//     directions   u32     directions per step
//     step         u64     OptimizerState::step
//     forward      u64     OptimizerState::forward_passes
//     extra_count  u32, then extra_count x f64   OptimizerState::extra
//     has_params   u8      0 or 1; if 1:
//       spans      u32, then per span: name str, size u64,
//                  flags u8 (bit 0 weight decay; bit 1, version 2 only: a
//                  shape follows), [rows u64, cols u64 if bit 1], size
//                  elements as their little-endian storage bits (2, 4 or 8
//                  bytes each). Shapes are recorded for samplers that use
//                  them (LowRankSampler), and must then match on load.
//   crc            u32     CRC-32 (IEEE) of every byte before it
// A corrupt or truncated file throws zoopt::FormatError naming the file, the
// byte offset and the field; a checkpoint written by a differently
// configured optimizer (identity, sampler, estimator, storage, seed,
// directions) or for other parameters (span count, names, sizes, weight-decay
// flags) throws std::invalid_argument naming the field. Loading changes
// nothing unless the whole file is valid and matches.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "zoopt/checkpoint/state.hpp"
#include "zoopt/core/binary_io.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/replay/identity.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt::checkpoint {

/// The newest version written (2 only when a span has a shape).
inline constexpr std::uint32_t format_version = 2;

/// The parsed contents of a checkpoint file.
struct Contents {
  std::string optimizer;
  std::string sampler;
  std::string estimator;
  std::uint8_t storage = 0;
  std::uint64_t seed = 0;
  std::uint32_t directions = 0;
  OptimizerState state;
  bool has_params = false;
  struct Span {
    std::string name;
    std::uint64_t size = 0;
    bool weight_decay = true;
    std::vector<unsigned char> bits;  ///< size * sizeof(T) bytes, little-endian elements
    MatrixShape shape{};              ///< recorded for samplers that use shapes only
  };
  std::vector<Span> spans;
};

namespace detail {

inline constexpr char magic[8] = {'Z', 'O', 'O', 'P', 'T', 'C', 'K', 'P'};

template <class T>
void put_elements(zoopt::detail::bin::Writer& w, std::span<const T> data) {
  for (const T& x : data) {
    const auto b = std::bit_cast<bits_t<T>>(x);
    for (std::size_t k = 0; k < sizeof(T); ++k) w.u8(static_cast<std::uint8_t>(b >> (8 * k)));
  }
}

template <class T>
void get_elements(const std::vector<unsigned char>& bytes, std::span<T> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    bits_t<T> b = 0;
    for (std::size_t k = 0; k < sizeof(T); ++k) {
      b |= static_cast<bits_t<T>>(static_cast<bits_t<T>>(bytes[i * sizeof(T) + k]) << (8 * k));
    }
    out[i] = std::bit_cast<T>(b);
  }
}

template <class Opt>
Contents describe(const Opt& opt, std::uint8_t storage) {
  Contents c;
  c.optimizer = optimizer_identity(opt);
  c.sampler = Opt::sampler_type::name;
  c.estimator = Opt::estimator_type::name;
  c.storage = storage;
  c.state = opt.state();
  const auto s = opt.settings_at(c.state.step);
  c.seed = s.seed;
  c.directions = s.directions;
  return c;
}

}  // namespace detail

/// File image of `c` (format above); the span bits are written as given.
inline std::vector<unsigned char> serialize(const Contents& c) {
  zoopt::detail::bin::Writer body;
  body.str(c.optimizer, "checkpoint optimizer");
  body.str(c.sampler, "checkpoint sampler");
  body.str(c.estimator, "checkpoint estimator");
  body.u8(c.storage);
  body.u64(c.seed);
  body.u32(c.directions);
  body.u64(c.state.step);
  body.u64(c.state.forward_passes);
  zoopt::detail::require(c.state.extra.size() <= 0xFFFFFFFFU, "checkpoint", "state.extra",
                         "has more than 2^32 - 1 values (an update rule's state for a model "
                         "that large does not fit this format)");
  body.u32(static_cast<std::uint32_t>(c.state.extra.size()));
  for (const double v : c.state.extra) body.f64(v);
  body.u8(c.has_params ? 1 : 0);
  bool shaped = false;
  if (c.has_params) {
    body.u32(static_cast<std::uint32_t>(c.spans.size()));
    for (const Contents::Span& s : c.spans) {
      shaped = zoopt::detail::bin::write_span_entry(body, {s.name, s.size, s.weight_decay, s.shape},
                                                    "checkpoint span name") ||
               shaped;
      body.raw(s.bits.data(), s.bits.size());
    }
  }
  return zoopt::detail::bin::framed(detail::magic, shaped ? 2 : 1, body);
}

/// Parses a file image; throws FormatError if it is corrupt or truncated.
inline Contents deserialize(const std::vector<unsigned char>& bytes,
                            const std::string& source = "<memory>") {
  zoopt::detail::bin::Reader r(bytes, source, "checkpoint");
  const std::uint32_t version = r.header(detail::magic, "checkpoint", format_version, 1);
  const std::size_t crc_pos = r.framed_body();
  const std::size_t body_start = r.pos();
  Contents c;
  c.optimizer = r.str("optimizer");
  c.sampler = r.str("sampler");
  c.estimator = r.str("estimator");
  c.storage = r.u8("storage");
  const std::size_t width = c.storage == 2 ? 8 : c.storage == 1 ? 4 : 2;
  if (c.storage < 1 || c.storage > 4) {
    r.fail("corrupt file: unknown storage code " + std::to_string(c.storage), r.pos() - 1);
  }
  c.seed = r.u64("seed");
  c.directions = r.u32("directions");
  c.state.step = r.u64("step");
  c.state.forward_passes = r.u64("forward_passes");
  const std::uint32_t extra = r.u32("extra_count");
  if (extra > (crc_pos - r.pos()) / 8) r.fail("corrupt file: extra_count too large", r.pos() - 4);
  c.state.extra.resize(extra);
  for (std::uint32_t i = 0; i < extra; ++i) c.state.extra[i] = r.f64("extra");
  const std::uint8_t has = r.u8("has_params");
  if (has > 1) r.fail("corrupt file: has_params must be 0 or 1", r.pos() - 1);
  c.has_params = has == 1;
  if (c.has_params) {
    const std::uint32_t spans = r.u32("spans");
    for (std::uint32_t i = 0; i < spans; ++i) {
      auto e = zoopt::detail::bin::read_span_entry(r, version, "corrupt file");
      Contents::Span s{std::move(e.name), e.size, e.weight_decay, {}, e.shape};
      if (s.size > (crc_pos - r.pos()) / width) {
        r.fail("corrupt file: span '" + s.name + "' size " + std::to_string(s.size) +
                   " exceeds the file",
               r.pos() - 9);
      }
      s.bits.resize(static_cast<std::size_t>(s.size) * width);
      r.raw(s.bits.data(), s.bits.size(), "span data");
      c.spans.push_back(std::move(s));
    }
  }
  if (version >= 2 && std::none_of(c.spans.begin(), c.spans.end(),
                                   [](const Contents::Span& s) { return !s.shape.empty(); })) {
    r.fail("corrupt file: version 2 without a span shape (such files are version 1)", 8);
  }
  if (r.pos() != crc_pos) {
    r.fail("corrupt file: body_len says " + std::to_string(crc_pos - body_start) +
               " bytes, fields use " + std::to_string(r.pos() - body_start),
           body_start);
  }
  return c;
}

/// Contents for `opt` and its parameters.
template <class Opt, class T>
Contents capture(const Opt& opt, const ParameterSet<T>& params) {
  Contents c = detail::describe(opt, storage_traits<T>::code);
  c.has_params = true;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::span<T> data = params.span(i);
    zoopt::detail::bin::Writer w;
    detail::put_elements<T>(w, std::span<const T>(data.data(), data.size()));
    const SpanOptions o = params.options(i);
    c.spans.push_back(
        Contents::Span{params.name(i), data.size(), o.weight_decay, std::move(w.bytes()),
                       ShapedSampler<typename Opt::sampler_type> ? o.shape : MatrixShape{}});
  }
  return c;
}

/// Writes optimizer state and parameters to `path`.
template <class Opt, class T>
void save(const std::string& path, const Opt& opt, const ParameterSet<T>& params) {
  zoopt::detail::bin::write_file(path, serialize(capture(opt, params)), "checkpoint");
}
/// Writes optimizer state and a single span of parameters (stored as one
/// span named "params" with weight decay on).
template <class Opt, class T>
void save(const std::string& path, const Opt& opt, std::span<const T> params) {
  ParameterSet<T> set;
  set.add("params", std::span<T>(const_cast<T*>(params.data()), params.size()));
  save(path, opt, set);
}
/// Writes optimizer state only (resume from base parameters + UpdateLog).
/// The storage type is that of the optimizer.
template <class Opt>
void save_state(const std::string& path, const Opt& opt) {
  zoopt::detail::bin::write_file(
      path, serialize(detail::describe(opt, storage_traits<typename Opt::value_type>::code)),
      "checkpoint");
}

/// Throws std::invalid_argument naming the first field of `c` that does
/// not match `opt` (identity, sampler, estimator, storage, seed, directions).
template <class Opt>
void check_matches(const Contents& c, const Opt& opt, const std::string& source) {
  const Contents mine = detail::describe(opt, storage_traits<typename Opt::value_type>::code);
  auto field = [&](bool ok, const char* name, const std::string& theirs, const std::string& ours) {
    zoopt::detail::require(ok, ("checkpoint '" + source + "'").c_str(), name,
                           "is '" + theirs + "' but the optimizer's is '" + ours + "'");
  };
  field(c.optimizer == mine.optimizer, "optimizer", c.optimizer, mine.optimizer);
  field(c.sampler == mine.sampler, "sampler", c.sampler, mine.sampler);
  field(c.estimator == mine.estimator, "estimator", c.estimator, mine.estimator);
  field(c.storage == mine.storage, "storage", std::to_string(c.storage),
        std::to_string(mine.storage));
  field(c.seed == mine.seed, "seed", std::to_string(c.seed), std::to_string(mine.seed));
  field(c.directions == mine.directions, "directions", std::to_string(c.directions),
        std::to_string(mine.directions));
}

/// Restores `opt`'s state from contents `c` (checked against opt).
template <class Opt>
void restore_state(const Contents& c, Opt& opt, const std::string& source = "<memory>") {
  check_matches(c, opt, source);
  opt.set_state(c.state);
}

/// Restores state and parameters; `params` must have the checkpoint's layout.
template <class Opt, class T>
void restore(const Contents& c, Opt& opt, ParameterSet<T>& params,
             const std::string& source = "<memory>") {
  const std::string where = "checkpoint '" + source + "'";
  check_matches(c, opt, source);
  zoopt::detail::require(c.has_params, where.c_str(), "has_params",
                         "is 0: the file holds optimizer state only (use load_state)");
  zoopt::detail::require(c.spans.size() == params.size(), where.c_str(), "spans",
                         "has " + std::to_string(c.spans.size()) + " spans, the parameters " +
                             std::to_string(params.size()));
  for (std::size_t i = 0; i < c.spans.size(); ++i) {
    const auto& s = c.spans[i];
    zoopt::detail::require(
        s.name == params.name(i) && s.size == params.span(i).size() &&
            s.weight_decay == params.options(i).weight_decay,
        where.c_str(), "spans",
        "entry " + std::to_string(i) + " ('" + s.name + "', " + std::to_string(s.size) +
            " elements) does not match parameter span '" + params.name(i) + "' (" +
            std::to_string(params.span(i).size()) + " elements) or its weight-decay flag");
    if constexpr (ShapedSampler<typename Opt::sampler_type>) {
      const MatrixShape mine = params.options(i).shape;
      zoopt::detail::require(s.shape == mine, where.c_str(), "spans",
                             "entry " + std::to_string(i) + " ('" + s.name + "') has shape " +
                                 std::to_string(s.shape.rows) + " x " +
                                 std::to_string(s.shape.cols) + " but the parameter span has " +
                                 std::to_string(mine.rows) + " x " + std::to_string(mine.cols) +
                                 " (the sampler's noise depends on it)");
    }
  }
  opt.set_state(c.state);  // may throw (extra state); parameters untouched then
  for (std::size_t i = 0; i < c.spans.size(); ++i) {
    detail::get_elements<T>(c.spans[i].bits, params.span(i));
  }
}

/// Loads state and parameters written by save().
template <class Opt, class T>
void load(const std::string& path, Opt& opt, ParameterSet<T>& params) {
  restore(deserialize(zoopt::detail::bin::read_file(path, "checkpoint"), path), opt, params, path);
}
/// Loads state and a single span written by save(path, opt, span).
template <class Opt, class T>
void load(const std::string& path, Opt& opt, std::span<T> params) {
  ParameterSet<T> set;
  set.add("params", params);
  load(path, opt, set);
}
/// Loads only the optimizer state (any parameters in the file are ignored).
template <class Opt>
void load_state(const std::string& path, Opt& opt) {
  restore_state(deserialize(zoopt::detail::bin::read_file(path, "checkpoint"), path), opt, path);
}

}  // namespace zoopt::checkpoint
