// LowRankSampler: its definition (bit-exact against the documented streams,
// on every thread count, and entry_at against the passes), its moments, V kept for Keep steps, the
// unbiasedness of MeZO's estimate with it, shapes in ParameterSet, logs and
// replay.
#include <cmath>
#include <cstdint>
#include <vector>

#include "test_util.hpp"

namespace {

using zoopt::CpuBackend;
using zoopt::CpuBackendOptions;
using zoopt::MatrixShape;
using zoopt::NoiseKey;
using zoopt::SpanLayout;
using zt::WhatContains;

// u_ij by the formula: (1/sqrt(R)) sum_k U_ik V_jk with U_ik the Gaussian of
// index 2^62 + R o + i R + k under key, V_jk of index 2^63 + R o + j R + k
// under the key of step t - t mod Keep, summed in k order in C.
template <unsigned R, unsigned Keep, class C>
C reference(const NoiseKey& key, std::uint64_t offset, std::uint64_t i, std::uint64_t j) {
  const NoiseKey vkey{key.seed, key.step - key.step % Keep, key.direction};
  const std::uint64_t ub = (std::uint64_t{1} << 62) + R * offset;
  const std::uint64_t vb = (std::uint64_t{1} << 63) + R * offset;
  C acc = zoopt::noise_at<zoopt::GaussianSampler, C>(key, ub + i * R) *
          zoopt::noise_at<zoopt::GaussianSampler, C>(vkey, vb + j * R);
  for (unsigned k = 1; k < R; ++k) {
    acc += zoopt::noise_at<zoopt::GaussianSampler, C>(key, ub + i * R + k) *
           zoopt::noise_at<zoopt::GaussianSampler, C>(vkey, vb + j * R + k);
  }
  return R == 1 ? acc : acc * static_cast<C>(1.0 / std::sqrt(static_cast<double>(R)));
}

// The noise a pass writes: a move from 0 to displacement 1 * z on zero
// parameters without the journal gives x = fl(0 + z) = z.
template <class C, class Sampler>
void pass_noise(zoopt::ParameterSet<C>& set, unsigned threads, std::uint64_t seed,
                std::uint64_t step, std::uint32_t direction) {
  set.for_each([](const std::string&, std::span<C> s) { std::fill(s.begin(), s.end(), C(0)); });
  CpuBackend<C, Sampler> backend(CpuBackendOptions{.exact_restore = false, .threads = threads});
  const zoopt::Term term{direction, 0.0, 1.0};
  backend.move(set.views(), seed, step, std::span<const zoopt::Term>(&term, 1));
}

template <class C>
void check_definition() {
  using S = zoopt::LowRankSampler<2, 7>;
  // A vector first, so the matrix starts at an offset that is not a
  // multiple of a chunk; 300 x 400 spreads over 3 threads.
  std::vector<C> bias(37), w(300 * 400), tail(3 * 5);
  zoopt::ParameterSet<C> set;
  set.add("bias", bias).add("w", w, {.shape = {300, 400}}).add("tail", tail, {.shape = {3, 5}});
  for (unsigned threads : {1U, 3U}) {
    for (std::uint64_t step : {6ULL, 7ULL, 20ULL}) {
      const NoiseKey key{41, step, 2};
      pass_noise<C, S>(set, threads, key.seed, key.step, key.direction);
      bool vector_ok = true;
      for (std::size_t g = 0; g < bias.size(); ++g) {
        vector_ok = vector_ok && bias[g] == zoopt::noise_at<zoopt::GaussianSampler, C>(key, g);
      }
      CHECK(vector_ok);
      std::size_t mismatches = 0;
      for (std::uint64_t i = 0; i < 300; ++i) {
        for (std::uint64_t j = 0; j < 400; ++j) {
          mismatches += w[i * 400 + j] != reference<2, 7, C>(key, 37, i, j);
        }
      }
      for (std::uint64_t i = 0; i < 3; ++i) {
        for (std::uint64_t j = 0; j < 5; ++j) {
          mismatches += tail[i * 5 + j] != reference<2, 7, C>(key, 37 + 120000, i, j);
        }
      }
      CHECK(mismatches == 0);
      // entry_at (the CUDA kernels' per-element form) from prepare()'s
      // scratch gives the pass's bits on every span.
      std::size_t entry_mismatches = 0;
      for (const zoopt::SpanView<C>& v : set.views()) {
        const SpanLayout span{v.offset, v.size, v.shape};
        std::vector<C> scratch(S::scratch_size(span));
        S::prepare(key, span, scratch.data());
        for (std::uint64_t p = 0; p < v.size; ++p) {
          entry_mismatches += S::entry_at(key, span, scratch.data(), p) != v.data[p];
        }
      }
      CHECK(entry_mismatches == 0);
    }
  }
}

// Entry (0, 0) and (0, 1) of a 2 x 2 matrix over M independent keys.
template <unsigned R>
std::vector<std::pair<double, double>> entries(std::uint64_t m) {
  using S = zoopt::LowRankSampler<R, 1>;
  const SpanLayout span{0, 4, {2, 2}};
  std::vector<double> scratch(S::scratch_size(span));
  std::vector<std::pair<double, double>> out;
  for (std::uint64_t t = 0; t < m; ++t) {
    const NoiseKey key{5, t, 0};
    double z[4];
    S::prepare(key, span, scratch.data());
    S::generate(key, span, static_cast<const double*>(scratch.data()), 0, 4, z);
    out.emplace_back(z[0], z[1]);
  }
  return out;
}

}  // namespace

TEST_CASE("core.low_rank entries follow the definition on every thread count", "[core][low_rank]") {
  check_definition<float>();
  check_definition<double>();
}

TEST_CASE("core.low_rank moments: mean 0, variance 1, uncorrelated, E z^4 = 3 + 6/R",
          "[core][low_rank]") {
  constexpr std::uint64_t m = 1 << 16;
  // R = 2: Var z^2 = E z^4 - 1 = 5; E[(z00 z01)^2] = (1/4)(2 * 3 + 2) = 2.
  {
    const auto e = entries<2>(m);
    double s1 = 0, s2 = 0, s4 = 0, cross = 0;
    for (const auto& [a, b] : e) {
      s1 += a;
      s2 += a * a;
      s4 += a * a * a * a;
      cross += a * b;
    }
    const double n = static_cast<double>(m);
    CHECK(std::abs(s1 / n) < 5.0 * std::sqrt(1.0 / n));
    CHECK(std::abs(s2 / n - 1.0) < 5.0 * std::sqrt(5.0 / n));
    CHECK(std::abs(cross / n) < 5.0 * std::sqrt(2.0 / n));
    // z = (P1 + P2)/sqrt(2), P = U V with E P^2, P^4, P^6, P^8 = 1, 9, 225,
    // 11025: E z^8 = (2 * 11025 + 2 * 28 * 225 + 70 * 81) / 16 = 2520, so
    // Var z^4 = 2520 - 36.
    CHECK(std::abs(s4 / n - 6.0) < 5.0 * std::sqrt((2520.0 - 36.0) / n));
  }
  // R = 1: z = U V, E z^4 = 9, Var z^4 = E(UV)^8 - 81 = 105^2 - 81.
  {
    const auto e = entries<1>(m);
    double s4 = 0;
    for (const auto& [a, b] : e) s4 += a * a * a * a;
    const double n = static_cast<double>(m);
    CHECK(std::abs(s4 / n - 9.0) < 5.0 * std::sqrt((105.0 * 105.0 - 81.0) / n));
  }
}

TEST_CASE("core.low_rank V is kept for Keep steps, U is drawn every step", "[core][low_rank]") {
  using S = zoopt::LowRankSampler<2, 50>;
  const SpanLayout span{10, 6 * 4, {6, 4}};
  const std::size_t u_size = 6 * 2;
  auto factors = [&](std::uint64_t step) {
    std::vector<float> f(S::scratch_size(span));
    S::prepare(NoiseKey{9, step, 1}, span, f.data());
    return f;
  };
  const auto a = factors(50), b = factors(99), c = factors(100);
  REQUIRE(a.size() == (6 + 4) * 2);
  CHECK(std::equal(a.begin() + u_size, a.end(), b.begin() + u_size));   // same V
  CHECK(!std::equal(a.begin(), a.begin() + u_size, b.begin()));         // new U
  CHECK(!std::equal(b.begin() + u_size, b.end(), c.begin() + u_size));  // new V at 100
  CHECK(S::scratch_size(SpanLayout{0, 8, {}}) == 0);                    // a vector
  CHECK(S::scratch_size(SpanLayout{0, 8, {1, 8}}) == 0);                // one row
  CHECK(std::string(S::name) == "lowrank-r2-k50");
  CHECK(std::string(zoopt::LowRankSampler<16, 1>::name) == "lowrank-r16-k1");
}

TEST_CASE("core.low_rank MeZO's estimate is unbiased on a quadratic", "[core][low_rank]") {
  // L = 1/2 |x - c|^2: the central difference is exact, so one direction's
  // estimate is (u . g) u with g = x - c, and E[u u^T] = I makes its mean g.
  // Each element's mean over M directions is checked within 5 of its own
  // standard errors.
  using S = zoopt::LowRankSampler<2, 1>;
  const SpanLayout span{0, 5 * 6, {5, 6}};
  std::vector<double> g(30);
  for (std::size_t k = 0; k < g.size(); ++k) g[k] = std::sin(1.0 + static_cast<double>(k));
  constexpr int m = 1 << 14;
  std::vector<double> sum(30, 0.0), sum2(30, 0.0), scratch(S::scratch_size(span));
  for (int t = 0; t < m; ++t) {
    const NoiseKey key{77, static_cast<std::uint64_t>(t), 0};
    double u[30];
    S::prepare(key, span, scratch.data());
    S::generate(key, span, static_cast<const double*>(scratch.data()), 0, 30, u);
    double dot = 0;
    for (int k = 0; k < 30; ++k) dot += u[k] * g[k];
    for (int k = 0; k < 30; ++k) {
      sum[k] += dot * u[k];
      sum2[k] += dot * u[k] * dot * u[k];
    }
  }
  int outside = 0;
  for (int k = 0; k < 30; ++k) {
    const double mean = sum[k] / m;
    const double se = std::sqrt((sum2[k] / m - mean * mean) / m);
    outside += std::abs(mean - g[k]) > 5.0 * se;
  }
  CHECK(outside == 0);
}

TEST_CASE("core.low_rank MeZO trains, logs shapes and replays bit-exactly", "[core][low_rank]") {
  using S = zoopt::LowRankSampler<2, 5>;
  std::vector<float> w(12 * 20), b(20);
  for (std::size_t k = 0; k < w.size(); ++k) w[k] = 0.1f * std::cos(static_cast<float>(k));
  std::vector<float> w0 = w, b0 = b;
  zoopt::ParameterSet<float> set;
  set.add("w", w, {.shape = {12, 20}}).add("b", b, {.weight_decay = false});
  auto loss = [&](const zoopt::ParameterSet<float>&) {
    double s = 0;
    for (float x : w) s += x * x;
    for (float x : b) s += (x - 1.0) * (x - 1.0);
    return s;
  };
  const double start = loss(set);
  zoopt::MeZO<float, S> opt({.lr = 1e-3, .eps = 1e-3, .seed = 3});
  auto log = zoopt::UpdateLog::for_optimizer(opt, set);
  for (int i = 0; i < 1000; ++i) {
    opt.step(loss, set);
    log.record(opt);
  }
  // L = |x - c|^2, d = 260: with Gaussian u, E|e'|^2 = (1 - 4 lr + 4 lr^2
  // (d + 2)) |e|^2 = 0.99695 |e|^2 per step, 0.047 after 1000 steps;
  // low-rank directions have a larger fourth moment (3 + 6/R), hence 0.2.
  CHECK(loss(set) < 0.2 * start);

  const auto bytes = log.serialize();
  CHECK(bytes[8] == 2);  // a log with shapes is format version 2
  const auto back = zoopt::UpdateLog::deserialize(bytes);
  CHECK(back.header().spans[0].shape == MatrixShape{12, 20});
  CHECK(back.header().spans[1].shape.empty());

  zoopt::ParameterSet<float> base;
  base.add("w", w0, {.shape = {12, 20}}).add("b", b0, {.weight_decay = false});
  // By name, only LowRankSampler<> (rank 2, Keep 50) is built in.
  CHECK_THROWS_MATCHES(zoopt::replay(back, base), std::invalid_argument,
                       WhatContains("uses sampler 'lowrank-r2-k5'"));
  zoopt::replay<S>(back, base);
  CHECK(zt::same_bits(w0, w));
  CHECK(zt::same_bits(b0, b));

  // Another shape, same sizes: rejected before anything is written.
  std::vector<float> w1 = w0, b1 = b0;
  zoopt::ParameterSet<float> transposed;
  transposed.add("w", w1, {.shape = {20, 12}}).add("b", b1, {.weight_decay = false});
  CHECK_THROWS_MATCHES(
      zoopt::replay<S>(back, transposed), std::invalid_argument,
      WhatContains("span 'w' has shape 20 x 12 but the log was recorded with 12 x 20"));
  CHECK(zt::same_bits(w1, w0));

  // Shape flags are version 2 only.
  auto v1 = bytes;
  v1[8] = 1;
  CHECK_THROWS_AS(zoopt::UpdateLog::deserialize(v1), zoopt::FormatError);
}

TEST_CASE("core.low_rank shapes: checked by ParameterSet::add, not logged for dense samplers",
          "[core][low_rank]") {
  std::vector<float> w(12);
  zoopt::ParameterSet<float> set;
  CHECK_THROWS_MATCHES(set.add("w", w, {.shape = {5, 2}}), std::invalid_argument,
                       WhatContains("options.shape"));
  CHECK_THROWS_MATCHES(set.add("w", w, {.shape = {0, 12}}), std::invalid_argument,
                       WhatContains("options.shape"));
  set.add("w", w, {.shape = {3, 4}});
  CHECK(set.options(0).shape == MatrixShape{3, 4});
  // A Gaussian run's log does not depend on shapes: version 1, the bytes of
  // an unshaped set.
  zoopt::MeZO<float> opt({.lr = 1e-3});
  zoopt::ParameterSet<float> plain;
  std::vector<float> w2(12);
  plain.add("w", w2);
  const auto a = zoopt::UpdateLog::for_optimizer(opt, set).serialize();
  const auto b = zoopt::UpdateLog::for_optimizer(opt, plain).serialize();
  CHECK(a[8] == 1);
  CHECK(a == b);
  auto v2 = a;
  v2[8] = 2;  // a version-2 log must hold a shape (one encoding per content)
  CHECK_THROWS_MATCHES(zoopt::UpdateLog::deserialize(v2), zoopt::FormatError,
                       WhatContains("version 2 without a span shape"));
}

TEST_CASE("core.low_rank checkpoints record shapes and resume bit-identically",
          "[core][low_rank]") {
  using S = zoopt::LowRankSampler<2, 3>;
  using Opt = zoopt::MeZO<float, S>;
  const Opt::Params p{.lr = 1e-3, .eps = 1e-3, .seed = 8};
  auto make = [](std::vector<float>& w, std::vector<float>& b, MatrixShape shape) {
    zoopt::ParameterSet<float> set;
    set.add("w", w, {.shape = shape}).add("b", b);
    return set;
  };
  auto loss = [](const zoopt::ParameterSet<float>& set) {
    double s = 0;
    set.for_each([&](const std::string&, std::span<float> x) {
      for (float v : x) s += (v - 0.5) * (v - 0.5);
    });
    return s;
  };
  // Uninterrupted: 10 steps. Interrupted: 4 steps, checkpoint, 6 steps in a
  // fresh optimizer (V is kept across the cut: steps 3-5 share it).
  std::vector<float> w1(6 * 5, 0.1f), b1(5, 0.2f), w2 = w1, b2 = b1;
  auto whole = make(w1, b1, {6, 5});
  Opt a(p);
  for (int t = 0; t < 10; ++t) a.step(loss, whole);
  auto part = make(w2, b2, {6, 5});
  Opt first(p);
  for (int t = 0; t < 4; ++t) first.step(loss, part);
  const auto bytes = zoopt::checkpoint::serialize(zoopt::checkpoint::capture(first, part));
  CHECK(bytes[8] == 2);
  const auto contents = zoopt::checkpoint::deserialize(bytes);
  REQUIRE(contents.spans.size() == 2);
  CHECK(contents.spans[0].shape == MatrixShape{6, 5});
  CHECK(contents.spans[1].shape.empty());

  std::vector<float> w3(30), b3(5);
  auto other = make(w3, b3, {5, 6});
  Opt wrong(p);
  CHECK_THROWS_MATCHES(zoopt::checkpoint::restore(contents, wrong, other), std::invalid_argument,
                       WhatContains("has shape 6 x 5 but the parameter span has 5 x 6"));
  CHECK(zt::same_bits(w3, std::vector<float>(30)));
  CHECK(wrong.step_count() == 0);

  std::vector<float> w4(30), b4(5);
  auto resumed = make(w4, b4, {6, 5});
  Opt second(p);
  zoopt::checkpoint::restore(contents, second, resumed);
  for (int t = 0; t < 6; ++t) second.step(loss, resumed);
  CHECK(zt::same_bits(w4, w1));
  CHECK(zt::same_bits(b4, b1));

  // A version-2 file must hold a shape (one encoding per content).
  auto plain = zoopt::checkpoint::capture(first, part);
  plain.spans[0].shape = {};
  auto v2 = zoopt::checkpoint::serialize(plain);
  CHECK(v2[8] == 1);
  v2[8] = 2;
  const std::uint32_t crc = zoopt::detail::bin::crc32(v2.data(), v2.size() - 4);
  for (int k = 0; k < 4; ++k) v2[v2.size() - 4 + k] = static_cast<unsigned char>(crc >> (8 * k));
  CHECK_THROWS_MATCHES(zoopt::checkpoint::deserialize(v2), zoopt::FormatError,
                       WhatContains("version 2 without a span shape"));
}
