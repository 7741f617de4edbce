// ZO Fine-tuner: learned block-wise perturbation scales (networks, saved-model
// file, deployment optimizer, meta-trainer).
#pragma once

#include "zoopt/learned/meta_trainer.hpp"
#include "zoopt/learned/pert_nn.hpp"
#include "zoopt/learned/perturbation_model.hpp"
#include "zoopt/optimizer/zo_finetuner.hpp"
