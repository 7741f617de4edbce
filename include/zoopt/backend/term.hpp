// A move between two displacements of the parameters, direction by direction.
#pragma once

#include <cstdint>

namespace zoopt {

/// One direction's share of a pass: the parameters go from
///   theta0 + sum_t before_t * s * z_t   to   theta0 + sum_t after_t * s * z_t
/// where z_t is the direction's noise, s the span's scale and theta0 the
/// parameters at the start of the step. In an update pass `after` is the
/// direction's coefficient in the gradient estimate instead.
struct Term {
  std::uint32_t direction = 0;
  double before = 0.0;
  double after = 0.0;
};

}  // namespace zoopt
