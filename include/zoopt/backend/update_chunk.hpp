// The element arithmetic of CpuBackend's update pass (cpu_backend.hpp says
// which rounding applies when), one piece of at most a noise chunk at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "zoopt/core/fp_contract.hpp"
#include "zoopt/core/storage.hpp"
#include "zoopt/params/parameter_set.hpp"
#include "zoopt/random/philox.hpp"
#include "zoopt/update/update_rule.hpp"

ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace zoopt::detail {

/// x = rule(theta0, ghat + lambda theta0) for elements g0 .. g0 + count - 1
/// of span v. S = 0 with SGD's Apply is the plain step (a zero step keeps
/// theta0's bits, as it always has); otherwise `apply` gets S values of state
/// per element, and a result equal to theta0 writes theta0's bits back.
/// Half/bfloat16 results are rounded stochastically when `rounding` says so,
/// with the words of philox_block(NoiseKey{seed, step, 0}, g / 4,
/// Stream::rounding). One object per thread: it caches a block of words
/// (mutable: a cache, so that a copy captured by a lambda can be called).
template <std::size_t S, class T, class C, class Apply>
struct UpdateChunk {
  static constexpr bool sgd = S == 0 && std::is_same_v<Apply, SgdUpdate::Apply<C>>;

  C eta;
  C lambda;
  bool decay_on;  ///< weight_decay != 0
  const Apply& apply;
  C* state;
  Rounding rounding;
  std::uint64_t seed;
  std::uint64_t step;
  mutable std::uint64_t cached_block = ~std::uint64_t{0};
  mutable std::array<std::uint32_t, 4> words{};

  [[gnu::always_inline]] inline void operator()(std::uint64_t g0, T* x, const T* theta0,
                                                const C* ghat, int count,
                                                const SpanView<T>& v) const {
    const bool decay = v.weight_decay && decay_on;
    if constexpr (sgd && !is_low_precision_v<T>) {
      // Branch-free (vectorises): a zero step keeps theta0's bits.
      for (int k = 0; k < count; ++k) {
        const C t0 = theta0[k];
        const C direction = decay ? ghat[k] + lambda * t0 : ghat[k];
        const T next = static_cast<T>(t0 - eta * direction);
        x[k] = eta == C(0) || direction == C(0) ? theta0[k] : next;
      }
      return;
    }
    for (int k = 0; k < count; ++k) {
      const std::uint64_t g = g0 + static_cast<std::uint64_t>(k);
      const C t0 = static_cast<C>(theta0[k]);
      C direction = ghat[k];
      if (decay) direction += lambda * t0;
      C next;
      if constexpr (sgd) {
        if (eta == C(0) || direction == C(0)) {
          x[k] = theta0[k];  // nothing to apply: keep the exact bits
          continue;
        }
        next = t0 - eta * direction;
      } else {
        next = apply(t0, direction, eta, state + g * S);
        if (next == t0 || (next != next && t0 != t0)) {
          x[k] = theta0[k];
          continue;
        }
      }
      if constexpr (is_low_precision_v<T>) {
        if (rounding == Rounding::stochastic) {
          if (g / 4 != cached_block) {
            cached_block = g / 4;
            const auto r = random::philox_block(NoiseKey{seed, step, 0}, cached_block,
                                                random::Stream::rounding);
            for (int w = 0; w < 4; ++w) words[w] = r.v[w];
          }
          x[k] = stochastic_round<T>(next, words[g % 4]);
          continue;
        }
      }
      x[k] = static_cast<T>(next);
    }
  }
};

}  // namespace zoopt::detail

ZOOPT_FP_CONTRACT_OFF_END
