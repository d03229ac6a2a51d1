#include "algo/algorithm.h"
#include <cmath>

namespace duo {

Algorithm::Algorithm(const AlgoSettings& s, DiT& model, Ops& ops) : s_(s), model_(model), ops_(ops) {
  const DiTOptions& o = model.options();
  const int64_t N = o.max_batch * o.max_length, V = model.config().vocab_size, B = o.max_batch;
  const size_t es = dtype_size(o.dtype);
  ids_ = ws_.reserve(N * 4, "model input ids");
  sigma_ = ws_.reserve(B * es, "sigma");
  x_ = ws_.reserve(N * 4, "clean ids");
  z_ = ws_.reserve(N * 4, "noisy ids");
  alpha_ = ws_.reserve(N * 8, "alpha");
  dalpha_ = ws_.reserve(N * 8, "dalpha");
  weight_ = ws_.reserve(N * 8, "loss weights");
  losses_ = ws_.reserve(N * es, "losses");
  // The (B·L, V) logits' gradient only for a head that reads the model's full logits (kl_head, distillation);
  // head() runs fused with the output layer and needs none.
  if (o.full_logits && o.training) dlogits_ = ws_.reserve(N * V * es, "dlogits");
  Ops* p = &ops_;
  ws_.allocate([p](size_t n) { return p->alloc(n); }, [p](void* q) { p->release(q); });
}

void HeadInputs::resize(int64_t n) {
  x.assign(n, 0); z.assign(n, 0); alpha.assign(n, 0.0); dalpha.assign(n, 0.0); mask.assign(n, 1.0);
}

double Algorithm::counted_weight(const MicroBatch& mb) const {
  double w = 0;
  for (int64_t i = 0; i < mb.B * mb.L; ++i) w += mb.mask[i];
  return w;
}

void Algorithm::check_batch(const MicroBatch& mb, bool needs_time) const {
  DUO_CHECK(mb.ids && mb.mask && mb.B >= 1 && mb.L >= 1, "algorithm " + s_.name, "empty micro-batch", "");
  DUO_CHECK(!needs_time || (int64_t)mb.t.size() == mb.B, "algorithm " + s_.name,
            str("got ", mb.t.size(), " diffusion times for ", mb.B, " sequences"), "");
  const int64_t V = cfg().vocab_size;
  for (int64_t i = 0; i < mb.B * mb.L; ++i)
    DUO_CHECK(mb.ids[i] >= 0 && mb.ids[i] < V, "training data",
              str("token id ", mb.ids[i], " at position ", i, " is outside the model vocabulary of ", V),
              "the shards were tokenized for another vocabulary: check --vocab_size against the shard header");
}

DiTInput Algorithm::sigma_input(const std::vector<double>& sigma, int64_t B) {
  const DType dt = model_.options().dtype;
  Tensor ts(ws_.at(sigma_), dt, {B}, ops_.device());
  if (dt == DType::F64) {
    ops_.from_host(ts, sigma.data());
  } else {
    std::vector<float> f(sigma.begin(), sigma.end());
    ops_.from_host(ts, f.data());
  }
  DiTInput in;
  in.sigma = ts;
  return in;
}

Tensor Algorithm::features_of_ids(const int32_t* ids, const std::vector<double>& sigma, int64_t B, int64_t L,
                                  bool train, const Philox& dropout) {
  DiTInput in = sigma_input(sigma, B);
  in.ids = Tensor(ws_.at(ids_), DType::I32, {B, L}, ops_.device());
  ops_.from_host(in.ids, ids);
  return model_.forward_features(in, B, L, train, dropout);
}

Tensor Algorithm::head_weights(const std::vector<double>& mask, double grad_scale) {
  const int64_t N = (int64_t)mask.size();
  Tensor weight(ws_.at(weight_), DType::F64, {N}, ops_.device());
  std::vector<double> w(N);
  for (int64_t n = 0; n < N; ++n) w[n] = grad_scale * mask[n];
  ops_.from_host(weight, w.data());
  return weight;
}

LossSums Algorithm::head(LossKind kind, const Tensor& y, const HeadInputs& tok, bool backward, double grad_scale) {
  const int64_t D = cfg().hidden, N = y.numel() / D;
  const DType dt = model_.options().dtype;
  DUO_ASSERT((int64_t)tok.x.size() == N);
  auto dev = [&](size_t off, DType t, std::initializer_list<int64_t> dims) {
    return Tensor(ws_.at(off), t, dims, ops_.device());
  };
  const bool z_there = tok.z_on_device.data != nullptr;
  DUO_ASSERT(!z_there || (tok.z_on_device.dtype == DType::I32 && tok.z_on_device.numel() == N));
  Tensor x = dev(x_, DType::I32, {N}), z = z_there ? tok.z_on_device : dev(z_, DType::I32, {N});
  Tensor alpha = dev(alpha_, DType::F64, {N}), dalpha = dev(dalpha_, DType::F64, {N});
  Tensor losses = dev(losses_, dt, {N});
  Tensor weight = head_weights(tok.mask, grad_scale);
  ops_.from_host(x, tok.x.data());
  if (!z_there) ops_.from_host(z, tok.z.data());
  ops_.from_host(alpha, tok.alpha.data());
  ops_.from_host(dalpha, tok.dalpha.data());
  LossHeadArgs a;
  a.kind = kind;
  a.mask_id = s_.mask_id;
  a.T = s_.T;
  a.reference_bug = s_.reference_bugs;
  const OutputLayer out = model_.output_layer();
  Tensor dy = backward ? model_.features_grad() : Tensor(), dw = backward ? out.dw : Tensor();
  Tensor db = backward ? out.db : Tensor();
  ops_.linear_loss_head(a, losses, dy, dw, db, y.view({N, D}), out.w, out.b, x, z, alpha, dalpha, weight);
  LossSums sums = sum_losses(losses, tok.mask, y.dim(0), backward);
  if (backward) model_.backward_features(dy);
  return sums;
}

LossSums Algorithm::kl_head(KlDirection dir, const Tensor& student, const Tensor& teacher,
                            const std::vector<double>& mask, bool backward, double grad_scale) {
  const int64_t V = cfg().vocab_size, N = student.numel() / V;
  const DType dt = model_.options().dtype;
  DUO_ASSERT((int64_t)mask.size() == N && teacher.numel() == student.numel());
  Tensor losses(ws_.at(losses_), dt, {N}, ops_.device());
  const DiTOptions& o = model_.options();
  DUO_CHECK(!backward || (o.full_logits && o.training), "algorithm " + s_.name,
            "the KL head's backward needs a training model with its full logits", "construct the DiT with full_logits");
  Tensor dlogits = backward ? Tensor(ws_.at(dlogits_), dt, {N, V}, ops_.device()) : Tensor();
  Tensor weight = head_weights(mask, grad_scale);
  ops_.kl_head(dir, losses, dlogits, student.view({N, V}), teacher.view({N, V}), weight);
  LossSums sums = sum_losses(losses, mask, student.dim(0), backward);
  if (backward) model_.backward(dlogits);
  return sums;
}

LossSums Algorithm::sum_losses(const Tensor& losses, const std::vector<double>& mask, int64_t B, bool backward) {
  const int64_t N = losses.numel(), L = N / B;
  LossSums sums;
  losses_host_.resize(N);
  if (losses.dtype == DType::F64) {
    ops_.to_host(losses_host_.data(), losses);
  } else {
    std::vector<float> f(N);
    ops_.to_host(f.data(), losses);
    losses_host_.assign(f.begin(), f.end());
  }
  sums.seq_loss.assign(B, 0.0);
  sums.seq_weight.assign(B, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (mask[n] == 0) continue;
    sums.seq_loss[n / L] += mask[n] * losses_host_[n];
    sums.seq_weight[n / L] += mask[n];
  }
  for (int64_t b = 0; b < B; ++b) {
    sums.loss += sums.seq_loss[b];
    sums.weight += sums.seq_weight[b];
  }
  // Every algorithm's loss (evaluation and training) passes here: a non-finite value anywhere in the batch makes
  // the sum non-finite. Weights are checked finite when loaded (io/weights.h), so the cause is inside the run.
  if (!std::isfinite(sums.loss))
    fail("loss", str("the ", s_.name, " loss is not finite (", sums.loss,
                     "): the network produced a non-finite log-probability"),
         backward ? "the weights were finite when loaded, so training diverged: lower --optim.lr or lengthen the "
                    "warm-up (--lr_scheduler.num_warmup_steps)"
                  : "the loaded weights are finite (checked at load time), so the model overflows inside: check "
                    "that the checkpoint matches the model options, or use an earlier checkpoint");
  return sums;
}

}  // namespace duo

#include "algo/algorithms.h"

namespace duo {

std::unique_ptr<Algorithm> make_algorithm(const AlgoSettings& s, DiT& model, Ops& ops) {
  if (s.name == "ar") return make_ar(s, model, ops);
  if (s.name == "mdlm") return make_mdlm(s, model, ops);
  if (s.name == "sedd") return make_sedd(s, model, ops);
  if (s.name == "d3pm") return make_d3pm(s, model, ops);
  if (s.name == "duo_base") return make_duo_base(s, model, ops);
  if (s.name == "duo") return make_duo(s, model, ops);
  fail("--algo", "unknown algorithm '" + s.name + "'", "use ar, mdlm, sedd, d3pm, duo_base or duo");
}

}  // namespace duo
