// Device tests of the CUDA backend (need a GPU; without one the binary prints
// "skipped: no CUDA device" and exits 77, which CTest reports as skipped).
// Host-compiled against the plain C++ header and zoopt::cuda, like a trainer
// built with g++ would be; the device loss lives in device_helpers.cu.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "device_helpers.hpp"
#include "reference.hpp"
#include "zoopt/cuda/cuda_backend.hpp"
#include "zoopt/kerzoo.hpp"

using zoopt::SpanView;
using zoopt::Term;
namespace zc = zoopt::cuda;

namespace {

void ok(cudaError_t e) { zc::detail::check(e, "test CUDA call"); }

/// A device array of n T, freed on scope exit.
template <class T>
class DeviceArray {
 public:
  explicit DeviceArray(std::size_t n) : n_(n) {
    ok(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T) + 64));
  }
  ~DeviceArray() { static_cast<void>(cudaFree(p_)); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  T* get() const { return p_; }
  void upload(const std::vector<T>& v, std::size_t at = 0) {
    ok(cudaMemcpy(p_ + at, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download(std::size_t at, std::size_t n) const {
    std::vector<T> v(n);
    ok(cudaMemcpy(v.data(), p_ + at, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

/// Spans laid out in one device array so that every kernel path runs:
/// aligned, misaligned (head units), short (< one unit), tails, global
/// offsets that are not multiples of 4, and one span over several tiles.
struct Layout {
  struct Piece {
    std::size_t at;    // element position in the array
    std::size_t size;  // elements
    std::uint64_t offset;
    bool decay;
  };
  std::vector<Piece> pieces = {{0, 4096 * 3 + 5, 0, true},   {12301, 1, 12293, false},
                               {12305, 3, 12294, true},      {12313, 1027, 12297, true},
                               {13344, 70001, 13330, false}, {83352, 2, 83331, true}};
  std::size_t total() const { return pieces.back().at + pieces.back().size; }
  std::size_t elements() const {
    std::size_t n = 0;
    for (const auto& p : pieces) n += p.size;
    return n;
  }
  // With `shaped`, pieces 0 and 3 are matrices (19 x 647 and 13 x 79), for
  // samplers that use shapes.
  template <class T>
  std::vector<SpanView<T>> views(T* base, double scale_of_4 = 1.0, bool shaped = false) const {
    std::vector<SpanView<T>> v;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const auto& p = pieces[i];
      zoopt::MatrixShape shape{};
      if (shaped && i == 0) shape = {19, 647};
      if (shaped && i == 3) shape = {13, 79};
      v.push_back(
          SpanView<T>{base + p.at, p.size, p.offset, p.decay, i == 4 ? scale_of_4 : 1.0, shape});
    }
    return v;
  }
};

template <class T>
std::vector<T> gaussian_init(std::size_t n, double sd, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(sd));
  std::vector<T> v(n);
  for (T& x : v) x = zc::detail::from_compute<T>(normal(rng));
  return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b, std::size_t* first = nullptr) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (zc::detail::to_bits(a[i]) != zc::detail::to_bits(b[i])) {
      if (first != nullptr) *first = i;
      return false;
    }
  }
  return true;
}

}  // namespace

namespace {

// One move from 0 by 1 * z writes x = fl(0 + fl(1 * z)) = z: the device's
// noise for `key` must be the CPU's bits (noise_at) on every piece.
template <class Sampler>
void device_signs_match_cpu(const zoopt::NoiseKey& key) {
  const Layout L;
  DeviceArray<float> d(L.total());
  ok(cudaMemset(d.get(), 0, L.total() * sizeof(float)));
  const auto views = L.views(d.get());
  zc::CudaBackend<float, Sampler> backend;
  const std::vector<Term> t = {{key.direction, 0.0, 1.0}};
  backend.move(views, key.seed, key.step, t);
  const auto x = d.download(0, L.total());
  for (const auto& p : L.pieces) {
    for (std::size_t j = 0; j < p.size; ++j) {
      const float z = zoopt::noise_at<Sampler, float>(key, p.offset + j);
      REQUIRE(std::bit_cast<std::uint32_t>(x[p.at + j]) == std::bit_cast<std::uint32_t>(z));
    }
  }
}

}  // namespace

TEST_CASE("Rademacher noise on the device is bit-identical to the CPU's", "[cuda][noise]") {
  device_signs_match_cpu<zoopt::RademacherSampler>(zoopt::NoiseKey{12345, 7, 3});
}

TEST_CASE("Packed-sign noise on the device is bit-identical to the CPU's", "[cuda][noise]") {
  device_signs_match_cpu<zoopt::PackedRademacherSampler>(zoopt::NoiseKey{777, 9, 2});
}

// The Gaussian sampler (sampler/gaussian.hpp) uses only correctly rounded
// +, *, / (the device's _rn intrinsics, never fused) and bit operations, in
// the same order on host and device: the device values must be the CPU's
// bits.
TEST_CASE("Gaussian noise on the device is bit-identical to the CPU's", "[cuda][noise]") {
  const Layout L;
  DeviceArray<float> d(L.total());
  ok(cudaMemset(d.get(), 0, L.total() * sizeof(float)));
  const auto views = L.views(d.get());
  zc::CudaBackend<float, zoopt::GaussianSampler> backend;
  const std::vector<Term> t = {{1, 0.0, 1.0}};
  backend.move(views, 777, 3, t);
  const auto x = d.download(0, L.total());
  for (const auto& p : L.pieces) {
    for (std::size_t j = 0; j < p.size; ++j) {
      const float z =
          zoopt::noise_at<zoopt::GaussianSampler, float>(zoopt::NoiseKey{777, 3, 1}, p.offset + j);
      INFO("element " << p.offset + j << ": device " << x[p.at + j] << ", cpu " << z);
      REQUIRE(std::bit_cast<std::uint32_t>(x[p.at + j]) == std::bit_cast<std::uint32_t>(z));
    }
  }
}

namespace {

// Device passes against the host emulation (same element functions, map
// journal) for a full step sequence.
template <class T, class Sampler = zoopt::RademacherSampler>
void passes_match_reference(bool shaped = false) {
  const Layout L;
  DeviceArray<T> d(L.total());
  std::vector<T> host = gaussian_init<T>(L.total(), 0.02, 11);
  d.upload(host);
  const auto dv = L.views(d.get(), 1.5, shaped);
  const auto hv = L.views(host.data(), 1.5, shaped);
  zc::CudaBackend<T, Sampler> backend;
  zc::test::ReferencePasses<T, Sampler> ref;
  const double h0 = 1e-3;
  const double h1 = 3e-3;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const std::vector<std::vector<Term>> moves = {
        {{0, 0.0, h0}}, {{0, h0, -h0}}, {{0, -h0, 0.0}, {1, 0.0, h1}}, {{1, h1, -h1}}};
    for (const auto& t : moves) {
      backend.move(dv, 5, step, t);
      ref.move(hv, 5, step, t);
      std::size_t at = 0;
      INFO("step " << step);
      REQUIRE(same_bits(d.download(0, L.total()), host, &at));
      REQUIRE(backend.journal_size() == ref.journal_size());
    }
    const std::vector<Term> fin = {{0, 0.0, 0.4}, {1, -h1, -0.9}};
    backend.update(dv, 5, step, fin, 1e-2, 0.1);
    ref.update(hv, 5, step, fin, 1e-2, 0.1);
    REQUIRE(same_bits(d.download(0, L.total()), host));
    REQUIRE(backend.journal_size() == 0);
  }
}

}  // namespace

TEST_CASE("device passes equal the host emulation bit for bit", "[cuda][passes]") {
  SECTION("float") { passes_match_reference<float>(); }
  SECTION("__half") { passes_match_reference<__half>(); }
  SECTION("__nv_bfloat16") { passes_match_reference<__nv_bfloat16>(); }
  SECTION("float, low rank (factors uploaded from the host)") {
    passes_match_reference<float, zoopt::LowRankSampler<>>(true);
  }
  SECTION("__half, low rank") { passes_match_reference<__half, zoopt::LowRankSampler<>>(true); }
}

namespace {

template <class T, class Sampler>
void restore_is_exact() {
  const Layout L;
  DeviceArray<T> d(L.total());
  const std::vector<T> before = gaussian_init<T>(L.total(), 0.02, 3);
  d.upload(before);
  const auto views = L.views(d.get());
  zc::CudaBackend<T, Sampler> backend;
  for (std::uint64_t step = 0; step < 4; ++step) {
    backend.move(views, 9, step, std::vector<Term>{{0, 0.0, 1e-3}});
    backend.move(views, 9, step, std::vector<Term>{{0, 1e-3, -1e-3}});
    backend.move(views, 9, step, std::vector<Term>{{0, -1e-3, 0.0}, {1, 0.0, 2e-3}});
    const std::size_t journaled = backend.journal_size();
    CHECK(journaled > 0);  // the journal was exercised
    backend.restore(views, 9, step, std::vector<Term>{{1, 2e-3, 0.0}});
    std::size_t at = 0;
    const auto after = d.download(0, L.total());
    INFO("first difference at " << at << ", journaled " << journaled);
    REQUIRE(same_bits(after, before, &at));
  }
  CHECK(backend.journal_status().lost == 0);
}

}  // namespace

TEST_CASE("restore returns the pre-step bits", "[cuda][restore]") {
  SECTION("float gaussian") { restore_is_exact<float, zoopt::GaussianSampler>(); }
  SECTION("__half gaussian") { restore_is_exact<__half, zoopt::GaussianSampler>(); }
  SECTION("bf16 gaussian") { restore_is_exact<__nv_bfloat16, zoopt::GaussianSampler>(); }
  SECTION("float rademacher") { restore_is_exact<float, zoopt::RademacherSampler>(); }
}

TEST_CASE("a NaN loss leaves the device parameters at their pre-step bits", "[cuda][restore]") {
  const std::size_t n = 50000;
  DeviceArray<float> d(n);
  const std::vector<float> before = gaussian_init<float>(n, 0.02, 8);
  d.upload(before);
  zc::MeZO<float> opt({.lr = 1e-3, .eps = 1e-3, .directions = 2, .seed = 4});
  int calls = 0;
  auto loss = [&] { return ++calls == 3 ? std::nan("") : 1.0 * calls; };
  CHECK_THROWS_AS(opt.step(loss, std::span<float>(d.get(), n)), zoopt::NonFiniteLoss);
  REQUIRE(same_bits(d.download(0, n), before));
}

namespace {

struct Problem {
  std::size_t n = 20000;
  std::vector<float> target, weight, init;
  Problem() {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uni(0.5f, 2.0f);
    for (std::size_t i = 0; i < n; ++i) {
      target.push_back(normal(rng));
      weight.push_back(uni(rng));
      init.push_back(normal(rng));
    }
  }
  // The same loss on the host, in double.
  double host_loss(const float* x) const {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double e = static_cast<double>(x[i]) - target[i];
      s += 0.5 * weight[i] * e * e;
    }
    return s / static_cast<double>(n);
  }
};

// Runs `steps` steps of Opt on the CPU and on the device (two spans), with
// the loss computed on the host from a downloaded copy (identical values),
// and returns (cpu, device) parameters.
template <class CpuOpt, class DevOpt, class Set>
std::pair<std::vector<float>, std::vector<float>> trajectories(const Problem& P, Set set, int steps,
                                                               bool device_loss,
                                                               bool shaped = false) {
  typename CpuOpt::Params pc;
  set(pc);
  typename DevOpt::Params pd;
  set(pd);
  // Shaped: a is 100 x 70, b 130 x 100 (n = 20000).
  const std::size_t na = shaped ? 7000 : 7001;
  const zoopt::SpanOptions oa{.shape = shaped ? zoopt::MatrixShape{100, 70} : zoopt::MatrixShape{}};
  const zoopt::SpanOptions ob{
      .weight_decay = false, .shape = shaped ? zoopt::MatrixShape{130, 100} : zoopt::MatrixShape{}};
  std::vector<float> cpu = P.init;
  zoopt::ParameterSet<float> cpu_set;
  cpu_set.add("a", std::span<float>(cpu.data(), na), oa)
      .add("b", std::span<float>(cpu.data() + na, P.n - na), ob);
  DeviceArray<float> d(P.n);
  d.upload(P.init);
  zoopt::ParameterSet<float> dev_set;
  dev_set.add("a", std::span<float>(d.get(), na), oa)
      .add("b", std::span<float>(d.get() + na, P.n - na), ob);
  DeviceArray<float> dt(P.n);
  DeviceArray<float> dw(P.n);
  dt.upload(P.target);
  dw.upload(P.weight);
  zc::test::DeviceQuadratic dq(dt.get(), dw.get(), P.n);
  std::vector<float> scratch(P.n);
  CpuOpt co(pc);
  DevOpt go(pd);
  auto cpu_loss = [&] { return P.host_loss(cpu.data()); };
  auto dev_loss = [&] {
    if (device_loss) return dq(d.get());
    ok(cudaMemcpy(scratch.data(), d.get(), P.n * sizeof(float), cudaMemcpyDeviceToHost));
    return P.host_loss(scratch.data());
  };
  for (int s = 0; s < steps; ++s) {
    co.step(cpu_loss, cpu_set);
    go.step(dev_loss, dev_set);
  }
  return {cpu, d.download(0, P.n)};
}

}  // namespace

TEST_CASE("200-step MeZO, KerZOO and FZOO trajectories: Rademacher bit-identical to the CPU",
          "[cuda][trajectory]") {
  const Problem P;
  auto mezo = [](auto& p) {
    p.lr = 0.5;
    p.eps = 1e-3;
    p.seed = 7;
    p.weight_decay = 1e-3;
  };
  auto kerzoo = [](auto& p) {
    p.lr = 0.1;
    p.eps = 1e-3;
    p.seed = 7;
    p.directions = 3;
  };
  {
    auto [cpu, dev] = trajectories<zoopt::MeZO<float, zoopt::RademacherSampler>,
                                   zc::MeZO<float, zoopt::RademacherSampler>>(P, mezo, 200, false);
    REQUIRE(same_bits(cpu, dev));
    CHECK(P.host_loss(cpu.data()) < P.host_loss(P.init.data()));  // it optimised
  }
  {
    auto [cpu, dev] =
        trajectories<zoopt::KerZOO<float, zoopt::RademacherSampler>,
                     zc::KerZOO<float, zoopt::RademacherSampler>>(P, kerzoo, 200, false);
    REQUIRE(same_bits(cpu, dev));
  }
  {
    auto fzoo = [](auto& p) {
      p.lr = 0.5;
      p.eps = 1e-3;
      p.seed = 7;
      p.directions = 4;
      p.schedule = zoopt::LrSchedule::warmup_cosine(20, 200, 0.1);
    };
    auto [cpu, dev] = trajectories<zoopt::FZOO<float>, zc::FZOO<float>>(P, fzoo, 200, false);
    REQUIRE(same_bits(cpu, dev));
    CHECK(P.host_loss(cpu.data()) < P.host_loss(P.init.data()));
  }
}

TEST_CASE("200-step low-rank MeZO and FZOO trajectories: bit-identical to the CPU",
          "[cuda][trajectory][low_rank]") {
  const Problem P;
  using LowRank = zoopt::LowRankSampler<>;
  {
    auto mezo = [](auto& p) {
      p.lr = 0.5;
      p.eps = 1e-3;
      p.seed = 7;
      p.weight_decay = 1e-3;
    };
    auto [cpu, dev] = trajectories<zoopt::MeZO<float, LowRank>, zc::MeZO<float, LowRank>>(
        P, mezo, 200, false, true);
    REQUIRE(same_bits(cpu, dev));
    CHECK(P.host_loss(cpu.data()) < P.host_loss(P.init.data()));
  }
  {
    auto fzoo = [](auto& p) {
      p.lr = 0.5;
      p.eps = 1e-3;
      p.seed = 7;
      p.directions = 4;
    };
    auto [cpu, dev] = trajectories<zoopt::FZOO<float, LowRank>, zc::FZOO<float, LowRank>>(
        P, fzoo, 200, false, true);
    REQUIRE(same_bits(cpu, dev));
  }
}

// Tolerance. The noise is bit-identical (test above), but the device loss
// sums in a different order (double, relative difference ~1e-16), and were
// the noise to differ by up to 8 ulp per value the trajectories would still
// have to agree to this tolerance. A one-ulp change of a perturbed weight moves
// L+- by ~|grad| ulp, which the estimator divides by 2 eps, so differences do
// grow along the trajectory. Measured worst case on the host (CpuBackend with
// a sampler whose every z is moved by a pseudo-random -8..+8 ulp, otherwise
// this exact problem, 200 steps, d = 10000): largest element difference
// 6.4e-5 (MeZO) and 1.2e-4 (KerZOO) of the largest distance travelled, loss
// difference 2e-8 and 6e-8 relative. The device moves only a few values by
// 1-2 ulp; the test allows 2e-3 of the distance travelled and 1e-6 relative
// on the loss (over 15x the emulated worst case).
TEST_CASE("200-step Gaussian MeZO and KerZOO trajectories match the CPU within tolerance",
          "[cuda][trajectory]") {
  const Problem P;
  auto check = [&](const std::vector<float>& cpu, const std::vector<float>& dev) {
    double diff = 0.0;
    double moved = 0.0;
    for (std::size_t i = 0; i < P.n; ++i) {
      diff = std::max(diff, std::fabs(static_cast<double>(cpu[i]) - dev[i]));
      moved = std::max(moved, std::fabs(static_cast<double>(cpu[i]) - P.init[i]));
    }
    INFO("max |cpu - device| " << diff << ", max distance travelled " << moved);
    CHECK(moved > 0.0);
    CHECK(diff <= 2e-3 * moved);
    const double lc = P.host_loss(cpu.data());
    const double ld = P.host_loss(dev.data());
    CHECK(std::fabs(lc - ld) <= 1e-6 * lc);
  };
  {
    auto [cpu, dev] = trajectories<zoopt::MeZO<float>, zc::MeZO<float>>(
        P,
        [](auto& p) {
          p.lr = 0.5;
          p.eps = 1e-3;
          p.seed = 7;
        },
        200, true);
    check(cpu, dev);
  }
  {
    auto [cpu, dev] = trajectories<zoopt::KerZOO<float>, zc::KerZOO<float>>(
        P,
        [](auto& p) {
          p.lr = 0.1;
          p.eps = 1e-3;
          p.seed = 7;
          p.directions = 3;
        },
        200, true);
    check(cpu, dev);
  }
}

namespace {

// 50 steps (the last one moves into step 50, where LowRankSampler<>'s V is
// drawn afresh) with the parameters as one span of the given shape.
template <class Sampler>
void fused_equals_cpu(zoopt::MatrixShape shape) {
  const Problem P;
  std::vector<float> cpu = P.init;
  const std::vector<SpanView<float>> cv = {{cpu.data(), P.n, 0, true, 1.0, shape}};
  DeviceArray<float> d(P.n);
  d.upload(P.init);
  const std::vector<SpanView<float>> dv = {{d.get(), P.n, 0, true, 1.0, shape}};
  zoopt::CpuBackend<float, Sampler> cb;
  zc::CudaBackend<float, Sampler> gb;
  std::vector<float> scratch(P.n);
  auto dev_loss = [&] {
    ok(cudaMemcpy(scratch.data(), d.get(), P.n * sizeof(float), cudaMemcpyDeviceToHost));
    return P.host_loss(scratch.data());
  };
  const double eps = 1e-3;
  const double lr = 0.5;
  const std::uint64_t seed = 21;
  gb.move(dv, seed, 0, std::vector<Term>{{0, 0.0, eps}});  // first step's +eps
  for (std::uint64_t t = 0; t < 50; ++t) {
    // CPU: +eps, -eps, update (3 passes).
    cb.move(cv, seed, t, std::vector<Term>{{0, 0.0, eps}});
    const double cp = P.host_loss(cpu.data());
    cb.move(cv, seed, t, std::vector<Term>{{0, eps, -eps}});
    const double cm = P.host_loss(cpu.data());
    const double cc = (cp - cm) / (2 * eps);
    cb.update(cv, seed, t, std::vector<Term>{{0, -eps, cc}}, lr, 0.0);
    // Device: already at +eps; -eps, then update fused with the next +eps.
    const double gp = dev_loss();
    gb.move(dv, seed, t, std::vector<Term>{{0, eps, -eps}});
    const double gm = dev_loss();
    REQUIRE(gp == cp);
    REQUIRE(gm == cm);
    gb.update_and_move(dv, seed, t, std::vector<Term>{{0, -eps, (gp - gm) / (2 * eps)}}, lr, 0.0,
                       t + 1, std::vector<Term>{{0, 0.0, eps}});
  }
  gb.restore(dv, seed, 50, std::vector<Term>{{0, eps, 0.0}});  // leave the last +eps
  REQUIRE(same_bits(cpu, d.download(0, P.n)));
}

}  // namespace

TEST_CASE("the fused schedule (2 passes per step) equals the 3-pass CPU step", "[cuda][fused]") {
  SECTION("rademacher") { fused_equals_cpu<zoopt::RademacherSampler>({}); }
  SECTION("low rank, 200 x 100") { fused_equals_cpu<zoopt::LowRankSampler<>>({200, 100}); }
}

TEST_CASE("optimize_pipelined on the device equals optimize() on the CPU", "[cuda][fused]") {
  const Problem P;
  const zoopt::MeZO<float, zoopt::RademacherSampler>::Params p{
      .lr = 0.5, .eps = 1e-3, .directions = 2, .seed = 3};
  const zc::MeZO<float, zoopt::RademacherSampler>::Params pd{
      .lr = 0.5, .eps = 1e-3, .directions = 2, .seed = 3};
  std::vector<float> cpu = P.init;
  zoopt::MeZO<float, zoopt::RademacherSampler> cpu_opt(p);
  cpu_opt.optimize([&] { return P.host_loss(cpu.data()); }, std::span<float>(cpu), 40);
  DeviceArray<float> d(P.n);
  d.upload(P.init);
  std::vector<float> scratch(P.n);
  zc::MeZO<float, zoopt::RademacherSampler> dev_opt(pd);
  dev_opt.optimize_pipelined(
      [&] {
        ok(cudaMemcpy(scratch.data(), d.get(), P.n * sizeof(float), cudaMemcpyDeviceToHost));
        return P.host_loss(scratch.data());
      },
      std::span<float>(d.get(), P.n), 40);
  REQUIRE(same_bits(cpu, d.download(0, P.n)));
  CHECK(dev_opt.forward_passes() == cpu_opt.forward_passes());
}

TEST_CASE("steps allocate no device memory after the first", "[cuda][memory]") {
  const Problem P;
  DeviceArray<float> d(P.n);
  d.upload(P.init);
  DeviceArray<float> dt(P.n);
  DeviceArray<float> dw(P.n);
  dt.upload(P.target);
  dw.upload(P.weight);
  zc::test::DeviceQuadratic dq(dt.get(), dw.get(), P.n);
  zc::KerZOO<float> opt({.lr = 0.1, .eps = 1e-3, .directions = 3, .seed = 2});
  auto loss = [&] { return dq(d.get()); };
  const std::span<float> params(d.get(), P.n);
  opt.step(loss, params);
  const std::uint64_t allocs = opt.backend().allocations();
  CHECK(allocs > 0);
  ok(cudaDeviceSynchronize());
  std::size_t free0 = 0;
  std::size_t total = 0;
  ok(cudaMemGetInfo(&free0, &total));
  for (int s = 0; s < 200; ++s) opt.step(loss, params);
  ok(cudaDeviceSynchronize());
  std::size_t free1 = 0;
  ok(cudaMemGetInfo(&free1, &total));
  CHECK(opt.backend().allocations() == allocs);
  CHECK(free1 == free0);
}

TEST_CASE("journal overflow is counted, restores within one rounding, and is reported",
          "[cuda][journal]") {
  const std::size_t n = 100000;
  DeviceArray<float> d(n);
  const std::vector<float> before = gaussian_init<float>(n, 0.02, 6);
  d.upload(before);
  const std::vector<SpanView<float>> views = {{d.get(), n, 0, true, 1.0}};
  zc::CudaBackendOptions o;
  o.journal_capacity = 64;  // far below the ~10% of elements this needs
  zc::CudaBackend<float, zoopt::GaussianSampler> backend(o);
  const double h = 1e-3;
  backend.move(views, 1, 0, std::vector<Term>{{0, 0.0, h}});
  backend.move(views, 1, 0, std::vector<Term>{{0, h, -h}});
  const zc::JournalStatus s = backend.journal_status();
  CHECK(s.overflowed);
  CHECK(s.lost > 0);
  CHECK(s.entries <= 64);
  backend.restore(views, 1, 0, std::vector<Term>{{0, -h, 0.0}});
  const auto after = d.download(0, n);
  std::size_t inexact = 0;
  for (std::size_t i = 0; i < n; ++i) {
    // fl(fl(theta0 - d) + d) is within ulp(|theta0| + |d|) of theta0;
    // |d| <= h * 6 (|z| < 6 for 24-bit Box-Muller uniforms).
    const double bound = std::ldexp(1.0, -23) * (std::fabs(before[i]) + 6 * h);
    REQUIRE(std::fabs(static_cast<double>(after[i]) - before[i]) <= bound);
    inexact += after[i] != before[i] ? 1 : 0;
  }
  CHECK(inexact > 0);
  CHECK(inexact <= s.lost);
  CHECK_THROWS_AS(backend.move(views, 1, 1, std::vector<Term>{{0, 0.0, h}}), zc::JournalOverflow);
  backend.reset_overflow();
  CHECK_FALSE(backend.journal_status().overflowed);
  CHECK(backend.journal_status().lost == 0);
  CHECK_NOTHROW(backend.move(views, 1, 1, std::vector<Term>{{0, 0.0, h}}));
  backend.restore(views, 1, 1, std::vector<Term>{{0, h, 0.0}});
}

TEST_CASE("span moments and L2 norm match a double-precision host computation", "[cuda][reduce]") {
  // Span 1 is longer than one reduction chunk (2^22 elements).
  const std::vector<std::size_t> sizes = {1000, (std::size_t{1} << 22) + 4097, 1, 77};
  std::size_t total = 0;
  for (auto s : sizes) total += s;
  DeviceArray<float> d(total);
  std::vector<float> host(total);
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (std::size_t i = 0; i < total; ++i) host[i] = 1.0f + 0.01f * normal(rng);  // mean >> sd
  d.upload(host);
  std::vector<SpanView<float>> views;
  std::size_t at = 0;
  for (auto s : sizes) {
    views.push_back({d.get() + at, s, at, true, 1.0});
    at += s;
  }
  zc::CudaBackend<float, zoopt::GaussianSampler> backend;
  const auto m = backend.span_moments(views);
  double all = 0.0;
  at = 0;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    double mean = 0.0;
    for (std::size_t i = 0; i < sizes[k]; ++i) mean += host[at + i];
    mean /= static_cast<double>(sizes[k]);
    double var = 0.0;
    for (std::size_t i = 0; i < sizes[k]; ++i) {
      var += (host[at + i] - mean) * (host[at + i] - mean);
      all += static_cast<double>(host[at + i]) * host[at + i];
    }
    var = sizes[k] > 1 ? var / static_cast<double>(sizes[k] - 1) : 0.0;
    INFO("span " << k);
    // Sums of up to 2^22 doubles: relative rounding <= n * 2^-53 < 1e-9.
    CHECK(std::fabs(m[k].mean - mean) <= 1e-9 * std::fabs(mean));
    CHECK(std::fabs(m[k].variance - var) <= 1e-9 * var + 1e-300);
    at += sizes[k];
  }
  CHECK(std::fabs(backend.l2_norm(views) - std::sqrt(all)) <= 1e-9 * std::sqrt(all));
  CHECK(backend.allocations() > 0);
  const auto allocs = backend.allocations();
  static_cast<void>(backend.span_moments(views));
  CHECK(backend.allocations() == allocs);  // temporary storage reused
}

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::puts("skipped: no CUDA device");
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
