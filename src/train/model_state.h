// Everything a training run keeps per parameter, in one layout (the ParamTable's): the parameters, their
// gradients, AdamW's two moments and the EMA shadow. Each is one device buffer, so zeroing the gradients,
// the global norm, AdamW and the EMA update are one op each.
// ZeRO-1 (docs/training.md §13): with a shard [begin, end) of the flat parameter vector (zero1_shard), the moments
// and the EMA hold that range only; the gradient is summed over the ranks only there (Comm::reduce_scatter_sum),
// the optimizer step updates the parameters of the shard, and the caller gathers the rest from the other ranks
// (Comm::all_gather). The parameter and gradient buffers stay whole.
#pragma once
#include <cstdint>
#include <vector>
#include "backend/comm.h"
#include "backend/ops.h"
#include "model/params.h"
#include "train/optimizer.h"

namespace duo {

// This rank's ZeRO-1 shard of the model's parameters (shard_range); fails naming --training.zero1 when the model
// is too small to give every rank a part.
RankRange zero1_shard(const ModelConfig& cfg, int rank, int ranks);

class ModelState {
 public:
  // with_optimizer = false: parameters only (evaluation, sampling).
  // shard: the range whose optimizer state this process keeps ({0, 0}: all of it).
  ModelState(const ModelConfig& cfg, Ops& ops, bool with_optimizer, DType dtype = DType::F32, RankRange shard = {});
  ~ModelState();
  ModelState(const ModelState&) = delete;
  ModelState& operator=(const ModelState&) = delete;

  const ParamTable& table() const { return table_; }
  Ops& ops() { return ops_; }
  DType dtype() const { return dtype_; }
  void* params() { return params_; }
  void* grads() { return grads_; }
  void* ema() { return ema_; }
  void* adam_m() { return m_; }
  void* adam_v() { return v_; }
  bool has_optimizer() const { return grads_ != nullptr; }
  // Whole-buffer views: table().total() elements, the shard's for the moments and the EMA.
  Tensor flat(void* buffer) const;
  bool sharded() const { return shard_.end - shard_.begin != table_.total(); }
  const RankRange& shard() const { return shard_; }
  // ZeRO-1: a new full-size buffer holding every rank's part of a sharded one (the moments or the EMA), gathered
  // over `comm`; the caller releases it with ops().release.
  void* gather(void* state_buffer, Comm& comm);
  // Host copies of one of the buffers (checkpoints are written from and read into host memory, whatever the
  // device). F32 buffers only.
  std::vector<float> download(void* buffer);
  void upload(void* buffer, const std::vector<float>& host);

  int64_t step = 0;         // optimizer updates done
  int64_t ema_updates = 0;  // EMA updates done (the n of the decay warm-up)

  void zero_grads();
  // The global gradient norm. Sharded: each rank's chunk sums of its shard (Ops::sum_squares_chunks), exchanged
  // and added in chunk order, the same number on every rank (on the CPU, the bits of one process's sum_squares).
  double grad_norm(Comm& comm);
  // Global-norm clip by `norm` (grad_norm's), AdamW with the scheduled learning rate of update `step`, EMA update
  // of the shard; step += 1.
  void optimizer_step(const OptimConfig& cfg, double norm);
  // Copies the EMA shadow from the current parameters (start of training / fine-tuning).
  void reset_ema();
  // Swaps parameters and EMA shadow (evaluation uses the EMA weights, then swaps back). Not when sharded.
  void swap_params_and_ema();
  // Bytes held by the buffers, for the start-up memory plan.
  size_t bytes() const;

 private:
  ParamTable table_;
  Ops& ops_;
  DType dtype_;
  void* params_ = nullptr;
  void* grads_ = nullptr;
  void* m_ = nullptr;
  void* v_ = nullptr;
  void* ema_ = nullptr;
  RankRange shard_;
};

}  // namespace duo
