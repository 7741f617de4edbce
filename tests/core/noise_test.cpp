// Counter-based noise: Philox known answer, element noise = block noise, and
// the laws of the Gaussian and Rademacher samplers.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "test_util.hpp"

namespace {

using zoopt::NoiseKey;

// Sample moments of N draws. The bounds below are 5 standard errors of the
// sample statistic under the target law, with the standard error computed
// from the law's own higher moments (CLT): for a sample mean of a variable
// with variance v, SE = sqrt(v / N).
struct Moments {
  double n = 0, m1 = 0, m2 = 0, m4 = 0;
  void add(double z) {
    n += 1;
    m1 += z;
    m2 += z * z;
    m4 += z * z * z * z;
  }
  [[nodiscard]] double mean() const { return m1 / n; }
  [[nodiscard]] double second() const { return m2 / n; }
  [[nodiscard]] double fourth() const { return m4 / n; }
};

template <class C>
void check_gaussian_moments(const Moments& m) {
  const double n = m.n;
  // E[z] = 0, Var z = 1            -> SE(mean)   = sqrt(1 / N)
  // E[z^2] = 1, Var z^2 = 3 - 1 = 2 -> SE(second) = sqrt(2 / N)
  // E[z^4] = 3, Var z^4 = 105 - 9  -> SE(fourth) = sqrt(96 / N)
  CHECK(std::abs(m.mean()) <= 5.0 * std::sqrt(1.0 / n));
  CHECK(std::abs(m.second() - 1.0) <= 5.0 * std::sqrt(2.0 / n));
  CHECK(std::abs(m.fourth() - 3.0) <= 5.0 * std::sqrt(96.0 / n));
}

template <class C>
void gaussian_law() {
  // 2^20 consecutive elements of one key.
  const NoiseKey key{0x5eed1234abcdULL, 17, 2};
  constexpr std::uint64_t blocks = 1u << 18;
  Moments all;
  std::array<Moments, 4> lane;
  double lag1 = 0.0;  // E[z_g z_{g+1}] = 0 for independent elements
  double prev = 0.0;
  for (std::uint64_t b = 0; b < blocks; ++b) {
    C z[4];
    zoopt::noise_block<zoopt::GaussianSampler>(key, b, z);
    for (int k = 0; k < 4; ++k) {
      REQUIRE(std::isfinite(z[k]));
      all.add(static_cast<double>(z[k]));
      lane[k].add(static_cast<double>(z[k]));
      lag1 += prev * static_cast<double>(z[k]);
      prev = static_cast<double>(z[k]);
    }
  }
  check_gaussian_moments<C>(all);
  // Each of the four lanes (cos and sin halves of both Box-Muller pairs) on
  // its own.
  for (const Moments& m : lane) check_gaussian_moments<C>(m);
  // Var(z_g z_{g+1}) = 1 -> SE = sqrt(1 / N).
  CHECK(std::abs(lag1 / all.n) <= 5.0 * std::sqrt(1.0 / all.n));

  // Across keys at a fixed element: seeds, steps and directions each give
  // N(0, 1) too.
  Moments seeds, steps, dirs;
  for (std::uint32_t i = 0; i < (1u << 16); ++i) {
    seeds.add(zoopt::noise_at<zoopt::GaussianSampler, C>(NoiseKey{i, 3, 0}, 5));
    steps.add(zoopt::noise_at<zoopt::GaussianSampler, C>(NoiseKey{99, i, 1}, 6));
    dirs.add(zoopt::noise_at<zoopt::GaussianSampler, C>(NoiseKey{99, 4, i}, 7));
  }
  check_gaussian_moments<C>(seeds);
  check_gaussian_moments<C>(steps);
  check_gaussian_moments<C>(dirs);
}

}  // namespace

TEST_CASE("core.noise philox4x32-10 known answer", "[core][noise]") {
  // Random123's published known-answer vector for Philox4x32-10 with a zero
  // counter and a zero key. NoiseKey{0,0,0}, block 0, element stream maps to
  // exactly that counter and key.
  const auto r = zoopt::random::philox_block(NoiseKey{0, 0, 0}, 0, zoopt::random::Stream::element);
  CHECK(r.v[0] == 0x6627e8d5u);
  CHECK(r.v[1] == 0xe169c58du);
  CHECK(r.v[2] == 0xbc57ac4cu);
  CHECK(r.v[3] == 0x9b00dbd8u);

  // The counter layout: every field of the key and the stream moves the
  // output.
  const auto base = zoopt::random::philox_block(NoiseKey{7, 9, 3}, 11);
  const std::array<zoopt::random::Philox::ctr_type, 6> others = {
      zoopt::random::philox_block(NoiseKey{8, 9, 3}, 11),
      zoopt::random::philox_block(NoiseKey{7ULL | (1ULL << 40), 9, 3}, 11),
      zoopt::random::philox_block(NoiseKey{7, 10, 3}, 11),
      zoopt::random::philox_block(NoiseKey{7, 9, 4}, 11),
      zoopt::random::philox_block(NoiseKey{7, 9, 3}, 11ULL | (1ULL << 33)),
      zoopt::random::philox_block(NoiseKey{7, 9, 3}, 11, zoopt::random::Stream::scalar)};
  for (const auto& o : others) CHECK(o != base);
}

TEST_CASE("core.noise noise_at equals the block values", "[core][noise]") {
  const std::array<NoiseKey, 3> keys = {NoiseKey{0, 0, 0}, NoiseKey{42, 7, 1},
                                        NoiseKey{~0ULL, 123456789, 5}};
  for (const NoiseKey& key : keys) {
    for (std::uint64_t b : {0ULL, 1ULL, 2ULL, 1000ULL, (1ULL << 33) + 5}) {
      float zf[4];
      double zd[4];
      float rf[4];
      double rd[4];
      zoopt::noise_block<zoopt::GaussianSampler>(key, b, zf);
      zoopt::noise_block<zoopt::GaussianSampler>(key, b, zd);
      zoopt::noise_block<zoopt::RademacherSampler>(key, b, rf);
      zoopt::noise_block<zoopt::RademacherSampler>(key, b, rd);
      const auto w = zoopt::random::philox_block(key, b);
      for (std::uint64_t k = 0; k < 4; ++k) {
        const std::uint64_t g = 4 * b + k;
        CHECK(zoopt::noise_at<zoopt::GaussianSampler, float>(key, g) == zf[k]);
        CHECK(zoopt::noise_at<zoopt::GaussianSampler, double>(key, g) == zd[k]);
        CHECK(zoopt::noise_at<zoopt::RademacherSampler, float>(key, g) == rf[k]);
        CHECK(zoopt::noise_at<zoopt::RademacherSampler, double>(key, g) == rd[k]);
        // Rademacher: the sign is the top bit of word k.
        CHECK(rd[k] == ((w.v[k] >> 31) != 0u ? -1.0 : 1.0));
      }
      // Documented law: z0 = sqrt(-2 ln u) cos(2 pi t), z1 = sqrt(-2 ln u)
      // sin(2 pi t) with u = ((w0 >> 8) + 1) 2^-24 and t = (w1 >> 8) 2^-24,
      // computed in float and widened for double storage (the same values).
      // Reference here in long double. Error budget of the float evaluation:
      // ln u to <= 1e-6 relative (series truncation 1e-9, a few roundings,
      // at most a factor 2 of cancellation between e ln 2 and ln m), so r to
      // <= 1e-6 relative with the Newton square root (1e-7); sin and cos to
      // <= 3e-7 absolute (pi/2 rounded to float: 4e-8 relative in the angle,
      // Taylor truncation 2e-9, roundings); the product adds u |z|. Bound:
      // 2e-6 (1 + r).
      for (int pair = 0; pair < 2; ++pair) {
        const long double u1 = static_cast<long double>((w.v[2 * pair] >> 8) + 1u) * 0x1p-24L;
        const long double t = static_cast<long double>(w.v[2 * pair + 1] >> 8) * 0x1p-24L;
        const long double r = std::sqrt(-2.0L * std::log(u1));
        const long double two_pi = 6.283185307179586476925286766559L;
        const long double z0 = r * std::cos(two_pi * t);
        const long double z1 = r * std::sin(two_pi * t);
        const long double tol = 2e-6L * (1.0L + r);
        CHECK(std::abs(zf[2 * pair] - z0) <= tol);
        CHECK(std::abs(zf[2 * pair + 1] - z1) <= tol);
        CHECK(zd[2 * pair] == static_cast<double>(zf[2 * pair]));
        CHECK(zd[2 * pair + 1] == static_cast<double>(zf[2 * pair + 1]));
        // |z| <= sqrt(-2 ln 2^-24) = sqrt(48 ln 2).
        CHECK(std::abs(zf[2 * pair]) <= std::sqrt(48 * std::log(2.0)) + 1e-5);
      }
    }
  }
}

TEST_CASE("core.noise gaussian matches box-muller over the input range", "[core][noise]") {
  // GaussianSampler::generate against the long double formula (bound derived
  // in the test above) for u over its whole 24-bit range: every one of the
  // 4096 smallest and largest u, and a stride through the rest, each paired
  // with a pseudo-random angle word, and every angle word near the quadrant
  // boundaries of 2 pi t.
  const long double two_pi = 6.283185307179586476925286766559L;
  long double worst = 0.0L;
  auto check_words = [&](std::uint32_t hi_u, std::uint32_t hi_t) {
    const std::uint32_t w[4] = {hi_u << 8, hi_t << 8, (hi_u << 8) | 0xffu, (hi_t << 8) | 0x7fu};
    float z[4];
    zoopt::GaussianSampler::generate(w, z);
    const long double r = std::sqrt(-2.0L * std::log((hi_u + 1.0L) * 0x1p-24L));
    const long double t = hi_t * 0x1p-24L;
    const long double e0 = std::abs(z[0] - r * std::cos(two_pi * t)) / (1.0L + r);
    const long double e1 = std::abs(z[1] - r * std::sin(two_pi * t)) / (1.0L + r);
    // The low 8 bits of each word are unused.
    const bool low_bits_ignored = z[2] == z[0] && z[3] == z[1];
    worst = std::max({worst, e0, e1});
    return e0 <= 2e-6L && e1 <= 2e-6L && low_bits_ignored;
  };
  std::uint64_t bad = 0;
  std::uint32_t t = 12345;
  auto next_t = [&t] { return t = (t * 1664525u + 1013904223u) & 0xffffffu; };
  for (std::uint32_t k = 0; k < 4096; ++k) {
    bad += !check_words(k, next_t());
    bad += !check_words((1u << 24) - 1 - k, next_t());
  }
  for (std::uint32_t k = 4096; k < (1u << 24) - 4096; k += 101) bad += !check_words(k, next_t());
  for (std::uint32_t q = 0; q < 4; ++q) {
    for (std::int32_t dj = -2048; dj <= 2048; ++dj) {
      const std::uint32_t j = static_cast<std::uint32_t>(q * (1 << 22) + dj) & 0xffffffu;
      bad += !check_words(1000 + static_cast<std::uint32_t>(dj + 2048) * 3000, j);
    }
  }
  INFO("largest |z - formula| / (1 + r): " << static_cast<double>(worst));
  CHECK(bad == 0);
}

TEST_CASE("core.noise gaussian sample moments float", "[core][noise]") { gaussian_law<float>(); }
TEST_CASE("core.noise gaussian sample moments double", "[core][noise]") { gaussian_law<double>(); }

TEST_CASE("core.noise rademacher is exactly +-1 and balanced", "[core][noise]") {
  const NoiseKey key{2024, 5, 1};
  constexpr std::uint64_t blocks = 1u << 18;
  std::array<std::uint64_t, 4> plus_lane{};
  std::uint64_t plus = 0;
  std::uint64_t agree = 0;  // z_g == z_{g+1}
  float prev = 1.0f;
  for (std::uint64_t b = 0; b < blocks; ++b) {
    float z[4];
    double zd[4];
    zoopt::noise_block<zoopt::RademacherSampler>(key, b, z);
    zoopt::noise_block<zoopt::RademacherSampler>(key, b, zd);
    for (int k = 0; k < 4; ++k) {
      REQUIRE((z[k] == 1.0f || z[k] == -1.0f));
      REQUIRE(static_cast<double>(z[k]) == zd[k]);
      if (z[k] > 0) {
        ++plus;
        ++plus_lane[k];
      }
      if (b + k > 0 && z[k] == prev) ++agree;
      prev = z[k];
    }
  }
  // Count of +1 among N fair signs: Binomial(N, 1/2), sd = sqrt(N) / 2.
  const double n = 4.0 * blocks;
  CHECK(std::abs(static_cast<double>(plus) - n / 2) <= 5.0 * std::sqrt(n) / 2);
  for (const auto c : plus_lane) {
    CHECK(std::abs(static_cast<double>(c) - n / 8) <= 5.0 * std::sqrt(n / 4) / 2);
  }
  // Neighbours agree with probability 1/2 if independent: same bound with
  // N - 1 pairs.
  CHECK(std::abs(static_cast<double>(agree) - (n - 1) / 2) <= 5.0 * std::sqrt(n - 1) / 2);
}

TEST_CASE("core.noise packed rademacher: one sign per bit, its documented layout",
          "[core][noise]") {
  using P = zoopt::PackedRademacherSampler;
  const std::array<NoiseKey, 3> keys = {NoiseKey{0, 0, 0}, NoiseKey{42, 7, 1},
                                        NoiseKey{~0ULL, 123456789, 5}};
  for (const NoiseKey& key : keys) {
    for (std::uint64_t group : {0ULL, 1ULL, 77ULL, (1ULL << 31) + 3}) {
      const auto w = zoopt::random::philox_block(key, group);
      for (std::uint64_t e = 0; e < 128; ++e) {
        const std::uint64_t g = 128 * group + e;
        // Element g: bit g mod 32 of word (g / 32) mod 4 of block g / 128.
        const double expected = ((w.v[e / 32] >> (e % 32)) & 1u) != 0u ? -1.0 : 1.0;
        REQUIRE(zoopt::noise_at<P, double>(key, g) == expected);
        REQUIRE(zoopt::noise_at<P, float>(key, g) == static_cast<float>(expected));
      }
    }
    // The chunked form (the CPU passes) gives the block values.
    for (std::uint64_t chunk : {0ULL, 5ULL, (1ULL << 30) + 1}) {
      float z[zoopt::kChunkElements];
      zoopt::noise_chunk<P>(key, chunk * zoopt::kChunkBlocks, z);
      for (int b = 0; b < zoopt::kChunkBlocks; ++b) {
        float zb[4];
        zoopt::noise_block<P>(key, chunk * zoopt::kChunkBlocks + static_cast<std::uint64_t>(b), zb);
        for (int k = 0; k < 4; ++k) REQUIRE(z[4 * b + k] == zb[k]);
      }
    }
  }
}

TEST_CASE(
    "core.noise packed rademacher is balanced, independent of its neighbours and "
    "of the one-sign stream",
    "[core][noise]") {
  const NoiseKey key{2024, 5, 1};
  constexpr std::uint64_t n = 1u << 20;
  std::uint64_t plus = 0;
  std::uint64_t agree = 0;        // z_g == z_{g+1}
  std::uint64_t agree_32 = 0;     // z_g == z_{g+32}: same bit of the next word
  std::uint64_t agree_other = 0;  // z_g == RademacherSampler's z_g
  std::vector<float> z(n);
  for (std::uint64_t c = 0; c < n / zoopt::kChunkElements; ++c) {
    float chunk[zoopt::kChunkElements];
    zoopt::noise_chunk<zoopt::PackedRademacherSampler>(key, c * zoopt::kChunkBlocks, chunk);
    std::copy(chunk, chunk + zoopt::kChunkElements,
              z.begin() + static_cast<long>(c * zoopt::kChunkElements));
  }
  for (std::uint64_t g = 0; g < n; ++g) {
    REQUIRE((z[g] == 1.0f || z[g] == -1.0f));
    if (z[g] > 0) ++plus;
    if (g + 1 < n && z[g] == z[g + 1]) ++agree;
    if (g + 32 < n && z[g] == z[g + 32]) ++agree_32;
    if (z[g] == zoopt::noise_at<zoopt::RademacherSampler, float>(key, g)) ++agree_other;
  }
  // Each count is Binomial(N, 1/2) for independent fair signs: 5 sd = 5 sqrt(N) / 2.
  const auto within = [](std::uint64_t count, double pairs) {
    return std::abs(static_cast<double>(count) - pairs / 2) <= 5.0 * std::sqrt(pairs) / 2;
  };
  const double nd = static_cast<double>(n);
  CHECK(within(plus, nd));
  CHECK(within(agree, nd - 1));
  CHECK(within(agree_32, nd - 32));
  CHECK(within(agree_other, nd));
}
