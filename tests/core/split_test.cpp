// Span-split invariance: noise depends only on the global element index, so
// one span and the same values split into seven uneven spans follow
// bit-identical trajectories.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

constexpr std::array<std::size_t, 7> kSizes = {1, 3, 97, 5, 170, 2, 123};  // sum 401

zt::DiagQuadratic make_loss(std::size_t d) {
  zt::DiagQuadratic f;
  for (std::size_t i = 0; i < d; ++i) {
    f.lambda.push_back(1.0 + static_cast<double>(i % 13));
    f.center.push_back(std::sin(0.1 * static_cast<double>(i)));
    f.b.push_back(0.01 * std::cos(0.3 * static_cast<double>(i)));
  }
  return f;
}

template <class Opt>
void check_split(typename Opt::Params p, int steps) {
  using T = typename Opt::value_type;
  std::size_t d = 0;
  for (const auto s : kSizes) d += s;
  const zt::DiagQuadratic loss = make_loss(d);

  std::vector<T> whole(d);
  for (std::size_t i = 0; i < d; ++i) whole[i] = static_cast<T>(0.5 * std::cos(0.7 * i));

  // The split copy lives in seven separately allocated vectors; span
  // boundaries fall inside Philox blocks of four elements.
  std::vector<std::vector<T>> parts;
  std::size_t at = 0;
  for (const auto s : kSizes) {
    parts.emplace_back(whole.begin() + at, whole.begin() + at + s);
    at += s;
  }
  zoopt::ParameterSet<T> set;
  for (std::size_t k = 0; k < parts.size(); ++k) {
    set.add("p" + std::to_string(k), std::span<T>(parts[k]));
  }
  REQUIRE(set.elements() == d);

  Opt one(p), split(p);
  const T start0 = whole[0];
  for (int t = 0; t < steps; ++t) {
    const double l1 = one.step(loss, std::span<T>(whole));
    const double l2 = split.step(loss, set);
    REQUIRE(l1 == l2);
    std::vector<T> joined;
    for (const auto& part : parts) joined.insert(joined.end(), part.begin(), part.end());
    REQUIRE(zt::same_bits(whole, joined));
  }
  // The trajectory moved (so the comparison was not between two untouched
  // vectors).
  CHECK(whole[0] != start0);
  CHECK(one.step_count() == static_cast<std::uint64_t>(steps));
}

template <class Opt>
void check_split_variants() {
  auto p = zt::make_params<Opt>(2e-3, 1e-3, 1, 11);
  check_split<Opt>(p, 50);
  p.directions = 3;
  p.seed = 12;
  check_split<Opt>(p, 50);
  p.weight_decay = 0.05;  // every span opts in, as the single span does
  check_split<Opt>(p, 50);
}

}  // namespace

TEST_CASE("core.split mezo float and double", "[core][split]") {
  check_split_variants<zoopt::MeZO<float>>();
  check_split_variants<zoopt::MeZO<double>>();
  check_split_variants<zoopt::MeZO<float, zoopt::RademacherSampler>>();
  check_split_variants<zoopt::MeZO<float, zoopt::PackedRademacherSampler>>();
  check_split_variants<zoopt::MeZO<double, zoopt::GaussianSampler, zoopt::ForwardDifference>>();
}

TEST_CASE("core.split kerzoo float and double", "[core][split]") {
  check_split_variants<zoopt::KerZOO<float>>();
  check_split_variants<zoopt::KerZOO<double>>();
  check_split_variants<zoopt::KerZOO<double, zoopt::RademacherSampler>>();
  check_split_variants<zoopt::KerZOO<float, zoopt::GaussianSampler, zoopt::ForwardDifference>>();
}
