#include "train/model_state.h"
#include <algorithm>
#include <cmath>
#include <utility>

namespace duo {

RankRange zero1_shard(const ModelConfig& cfg, int rank, int ranks) {
  const int64_t total = ParamTable(cfg).total();
  const RankRange last = shard_range(total, ranks - 1, ranks);
  DUO_CHECK(last.end > last.begin, "--training.zero1",
            str("the model's ", total, " parameters make ", (total + kShardGrain - 1) / kShardGrain, " blocks of ",
                kShardGrain, ", fewer than the ", ranks, " ranks to shard them over"),
            "drop --training.zero1 for a model this small (its optimizer state is a few MB)");
  return shard_range(total, rank, ranks);
}

ModelState::ModelState(const ModelConfig& cfg, Ops& ops, bool with_optimizer, DType dtype, RankRange shard)
    : table_(cfg), ops_(ops), dtype_(dtype), shard_(shard) {
  if (shard_.end == 0) shard_ = {0, table_.total()};
  DUO_CHECK(shard_.begin >= 0 && shard_.begin < shard_.end && shard_.end <= table_.total(), "ModelState",
            str("shard [", shard_.begin, ", ", shard_.end, ") of ", table_.total(), " parameters"),
            "fewer ranks than parameters");
  const size_t n = (size_t)table_.total() * dtype_size(dtype), k = (size_t)(shard_.end - shard_.begin) * dtype_size(dtype);
  params_ = ops_.alloc(n);
  if (with_optimizer) {
    grads_ = ops_.alloc(n);
    m_ = ops_.alloc(k);
    v_ = ops_.alloc(k);
    ema_ = ops_.alloc(k);
  }
}

ModelState::~ModelState() {
  for (void* p : {params_, grads_, m_, v_, ema_})
    if (p) ops_.release(p);
}

namespace {
// Elements [begin, end) of a flat buffer, as a tensor.
Tensor range_view(void* buffer, DType dtype, int64_t begin, int64_t end, Device device) {
  return Tensor(static_cast<char*>(buffer) + (size_t)begin * dtype_size(dtype), dtype, {end - begin}, device);
}
}  // namespace

Tensor ModelState::flat(void* buffer) const {
  const bool state = buffer != nullptr && (buffer == m_ || buffer == v_ || buffer == ema_);
  return Tensor(buffer, dtype_, {state ? shard_.end - shard_.begin : table_.total()}, ops_.device());
}

std::vector<float> ModelState::download(void* buffer) {
  DUO_CHECK(dtype_ == DType::F32, "ModelState", "host copies are float32", "");
  const Tensor t = flat(buffer);
  std::vector<float> host((size_t)t.numel());
  ops_.to_host(host.data(), t);
  return host;
}

void ModelState::upload(void* buffer, const std::vector<float>& host) {
  Tensor t = flat(buffer);
  DUO_CHECK(dtype_ == DType::F32 && (int64_t)host.size() == t.numel(), "ModelState", "host copy size", "");
  ops_.from_host(t, host.data());
}

void* ModelState::gather(void* state_buffer, Comm& comm) {
  DUO_CHECK(dtype_ == DType::F32, "ModelState", "ZeRO-1 gathers float32 state", "");
  const RankRange mine = shard_range(table_.total(), comm.rank(), comm.size());
  DUO_CHECK(mine.begin == shard_.begin && mine.end == shard_.end, "ModelState", "the shard is not this rank's part",
            "build the state with zero1_shard(config, rank, size)");
  void* full = ops_.alloc((size_t)table_.total() * dtype_size(dtype_));
  Tensor part = range_view(full, dtype_, shard_.begin, shard_.end, ops_.device());
  ops_.copy(part, flat(state_buffer));
  comm.all_gather(static_cast<float*>(full), (size_t)table_.total());
  return full;
}

size_t ModelState::bytes() const {
  size_t n = 0;
  for (void* p : {params_, grads_, m_, v_, ema_})
    if (p) n += (size_t)flat(p).numel() * dtype_size(dtype_);
  return n;
}

void ModelState::zero_grads() {
  Tensor g = flat(grads_);
  ops_.fill(g, 0.0);
}

double ModelState::grad_norm(Comm& comm) {
  DUO_ASSERT(has_optimizer());
  if (!sharded()) return std::sqrt(ops_.sum_squares(flat(grads_)));
  const int64_t chunk = ops_.sum_squares_chunk(), total = table_.total();
  DUO_CHECK(shard_.begin % chunk == 0, "ModelState", str("the shard starts at ", shard_.begin),
            str("not at a whole chunk of ", chunk, " (shard with zero1_shard)"));
  std::vector<double> chunks((size_t)((total + chunk - 1) / chunk), 0.0);
  const Tensor part = range_view(grads_, dtype_, shard_.begin, shard_.end, ops_.device());
  const std::vector<double> mine = ops_.sum_squares_chunks(part);
  std::copy(mine.begin(), mine.end(), chunks.begin() + shard_.begin / chunk);
  comm.all_reduce_sum(chunks.data(), chunks.size());  // one rank's value and zeros: exact in any order
  double sum = 0;
  for (double c : chunks) sum += c;
  return std::sqrt(sum);
}

void ModelState::optimizer_step(const OptimConfig& cfg, double norm) {
  DUO_ASSERT(has_optimizer());
  Tensor m = flat(m_), v = flat(v_), e = flat(ema_);
  const double coef = clip_coefficient(norm, cfg.grad_clip);
  // The shard's parameters and gradients (all of them unless ZeRO-1 shards the state).
  Tensor p = range_view(params_, dtype_, shard_.begin, shard_.end, ops_.device());
  Tensor g = range_view(grads_, dtype_, shard_.begin, shard_.end, ops_.device());
  if (coef != 1.0) ops_.scale(g, coef);
  AdamWArgs a;
  a.lr = learning_rate(cfg, step);
  a.beta1 = cfg.beta1; a.beta2 = cfg.beta2; a.eps = cfg.eps; a.weight_decay = cfg.weight_decay;
  a.step = step + 1;
  ops_.adamw(p, g, m, v, a);
  step += 1;
  if (cfg.ema > 0) {
    ema_updates += 1;
    ops_.ema_update(e, p, ema_decay(cfg.ema, ema_updates));
  }
}

void ModelState::reset_ema() {
  if (!ema_) return;
  Tensor e = flat(ema_), p = range_view(params_, dtype_, shard_.begin, shard_.end, ops_.device());
  ops_.copy(e, p);
  ema_updates = 0;
}

void ModelState::swap_params_and_ema() {
  DUO_ASSERT(ema_ != nullptr && !sharded());
  std::swap(params_, ema_);
}

}  // namespace duo
