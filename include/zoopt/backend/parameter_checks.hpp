// Reads of the parameters outside the step path: the warnings and errors
// CpuBackend gives (eps below half an ulp, a non-finite parameter) and the
// guard that catches a loss writing to the parameters.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt {

/// Share of elements x (over all views) for which a perturbation of
/// eps * |span scale| is below half the spacing of T at x, so that
/// round-to-nearest would mostly discard it. One read of the parameters;
/// NaN/Inf elements are not counted as below; spans with scale 0 (frozen)
/// are left out. 0 for no elements.
template <class T>
[[nodiscard]] double fraction_below_half_ulp(std::span<const SpanView<T>> views, double eps) {
  std::uint64_t below = 0;
  std::uint64_t total = 0;
  for (const SpanView<T>& v : views) {
    if (v.scale == 0.0) continue;  // a frozen span is not perturbed at all
    const double h = std::abs(eps * v.scale);
    for (std::size_t i = 0; i < v.size; ++i) {
      if (h < 0.5 * ulp_of(v.data[i])) ++below;
    }
    total += v.size;
  }
  return total == 0 ? 0.0 : static_cast<double>(below) / static_cast<double>(total);
}

/// Where a parameter is not finite: span position, element, value.
struct NonFinite {
  std::size_t span = 0;
  std::size_t element = 0;
  double value = 0.0;
};

/// The first NaN/Inf element in span order, if any. One read of the
/// parameters; used to explain a failed step, never on the step path.
template <class T>
[[nodiscard]] std::optional<NonFinite> find_non_finite(std::span<const SpanView<T>> views) {
  for (std::size_t s = 0; s < views.size(); ++s) {
    for (std::size_t i = 0; i < views[s].size; ++i) {
      const auto x = static_cast<double>(static_cast<compute_t<T>>(views[s].data[i]));
      if (!std::isfinite(x)) return NonFinite{s, i, x};
    }
  }
  return std::nullopt;
}

/// A copy of the parameters taken before a loss call, compared after it
/// (CpuBackendOptions::check_loss_writes). O(d) memory, allocated on the
/// first snapshot.
template <class T>
class LossWriteGuard {
 public:
  void snapshot(std::span<const SpanView<T>> views) {
    std::size_t total = 0;
    for (const SpanView<T>& v : views) total += v.size;
    copy_.resize(total);
    std::size_t at = 0;
    for (const SpanView<T>& v : views) {
      std::memcpy(copy_.data() + at, v.data, v.size * sizeof(T));
      at += v.size;
    }
  }
  /// If any parameter's bits differ from the snapshot, writes the snapshot
  /// back and returns the first such (span, element).
  std::optional<std::pair<std::size_t, std::size_t>> revert(std::span<const SpanView<T>> views) {
    std::optional<std::pair<std::size_t, std::size_t>> first;
    std::size_t at = 0;
    for (std::size_t s = 0; s < views.size(); ++s) {
      const SpanView<T>& v = views[s];
      if (std::memcmp(copy_.data() + at, v.data, v.size * sizeof(T)) != 0) {
        if (!first) {
          std::size_t i = 0;
          while (std::memcmp(copy_.data() + at + i, v.data + i, sizeof(T)) == 0) ++i;
          first = std::pair{s, i};
        }
        std::memcpy(v.data, copy_.data() + at, v.size * sizeof(T));
      }
      at += v.size;
    }
    return first;
  }

 private:
  std::vector<T> copy_;
};

}  // namespace zoopt
