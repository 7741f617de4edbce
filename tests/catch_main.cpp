// Catch2's main(): compiled once per build into zoopt_catch_main, which
// every Catch2 test binary links (it is among the slowest files to compile).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
