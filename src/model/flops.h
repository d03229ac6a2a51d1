// Model FLOPs of training, for the MFU (model FLOPs utilisation) of the progress line on a GPU.
#pragma once
#include "model/config.h"

namespace duo {

// FLOPs of one training token (forward + backward) by the usual estimate (PaLM, appendix B): 6 per weight of the
// token-wise matmuls (per block: qkv 3D², attention output D², MLP 2·4D² = 12D²; the output layer D·V) plus the
// attention's 12·L·D per block (scores and values, forward and backward, full L×L also when causal). The
// per-sequence adaLN matmuls and the embedding lookup are left out; so is the DUO curriculum's soft-input
// product (4·V·D per token), which only some steps run.
double training_flops_per_token(const ModelConfig& c);

}  // namespace duo
