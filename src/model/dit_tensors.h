// Named views of one DiT-shaped buffer (parameters, gradients, Adam moments or EMA all share the layout).
// Built by name from the ParamTable once, so the forward/backward code reads like the math
// (`b.attn_qkv`, `b.mlp0_w`) and never indexes parameters by number.
#pragma once
#include <vector>
#include "core/tensor.h"
#include "model/params.h"

namespace duo {

struct DiTBlockTensors {
  Tensor norm1;           // (D)
  Tensor attn_qkv;        // (3D, D)   rows: [q | k | v] x [head] x [dim]
  Tensor attn_out;        // (D, D)
  Tensor norm2;           // (D)
  Tensor mlp0_w, mlp0_b;  // (4D, D), (4D)
  Tensor mlp2_w, mlp2_b;  // (D, 4D), (D)
  Tensor ada_w, ada_b;    // (6D, cond), (6D)     absent in the causal model
};

struct DiTTensors {
  Tensor embedding;             // (V, D)
  Tensor sigma0_w, sigma0_b;    // (cond, F), (cond)  absent in the causal model
  Tensor sigma2_w, sigma2_b;    // (cond, cond), (cond)
  std::vector<DiTBlockTensors> blocks;
  Tensor final_norm;            // (D)
  Tensor out_w, out_b;          // (V, D), (V)
  Tensor final_ada_w, final_ada_b;  // (2D, cond), (2D)  absent in the causal model
};

// Views into `buffer` (laid out by `table`, elements of `dtype`); conditioning tensors stay empty for a
// causal model.
DiTTensors bind_dit_tensors(const ParamTable& table, void* buffer, DType dtype, Device device = Device::CPU);

}  // namespace duo
