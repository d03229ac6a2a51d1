// Chooses the backend of a run from --device: auto | cpu | cuda.
#pragma once
#include <memory>
#include <string>
#include "backend/ops.h"

namespace duo {

// auto = cuda when this build has the CUDA backend and a GPU answers, else cpu. Throws duo::Error with a HINT
// for cuda in a build without it. threads > 0 sets the CPU threads (--threads; the host side of a GPU run too),
// 0 keeps one per core.
std::unique_ptr<Ops> make_backend(const std::string& device, int threads = 0);

}  // namespace duo
