// Throughput of zoopt's passes over parameter memory, against memcpy of the
// same bytes (the physical limit of a read-modify-write pass) and, when built
// with ZOOPT_BENCH_WITH_TORCH, against libtorch doing what the MeZO reference
// does (seeded generator, normal_ into a temporary, add_).
//
// Every benchmark times its contenders inside the same iteration, one after
// the other, on the same buffer, so each ratio counter comes from one run of
// one process. The benchmark's own time is zoopt's pass (or step). Times are
// the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID): on a shared,
// oversubscribed machine wall time mostly measures the other tenants.
// Everything timed runs on the calling thread (zoopt's backends are set to
// one thread, libtorch to one intra-op thread), so thread CPU time covers all
// the work; BM_PassThreads, which compares thread counts, times wall clock.
//
// Counters (all rates in bytes of parameters per second; one pass reads and
// writes each parameter once, like memcpy reads and writes each byte once):
//   zoopt_Bps, memcpy_Bps, torch_Bps      rates of each contender
//   frac_of_memcpy = memcpy time / zoopt time   (1 = at the memcpy limit)
//   torch_over_zoopt = torch time / zoopt time  (> 1: zoopt is faster)
// Step benchmarks add memcpy_equiv = step time / memcpy time: the cost of one
// whole step in memcpys of the parameters.
#include <benchmark/benchmark.h>

#include <time.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>
#include <zoopt/kerzoo.hpp>

#ifdef ZOOPT_BENCH_WITH_TORCH
#include <torch/torch.h>
#endif

namespace {

/// CPU time of the calling thread.
struct clock_type {
  using time_point = double;
  static double now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
};

double seconds_since(double t0) { return clock_type::now() - t0; }

/// Wall time in seconds, with clock_type's interface.
struct wall_clock {
  static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

constexpr std::uint64_t kSeed = 20240607;
constexpr double kEps = 1e-3;
const zoopt::CpuBackendOptions kOneThread{.threads = 1};

/// One thread, and the pass loop's instruction set from range(1), "isa":
/// 0 the build's baseline, 1 AVX2 where the CPU has it, 2 automatic
/// (AVX-512 where the CPU has it, else AVX2). The label names the loop run.
zoopt::CpuBackendOptions one_thread(const benchmark::State& state) {
  zoopt::CpuBackendOptions o = kOneThread;
  o.dispatch = state.range(1) == 0   ? zoopt::CpuDispatch::portable
               : state.range(1) == 1 ? zoopt::CpuDispatch::avx2
                                     : zoopt::CpuDispatch::automatic;
  return o;
}

/// Parameters initialised to a smooth, non-trivial pattern (and faulted in).
std::vector<float> make_params(std::size_t n) {
  std::vector<float> p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = 0.01f * static_cast<float>((i * 7919u) % 1000u) - 5.0f;
  return p;
}

/// Accumulated times of one benchmark's contenders.
struct Clocks {
  double zoopt = 0.0;
  double memcpy = 0.0;
  double torch = 0.0;
};

void report(benchmark::State& state, const Clocks& c, std::size_t bytes) {
  const double total = static_cast<double>(bytes) * static_cast<double>(state.iterations());
  state.counters["zoopt_Bps"] = total / c.zoopt;
  state.counters["memcpy_Bps"] = total / c.memcpy;
  state.counters["frac_of_memcpy"] = c.memcpy / c.zoopt;
  if (c.torch > 0.0) {
    state.counters["torch_Bps"] = total / c.torch;
    state.counters["torch_over_zoopt"] = c.torch / c.zoopt;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(total));
}

double time_memcpy(std::vector<float>& dst, const std::vector<float>& src) {
  const auto t0 = clock_type::now();
  std::memcpy(dst.data(), src.data(), src.size() * sizeof(float));
  benchmark::ClobberMemory();
  return seconds_since(t0);
}

/// The parameters as one square-ish matrix for samplers that use shapes
/// (LowRankSampler: 2^ceil(k/2) x 2^floor(k/2) for 2^k elements), else no shape.
template <class Sampler>
zoopt::MatrixShape bench_shape(int log2n) {
  if constexpr (!zoopt::ShapedSampler<Sampler>) {
    return {};
  } else {
    return {std::uint64_t{1} << (log2n - log2n / 2), std::uint64_t{1} << (log2n / 2)};
  }
}

/// One steady-state perturbation pass of the CPU backend: the parameters sit
/// at theta0 + h z and move to theta0 - h z (rebuild theta0, regenerate z,
/// write the new point, check that the write inverts). Successive iterations
/// alternate the sign, as the passes of a MeZO step do.
template <class Sampler>
void BM_PerturbPass(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  std::vector<float> params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  zoopt::CpuBackend<float, Sampler> backend(one_thread(state));
  state.SetLabel(backend.dispatch());
  const std::array<zoopt::SpanView<float>, 1> views = {zoopt::SpanView<float>{
      params.data(), n, 0, true, 1.0, bench_shape<Sampler>(static_cast<int>(state.range(0)))}};
  const zoopt::Term first{0, 0.0, kEps};
  backend.move(views, kSeed, 0, std::span<const zoopt::Term>(&first, 1));
  double sign = 1.0;
  Clocks c;
  for (auto _ : state) {
    c.memcpy += time_memcpy(copy, params);
    const zoopt::Term t{0, sign * kEps, -sign * kEps};
    const auto t0 = clock_type::now();
    backend.move(views, kSeed, 0, std::span<const zoopt::Term>(&t, 1));
    benchmark::ClobberMemory();
    const double dt = seconds_since(t0);
    c.zoopt += dt;
    state.SetIterationTime(dt);
    sign = -sign;
  }
  report(state, c, n * sizeof(float));
  state.counters["journal"] = static_cast<double>(backend.journal_size());
}

/// A whole MeZO step (n = 1): +eps z, -eps z, then restore fused with the
/// update: 3 passes. The loss reads one parameter so g is not zero.
template <class Sampler>
void BM_MezoStep(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  std::vector<float> params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  zoopt::MeZO<float, Sampler> opt({.lr = 1e-6, .eps = kEps, .directions = 1, .seed = kSeed},
                                  zoopt::CpuBackend<float, Sampler>(one_thread(state)));
  state.SetLabel(opt.backend().dispatch());
  const float* first = params.data();
  auto loss = [first] { return static_cast<double>(*first); };
  Clocks c;
  for (auto _ : state) {
    c.memcpy += time_memcpy(copy, params);
    const auto t0 = clock_type::now();
    opt.step(loss, std::span<float>(params));
    benchmark::ClobberMemory();
    const double dt = seconds_since(t0);
    c.zoopt += dt;
    state.SetIterationTime(dt);
  }
  report(state, c, n * sizeof(float));
  state.counters["memcpy_equiv"] = c.zoopt / c.memcpy;
}

/// MeZO (n = 1), kPipelinedSteps steps per iteration, through optimize()
/// (3 passes per step) and optimize_pipelined() (2 per step, plus 2 per
/// call), on two copies of the parameters in the same iteration. The
/// benchmark's time is the pipelined run's. Counters:
///   plain_over_pipelined = optimize() time / optimize_pipelined() time;
///   memcpy_equiv / plain_memcpy_equiv = time per step in memcpys.
constexpr std::size_t kPipelinedSteps = 16;
template <class Sampler>
void BM_MezoPipelined(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  std::vector<float> plain_params = make_params(n);
  std::vector<float> params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  const typename zoopt::MeZO<float, Sampler>::Params p{
      .lr = 1e-6, .eps = kEps, .directions = 1, .seed = kSeed};
  zoopt::MeZO<float, Sampler> plain(p, zoopt::CpuBackend<float, Sampler>(one_thread(state)));
  zoopt::MeZO<float, Sampler> fused(p, zoopt::CpuBackend<float, Sampler>(one_thread(state)));
  state.SetLabel(fused.backend().dispatch());
  const float* plain_first = plain_params.data();
  const float* first = params.data();
  double t_plain = 0.0;
  Clocks c;
  for (auto _ : state) {
    c.memcpy += time_memcpy(copy, params);
    auto t0 = clock_type::now();
    plain.optimize([plain_first] { return static_cast<double>(*plain_first); },
                   std::span<float>(plain_params), kPipelinedSteps);
    benchmark::ClobberMemory();
    t_plain += seconds_since(t0);
    t0 = clock_type::now();
    fused.optimize_pipelined([first] { return static_cast<double>(*first); },
                             std::span<float>(params), kPipelinedSteps);
    benchmark::ClobberMemory();
    const double dt = seconds_since(t0);
    c.zoopt += dt;
    state.SetIterationTime(dt);
  }
  const double steps = static_cast<double>(kPipelinedSteps);
  state.counters["plain_over_pipelined"] = t_plain / c.zoopt;
  state.counters["memcpy_equiv"] = c.zoopt / steps / c.memcpy;
  state.counters["plain_memcpy_equiv"] = t_plain / steps / c.memcpy;
}

/// One steady-state perturbation pass (as BM_PerturbPass) with one thread
/// and with range(1) threads (CpuBackendOptions::threads), timed by wall
/// clock in the same iteration on two copies of the parameters:
///   speedup = one-thread time / range(1)-thread time;
///   frac_of_memcpy = memcpy time / range(1)-thread time.
template <class Sampler>
void BM_PassThreads(benchmark::State& state) {
  using wall = std::chrono::steady_clock;
  const std::size_t n = std::size_t{1} << state.range(0);
  const auto threads = static_cast<unsigned>(state.range(1));
  std::vector<float> one_params = make_params(n);
  std::vector<float> params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  zoopt::CpuBackend<float, Sampler> one(kOneThread);
  zoopt::CpuBackend<float, Sampler> many(zoopt::CpuBackendOptions{.threads = threads});
  const std::array<zoopt::SpanView<float>, 1> one_views = {
      zoopt::SpanView<float>{one_params.data(), n}};
  const std::array<zoopt::SpanView<float>, 1> views = {zoopt::SpanView<float>{params.data(), n}};
  const zoopt::Term first{0, 0.0, kEps};
  one.move(one_views, kSeed, 0, std::span<const zoopt::Term>(&first, 1));
  many.move(views, kSeed, 0, std::span<const zoopt::Term>(&first, 1));
  double sign = 1.0;
  double t_memcpy = 0.0;
  double t_one = 0.0;
  double t_many = 0.0;
  auto since = [](wall::time_point t0) {
    return std::chrono::duration<double>(wall::now() - t0).count();
  };
  for (auto _ : state) {
    auto t0 = wall::now();
    std::memcpy(copy.data(), params.data(), n * sizeof(float));
    benchmark::ClobberMemory();
    t_memcpy += since(t0);
    const zoopt::Term t{0, sign * kEps, -sign * kEps};
    t0 = wall::now();
    one.move(one_views, kSeed, 0, std::span<const zoopt::Term>(&t, 1));
    benchmark::ClobberMemory();
    t_one += since(t0);
    t0 = wall::now();
    many.move(views, kSeed, 0, std::span<const zoopt::Term>(&t, 1));
    benchmark::ClobberMemory();
    const double dt = since(t0);
    t_many += dt;
    state.SetIterationTime(dt);
    sign = -sign;
  }
  const double bytes = static_cast<double>(n * sizeof(float) * state.iterations());
  state.counters["zoopt_Bps"] = bytes / t_many;
  state.counters["speedup"] = t_one / t_many;
  state.counters["frac_of_memcpy"] = t_memcpy / t_many;
  state.counters["one_thread_frac_of_memcpy"] = t_memcpy / t_one;
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

#ifdef ZOOPT_BENCH_WITH_TORCH
/// The MeZO reference's perturbation of one tensor: reseed, draw z into a
/// fresh temporary with normal_, add scale * z in place.
void torch_perturb(torch::Tensor& p, at::Generator& gen, std::uint64_t seed, double scale,
                   torch::Tensor* reuse) {
  gen.set_current_seed(seed);
  torch::Tensor z = reuse != nullptr ? *reuse : torch::empty_like(p);
  z.normal_(0.0, 1.0, gen);
  p.add_(z, scale);
}

/// zoopt's Gaussian pass vs memcpy vs libtorch's normal_ + add_ on the same
/// parameters. range(1): threads on both sides (CpuBackendOptions::threads
/// and libtorch's intra-op threads); range(2): 1 = reuse one preallocated
/// temporary (kinder to libtorch than the reference, which allocates z for
/// every tensor and pass). Clock: the calling thread's CPU time
/// (BM_TorchPass, one thread) or wall time (BM_TorchPassThreads, which
/// needs an otherwise idle machine with range(1) cores: thread CPU time
/// would miss the helper threads).
template <class Clock>
void torch_pass(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  const auto threads = static_cast<unsigned>(state.range(1));
  torch::set_num_threads(static_cast<int>(threads));
  const bool reuse = state.range(2) != 0;
  std::vector<float> params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  torch::Tensor p = torch::from_blob(params.data(), {static_cast<std::int64_t>(n)},
                                     torch::TensorOptions().dtype(torch::kFloat32));
  torch::Tensor buffer = reuse ? torch::empty_like(p) : torch::Tensor();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(kSeed);
  zoopt::CpuBackend<float, zoopt::GaussianSampler> backend(
      zoopt::CpuBackendOptions{.threads = threads});
  const std::array<zoopt::SpanView<float>, 1> views = {zoopt::SpanView<float>{params.data(), n}};
  const zoopt::Term first{0, 0.0, kEps};
  backend.move(views, kSeed, 0, std::span<const zoopt::Term>(&first, 1));
  double sign = 1.0;
  Clocks c;
  for (auto _ : state) {
    auto t0 = Clock::now();
    std::memcpy(copy.data(), params.data(), n * sizeof(float));
    benchmark::ClobberMemory();
    c.memcpy += Clock::now() - t0;
    const zoopt::Term t{0, sign * kEps, -sign * kEps};
    t0 = Clock::now();
    backend.move(views, kSeed, 0, std::span<const zoopt::Term>(&t, 1));
    benchmark::ClobberMemory();
    const double dt = Clock::now() - t0;
    c.zoopt += dt;
    state.SetIterationTime(dt);
    t0 = Clock::now();
    torch_perturb(p, gen, kSeed, -2.0 * sign * kEps, reuse ? &buffer : nullptr);
    benchmark::ClobberMemory();
    c.torch += Clock::now() - t0;
    sign = -sign;
  }
  report(state, c, n * sizeof(float));
  torch::set_num_threads(1);
}
void BM_TorchPass(benchmark::State& state) { torch_pass<clock_type>(state); }
void BM_TorchPassThreads(benchmark::State& state) { torch_pass<wall_clock>(state); }

/// A whole MeZO step both ways. libtorch follows the reference: z is
/// regenerated from the same seed four times (+eps, -2 eps, +eps restore,
/// then -lr g for the update), each time into a temporary.
void BM_TorchStep(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  torch::set_num_threads(static_cast<int>(state.range(1)));
  const bool reuse = state.range(2) != 0;
  std::vector<float> params = make_params(n);
  std::vector<float> torch_params = make_params(n);
  std::vector<float> copy(n, 0.0f);
  torch::Tensor p = torch::from_blob(torch_params.data(), {static_cast<std::int64_t>(n)},
                                     torch::TensorOptions().dtype(torch::kFloat32));
  torch::Tensor buffer = reuse ? torch::empty_like(p) : torch::Tensor();
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(kSeed);
  zoopt::MeZO<float> opt({.lr = 1e-6, .eps = kEps, .directions = 1, .seed = kSeed},
                         zoopt::CpuBackend<float, zoopt::GaussianSampler>(kOneThread));
  const float* first = params.data();
  auto loss = [first] { return static_cast<double>(*first); };
  const float* tfirst = torch_params.data();
  std::uint64_t step_seed = kSeed;
  Clocks c;
  for (auto _ : state) {
    c.memcpy += time_memcpy(copy, params);
    auto t0 = clock_type::now();
    opt.step(loss, std::span<float>(params));
    benchmark::ClobberMemory();
    const double dt = seconds_since(t0);
    c.zoopt += dt;
    state.SetIterationTime(dt);

    t0 = clock_type::now();
    ++step_seed;
    torch::Tensor* z = reuse ? &buffer : nullptr;
    torch_perturb(p, gen, step_seed, kEps, z);
    const double lp = static_cast<double>(*tfirst);
    torch_perturb(p, gen, step_seed, -2.0 * kEps, z);
    const double lm = static_cast<double>(*tfirst);
    torch_perturb(p, gen, step_seed, kEps, z);
    const double g = (lp - lm) / (2.0 * kEps);
    torch_perturb(p, gen, step_seed, -1e-6 * g, z);
    benchmark::ClobberMemory();
    c.torch += seconds_since(t0);
  }
  report(state, c, n * sizeof(float));
  state.counters["memcpy_equiv"] = c.zoopt / c.memcpy;
  state.counters["torch_memcpy_equiv"] = c.torch / c.memcpy;
  torch::set_num_threads(1);
}
#endif

void sizes(benchmark::internal::Benchmark* b) {
  for (int log2n = 20; log2n <= 28; log2n += 2) {
    for (int isa : {0, 1, 2}) b->Args({log2n, isa});
  }
  b->ArgNames({"log2n", "isa"})->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_TEMPLATE(BM_PerturbPass, zoopt::GaussianSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_PerturbPass, zoopt::RademacherSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_MezoStep, zoopt::GaussianSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_MezoStep, zoopt::RademacherSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_PerturbPass, zoopt::PackedRademacherSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_MezoStep, zoopt::PackedRademacherSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_MezoPipelined, zoopt::GaussianSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_MezoPipelined, zoopt::PackedRademacherSampler)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_PerturbPass, zoopt::LowRankSampler<2, 50>)->Apply(sizes);
BENCHMARK_TEMPLATE(BM_PerturbPass, zoopt::LowRankSampler<8, 50>)->Apply(sizes);

void thread_counts(benchmark::internal::Benchmark* b) {
  for (int log2n : {20, 24}) {
    for (int threads : {2, 4}) b->Args({log2n, threads});
  }
  b->ArgNames({"log2n", "threads"})->UseManualTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK_TEMPLATE(BM_PassThreads, zoopt::GaussianSampler)->Apply(thread_counts);
BENCHMARK_TEMPLATE(BM_PassThreads, zoopt::RademacherSampler)->Apply(thread_counts);
BENCHMARK_TEMPLATE(BM_PassThreads, zoopt::PackedRademacherSampler)->Apply(thread_counts);

#ifdef ZOOPT_BENCH_WITH_TORCH
void torch_sizes(benchmark::internal::Benchmark* b) {
  for (int log2n = 20; log2n <= 28; log2n += 2) {
    // One libtorch thread: zoopt's CPU backend runs on one thread, and
    // thread CPU time only sees the calling thread.
    for (int reuse : {0, 1}) b->Args({log2n, 1, reuse});
  }
  b->ArgNames({"log2n", "threads", "reuse"})->UseManualTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_TorchPass)->Apply(torch_sizes);
void torch_thread_counts(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2}) {
    for (int reuse : {0, 1}) b->Args({24, threads, reuse});
  }
  b->ArgNames({"log2n", "threads", "reuse"})->UseManualTime()->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_TorchPassThreads)->Apply(torch_thread_counts);
BENCHMARK(BM_TorchStep)->Apply(torch_sizes);
#endif

}  // namespace

BENCHMARK_MAIN();
