#include "model/flops.h"

namespace duo {

double training_flops_per_token(const ModelConfig& c) {
  const double D = double(c.hidden), V = double(c.vocab_size), L = double(c.length), n = double(c.n_blocks);
  const double matmul_weights = n * (4.0 * D * D + 2.0 * D * double(c.mlp_hidden())) + D * V;
  return 6.0 * matmul_weights + 12.0 * n * L * D;
}

}  // namespace duo
