// FlashAttention-2 style softmax attention on tensor cores (mma.m16n8k16 bf16 → fp32), forward and backward,
// behind the fp32 interface of Ops::attention / Ops::attention_backward (src/backend/ops.h):
//   qkv  [B, L, 3D]  features [q|k|v][head][dim], D = H·hd, rotary already applied (or applied by the kernels)
//   out  [B, L, D]   heads concatenated (fp32, or bf16 with qkv)
//   lse  [B, H, L]   natural log-sum-exp of each row of scale·q·kᵀ (masked), saved for the backward
//   dqkv [B, L, 3D]  written in full by the backward
// scale = 1/sqrt(hd); causal = key j visible to query i iff j ≤ i. hd ∈ {32, 64}; any L ≥ 1.
// The inputs are rounded to bf16 once (into the workspace; qkv not when it is given in bf16, the backend's activation
// dtype) and all products run on tensor cores with fp32
// accumulation; softmax statistics, lse, delta = rowsum(dO∘O) and every output stay fp32. No L×L matrix is
// ever stored, and the backward is deterministic (no atomics: dK/dV and dQ come from separate kernels).
#pragma once
#include <cstddef>

#include "runtime.cuh"

namespace duo::cuda {

// Scratch bytes both launchers need (16-byte aligned pointer): a bf16 copy of qkv (B·L·3D), a bf16 copy of
// dout (B·L·D) and delta (B·H·L fp32). The forward uses only the first part.
size_t flash_attention_workspace_bytes(int B, int L, int H, int hd);

// out, lse ← attention(qkv). workspace: flash_attention_workspace_bytes(B, L, H, hd) bytes of device memory.
// qkv and out: fp32, or bf16 when bf16_act (the backend's activation dtype: qkv read as it is, out written in it).
// rope: null, or the rotary table (L, hd/2) of (cos, sin) (rotary.cuh): then qkv is before rotary, and q and k are
// rotated as they are loaded (attention(rotary(qkv)), the same bits as the two ops).
void flash_attention_forward(void* out, float* lse, const void* qkv, bool bf16_act, const float2* rope,
                             void* workspace, int B, int L, int H, int hd, bool causal, cudaStream_t stream);

// dqkv ← d(attention)/d(qkv) applied to dout, from the forward's inputs, out and lse (P is recomputed); qkv, out and
// rope as the forward took them. With rope, dqkv is the gradient at the unrotated qkv (dQ and dK turned back as
// they are stored: the rotary backward's bits), fp32 or bf16 (dqkv_bf16); without, the fp32 gradient at qkv.
// dout: fp32, or bf16 when dout_bf16 (the activation dtype: the kernels' operand as it is).
void flash_attention_backward(void* dqkv, bool dqkv_bf16, const void* dout, bool dout_bf16, const void* qkv,
                              const void* out, bool bf16_act, const float2* rope, const float* lse, void* workspace,
                              int B, int L, int H, int hd, bool causal, cudaStream_t stream);

}  // namespace duo::cuda
