// zoopt::torch: zoopt optimizers on libtorch models (torch::nn::Module and
// TorchScript torch::jit::Module), zero-copy.
//
// bind<T>(module) builds a ParameterSet<T> whose spans are the module's
// parameter tensors themselves (named_parameters(), in order), so a ZO step
// perturbs, restores and updates the model's own memory in place and the
// model's forward pass sees the perturbed weights. Nothing is copied; the
// Binding keeps a reference to every tensor and its storage, so the memory
// stays alive as long as the Binding. A tensor of two or more dimensions
// carries its shape as a (size(0), numel / size(0)) matrix, which samplers
// that use shapes read (LowRankSampler: low-rank directions per weight
// matrix).
//
// Requirements, each checked with an error naming the tensor: a dense,
// contiguous tensor of the dtype matching T (float32 -> float, float64 ->
// double, float16 -> zoopt::half, bfloat16 -> zoopt::bfloat16; the 16-bit
// layouts are the same bits, tests/torch checks it), on the CPU (device
// tensors only with BindOptions::device = true, for the CUDA backend).
// Storage that a later PyTorch call replaces (module.to(...), set_data(...),
// load_state_dict into new tensors) leaves the ParameterSet pointing at the
// old memory: Binding::check() (which Binding::loss() runs before every
// evaluation) throws naming the tensor instead of training a dead copy.
//
// In-place writes from zoopt do not bump autograd's version counters; run
// the loss without autograd (Binding::loss() installs torch::NoGradGuard)
// and do not mix a ZO step with a backward pass over the same graph.
//
// Build: the CMake target zoopt::torch (when libtorch is found; Debian
// package libtorch-dev). The core library never needs libtorch.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "zoopt/core/error.hpp"
#include "zoopt/core/half.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt::torch {

/// The libtorch dtype stored as T.
template <class T>
constexpr c10::ScalarType dtype_of() {
  if constexpr (std::is_same_v<T, float>) {
    return c10::ScalarType::Float;
  } else if constexpr (std::is_same_v<T, double>) {
    return c10::ScalarType::Double;
  } else if constexpr (std::is_same_v<T, zoopt::half>) {
    return c10::ScalarType::Half;
  } else {
    static_assert(std::is_same_v<T, zoopt::bfloat16>,
                  "zoopt::torch: T must be float, double, zoopt::half or zoopt::bfloat16");
    return c10::ScalarType::BFloat16;
  }
}

/// Which parameters bind() takes and how.
struct BindOptions {
  /// Parameters to optimise, by name (default: all). The others are frozen:
  /// not in the set, never perturbed.
  std::function<bool(const std::string&)> select;
  /// Parameters that get no weight decay (default: tensors with at most one
  /// dimension, i.e. biases and normalisation scales).
  std::function<bool(const std::string&, const at::Tensor&)> no_weight_decay;
  /// Accept device (CUDA) tensors, for zoopt's CUDA backend; CPU tensors
  /// are then rejected, since one ParameterSet lives in one memory.
  bool device = false;
};

namespace detail {

inline std::string describe(const at::Tensor& t) {
  std::ostringstream s;
  s << t.scalar_type() << " on " << t.device();
  return s.str();
}

template <class T>
void check_tensor(const std::string& name, const at::Tensor& t, const BindOptions& options) {
  const std::string where = "zoopt::torch::bind: parameter '" + name + "' (" + describe(t) + ")";
  zoopt::detail::require(t.layout() == c10::kStrided, where.c_str(), "layout",
                         "must be dense (strided); sparse tensors are not supported");
  zoopt::detail::require(
      t.scalar_type() == dtype_of<T>(), where.c_str(), "dtype",
      std::string("must be ") + c10::toString(dtype_of<T>()) +
          " to bind as this storage type; convert the module (module->to(...)) or bind "
          "with the matching T");
  zoopt::detail::require(t.is_contiguous(), where.c_str(), "strides",
                         "must be contiguous; make the parameter contiguous before binding");
  if (options.device) {
    zoopt::detail::require(t.is_cuda(), where.c_str(), "device",
                           "must be a CUDA tensor with BindOptions::device = true");
  } else {
    zoopt::detail::require(t.is_cpu(), where.c_str(), "device",
                           "must be a CPU tensor (set BindOptions::device = true and use "
                           "zoopt's CUDA backend for device tensors)");
  }
}

// named_parameters() of torch::nn::Module and torch::jit::Module as
// (name, tensor) pairs.
inline std::vector<std::pair<std::string, at::Tensor>> named(::torch::nn::Module& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : m.named_parameters(/*recurse=*/true)) {
    out.emplace_back(item.key(), item.value());
  }
  return out;
}
inline std::vector<std::pair<std::string, at::Tensor>> named(::torch::jit::Module& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : m.named_parameters(/*recurse=*/true))
    out.emplace_back(item.name, item.value);
  return out;
}
template <class M>
std::vector<std::pair<std::string, at::Tensor>> named(std::shared_ptr<M>& m) {
  return named(*m);
}
template <class Impl>
std::vector<std::pair<std::string, at::Tensor>> named(::torch::nn::ModuleHolder<Impl>& m) {
  return named(*m.ptr());
}

}  // namespace detail

/// The module's selected parameters as a ParameterSet<T> over their own
/// memory, plus what is needed to check that memory stays theirs.
template <class T>
class Binding {
 public:
  /// See bind().
  template <class M>
  explicit Binding(M& module, const BindOptions& options = {}) {
    for (auto& [name, tensor] : detail::named(module)) {
      if (options.select && !options.select(name)) continue;
      if (tensor.numel() == 0) continue;
      detail::check_tensor<T>(name, tensor, options);
      const bool decay =
          options.no_weight_decay ? !options.no_weight_decay(name, tensor) : tensor.dim() > 1;
      T* data = static_cast<T*>(tensor.data_ptr());
      // A tensor of two or more dimensions is a (size(0), numel / size(0))
      // matrix to samplers that use shapes (LowRankSampler).
      const auto numel = static_cast<std::uint64_t>(tensor.numel());
      const MatrixShape shape =
          tensor.dim() >= 2 ? MatrixShape{static_cast<std::uint64_t>(tensor.size(0)),
                                          numel / static_cast<std::uint64_t>(tensor.size(0))}
                            : MatrixShape{};
      set_.add(name, std::span<T>(data, static_cast<std::size_t>(numel)),
               {.weight_decay = decay, .shape = shape});
      tensors_.push_back(tensor);
      storage_.push_back(tensor.storage());
    }
    zoopt::detail::require(!set_.empty(), "zoopt::torch::bind", "select",
                           "selected no parameter with elements");
  }

  /// The spans, in named_parameters() order (names as libtorch gives them).
  [[nodiscard]] ParameterSet<T>& parameters() noexcept { return set_; }
  [[nodiscard]] const ParameterSet<T>& parameters() const noexcept { return set_; }
  /// The bound tensors, in the same order.
  [[nodiscard]] const std::vector<at::Tensor>& tensors() const noexcept { return tensors_; }

  /// Throws zoopt::LogicError naming the tensor if a bound tensor's storage
  /// moved or changed size (a module.to(...), set_data(...) or a load into
  /// new tensors after bind()): the ParameterSet would then update memory
  /// the model no longer reads. Bind again after such calls.
  void check() const {
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      const at::Tensor& t = tensors_[i];
      const std::span<T> s = set_.span(i);
      if (t.data_ptr() != static_cast<void*>(s.data()) ||
          static_cast<std::size_t>(t.numel()) != s.size() || t.scalar_type() != dtype_of<T>()) {
        throw LogicError("zoopt::torch: parameter '" + set_.name(i) +
                         "' no longer uses the memory bound to it (its storage was replaced, "
                         "e.g. by module.to(), set_data() or loading new tensors); bind the "
                         "module again");
      }
    }
  }

  /// Wraps a loss for zoopt: each call checks the binding and runs `loss`
  /// under torch::NoGradGuard. `loss` is called with no arguments and
  /// returns a double (or anything convertible, e.g. tensor.item<double>()).
  template <class Loss>
  [[nodiscard]] auto loss(Loss&& f) const {
    return [this, f = std::forward<Loss>(f)]() mutable -> double {
      check();
      const ::torch::NoGradGuard no_grad;
      return static_cast<double>(f());
    };
  }

 private:
  ParameterSet<T> set_;
  std::vector<at::Tensor> tensors_;
  // The memory the spans point to, kept alive even if a tensor gets new
  // storage: a step then writes to orphaned memory (and check() throws),
  // never to freed memory.
  std::vector<c10::Storage> storage_;
};

/// Binds the selected parameters of `module` (a torch::nn::Module, a module
/// holder such as torch::nn::Linear, a std::shared_ptr to a module, or a
/// torch::jit::Module) as storage type T. Throws zoopt::InvalidArgument
/// naming the tensor and the field (layout, dtype, strides, device) for a
/// tensor that cannot be bound, or naming `select` when nothing is
/// selected. Empty tensors are skipped (there is nothing to perturb).
template <class T, class M>
Binding<T> bind(M& module, const BindOptions& options = {}) {
  return Binding<T>(module, options);
}

}  // namespace zoopt::torch
