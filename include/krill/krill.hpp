// Umbrella header: everything a krill program needs.
#pragma once

#include "krill/util/error.hpp"
#include "krill/tensor/dtype.hpp"
#include "krill/tensor/device.hpp"
#include "krill/tensor/shape.hpp"
#include "krill/tensor/tensor.hpp"
#include "krill/tensor/ops.hpp"
#include "krill/tensor/generator.hpp"
#include "krill/tensor/state_dict.hpp"
#include "krill/autograd/grad_mode.hpp"
#include "krill/autograd/engine.hpp"
#include "krill/nn/module.hpp"
#include "krill/nn/layers.hpp"
#include "krill/nn/init.hpp"
#include "krill/nn/functional.hpp"
#include "krill/data/csv.hpp"
