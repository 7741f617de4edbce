// The one translation unit of zoopt_torch_tests that holds Catch2's main().
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
