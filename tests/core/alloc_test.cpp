// No heap allocation in a step after a warm-up step. This binary replaces the
// global operator new/delete with counting versions (for every object linked
// in, Catch2's main() too), so it is a binary of its own.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <new>
#include <vector>

#include "test_util.hpp"

namespace {

std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t n, std::size_t align) {
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (n == 0) n = 1;
  if (align > alignof(std::max_align_t)) {
    const std::size_t rounded = (n + align - 1) / align * align;
    return std::aligned_alloc(align, rounded);
  }
  return std::malloc(n);
}

void* counted_alloc_or_throw(std::size_t n, std::size_t align) {
  void* p = counted_alloc(n, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Allocations made while `f` runs.
template <class F>
long allocations_in(F&& f) {
  g_allocations = 0;
  g_counting = true;
  f();
  g_counting = false;
  return g_allocations.load();
}

}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return counted_alloc_or_throw(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

// |theta| in [1.25, 1.75) and eps = 1e-3: theta + h z stays in theta's binade,
// so every displaced value inverts exactly and the restore journal stays
// empty (far below its 1024-entry reserve).
template <class T>
std::vector<T> params(std::size_t d) {
  std::vector<T> x(d);
  for (std::size_t i = 0; i < d; ++i) {
    const T v = static_cast<T>(1.25 + 0.5 * static_cast<double>((i * 2654435761u) % 1000) / 1000);
    x[i] = i % 2 == 0 ? v : -v;
  }
  return x;
}

template <class T>
double sum_sq(std::span<const T> x) {
  double s = 0.0;
  for (const T v : x) s += static_cast<double>(v) * static_cast<double>(v);
  return s;
}

template <class Opt>
void check_span(std::size_t d, std::uint32_t n, double wd) {
  using T = typename Opt::value_type;
  std::vector<T> x = params<T>(d);
  Opt opt(zt::make_params<Opt>(1e-7, 1e-3, n, 17, wd));
  auto loss = [](std::span<const T> p) { return sum_sq(p); };
  opt.step(loss, std::span<T>(x));  // warm-up
  const long a = allocations_in([&] {
    for (int t = 0; t < 2; ++t) opt.step(loss, std::span<T>(x));
  });
  CHECK(a == 0);
  CHECK(opt.step_count() == 3);
  CHECK(opt.backend().journal_size() == 0);
}

}  // namespace

TEST_CASE("core.alloc the counting operator new sees allocations", "[core][alloc]") {
  // Without this the zero counts below could not fail.
  const long a = allocations_in([] {
    auto* p = new int(7);
    delete p;
    std::vector<double> v(100);
    v.push_back(1.0);
  });
  CHECK(a >= 2);
}

TEST_CASE("core.alloc no allocation in a step after warm-up", "[core][alloc]") {
  check_span<zoopt::MeZO<float>>(1000000, 1, 0.0);
  check_span<zoopt::KerZOO<float, zoopt::RademacherSampler>>(250000, 3, 0.01);
  check_span<zoopt::MeZO<double, zoopt::RademacherSampler, zoopt::ForwardDifference>>(100000, 2,
                                                                                      0.01);
  check_span<zoopt::KerZOO<double>>(100000, 1, 0.0);
}

TEST_CASE("core.alloc no allocation in a parameter set step or optimize", "[core][alloc]") {
  using T = float;
  std::vector<T> a = params<T>(150001), b = params<T>(3), c = params<T>(49999);
  zoopt::ParameterSet<T> set;
  set.add("a", std::span<T>(a))
      .add("b", std::span<T>(b), {.weight_decay = false})
      .add("c", std::span<T>(c));
  zoopt::KerZOO<T> opt(zt::make_params<zoopt::KerZOO<T>>(1e-7, 1e-3, 3, 5, 0.1));
  auto loss = [](const zoopt::ParameterSet<T>& s) {
    double v = 0.0;
    for (std::size_t i = 0; i < s.size(); ++i) v += sum_sq<T>(s.span(i));
    return v;
  };
  opt.step(loss, set);  // warm-up
  CHECK(allocations_in([&] { opt.step(loss, set); }) == 0);
  // optimize() with a non-allocating callback.
  zoopt::EarlyStop stop({.patience = 10});
  CHECK(allocations_in([&] { opt.optimize(loss, set, 2, stop); }) == 0);
  CHECK(opt.step_count() == 4);
}
