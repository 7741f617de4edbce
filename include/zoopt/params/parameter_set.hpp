// Parameters: one contiguous span, or an ordered list of named spans (the
// tensors of a model). Every element has a global index = the offset of its
// span (sum of the sizes of the spans before it) + its position in the span.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/params/matrix_shape.hpp"

namespace zoopt {

/// What a backend needs to know about one span: where it lives, its global
/// offset, whether weight decay applies, a per-span perturbation scale (1
/// except for block-scaled samplers such as the ZO Fine-tuner's) and its
/// matrix shape (read by samplers that use it, sampler/low_rank.hpp).
template <class T>
struct SpanView {
  T* data = nullptr;
  std::size_t size = 0;
  std::uint64_t offset = 0;
  bool weight_decay = true;
  double scale = 1.0;
  MatrixShape shape{};
};

/// Options of one span in a ParameterSet.
struct SpanOptions {
  /// Apply the optimizer's weight decay to this span (false for biases and
  /// norms, the usual opt-out).
  bool weight_decay = true;
  /// The span as a row-major rows x cols matrix (default: none). Only
  /// samplers that use shapes read it (LowRankSampler); rows * cols must be
  /// the span's size. A tensor of more dimensions is usually given as
  /// (size(0), numel / size(0)), as zoopt::torch::bind does.
  MatrixShape shape{};
};

/// An ordered list of named, non-overlapping spans. The set only refers to
/// the user's memory; it never copies or owns parameters.
template <class T>
class ParameterSet {
 public:
  ParameterSet() = default;

  /// Appends a span. Throws std::invalid_argument if the name is empty or
  /// already used, the span is empty, it overlaps a span already added, or
  /// options.shape is given and rows * cols differs from its size.
  ParameterSet& add(std::string name, std::span<T> data, SpanOptions options = {}) {
    detail::require(!name.empty(), "ParameterSet::add", "name", "must not be empty");
    detail::require(!data.empty(), "ParameterSet::add", "data",
                    "(span '" + name + "') must not be empty");
    const MatrixShape shape = options.shape;
    detail::require(shape.empty() || shape.fits(data.size()), "ParameterSet::add", "options.shape",
                    "(span '" + name + "') is " + std::to_string(shape.rows) + " x " +
                        std::to_string(shape.cols) + " but the span has " +
                        std::to_string(data.size()) + " elements");
    const auto lo = reinterpret_cast<std::uintptr_t>(data.data());
    const auto hi = lo + data.size_bytes();
    for (std::size_t i = 0; i < views_.size(); ++i) {
      detail::require(names_[i] != name, "ParameterSet::add", "name",
                      "'" + name + "' is already in the set");
      const auto vlo = reinterpret_cast<std::uintptr_t>(views_[i].data);
      const auto vhi = vlo + views_[i].size * sizeof(T);
      detail::require(hi <= vlo || lo >= vhi, "ParameterSet::add", "data",
                      "(span '" + name + "') overlaps span '" + names_[i] + "'");
    }
    views_.push_back(
        SpanView<T>{data.data(), data.size(), total_, options.weight_decay, 1.0, shape});
    names_.push_back(std::move(name));
    total_ += data.size();
    return *this;
  }

  [[nodiscard]] std::size_t size() const noexcept { return views_.size(); }
  [[nodiscard]] bool empty() const noexcept { return views_.empty(); }
  /// Total element count over all spans.
  [[nodiscard]] std::uint64_t elements() const noexcept { return total_; }
  [[nodiscard]] const std::string& name(std::size_t i) const { return names_.at(i); }
  [[nodiscard]] std::span<T> span(std::size_t i) const {
    return {views_.at(i).data, views_.at(i).size};
  }
  [[nodiscard]] const SpanOptions options(std::size_t i) const {
    return SpanOptions{views_.at(i).weight_decay, views_.at(i).shape};
  }
  /// Index of the span called `name`; throws std::out_of_range if absent.
  [[nodiscard]] std::size_t index_of(const std::string& name) const {
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return i;
    }
    throw OutOfRange("ParameterSet: no span named '" + name + "'");
  }
  /// The backend view of all spans, in order of increasing offset.
  [[nodiscard]] std::span<SpanView<T>> views() noexcept { return views_; }
  [[nodiscard]] std::span<const SpanView<T>> views() const noexcept { return views_; }

  /// Calls f(name, span) for every span in order.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < views_.size(); ++i) {
      std::invoke(f, names_[i], std::span<T>(views_[i].data, views_[i].size));
    }
  }

 private:
  std::vector<SpanView<T>> views_;
  std::vector<std::string> names_;
  std::uint64_t total_ = 0;
};

/// Copies every span of `params` into `flat` at its global offset
/// (flat.size() >= params.elements()).
template <class T>
void copy_to_flat(const ParameterSet<T>& params, std::span<T> flat) {
  for (const SpanView<T>& v : params.views()) {
    std::copy(v.data, v.data + v.size, flat.data() + v.offset);
  }
}

/// Writes `flat` (indexed by global offset) back into the spans of `params`.
template <class T>
void copy_from_flat(std::span<const T> flat, ParameterSet<T>& params) {
  for (const SpanView<T>& v : params.views()) {
    std::copy(flat.data() + v.offset, flat.data() + v.offset + v.size, v.data);
  }
}

}  // namespace zoopt
