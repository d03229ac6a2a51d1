// Chooses the backend of a run from --device: auto | cpu | cuda.
#pragma once
#include <memory>
#include <string>
#include "backend/ops.h"

namespace duo {

// auto = cuda when this build has the CUDA backend and a GPU answers, else cpu. Throws duo::Error with a HINT
// for cuda in a build without it.
std::unique_ptr<Ops> make_backend(const std::string& device);

}  // namespace duo
