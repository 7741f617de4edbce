// Parameter-memory benchmarks of the CUDA backend (Google Benchmark, manual
// time from CUDA events on the backend's stream).
//
//   BM_FusedMove<T>        one fused pass (move +eps -> -eps: read, Philox,
//                          journal lookup and check, write), T = float, bf16,
//                          half; float parameters ~ N(0, 0.02^2)
//   BM_MemcpyD2D           cudaMemcpyAsync device-to-device of the same bytes
//                          (the bandwidth bound of a read + write pass)
//   BM_CurandAxpy          two-kernel baseline: curandGenerateNormal into a
//                          buffer of n floats + axpy (x += a z)
//   BM_MezoStep3           whole MeZO step through zoopt::cuda::MeZO
//                          (3 passes: +eps, -eps, restore+update), no-op loss
//   BM_MezoStep2           steady-state fused schedule (2 passes: -eps, then
//                          restore+update+next +eps)
// Argument: log2 of the element count (20 ... 30), skipped when the device
// lacks the memory. Counters: bytes_per_second counts one read and one write
// of the parameters per pass (plus the noise buffer for BM_CurandAxpy).
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>
#include <curand.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "baseline_kernels.hpp"
#include "zoopt/cuda/cuda_backend.hpp"

namespace zc = zoopt::cuda;
using zoopt::SpanView;
using zoopt::Term;

namespace {

void ok(cudaError_t e) { zc::detail::check(e, "benchmark CUDA call"); }

class Events {
 public:
  Events() {
    ok(cudaEventCreate(&start_));
    ok(cudaEventCreate(&stop_));
  }
  ~Events() {
    static_cast<void>(cudaEventDestroy(start_));
    static_cast<void>(cudaEventDestroy(stop_));
  }
  void start(cudaStream_t s) { ok(cudaEventRecord(start_, s)); }
  double stop_seconds(cudaStream_t s) {
    ok(cudaEventRecord(stop_, s));
    ok(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    ok(cudaEventElapsedTime(&ms, start_, stop_));
    return static_cast<double>(ms) * 1e-3;
  }

 private:
  cudaEvent_t start_{};
  cudaEvent_t stop_{};
};

/// Device memory of `bytes`, or null when the device lacks it (with a 10%
/// margin for the journal and the runtime).
void* try_alloc(std::size_t bytes) {
  std::size_t free = 0;
  std::size_t total = 0;
  ok(cudaMemGetInfo(&free, &total));
  if (static_cast<double>(bytes) * 1.1 > static_cast<double>(free)) return nullptr;
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    return nullptr;
  }
  return p;
}

template <class T>
void init_params(T* p, std::size_t n) {
  if constexpr (std::is_same_v<T, float>) {
    ok(zc::bench::fill_normal(p, n, 1, nullptr));
  } else {
    // A constant near 0.01 (0x3c3c as bf16, 0x2020 as half).
    ok(cudaMemset(p, std::is_same_v<T, __nv_bfloat16> ? 0x3c : 0x20, n * sizeof(T)));
  }
  ok(cudaDeviceSynchronize());
}

template <class T>
void BM_FusedMove(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  T* p = static_cast<T*>(try_alloc(n * sizeof(T) + n));  // + the journal's d/8 * 8 bytes
  if (p == nullptr) {
    state.SkipWithError("not enough device memory");
    return;
  }
  ok(cudaFree(p));
  p = static_cast<T*>(try_alloc(n * sizeof(T)));
  init_params(p, n);
  const std::vector<SpanView<T>> views = {{p, n, 0, true, 1.0}};
  zc::CudaBackend<T, zoopt::GaussianSampler> backend;
  const double eps = 1e-3;
  const std::vector<Term> plus = {{0, 0.0, eps}};
  const std::vector<Term> swap = {{0, eps, -eps}};
  const std::vector<Term> back = {{0, -eps, 0.0}};
  Events ev;
  std::uint64_t step = 0;
  for (auto _ : state) {
    // Timed: the -eps pass of a step (journal lookups of the +eps pass
    // included); untimed: the +eps pass before it and the restore after it.
    backend.move(views, 3, step, plus);
    ev.start(nullptr);
    backend.move(views, 3, step, swap);
    state.SetIterationTime(ev.stop_seconds(nullptr));
    backend.restore(views, 3, step, back);
    ++step;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(n * sizeof(T)));
  state.counters["elements"] = static_cast<double>(n);
  ok(cudaFree(p));
}

void BM_MemcpyD2D(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  void* a = try_alloc(n * sizeof(float));
  void* b = a != nullptr ? try_alloc(n * sizeof(float)) : nullptr;
  if (b == nullptr) {
    if (a != nullptr) ok(cudaFree(a));
    state.SkipWithError("not enough device memory");
    return;
  }
  Events ev;
  for (auto _ : state) {
    ev.start(nullptr);
    ok(cudaMemcpyAsync(b, a, n * sizeof(float), cudaMemcpyDeviceToDevice, nullptr));
    state.SetIterationTime(ev.stop_seconds(nullptr));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 *
                          static_cast<std::int64_t>(n * sizeof(float)));
  ok(cudaFree(a));
  ok(cudaFree(b));
}

void BM_CurandAxpy(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  auto* x = static_cast<float*>(try_alloc(n * sizeof(float)));
  auto* z = x != nullptr ? static_cast<float*>(try_alloc(n * sizeof(float))) : nullptr;
  if (z == nullptr) {
    if (x != nullptr) ok(cudaFree(x));
    state.SkipWithError("not enough device memory");
    return;
  }
  init_params(x, n);
  curandGenerator_t gen{};
  if (curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS) {
    state.SkipWithError("curandCreateGenerator failed");
    return;
  }
  Events ev;
  unsigned long long seed = 1;
  for (auto _ : state) {
    ev.start(nullptr);
    curandSetPseudoRandomGeneratorSeed(gen, seed++);
    curandGenerateNormal(gen, z, n, 0.0f, 1.0f);
    ok(zc::bench::axpy(x, z, 1e-3f, n, nullptr));
    state.SetIterationTime(ev.stop_seconds(nullptr));
  }
  curandDestroyGenerator(gen);
  // generate: write z; axpy: read x, read z, write x.
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 4 *
                          static_cast<std::int64_t>(n * sizeof(float)));
  ok(cudaFree(x));
  ok(cudaFree(z));
}

void BM_MezoStep3(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  auto* p = static_cast<float*>(try_alloc(n * sizeof(float) + n));
  if (p == nullptr) {
    state.SkipWithError("not enough device memory");
    return;
  }
  ok(cudaFree(p));
  p = static_cast<float*>(try_alloc(n * sizeof(float)));
  init_params(p, n);
  zc::MeZO<float> opt({.lr = 1e-6, .eps = 1e-3, .directions = 1, .seed = 5});
  int calls = 0;
  // A loss that does not touch the parameters: the timing is the passes'.
  auto loss = [&] { return (++calls % 2 == 0) ? 1.0 : 1.001; };
  const std::span<float> params(p, n);
  opt.step(loss, params);  // warm-up
  Events ev;
  for (auto _ : state) {
    ev.start(nullptr);
    opt.step(loss, params);
    state.SetIterationTime(ev.stop_seconds(nullptr));
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 3 * 2 *
                          static_cast<std::int64_t>(n * sizeof(float)));
  state.counters["passes"] = 3;
  ok(cudaFree(p));
}

void BM_MezoStep2(benchmark::State& state) {
  const std::size_t n = std::size_t{1} << state.range(0);
  auto* p = static_cast<float*>(try_alloc(n * sizeof(float) + 2 * n));
  if (p == nullptr) {
    state.SkipWithError("not enough device memory");
    return;
  }
  ok(cudaFree(p));
  p = static_cast<float*>(try_alloc(n * sizeof(float)));
  init_params(p, n);
  const std::vector<SpanView<float>> views = {{p, n, 0, true, 1.0}};
  zc::CudaBackend<float, zoopt::GaussianSampler> backend;
  const double eps = 1e-3;
  const std::uint64_t seed = 5;
  std::uint64_t t = 0;
  backend.move(views, seed, t, std::vector<Term>{{0, 0.0, eps}});
  Events ev;
  for (auto _ : state) {
    ev.start(nullptr);
    backend.move(views, seed, t, std::vector<Term>{{0, eps, -eps}});
    const double g = 0.5;  // (L+ - L-) / (2 eps) from the user's loss
    backend.update_and_move(views, seed, t, std::vector<Term>{{0, -eps, g}}, 1e-6, 0.0, t + 1,
                            std::vector<Term>{{0, 0.0, eps}});
    state.SetIterationTime(ev.stop_seconds(nullptr));
    ++t;
  }
  backend.restore(views, seed, t, std::vector<Term>{{0, eps, 0.0}});
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * 2 * 2 *
                          static_cast<std::int64_t>(n * sizeof(float)));
  state.counters["passes"] = 2;
  ok(cudaFree(p));
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int k = 20; k <= 30; k += 2) b->Arg(k);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_FusedMove<float>)->Apply(sizes);
BENCHMARK(BM_FusedMove<__nv_bfloat16>)->Apply(sizes);
BENCHMARK(BM_FusedMove<__half>)->Apply(sizes);
BENCHMARK(BM_MemcpyD2D)->Apply(sizes);
BENCHMARK(BM_CurandAxpy)->Apply(sizes);
BENCHMARK(BM_MezoStep3)->Apply(sizes);
BENCHMARK(BM_MezoStep2)->Apply(sizes);

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::puts("skipped: no CUDA device");
    return 0;
  }
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0));
  benchmark::AddCustomContext("device", prop.name);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
