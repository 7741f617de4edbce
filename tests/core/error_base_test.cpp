// Every zoopt exception is a zoopt::Error and still the standard exception it
// was, so `catch (const zoopt::Error&)` and older catch clauses both work.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

namespace {

// Runs f, expects a zoopt::Error that is also a Std; returns what().
template <class Std, class F>
std::string caught(F&& f) {
  try {
    f();
  } catch (const zoopt::Error& e) {
    const auto* as_std = dynamic_cast<const Std*>(&e);
    CHECK(as_std != nullptr);
    CHECK(std::string(e.what()) == std::string(as_std != nullptr ? as_std->what() : ""));
    return e.what();
  } catch (...) {
    FAIL("not a zoopt::Error");
  }
  FAIL("no exception");
  return {};
}

}  // namespace

TEST_CASE("core.errors: every zoopt exception is a zoopt::Error and its standard type", "[core]") {
  static_assert(std::is_base_of_v<std::invalid_argument, zoopt::InvalidArgument>);
  static_assert(std::is_base_of_v<zoopt::Error, zoopt::NonFiniteParameters>);
  static_assert(std::is_base_of_v<std::runtime_error, zoopt::NonFiniteLoss>);
  static_assert(std::is_base_of_v<std::logic_error, zoopt::LossModifiedParameters>);
  static_assert(std::is_base_of_v<std::runtime_error, zoopt::FormatError>);
  static_assert(std::is_base_of_v<std::runtime_error, zoopt::ModelFileError>);

  CHECK_THAT(caught<std::invalid_argument>([] { zoopt::MeZO<float>({.eps = 0.0}); }),
             Catch::Contains("eps"));
  std::vector<float> x(8, 1.0f);
  CHECK_THAT(caught<std::runtime_error>([&] {
               zoopt::MeZO<float> opt({.lr = 1e-3});
               opt.step([](std::span<const float>) { return std::nan(""); }, std::span<float>(x));
             }),
             Catch::Contains("loss returned nan"));
  CHECK_THAT(caught<std::overflow_error>([&] {
               zoopt::MeZO<float> opt({.lr = 1e-3});
               opt.set_step_count(zoopt::detail::max_steps);
               opt.step([](std::span<const float>) { return 0.0; }, std::span<float>(x));
             }),
             Catch::Contains("step_count"));
  CHECK_THAT(caught<std::runtime_error>(
                 [] { zoopt::UpdateLog::deserialize(std::vector<unsigned char>(5, 0)); }),
             Catch::Contains("update log"));
  CHECK_THAT(caught<std::runtime_error>(
                 [] { zoopt::checkpoint::deserialize(std::vector<unsigned char>(5, 0)); }),
             Catch::Contains("checkpoint"));
  CHECK_THAT(caught<std::runtime_error>([] {
               const std::vector<unsigned char> junk(12, 1);
               zoopt::PerturbationModel::deserialize(junk);
             }),
             Catch::Contains("bad magic"));
  zoopt::ParameterSet<float> set;
  set.add("w", std::span<float>(x));
  CHECK_THAT(caught<std::out_of_range>([&] { (void)set.index_of("nope"); }),
             Catch::Contains("nope"));
  CHECK_THAT(caught<std::logic_error>([&] {
               zoopt::MeZO<float> opt;
               zoopt::UpdateLog::for_optimizer(opt, set).record(opt);
             }),
             Catch::Contains("has not taken a step"));
}
