// Constructors of the concrete algorithms, one per file (ar.cpp, mdlm.cpp, sedd.cpp, d3pm.cpp, duo_base.cpp);
// make_algorithm (algorithm.cpp) picks one by name.
#pragma once
#include <memory>
#include "algo/algorithm.h"

namespace duo {

std::unique_ptr<Algorithm> make_ar(const AlgoSettings& s, DiT& model, Ops& ops);
std::unique_ptr<Algorithm> make_mdlm(const AlgoSettings& s, DiT& model, Ops& ops);
std::unique_ptr<Algorithm> make_sedd(const AlgoSettings& s, DiT& model, Ops& ops);
std::unique_ptr<Algorithm> make_d3pm(const AlgoSettings& s, DiT& model, Ops& ops);
std::unique_ptr<Algorithm> make_duo_base(const AlgoSettings& s, DiT& model, Ops& ops);

// The clean ids of a micro-batch as a CPU tensor view (the corruption functions take tensors).
inline Tensor ids_tensor(const MicroBatch& mb) {
  return Tensor(const_cast<int32_t*>(mb.ids), DType::I32, {mb.B, mb.L});
}

}  // namespace duo
