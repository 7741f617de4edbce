// Calls the user's loss with the perturbed parameters, or with no argument.
#pragma once

#include <concepts>
#include <functional>
#include <type_traits>

namespace zoopt::detail {

template <class>
inline constexpr bool always_false = false;

/// A loss callable either with `arg` or with nothing, returning something
/// convertible to double.
template <class Loss, class Arg>
concept LossFor = (std::invocable<Loss&, const Arg&> &&
                   std::convertible_to<std::invoke_result_t<Loss&, const Arg&>, double>) ||
                  (std::invocable<Loss&> && std::convertible_to<std::invoke_result_t<Loss&>, double>);

template <class Loss, class Arg>
double call_loss(Loss& loss, const Arg& arg) {
  if constexpr (std::invocable<Loss&, const Arg&>) {
    static_assert(std::convertible_to<std::invoke_result_t<Loss&, const Arg&>, double>,
                  "zoopt: the loss functor must return a value convertible to double");
    return static_cast<double>(std::invoke(loss, arg));
  } else if constexpr (std::invocable<Loss&>) {
    static_assert(std::convertible_to<std::invoke_result_t<Loss&>, double>,
                  "zoopt: the loss functor must return a value convertible to double");
    return static_cast<double>(std::invoke(loss));
  } else {
    static_assert(always_false<Loss>,
                  "zoopt: the loss functor must be callable as loss(std::span<const T>) for a "
                  "span (loss(const ParameterSet<T>&) for a parameter set) or as loss()");
    return 0.0;
  }
}

}  // namespace zoopt::detail
