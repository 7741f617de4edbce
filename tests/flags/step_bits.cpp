// Prints a hash of the parameter bits after a few steps of MeZO (float,
// Gaussian, weight decay), KerZOO (double, cubic kernel, range schedule) and
// MeZO on half storage (stochastic rounding), and checks it against the
// expected value given as argv[1]. tests/flags builds this file with several
// compilers and flag sets: the bits must not depend on them. Exits 77
// (skipped) when built for AVX2/FMA on a CPU without them.
#include <zoopt/kerzoo.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

// The test's own loss must not change with the flags either (a user's loss
// may, and then so do the losses zoopt sees): same pragmas as zoopt's.
ZOOPT_FP_CONTRACT_OFF_BEGIN

namespace {

std::uint64_t fnv(std::uint64_t h, const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  return h;
}

template <class T, class Opt>
std::uint64_t run(Opt opt, std::uint64_t h) {
  std::vector<T> x(4099);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = T(0.02f * std::sin(0.37f * static_cast<float>(i)) + 0.001f * static_cast<float>(i % 5));
  }
  auto loss = [](std::span<const T> p) {
    double s = 0.0;
    for (const T v : p) {
      const double d = static_cast<double>(static_cast<float>(v)) - 0.1;
      s += 1.7 * d * d + 0.3 * d * d * d * d;
    }
    return s;
  };
  for (int t = 0; t < 6; ++t) opt.step(loss, std::span<T>(x));
  return fnv(h, x.data(), x.size() * sizeof(T));
}

}  // namespace

ZOOPT_FP_CONTRACT_OFF_END

int main(int argc, char** argv) {
#if defined(__x86_64__) && (defined(__AVX2__) || defined(__FMA__))
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::printf("skipped: built for AVX2/FMA, which this CPU lacks\n");
    return 77;
  }
#endif
#if defined(__x86_64__) && defined(__AVX512F__)
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl")) {
    std::printf("skipped: built for AVX-512, which this CPU lacks\n");
    return 77;
  }
#endif
  std::uint64_t h = 1469598103934665603ull;
  h = run<float>(zoopt::MeZO<float>(
                     {.lr = 3e-2, .eps = 1e-3, .directions = 3, .seed = 42, .weight_decay = 0.1}),
                 h);
  h = run<double>(
      zoopt::KerZOO<double>(
          {.lr = 1e-2, .eps = 1e-2, .directions = 2, .seed = 7, .range = {.decay_steps = 4}}),
      h);
  h = run<zoopt::half>(zoopt::MeZO<zoopt::half>({.lr = 1e-2, .eps = 1e-2, .seed = 3}), h);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::printf("%s\n", hex);
  if (argc > 1 && std::string(argv[1]) != hex) {
    std::printf("DIFFERS from the expected %s\n", argv[1]);
    return 1;
  }
  return 0;
}
