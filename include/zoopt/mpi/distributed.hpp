// Distributed ZO steps over MPI that exchange only scalars.
//
// Every rank holds a full replica of the parameters. Noise is a pure function
// of (seed, step, direction, global index), so any rank can regenerate any
// direction: the ranks never exchange a parameter-sized buffer, only loss
// values and per-direction coefficients.
//
//   Parallelism::data        every rank evaluates all n directions on its own
//                            data shard; the raw loss values are all-reduced
//                            (gathered, then summed in rank order and divided
//                            by the rank count, so every rank gets the same
//                            bits); every rank applies the same update.
//   Parallelism::directions  the n directions are split into contiguous
//                            blocks, one per rank, evaluated on the same
//                            batch; the ranks gather the n coefficients and
//                            every rank applies the same full update. A step
//                            costs about 2 ceil(n / p) forward passes of wall
//                            time instead of 2n.
//
// Both modes exchange one MPI_Iallgatherv per step whose first value per rank
// is a status, so a NaN/Inf loss or an exception on one rank is known to all
// ranks in the same exchange: every rank restores its parameters and throws
// the same error. Every collective has a deadline (see communicator.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "zoopt/callbacks/callbacks.hpp"
#include "zoopt/callbacks/optimize_loop.hpp"
#include "zoopt/core/error.hpp"
#include "zoopt/detail/loss_call.hpp"
#include "zoopt/mpi/communicator.hpp"
#include "zoopt/mpi/error.hpp"
#include "zoopt/mpi/options.hpp"
#include "zoopt/mpi/replica_hash.hpp"
#include "zoopt/optimizer/step_engine.hpp"
#include "zoopt/params/parameter_set.hpp"

namespace zoopt::mpi {

/// Runs an optimizer's steps over MPI. `Optimizer` is any zoopt optimizer
/// (MeZO, KerZOO, ZOFineTuner, ...): the driver runs the optimizer's own step
/// with an MPI exchange policy (step_exchange.hpp), so the optimizer's
/// counters, last_coefficients(), scales and state advance as in one process.
///
/// Per step, this rank moves a payload of 8 bytes per value (see Traffic):
///   data:       1 + m values,   m = 2n (central) or n + 1 (forward difference)
///   directions: 1 + m_r + k_r values, k_r = this rank's directions,
///               m_r = 2 k_r (central) or k_r + 1 (forward)
/// sent to each of the p - 1 other ranks, and receives theirs: for KerZOO with
/// n = 3 on 2 ranks: 56 bytes each way per step (data); 56 bytes sent and 32
/// received by rank 0, the reverse on rank 1 (directions). Steps that check the replicas add 88
/// bytes per peer. None of it depends on the parameter count.
///
/// Every rank must call step() (or optimize(), check_replicas()) the same
/// number of times, in the same order, with the same optimizer settings and
/// parameter shapes; a disagreement found by the first step's check throws
/// SetupMismatch on every rank. Construction is collective.
template <class Optimizer>
class Distributed {
 public:
  using optimizer_type = Optimizer;
  using T = typename Optimizer::value_type;
  using Estimator = typename Optimizer::estimator_type;

  /// Collective over options.comm. Throws std::invalid_argument for invalid
  /// options and std::logic_error if MPI is not initialised.
  explicit Distributed(Optimizer& optimizer, Options options = {})
      : opt_(optimizer),
        options_((options.check(), options)),
        comm_(options.comm, options.timeout_seconds, options.abort_code) {
    const auto p = static_cast<std::size_t>(comm_.size());
    counts_.resize(p);
    displacements_.resize(p);
    fingerprints_.resize(p * fingerprint_words);
  }

  [[nodiscard]] int rank() const noexcept { return comm_.rank(); }
  [[nodiscard]] int size() const noexcept { return comm_.size(); }
  [[nodiscard]] const Options& options() const noexcept { return options_; }
  [[nodiscard]] Optimizer& optimizer() noexcept { return opt_; }
  [[nodiscard]] Communicator& communicator() noexcept { return comm_; }

  /// Directions [first, last) this rank evaluates in a step with n
  /// directions (all of them in data mode).
  [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> my_directions(std::uint32_t n) const {
    if (options_.parallelism == Parallelism::data) return {0u, n};
    return direction_block(n, comm_.rank(), comm_.size());
  }

  /// Per-direction coefficients c_i of the last completed step, the same on
  /// every rank (theta -= lr (sum_i c_i z_i + lambda theta)).
  [[nodiscard]] std::span<const double> last_coefficients() const noexcept {
    return opt_.last_coefficients();
  }

  /// Payload of the last step (including its replica check, or the failure
  /// exchange of a step that threw).
  [[nodiscard]] const Traffic& last_step_traffic() const noexcept { return last_; }
  /// Payload of all steps and checks of this driver.
  [[nodiscard]] const Traffic& total_traffic() const noexcept { return comm_.traffic(); }

  /// One distributed step on a span; the loss is called as
  /// loss(std::span<const T>) or loss(), on this rank's shard in data mode.
  /// Returns the same mean loss on every rank (data mode: the mean of the
  /// all-reduced values; directions mode: the mean of all ranks' values).
  /// Throws zoopt::NonFiniteLoss (a NaN/Inf loss on any rank) or
  /// RemoteFailure (an exception on any rank) on every rank, with the
  /// parameters holding their pre-step bits and the step counter unchanged.
  template <class Loss>
  requires zoopt::detail::LossFor<Loss, std::span<const T>>
  double step(Loss&& loss, std::span<T> params) {
    zoopt::detail::require(!params.empty(), "zoopt::mpi::Distributed::step", "params",
                           "must not be an empty span");
    Exchange exchange{*this};
    return opt_.step(loss, params, exchange);
  }

  /// One distributed step on a parameter set; the loss is called as
  /// loss(const ParameterSet<T>&) or loss().
  template <class Loss>
  requires zoopt::detail::LossFor<Loss, ParameterSet<T>>
  double step(Loss&& loss, ParameterSet<T>& params) {
    zoopt::detail::require(!params.empty(), "zoopt::mpi::Distributed::step", "params",
                           "must hold at least one span");
    Exchange exchange{*this};
    return opt_.step(loss, params, exchange);
  }

  /// Up to `steps` steps with callbacks, as Optimizer::optimize. Every rank
  /// sees the same step losses, so callbacks that stop early (EarlyStop)
  /// stop every rank at the same step. forward_passes counts this rank's
  /// loss evaluations.
  template <class Loss, class Params, class... Callbacks>
  OptimizeResult optimize(Loss&& loss, Params&& params, std::size_t steps,
                          Callbacks&&... callbacks) {
    return zoopt::detail::optimize_loop(
        [&] { return step(loss, params); },
        [&] {
          return std::pair{opt_.step_count(), opt_.forward_passes()};
        },
        steps, callbacks...);
  }

  /// Collective: compares the settings, step counter, parameter shapes and
  /// parameter hash of every rank. Throws SetupMismatch or ReplicaDivergence
  /// on every rank when they differ.
  void check_replicas(std::span<const T> params) {
    const std::array<SpanView<T>, 1> views = {
        SpanView<T>{const_cast<T*>(params.data()), params.size()}};
    verify(std::span<const SpanView<T>>(views), Check::on_request,
           opt_.settings_at(opt_.step_count()));
  }
  void check_replicas(const ParameterSet<T>& params) {
    verify(params.views(), Check::on_request, opt_.settings_at(opt_.step_count()));
  }

 private:
  static constexpr std::size_t fingerprint_words = 11;
  enum class Check { before_first_step, after_step, on_request };
  static constexpr double status_ok = 0.0;
  static constexpr double status_nonfinite = 1.0;
  static constexpr double status_exception = 2.0;

  // Values rank r contributes to the step's exchange.
  [[nodiscard]] std::uint64_t payload_of(int r, std::uint32_t n) const {
    const auto [first, last] = options_.parallelism == Parallelism::data
                                   ? std::pair<std::uint32_t, std::uint32_t>{0u, n}
                                   : direction_block(n, r, comm_.size());
    const std::uint64_t k = last - first;
    const std::uint64_t losses =
        (Estimator::evaluates_base ? 1 : 0) + k * Estimator::points_per_direction;
    return 1 + losses + (options_.parallelism == Parallelism::directions ? k : 0);
  }

  // The optimizer's step calls these between its phases (step_exchange.hpp).
  struct Exchange {
    Distributed& d;
    Traffic before_step{};
    [[nodiscard]] std::pair<std::uint32_t, std::uint32_t> directions(std::uint32_t n) const {
      return d.my_directions(n);
    }
    // Identical replicas: rank 0 alone checks eps and warns.
    [[nodiscard]] bool warns() const { return d.comm_.rank() == 0; }
    void before(std::span<const SpanView<T>> views, const StepSettings& s) {
      before_step = d.comm_.traffic();
      d.comm_.set_step(static_cast<std::int64_t>(s.step));
      if (!d.verified_) {
        d.verify(views, Check::before_first_step, s);
        d.verified_ = true;
      }
    }
    template <class Engine>
    double combine(Engine& engine, std::span<const SpanView<T>> views, const StepSettings& s,
                   bool ok, std::span<double> coefficients) {
      struct Finally {  // traffic of this step, also when it throws
        Exchange& x;
        ~Finally() {
          x.d.last_ = x.d.comm_.traffic() - x.before_step;
          x.d.comm_.set_step(-1);
        }
      } finally{*this};
      return d.exchange(engine, views, s, ok, coefficients);
    }
    void after(std::span<const SpanView<T>> views) {
      ++d.steps_;
      if (d.options_.check_every != 0 && d.steps_ % d.options_.check_every == 0) {
        d.comm_.set_step(static_cast<std::int64_t>(d.opt_.step_count()));
        d.verify(views, Check::after_step, d.opt_.settings_at(d.opt_.step_count()));
        d.last_ = d.comm_.traffic() - before_step;
        d.comm_.set_step(-1);
      }
    }
  };

  // One allgather of [status, loss values, (coefficients)] per rank; fills
  // all n coefficients and leaves every direction's loss values in the
  // engine, in single-process order.
  template <class Engine>
  double exchange(Engine& engine, std::span<const SpanView<T>> views, const StepSettings& s,
                  bool ok, std::span<double> coefficients) {
    const std::uint32_t n = s.directions;
    const int p = comm_.size();
    const int me = comm_.rank();
    const bool by_data = options_.parallelism == Parallelism::data;
    const auto [first, last] = my_directions(n);

    std::uint64_t total = 0;
    for (int r = 0; r < p; ++r) {
      const auto i = static_cast<std::size_t>(r);
      counts_[i] = payload_of(r, n);
      displacements_[i] = total;
      total += counts_[i];
    }
    const std::size_t mine = counts_[static_cast<std::size_t>(me)];
    send_.assign(mine, 0.0);
    if (ok) {
      const std::span<double> losses = engine.losses();
      std::copy(losses.begin(), losses.end(), send_.begin() + 1);
      if (!by_data) {
        engine.coefficients(s, first, last, coefficients);
        std::copy(coefficients.begin() + first, coefficients.begin() + last,
                  send_.begin() + 1 + static_cast<std::ptrdiff_t>(losses.size()));
      }
    } else {
      send_[0] = failure_kind(engine.failure());
    }
    recv_.resize(total);
    comm_.allgatherv(send_, counts_, recv_, "the step's loss values and coefficients");

    for (int r = 0; r < p; ++r) {
      const double status = recv_[displacements_[static_cast<std::size_t>(r)]];
      if (status != status_ok) fail(engine, views, s, ok, r, status);
    }

    if (by_data) {
      // Deterministic all-reduce: rank order, then one division.
      const std::span<double> losses = engine.losses();
      for (std::size_t j = 0; j < losses.size(); ++j) {
        double v = 0.0;
        for (int r = 0; r < p; ++r) v += recv_[displacements_[static_cast<std::size_t>(r)] + 1 + j];
        losses[j] = v / static_cast<double>(p);
      }
      engine.coefficients(s, 0, n, coefficients);
    } else {
      // The values a single process would have evaluated: the unperturbed
      // loss once (rank 0's), then every direction's points in order.
      const std::size_t base = Estimator::evaluates_base ? 1 : 0;
      gathered_.clear();
      if (base) gathered_.push_back(recv_[displacements_[0] + 1]);
      for (int r = 0; r < p; ++r) {
        const auto [f, l] = direction_block(n, r, p);
        const std::size_t at = displacements_[static_cast<std::size_t>(r)] + 1;
        const std::size_t m = base + (l - f) * Estimator::points_per_direction;
        for (std::size_t j = base; j < m; ++j) gathered_.push_back(recv_[at + j]);
        for (std::uint32_t i = f; i < l; ++i) coefficients[i] = recv_[at + m + (i - f)];
      }
      engine.assign_losses(gathered_);
    }
    double sum = 0.0;
    for (const double v : engine.losses()) sum += v;
    return sum / static_cast<double>(engine.losses().size());
  }

  static double failure_kind(const std::exception_ptr& failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const NonFiniteLoss&) {
      return status_nonfinite;
    } catch (...) {
      return status_exception;
    }
  }

  static std::string describe(const std::exception_ptr& failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const NonFiniteLoss& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("the loss threw: ") + e.what();
    } catch (...) {
      return "the loss threw an exception that is not a std::exception";
    }
  }

  // Every rank: restore, learn the failing rank's message, throw the same
  // error.
  template <class Engine>
  [[noreturn]] void fail(Engine& engine, std::span<const SpanView<T>> views, const StepSettings& s,
                         bool ok, int origin, double kind) {
    if (ok) engine.abort(views, s);
    std::string message;
    if (comm_.rank() == origin) message = describe(engine.failure());
    message = comm_.broadcast(std::move(message), origin, "the failing rank's error message");
    const std::string text = "zoopt::mpi: rank " + std::to_string(origin) + " of " +
                             std::to_string(comm_.size()) + " failed at step " +
                             std::to_string(s.step) + ": " + message +
                             " [every rank restored its parameters]";
    if (kind == status_nonfinite) throw NonFiniteLoss(text);
    throw RemoteFailure(origin, text);
  }

  // Gathers every rank's fingerprint and throws on a difference.
  void verify(std::span<const SpanView<T>> views, Check when, const StepSettings& s) {
    const std::uint64_t t = opt_.step_count();
    std::uint64_t elements = 0;
    for (const SpanView<T>& v : views) elements += v.size;
    const std::uint64_t layout = sizeof(T) | (Estimator::evaluates_base ? 1u : 0u) << 8 |
                                 static_cast<std::uint64_t>(Estimator::points_per_direction) << 16;
    const std::array<std::uint64_t, fingerprint_words> mine = {
        static_cast<std::uint64_t>(options_.parallelism),
        s.directions,
        s.seed,
        t,
        elements,
        views.size(),
        std::bit_cast<std::uint64_t>(s.eps),
        std::bit_cast<std::uint64_t>(s.lr),
        std::bit_cast<std::uint64_t>(s.weight_decay),
        layout,
        parameter_hash<T>(views)};
    static constexpr const char* fields[fingerprint_words] = {"the parallel mode",
                                                              "the number of directions",
                                                              "the seed",
                                                              "the step counter",
                                                              "the parameter count",
                                                              "the number of spans",
                                                              "eps",
                                                              "lr",
                                                              "weight_decay",
                                                              "the type/estimator",
                                                              "the parameter hash"};
    comm_.allgather(mine, fingerprints_, "the replica check");
    const int p = comm_.size();
    for (std::size_t f = 0; f < fingerprint_words; ++f) {
      for (int r = 1; r < p; ++r) {
        const std::uint64_t a = fingerprints_[f];
        const std::uint64_t b = fingerprints_[static_cast<std::size_t>(r) * fingerprint_words + f];
        if (a == b) continue;
        const std::string at = when == Check::before_first_step ? "before step " + std::to_string(t)
                               : when == Check::after_step ? "after step " + std::to_string(t - 1)
                                                           : "at step " + std::to_string(t);
        const std::string head = "zoopt::mpi: ranks disagree on " + std::string(fields[f]) +
                                 " (checked " + at + "): rank 0 has " + show(f, a) + ", rank " +
                                 std::to_string(r) + " has " + show(f, b);
        if (f + 1 == fingerprint_words) {
          throw ReplicaDivergence(
              head +
              "; the replicas' parameters are no longer bitwise identical (different "
              "initialisation, parameters changed outside step(), or ranks built with "
              "different floating-point settings)");
        }
        throw SetupMismatch(head +
                            "; every rank must use the same optimizer settings, parallel mode, "
                            "parameter shapes and number of steps");
      }
    }
  }

  // Fields 0-5 are counts, 6-8 the bits of doubles, 9-10 bit patterns.
  static std::string show(std::size_t field, std::uint64_t v) {
    char buf[40];
    if (field <= 5) {
      std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
    } else if (field <= 8) {
      std::snprintf(buf, sizeof buf, "%.17g", std::bit_cast<double>(v));
    } else {
      std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
    }
    return buf;
  }

  Optimizer& opt_;
  Options options_;
  Communicator comm_;
  std::vector<std::uint64_t> counts_;
  std::vector<std::uint64_t> displacements_;
  std::vector<std::uint64_t> fingerprints_;
  std::vector<double> send_;
  std::vector<double> recv_;
  std::vector<double> gathered_;
  Traffic last_;
  std::uint64_t steps_ = 0;
  bool verified_ = false;
};

}  // namespace zoopt::mpi
