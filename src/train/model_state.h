// Everything a training run keeps per parameter, in one layout (the ParamTable's): the parameters, their
// gradients, AdamW's two moments and the EMA shadow. Each is one device buffer, so zeroing the gradients,
// the global norm, AdamW and the EMA update are one op each.
#pragma once
#include <cstdint>
#include <vector>
#include "backend/ops.h"
#include "model/params.h"
#include "train/optimizer.h"

namespace duo {

class ModelState {
 public:
  // with_optimizer = false: parameters only (evaluation, sampling).
  ModelState(const ModelConfig& cfg, Ops& ops, bool with_optimizer, DType dtype = DType::F32);
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
  // Whole-buffer views (flat, table().total() elements).
  Tensor flat(void* buffer) const;
  // Host copies of one of the buffers (checkpoints are written from and read into host memory, whatever the
  // device). F32 buffers only.
  std::vector<float> download(void* buffer);
  void upload(void* buffer, const std::vector<float>& host);

  int64_t step = 0;         // optimizer updates done
  int64_t ema_updates = 0;  // EMA updates done (the n of the decay warm-up)

  void zero_grads();
  // Global-norm clip, AdamW with the scheduled learning rate of update `step`, EMA update; step += 1.
  // Returns the gradient norm before clipping.
  double optimizer_step(const OptimConfig& cfg);
  // Copies the EMA shadow from the current parameters (start of training / fine-tuning).
  void reset_ema();
  // Swaps parameters and EMA shadow (evaluation uses the EMA weights, then swaps back).
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
};

}  // namespace duo
