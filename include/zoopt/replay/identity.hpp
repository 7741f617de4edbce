// Names that identify an optimizer configuration in update logs and
// checkpoints.
#pragma once

#include <string>
#include <type_traits>

#include "zoopt/optimizer/kerzoo.hpp"
#include "zoopt/optimizer/mezo.hpp"

namespace zoopt {

/// What precedes an update rule's name in an optimizer identity.
inline constexpr const char* update_marker = "+update:";

namespace detail {
template <class>
struct is_mezo : std::false_type {};
template <class T, class S, class E, class B, class U>
struct is_mezo<MeZO<T, S, E, B, U>> : std::true_type {};
template <class>
struct is_kerzoo : std::false_type {};
template <class T, class S, class E, class B, class U>
struct is_kerzoo<KerZOO<T, S, E, B, U>> : std::true_type {};
}  // namespace detail

/// "mezo", "kerzoo/<kernel name>", opt.identity() for an optimizer that
/// defines it (FZOO: "fzoo", "fzoo/normalized"), or Opt::name for one that
/// defines a static `name` (the ZO Fine-tuner: "zo-finetuner"); "custom"
/// otherwise. A learning-rate schedule other than constant is appended as
/// "+<schedule name>" (e.g. "mezo+warmup-cosine(100,10000,0)"), an update
/// rule other than SGD as "+update:<rule name>" ("mezo+update:momentum(0.9)").
template <class Opt>
std::string optimizer_identity(const Opt& opt) {
  std::string id;
  if constexpr (detail::is_mezo<Opt>::value) {
    id = "mezo";
  } else if constexpr (detail::is_kerzoo<Opt>::value) {
    id = "kerzoo/" + opt.params().kernel.name();
  } else if constexpr (requires { opt.identity(); }) {
    id = opt.identity();
  } else if constexpr (requires { Opt::name; }) {
    id = std::string(Opt::name);
  } else {
    id = "custom";
  }
  if constexpr (requires { opt.params().schedule.name(); }) {
    if (!opt.params().schedule.is_constant()) id += "+" + opt.params().schedule.name();
  }
  if constexpr (requires { typename Opt::update_type; }) {
    if constexpr (!std::is_same_v<typename Opt::update_type, SgdUpdate>) {
      id += std::string(update_marker) + opt.update_state().rule().name();
    }
  }
  return id;
}

/// The update rounding an optimizer's backend uses (nearest when the backend
/// does not say).
template <class Opt>
Rounding backend_rounding(const Opt& opt) {
  if constexpr (requires { opt.backend().rounding(); }) {
    return opt.backend().rounding();
  } else {
    return Rounding::nearest;
  }
}

}  // namespace zoopt
