// Every op of the ops interface by kind, with its name and the work it does: floating-point operations and the
// bytes it must move at least (each tensor read or written once), from the shapes of its call. The GPU-speed
// roofline (time ≥ max(flops / peak, bytes / bandwidth)) and the op observer (Ops::set_observer) use it.
#pragma once
#include <cstdint>
#include <initializer_list>
#include "core/tensor.h"

namespace duo {

enum class OpKind : uint8_t {
  Fill, Copy,
  EmbedIds, EmbedIdsBackward, EmbedSoft, EmbedSoftBackward, EmbedRelaxed, EmbedBag, EmbedBagBackward,
  TimestepEmbedding,
  Linear, LinearBackward, Silu, SiluBackward, Gelu, GeluBackward, LinearGelu, GeluLinearBackward,
  LayernormModulate, LayernormModulateBackward,
  Rotary, RotaryBackward, Attention, AttentionBackward, RotaryAttention, RotaryAttentionBackward,
  GatedResidual, GatedResidualBackward, GatedResidualLayernorm,
  LogSoftmax, LogSoftmaxBackward, CrossEntropy, LossHead, LinearLossHead, KlHead,
  GaussianRelaxation,
  DiffusionStep,
  SumSquares, SumSquaresChunks, Scale, Adamw, EmaUpdate,
  Count  // number of kinds
};

// The op's name as the ops interface spells it ("linear_backward").
const char* op_name(OpKind k);

// The state of a weight matrix's bf16 working copy (backend/weight_copies.h) when an op that reads it began.
enum class WeightCopy : uint8_t {
  None,   // no copy (the weights are not frozen, or the backend keeps none): the op rounds W into its scratch
  Made,   // the copy was stale: it was made (one rounding pass of W) before the op read it
  Ready,  // the copy was current: nothing rounded
};

// One call of an op as the observer sees it, after it ran: the tensors it wrote (outputs, in argument order, empty
// ones included) and the tensors it read, and the few scalars its cost depends on.
struct OpCall {
  static constexpr int kMaxTensors = 10;
  OpKind kind = OpKind::Fill;
  const Tensor* out[kMaxTensors] = {};
  int n_out = 0;
  const Tensor* in[kMaxTensors] = {};
  int n_in = 0;
  int n_heads = 0;      // attention, rotary
  bool causal = false;  // attention
  int64_t chunk_rows = 0;  // linear_loss_head: the most rows of one chunk (CUDA: every chunk but the last)
  // The ops that read a weight matrix through a GEMM (linear, linear_gelu, linear_backward with din,
  // gelu_linear_backward, linear_loss_head: W; embed_soft: the table): its working copy. adamw: Made when it wrote
  // its params' working copy along with them.
  WeightCopy weights = WeightCopy::None;
};

// The call of kind `kind` that wrote `out` and read `in` (in argument order).
inline OpCall make_call(OpKind kind, std::initializer_list<const Tensor*> out,
                        std::initializer_list<const Tensor*> in) {
  OpCall c;
  c.kind = kind;
  for (const Tensor* t : out) c.out[c.n_out++] = t;
  for (const Tensor* t : in) c.in[c.n_in++] = t;
  return c;
}

struct OpCost {
  double flops = 0;  // floating-point operations (a multiply-add counts 2)
  double bytes = 0;  // every input read once, every output written once
};

// The cost of a call from its tensors' shapes (docs/architecture.md §3 lists the formulas).
OpCost op_cost(const OpCall& call);

// Sees every op a backend runs (Ops::set_observer): a test runs the same model on two backends and names the first
// op whose output differs; a profiler sums op_cost per kind.
class OpObserver {
 public:
  virtual ~OpObserver() = default;
  virtual void after(const OpCall& call) = 0;
};

}  // namespace duo
