// The resumable state of a ZO optimizer, beyond its (immutable) settings.
#pragma once

#include <cstdint>
#include <vector>

namespace zoopt {

/// What an optimizer must carry across a checkpoint so that a resumed run is
/// bit-identical to an uninterrupted one. MeZO and KerZOO are stateless apart
/// from the counters: their noise, KerZOO's r and range schedule a_t are pure
/// functions of (seed, step). An optimizer with more state (the ZO
/// Fine-tuner: previous per-block scales and previous L+/L-) appends it to
/// `extra` by defining
///   void save_extra_state(std::vector<double>& out) const;
///   void load_extra_state(std::span<const double> in);   // throws
///                                                         // std::invalid_argument
/// Memory: 16 bytes plus 8 bytes per extra value.
struct OptimizerState {
  std::uint64_t step = 0;            ///< steps completed (the next step's noise key)
  std::uint64_t forward_passes = 0;  ///< loss evaluations so far
  std::vector<double> extra;         ///< optimizer-specific values, exact doubles
};

}  // namespace zoopt
