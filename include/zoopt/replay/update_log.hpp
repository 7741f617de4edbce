// UpdateLog: a ZO fine-tuning run as a few numbers per step.
//
// A ZO step's update is theta <- theta0 - lr (sum_i c_i s z_i + lambda theta0)
// where z_i is regenerated from (seed, step, i) and s is the span's scale, so
// the whole run is determined by the base parameters plus, per step, the
// seed, the step number, lr, the weight decay lambda, the n coefficients c_i
// (and the per-span scales when an optimizer sets them). zoopt::replay()
// applies a log onto the base parameters and reproduces the fine-tuned
// parameters bit-exactly (see replay.hpp).
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
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/callbacks/callbacks.hpp"
#include "zoopt/core/binary_io.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/replay/identity.hpp"
#include "zoopt/sampler/noise.hpp"

namespace zoopt {

/// The record of a run's updates. Memory: 56 bytes per step plus 8 bytes per
/// coefficient (and 8 per span for each step whose scales differ from the
/// previous step's).
class UpdateLog {
 public:
  /// The newest version written: 2 when some span has a shape, else 1
  /// (then the bytes are those of every earlier zoopt). Both are read.
  static constexpr std::uint32_t format_version = 2;

  /// One span of the parameters the log applies to.
  struct SpanInfo {
    std::string name;
    std::uint64_t size = 0;
    bool weight_decay = true;
    /// Recorded only for samplers that use shapes (ShapedSampler); {0, 0}
    /// otherwise.
    MatrixShape shape{};
    friend bool operator==(const SpanInfo&, const SpanInfo&) = default;
  };

  /// What a log applies to and how it was made.
  struct Header {
    std::string optimizer;                  ///< optimizer_identity() of the recording optimizer
    std::string sampler;                    ///< Sampler::name
    std::string estimator;                  ///< Estimator::name
    std::uint8_t storage = 0;               ///< storage_traits<T>::code
    Rounding rounding = Rounding::nearest;  ///< nearest or stochastic
    std::uint32_t directions = 1;           ///< default coefficients per step
    std::uint64_t seed = 0;                 ///< default seed
    std::vector<SpanInfo> spans;            ///< the parameter layout, in order

    [[nodiscard]] std::uint64_t elements() const noexcept {
      std::uint64_t n = 0;
      for (const SpanInfo& s : spans) n += s.size;
      return n;
    }
    friend bool operator==(const Header&, const Header&) = default;

    /// Throws std::invalid_argument naming the first invalid field.
    void check() const {
      detail::require(storage >= 1 && storage <= 4, "UpdateLog::Header", "storage",
                      "must be 1 (float), 2 (double), 3 (half) or 4 (bfloat16), got " +
                          std::to_string(storage));
      detail::require(rounding == Rounding::nearest || rounding == Rounding::stochastic,
                      "UpdateLog::Header", "rounding", "must be nearest or stochastic");
      detail::require(directions >= 1, "UpdateLog::Header", "directions", "must be >= 1");
      detail::require(!spans.empty(), "UpdateLog::Header", "spans", "must not be empty");
      for (const SpanInfo& s : spans) {
        detail::require(s.size >= 1, "UpdateLog::Header", "spans",
                        "entry '" + s.name + "' must have size >= 1");
        detail::require(s.shape.empty() || s.shape.fits(s.size), "UpdateLog::Header", "spans",
                        "entry '" + s.name + "' has a shape whose rows * cols is not its size");
      }
    }
  };

  /// One logged step (views into the log; valid until it is modified).
  struct Step {
    std::uint64_t seed = 0;
    std::uint64_t step = 0;
    double lr = 0.0;
    double weight_decay = 0.0;
    std::span<const double> coefficients;  ///< c_i, one per direction
    std::span<const double> scales;        ///< per-span scale s, one per span
  };

  /// Calls log.record(opt) after every step of optimize().
  template <class Opt>
  struct Recorder {
    UpdateLog* log;
    const Opt* opt;
    void on_step(const StepReport&) { log->record(*opt); }
  };

  UpdateLog() = default;
  /// An empty log for `header`; throws std::invalid_argument if it is invalid.
  explicit UpdateLog(Header header) : header_(std::move(header)) {
    header_.check();
    ones_.assign(header_.spans.size(), 1.0);
  }

  /// An empty log for `opt` stepping `params` (layout, names, weight-decay
  /// flags, sampler, estimator, storage type, rounding, seed, directions).
  template <class Opt, class T>
  static UpdateLog for_optimizer(const Opt& opt, const ParameterSet<T>& params) {
    Header h = base_header(opt);
    h.storage = storage_traits<T>::code;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const SpanOptions o = params.options(i);
      h.spans.push_back(
          SpanInfo{params.name(i), params.span(i).size(), o.weight_decay,
                   ShapedSampler<typename Opt::sampler_type> ? o.shape : MatrixShape{}});
    }
    return UpdateLog(std::move(h));
  }
  /// An empty log for `opt` stepping a single span (recorded as one span
  /// named "params", weight decay on).
  template <class Opt, class T>
  static UpdateLog for_optimizer(const Opt& opt, std::span<const T> params) {
    Header h = base_header(opt);
    h.storage = storage_traits<std::remove_const_t<T>>::code;
    h.spans.push_back(SpanInfo{"params", params.size(), true});
    return UpdateLog(std::move(h));
  }

  /// Appends one step. `scales` empty means all 1. Throws
  /// std::invalid_argument naming the argument if `coefficients` is empty,
  /// `scales` has the wrong length, or a value is not finite.
  void append(std::uint64_t seed, std::uint64_t step, double lr, double weight_decay,
              std::span<const double> coefficients, std::span<const double> scales = {}) {
    detail::require(!header_.spans.empty(), "UpdateLog::append", "log",
                    "has no header (construct it with a Header or for_optimizer())");
    detail::require(!coefficients.empty(), "UpdateLog::append", "coefficients",
                    "must not be empty");
    detail::require(
        scales.empty() || scales.size() == header_.spans.size(), "UpdateLog::append", "scales",
        "must be empty or have one entry per span (" + std::to_string(header_.spans.size()) + ")");
    detail::require(step < detail::max_steps, "UpdateLog::append", "step",
                    "must be < 2^32 (the noise key holds 32 bits of the step)");
    detail::require(std::isfinite(lr), "UpdateLog::append", "lr", "must be finite");
    detail::require(std::isfinite(weight_decay), "UpdateLog::append", "weight_decay",
                    "must be finite");
    for (const double c : coefficients) {
      detail::require(std::isfinite(c), "UpdateLog::append", "coefficients", "must be finite");
    }
    Entry e{seed,         step,          lr,
            weight_decay, coefs_.size(), static_cast<std::uint32_t>(coefficients.size()),
            npos};
    const std::span<const double> eff = scales.empty() ? std::span<const double>(ones_) : scales;
    for (const double v : eff) {
      detail::require(std::isfinite(v), "UpdateLog::append", "scales", "must be finite");
    }
    coefs_.insert(coefs_.end(), coefficients.begin(), coefficients.end());
    const std::span<const double> prev =
        entries_.empty() ? std::span<const double>(ones_) : scales_of(entries_.back());
    if (same_bits(eff, prev)) {
      e.scale_at = entries_.empty() ? npos : entries_.back().scale_at;
    } else if (!same_bits(eff, ones_)) {
      e.scale_at = scales_.size();
      scales_.insert(scales_.end(), eff.begin(), eff.end());
    }
    entries_.push_back(e);
  }

  /// Records the step `opt` has just taken: step_count() - 1 with its
  /// settings_at(), last_coefficients() and last_scales(). Throws
  /// std::logic_error if opt has taken no step or that step is already the
  /// last record.
  template <class Opt>
  void record(const Opt& opt) {
    if (opt.step_count() == 0) {
      throw LogicError("zoopt: UpdateLog::record: the optimizer has not taken a step");
    }
    const std::uint64_t t = opt.step_count() - 1;
    if (!entries_.empty() && entries_.back().step == t) {
      throw LogicError("zoopt: UpdateLog::record: step " + std::to_string(t) +
                       " is already the last record");
    }
    const auto s = opt.settings_at(t);
    std::span<const double> scales;
    if constexpr (requires { opt.last_scales(); }) scales = opt.last_scales();
    append(s.seed, t, s.lr, s.weight_decay, opt.last_coefficients(), scales);
  }

  /// An optimize() callback that records every step of `opt`.
  template <class Opt>
  Recorder<Opt> recorder(const Opt& opt) {
    return Recorder<Opt>{this, &opt};
  }

  [[nodiscard]] const Header& header() const noexcept { return header_; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  /// Record i (0-based); throws std::out_of_range past the end.
  [[nodiscard]] Step operator[](std::size_t i) const {
    const Entry& e = entries_.at(i);
    return Step{e.seed,
                e.step,
                e.lr,
                e.weight_decay,
                std::span<const double>(coefs_.data() + e.coef_at, e.coef_count),
                scales_of(e)};
  }
  /// Keeps the first n records (resuming from an earlier checkpoint).
  void truncate(std::size_t n) {
    if (n >= entries_.size()) return;
    const Entry& next = entries_[n];
    coefs_.resize(next.coef_at);
    std::size_t keep_scales = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (entries_[i].scale_at != npos) keep_scales = entries_[i].scale_at + header_.spans.size();
    }
    scales_.resize(keep_scales);
    entries_.resize(n);
  }
  friend bool operator==(const UpdateLog& a, const UpdateLog& b) {
    if (!(a.header_ == b.header_) || a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      const Step x = a[i];
      const Step y = b[i];
      if (x.seed != y.seed || x.step != y.step || !same_bits(x.lr, y.lr) ||
          !same_bits(x.weight_decay, y.weight_decay) ||
          !same_bits(x.coefficients, y.coefficients) || !same_bits(x.scales, y.scales)) {
        return false;
      }
    }
    return true;
  }

  /// The file image (format above).
  [[nodiscard]] std::vector<unsigned char> serialize() const {
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
      body.str(s.name, "UpdateLog span name");
      body.u64(s.size);
      body.u8(static_cast<std::uint8_t>((s.weight_decay ? 1 : 0) | (s.shape.empty() ? 0 : 2)));
      if (!s.shape.empty()) {
        body.u64(s.shape.rows);
        body.u64(s.shape.cols);
      }
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

  /// Parses a file image; throws FormatError (see the format notes).
  /// `source` names the file in messages.
  static UpdateLog deserialize(const std::vector<unsigned char>& bytes,
                               const std::string& source = "<memory>") {
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
      SpanInfo s;
      s.name = r.str("span name");
      s.size = r.u64("span size");
      const std::uint8_t f = r.u8("span flags");
      const unsigned allowed = version >= 2 ? 3u : 1u;
      if ((f & ~allowed) != 0u) r.fail("corrupt header: reserved span flag bits set", r.pos() - 1);
      s.weight_decay = (f & 1u) != 0u;
      if ((f & 2u) != 0u) {
        s.shape.rows = r.u64("span rows");
        s.shape.cols = r.u64("span cols");
        if (!s.shape.fits(s.size))
          r.fail("corrupt header: span '" + s.name + "' shape does not match its size",
                 r.pos() - 16);
      }
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

  /// Writes the log to `path`; FormatError if the file cannot be written.
  void save(const std::string& path) const {
    detail::bin::write_file(path, serialize(), "update log");
  }
  /// Reads a log written by save(); FormatError if it is corrupt or truncated.
  static UpdateLog load(const std::string& path) {
    return deserialize(detail::bin::read_file(path, "update log"), path);
  }

 private:
  static constexpr char magic[8] = {'Z', 'O', 'O', 'P', 'T', 'L', 'O', 'G'};
  static constexpr std::size_t npos = ~std::size_t{0};

  struct Entry {
    std::uint64_t seed;
    std::uint64_t step;
    double lr;
    double weight_decay;
    std::size_t coef_at;
    std::uint32_t coef_count;
    std::size_t scale_at;  // npos: all ones
  };
  struct Prev {
    std::uint64_t seed;
    std::uint64_t step;
    double lr;
    double weight_decay;
    std::uint32_t directions;
    std::span<const double> scales;
  };

  template <class Opt>
  static Header base_header(const Opt& opt) {
    Header h;
    h.optimizer = optimizer_identity(opt);
    h.sampler = Opt::sampler_type::name;
    h.estimator = Opt::estimator_type::name;
    h.rounding = backend_rounding(opt);
    const auto s = opt.settings_at(opt.step_count());
    h.directions = s.directions;
    h.seed = s.seed;
    return h;
  }

  [[nodiscard]] Prev initial() const {
    return Prev{header_.seed, ~std::uint64_t{0}, 0.0, 0.0, header_.directions, ones_};
  }
  [[nodiscard]] std::span<const double> scales_of(const Entry& e) const {
    if (e.scale_at == npos) return ones_;
    return std::span<const double>(scales_.data() + e.scale_at, header_.spans.size());
  }
  static bool same_bits(double a, double b) {
    return std::bit_cast<std::uint64_t>(a) == std::bit_cast<std::uint64_t>(b);
  }
  static bool same_bits(std::span<const double> a, std::span<const double> b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_bits(a[i], b[i])) return false;
    }
    return true;
  }

  Header header_;
  std::vector<double> ones_;
  std::vector<Entry> entries_;
  std::vector<double> coefs_;
  std::vector<double> scales_;
};

}  // namespace zoopt
