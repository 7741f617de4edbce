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
// The binary format and its reader and writer: update_log_io.hpp.
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

  /// The file image (format in update_log_io.hpp and FORMAT.md).
  [[nodiscard]] std::vector<unsigned char> serialize() const;
  /// Parses a file image; throws FormatError (see the format notes).
  /// `source` names the file in messages.
  static UpdateLog deserialize(const std::vector<unsigned char>& bytes,
                               const std::string& source = "<memory>");

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

#include "zoopt/replay/update_log_io.hpp"  // UpdateLog::serialize, deserialize
