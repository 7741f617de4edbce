// The ZO Fine-tuner optimizer now lives with the other optimizers; this
// header keeps #include "zoopt/learned/zo_finetuner.hpp" working.
#pragma once

#include "zoopt/optimizer/zo_finetuner.hpp"
