// Host-side tests of the CUDA backend: everything that needs no device.
// Segment table and launch geometry, the per-element functions (the same
// code the kernels run) against CpuBackend, half-precision conversions, and
// argument validation. Built by the host compiler, linked with zoopt::cuda.
#include <catch2/catch.hpp>

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "reference.hpp"
#include "zoopt/backend/cpu_backend.hpp"
#include "zoopt/cuda/cuda_backend.hpp"
#include "zoopt/cuda/layout.hpp"
#include "zoopt/sampler/gaussian.hpp"
#include "zoopt/sampler/low_rank.hpp"
#include "zoopt/sampler/rademacher.hpp"

using zoopt::SpanView;
using zoopt::Term;
namespace zc = zoopt::cuda;

namespace {

template <class T>
void check_cover(std::span<const SpanView<T>> views) {
  const zc::SegmentTable t = zc::build_segment_table<T>(views);
  constexpr std::uint32_t E = zc::unit_elements<T>;
  REQUIRE(t.rows.size() == views.size());
  std::vector<std::vector<int>> seen(views.size());
  for (std::size_t i = 0; i < views.size(); ++i) seen[i].assign(views[i].size, 0);
  std::uint64_t next_first = 0;
  std::uint32_t last_seg = 0;
  for (std::uint64_t u = 0; u < t.units; ++u) {
    const std::uint32_t s =
        zc::find_segment(t.rows.data(), static_cast<std::uint32_t>(t.rows.size()), u);
    REQUIRE(s < t.rows.size());
    REQUIRE(t.rows[s].unit_begin <= u);
    if (s + 1 < t.rows.size()) REQUIRE(u < t.rows[s + 1].unit_begin);
    if (s != last_seg) {
      REQUIRE(s == last_seg + 1);
      last_seg = s;
      next_first = 0;
    }
    const zc::UnitRange r = zc::unit_range(t.rows[s], u - t.rows[s].unit_begin, E);
    REQUIRE(r.first == next_first);  // units walk the span in order, no gaps
    REQUIRE(r.count >= 1);
    REQUIRE(r.count <= E);
    const auto addr = reinterpret_cast<std::uintptr_t>(views[s].data + r.first);
    if (r.full) REQUIRE(addr % 16 == 0);
    // Every unit but the head starts on a 16-byte boundary.
    if (r.first > 0) REQUIRE(addr % 16 == 0);
    for (std::uint32_t l = 0; l < r.count; ++l) ++seen[s][r.first + l];
    next_first = r.first + r.count;
  }
  for (std::size_t i = 0; i < views.size(); ++i) {
    for (int c : seen[i]) REQUIRE(c == 1);
  }
  REQUIRE(t.tiles == (t.units + zc::units_per_tile<T> - 1) / zc::units_per_tile<T>);
  REQUIRE(t.elements == [&] {
    std::uint64_t n = 0;
    for (const auto& v : views) n += v.size;
    return n;
  }());
}

}  // namespace

TEST_CASE("tile constants fit the journal entry layout", "[cuda][layout]") {
  STATIC_REQUIRE(zc::units_per_thread<float> * zc::kBlockThreads * zc::unit_elements<float> ==
                 zc::kTileElements);
  STATIC_REQUIRE(zc::units_per_thread<__half> * zc::kBlockThreads * zc::unit_elements<__half> ==
                 zc::kTileElements);
  STATIC_REQUIRE(zc::unit_elements<float> == 4);
  STATIC_REQUIRE(zc::unit_elements<__nv_bfloat16> == 8);
  STATIC_REQUIRE(sizeof(zc::detail::PassParams) < 4096);  // kernel parameter limit
}

TEST_CASE("segment table: every element in exactly one unit, aligned body units",
          "[cuda][layout]") {
  alignas(16) static float fbuf[20000];
  alignas(16) static __half hbuf[20000];
  SECTION("float, aligned and misaligned spans") {
    const std::vector<SpanView<float>> views = {
        {fbuf, 10, 0, true, 1.0},              // aligned, short tail
        {fbuf + 13, 1, 10, false, 1.0},        // one element, misaligned (head only)
        {fbuf + 17, 4099, 11, true, 2.0},      // head of 3, body, tail
        {fbuf + 4200, 3, 4110, true, 1.0},     // shorter than one unit, aligned
        {fbuf + 4300, 9000, 5000, true, 1.0},  // spans several tiles (gap in offsets)
    };
    check_cover<float>(views);
    const zc::SegmentTable t = zc::build_segment_table<float>(views);
    CHECK(t.rows[0].head == 0);
    CHECK(t.rows[1].head == 1);
    CHECK(t.rows[2].head == 3);
    CHECK(t.rows[2].weight_decay == 1);
    CHECK(t.rows[1].weight_decay == 0);
    CHECK(t.scales[2] == 2.0);
    CHECK(zc::span_units(4099, 3, 4) == 1 + 1024);
  }
  SECTION("__half, eight elements per unit") {
    const std::vector<SpanView<__half>> views = {{hbuf + 1, 20, 0, true, 1.0},
                                                 {hbuf + 64, 8192 + 5, 20, true, 1.0},
                                                 {hbuf + 9000, 1, 9000, true, 1.0}};
    check_cover<__half>(views);
    const zc::SegmentTable t = zc::build_segment_table<__half>(views);
    CHECK(t.rows[0].head == 7);
    CHECK(t.rows[1].head == 0);
    CHECK(t.units == (1 + 2) + (1024 + 1) + 1);
  }
  SECTION("same_geometry ignores scales only") {
    std::vector<SpanView<float>> a = {{fbuf, 100, 0, true, 1.0}};
    std::vector<SpanView<float>> b = {{fbuf, 100, 0, true, 3.0}};
    CHECK(zc::same_geometry(zc::build_segment_table<float>(a), zc::build_segment_table<float>(b)));
    b[0].weight_decay = false;
    CHECK_FALSE(
        zc::same_geometry(zc::build_segment_table<float>(a), zc::build_segment_table<float>(b)));
    // A shape is geometry: the table records it and a new one is rebuilt.
    b[0].weight_decay = true;
    b[0].shape = zoopt::MatrixShape{10, 10};
    const zc::SegmentTable tb = zc::build_segment_table<float>(b);
    CHECK(tb.rows[0].rows == 10);
    CHECK(tb.rows[0].cols == 10);
    CHECK_FALSE(zc::same_geometry(zc::build_segment_table<float>(a), tb));
  }
}

TEST_CASE("segment table validation names the field", "[cuda][layout][validation]") {
  alignas(16) static float buf[64];
  using V = std::vector<SpanView<float>>;
  auto build = [](const V& v) { return zc::build_segment_table<float>(v); };
  CHECK_THROWS_WITH(build(V{}), Catch::Contains("views") && Catch::Contains("at least one span"));
  CHECK_THROWS_WITH(build(V{{nullptr, 4, 0, true, 1.0}}), Catch::Contains("views.data"));
  CHECK_THROWS_WITH(
      build(V{{reinterpret_cast<float*>(reinterpret_cast<char*>(buf) + 2), 4, 0, true, 1.0}}),
      Catch::Contains("views.data") && Catch::Contains("aligned"));
  CHECK_THROWS_WITH(build(V{{buf, 0, 0, true, 1.0}}), Catch::Contains("views.size"));
  CHECK_THROWS_WITH(build(V{{buf, 8, 0, true, 1.0}, {buf + 8, 8, 4, true, 1.0}}),
                    Catch::Contains("views.offset"));
  CHECK_THROWS_WITH(build(V{{buf, 8, 0, true, std::nan("")}}), Catch::Contains("views.scale"));
  CHECK_THROWS_WITH(build(V{{buf, 8, zc::kMaxElements - 4, true, 1.0}}),
                    Catch::Contains("views.size"));
  CHECK_THROWS_AS(build(V{{buf, 8, 0, true, INFINITY}}), std::invalid_argument);
}

TEST_CASE("launch geometry fills the device and never exceeds the tiles", "[cuda][layout]") {
  CHECK(zc::launch_blocks(0, 132, 8) == 1);
  CHECK(zc::launch_blocks(1, 132, 8) == 1);
  CHECK(zc::launch_blocks(500, 132, 8) == 500);
  CHECK(zc::launch_blocks(1056, 132, 8) == 1056);
  CHECK(zc::launch_blocks(1u << 20, 132, 8) == 1056);
  CHECK(zc::launch_blocks(1u << 20, 0, 0) == 1);  // nonsense attributes still launch
  CHECK(zc::launch_blocks(std::uint64_t{1} << 40, 1 << 20, 1 << 20) == 0x7fffffffu);
}

TEST_CASE("half conversions are exact one way and round to nearest even the other",
          "[cuda][types]") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto h = zc::detail::from_bits<__half>(static_cast<std::uint16_t>(b));
    const float f = zc::detail::to_compute(h);
    if (std::isnan(f)) continue;
    REQUIRE(zc::detail::to_bits(zc::detail::from_compute<__half>(f)) == b);
    const auto bf = zc::detail::from_bits<__nv_bfloat16>(static_cast<std::uint16_t>(b));
    const float g = zc::detail::to_compute(bf);
    if (std::isnan(g)) continue;
    REQUIRE(zc::detail::to_bits(zc::detail::from_compute<__nv_bfloat16>(g)) == b);
    REQUIRE(std::bit_cast<std::uint32_t>(g) == b << 16);  // bf16 is the top half of a float
  }
  // Ties go to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 in half.
  CHECK(zc::detail::to_compute(zc::detail::from_compute<__half>(1.0f + 0x1p-11f)) == 1.0f);
  CHECK(zc::detail::to_compute(zc::detail::from_compute<__half>(1.0f + 3 * 0x1p-11f)) ==
        1.0f + 0x1p-9f);
  CHECK(zc::detail::to_compute(zc::detail::from_compute<__nv_bfloat16>(1.0f + 0x1p-8f)) == 1.0f);
}

TEST_CASE("element functions: invertibility and update formula", "[cuda][element]") {
  using zc::detail::displaced;
  using zc::detail::invertible;
  // half: theta0 = 2^-14 (tiny against d): fl(theta0 + d) loses it.
  const __half tiny = zc::detail::from_compute<__half>(0x1p-14f);
  const float d = 0.5f;
  const __half next = displaced(tiny, d);
  CHECK(zc::detail::to_compute(next) == 0.5f);
  CHECK_FALSE(invertible(next, tiny, d));
  // Same binade, no tie: invertible.
  const __half one = zc::detail::from_compute<__half>(1.0f);
  CHECK(invertible(displaced(one, 0x1p-4f), one, 0x1p-4f));
  // update: fl(t0 - fl(eta * fl(g + fl(lambda * t0)))).
  const float t0 = 0.75f;
  const float expect = t0 - 0.1f * (0.3f + 0.01f * t0);
  CHECK(zc::detail::updated(t0, 0.3f, 0.1f, 0.01f, true) == expect);
  CHECK(zc::detail::updated(t0, 0.3f, 0.1f, 0.01f, false) == t0 - 0.1f * 0.3f);
  // A zero update keeps the exact bits, -0 included (fl(-0 - fl(eta * -0))
  // would give +0).
  CHECK(std::signbit(zc::detail::updated(-0.0f, -0.0f, 0.1f, 0.0f, false)));
  CHECK(std::signbit(zc::detail::updated(-0.0f, 0.5f, 0.0f, 0.0f, false)));
}

TEST_CASE("zero updates keep the bits, like CpuBackend", "[cuda][element]") {
  std::vector<float> a = {-0.0f, 0.0f, 1.0f, -2.5f, 1e-30f};
  std::vector<float> b = a;
  const std::vector<SpanView<float>> va = {{a.data(), a.size(), 0, false, 1.0}};
  const std::vector<SpanView<float>> vb = {{b.data(), b.size(), 0, false, 1.0}};
  zoopt::CpuBackend<float, zoopt::RademacherSampler> cpu;
  zc::test::ReferencePasses<float, zoopt::RademacherSampler> ref;
  const std::vector<Term> none = {{0, 0.0, 0.0}};
  const std::vector<Term> some = {{0, 0.0, 0.25}};
  cpu.update(va, 1, 0, none, 0.1, 0.0);  // zero direction
  ref.update(vb, 1, 0, none, 0.1, 0.0);
  cpu.update(va, 1, 1, some, 0.0, 0.0);  // zero learning rate
  ref.update(vb, 1, 1, some, 0.0, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(std::bit_cast<std::uint32_t>(a[i]) == std::bit_cast<std::uint32_t>(b[i]));
  }
  CHECK(std::signbit(b[0]));
}

namespace {

// A step sequence with two directions, weight decay on some spans, one span
// scaled: every pass kind the optimizers issue.
// With `shaped`, the first and last spans are matrices (for samplers that
// use shapes).
template <class Sampler>
void compare_with_cpu(double sd, bool shaped = false) {
  std::mt19937 rng(20240611u);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(sd));
  std::vector<float> a(7001);
  for (float& x : a) x = normal(rng);
  a[5] = 0.0f;
  a[6] = -0.0f;
  a[7] = 1e-30f;
  std::vector<float> b = a;
  auto views_of = [shaped](std::vector<float>& v) {
    const zoopt::MatrixShape first = shaped ? zoopt::MatrixShape{40, 25} : zoopt::MatrixShape{};
    const zoopt::MatrixShape last = shaped ? zoopt::MatrixShape{71, 84} : zoopt::MatrixShape{};
    return std::vector<SpanView<float>>{{v.data(), 1000, 0, true, 1.0, first},
                                        {v.data() + 1000, 37, 1000, false, 1.0},
                                        {v.data() + 1037, 5964, 1040, true, 1.5, last}};
  };
  const auto va = views_of(a);
  const auto vb = views_of(b);
  zoopt::CpuBackend<float, Sampler> cpu;
  zc::test::ReferencePasses<float, Sampler> ref;
  auto same = [&] {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) {
        FAIL("element " << i << ": cpu " << a[i] << " reference " << b[i]);
      }
    }
    // The device pool keeps an entry for the rest of the step; CpuBackend
    // drops it once the element's current point inverts again, so it holds
    // a subset: the elements that do not invert at the current point.
    REQUIRE(cpu.journal_size() <= ref.journal_size());
  };
  const double h0 = 1e-3;
  const double h1 = -2.5e-3;
  const std::uint64_t seed = 99;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const std::vector<std::vector<Term>> moves = {
        {{0, 0.0, h0}}, {{0, h0, -h0}}, {{0, -h0, 0.0}, {1, 0.0, h1}}, {{1, h1, -h1}}};
    for (const auto& t : moves) {
      cpu.move(va, seed, step, t);
      ref.move(vb, seed, step, t);
      same();
    }
    const std::vector<Term> fin = {{0, 0.0, 0.37}, {1, -h1, -1.25}};
    if (step == 1) {
      cpu.restore(va, seed, step, fin);
      ref.restore(vb, seed, step, fin);
    } else {
      cpu.update(va, seed, step, fin, 1e-2, 0.05);
      ref.update(vb, seed, step, fin, 1e-2, 0.05);
    }
    same();
  }
}

}  // namespace

TEST_CASE("per-element device functions reproduce CpuBackend bit for bit (host build)",
          "[cuda][element]") {
  SECTION("gaussian, LLM-like weights (journal ~10%)") {
    compare_with_cpu<zoopt::GaussianSampler>(0.02);
  }
  SECTION("gaussian, unit weights") { compare_with_cpu<zoopt::GaussianSampler>(1.0); }
  SECTION("rademacher") { compare_with_cpu<zoopt::RademacherSampler>(0.02); }
  SECTION("low rank 2, matrices and a vector") {
    compare_with_cpu<zoopt::LowRankSampler<>>(0.02, true);
  }
  SECTION("low rank 3, V kept 2 steps") {
    compare_with_cpu<zoopt::LowRankSampler<3, 2>>(0.02, true);
  }
}

TEST_CASE("backend options and arguments are validated before any CUDA call",
          "[cuda][validation]") {
  zc::CudaBackendOptions o;
  o.journal_fraction = 0.0;
  using Backend = zc::CudaBackend<float, zoopt::GaussianSampler>;
  CHECK_THROWS_WITH(Backend(o), Catch::Contains("journal_fraction"));
  o = {};
  o.journal_fraction = 1.5;
  CHECK_THROWS_WITH(o.check(), Catch::Contains("journal_fraction"));
  o = {};
  o.journal_capacity = 0xffffffffu;
  CHECK_THROWS_WITH(o.check(), Catch::Contains("journal_capacity"));
  o = {};
  CHECK(zc::detail::journal_entries(o, 1000000) == 125000);
  CHECK(zc::detail::journal_entries(o, 1000) == 65536);
  o.journal_capacity = 0;
  CHECK(zc::detail::journal_entries(o, 1000000) == 0);

  zc::CudaBackend<float, zoopt::GaussianSampler> backend;
  alignas(16) static float buf[16];
  const std::vector<SpanView<float>> good = {{buf, 16, 0, true, 1.0}};
  const std::vector<SpanView<float>> none;
  const std::vector<Term> one = {{0, 0.0, 1e-3}};
  const std::vector<Term> many(zc::kMaxTerms + 1, Term{0, 0.0, 1e-3});
  CHECK_THROWS_WITH(backend.move(none, 1, 0, one), Catch::Contains("views"));
  CHECK_THROWS_WITH(backend.move(good, 1, 0, many), Catch::Contains("terms"));
  CHECK_THROWS_WITH(backend.update(good, 1, 0, many, 0.1, 0.0), Catch::Contains("terms"));
  CHECK_THROWS_WITH(backend.restore(good, 1, 0, many), Catch::Contains("terms"));
  const std::vector<Term> bad_next = {{0, 1e-3, 1e-3}};
  CHECK_THROWS_WITH(backend.update_and_move(good, 1, 0, one, 0.1, 0.0, 1, bad_next),
                    Catch::Contains("next_terms"));
  const std::vector<SpanView<float>> null_view = {{nullptr, 16, 0, true, 1.0}};
  CHECK_THROWS_WITH(backend.move(null_view, 1, 0, one), Catch::Contains("views.data"));
  std::vector<zc::SpanMoments> out(2);
  CHECK_THROWS_WITH(backend.span_moments(good, out), Catch::Contains("out"));
}

TEST_CASE("optimizer aliases use the CUDA backend", "[cuda][types]") {
  STATIC_REQUIRE(std::is_same_v<zc::MeZO<float>::backend_type,
                                zc::CudaBackend<float, zoopt::GaussianSampler>>);
  STATIC_REQUIRE(std::is_same_v<zc::KerZOO<__half, zoopt::RademacherSampler>::backend_type,
                                zc::CudaBackend<__half, zoopt::RademacherSampler>>);
  STATIC_REQUIRE(std::is_same_v<zoopt::compute_t<__nv_bfloat16>, float>);
  STATIC_REQUIRE(std::is_move_constructible_v<zc::CudaBackend<float, zoopt::GaussianSampler>>);
}
