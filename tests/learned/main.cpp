// Catch2 main of the ZO Fine-tuner tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
