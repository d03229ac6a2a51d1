// DUO with curriculum learning (docs/curriculum.md). While training and step ≤ curriculum.end the network
// sees the Gaussian relaxation of the noisy tokens instead of the tokens themselves:
//   simple     w = α̃ e_x + σ̃ ε over all V ids, input softmax(w/τ)·E, z_t = argmax w      (curriculum.h)
//   efficient  only the top-k coordinates of w, input Σ_j ω_j E_{id_j} (an embedding bag)  (curriculum_efficient.h)
// with γ(t) = γmin + t(γmax − γmin), (α_t, α'_t) from the Diffusion Transformation table, σ = −log α_t, and the
// loss is the DUO NELBO of z_t. Otherwise (validation, evaluation, after the curriculum) it is DUO base.
#include <cstring>
#include "algo/noising.h"
#include "algo/curriculum_efficient.h"
#include "algo/transform_lookup.h"

namespace duo {

namespace {

class Duo final : public NoisingAlgorithm {
 public:
  Duo(const AlgoSettings& s, DiT& model, Ops& ops)
      : NoisingAlgorithm(s, model, ops, NoisingSpec{/*absorbing=*/false, /*time_conditioned=*/true, LossKind::DUO}),
        lookup_(TransformLookup::open_or_compute(s.integral_path, model.config().vocab_size,
                                      {s.nearest_lookup ? TableLookup::nearest : TableLookup::hermite, false})) {
    s.curriculum.validate();
    const DiTOptions& o = model.options();
    const int64_t N = o.max_batch * o.max_length, V = model.config().vocab_size;
    if (s.curriculum_mode == "simple") {
      DUO_CHECK(o.soft_input, "algorithm duo", "the model was not planned for soft input", "");
      clean_ids_ = ws_.reserve((size_t)N * 4, "curriculum clean ids");
      latents_ = ws_.reserve((size_t)N * 4, "curriculum latents");
      scales_ = ws_.reserve((size_t)o.max_batch * 2 * 8, "curriculum scales");
    } else if (s.curriculum_mode == "efficient") {
      check_top_k(s.top_k, V);
      DUO_CHECK(o.bag_k == s.top_k, "algorithm duo", "the model was not planned for bag input of this k", "");
      bag_ids_ = ws_.reserve((size_t)N * s.top_k * 4, "curriculum bag ids");
      input_ = ws_.reserve((size_t)N * s.top_k * dtype_size(o.dtype), "curriculum bag weights");
    } else {
      fail("--algo.curriculum.mode", "unknown mode '" + s.curriculum_mode + "'", "use simple or efficient");
    }
    Ops* p = &ops;
    ws_.allocate([p](size_t n) { return p->alloc(n); }, [p](void* q) { p->release(q); });
  }

  LossSums run(const MicroBatch& mb, bool train, bool backward, double grad_scale) override {
    const AlgoSettings& s = settings();
    if (!curriculum_active(s.curriculum, mb.step, train))  // the plain DUO NELBO (exactly duo_base)
      return NoisingAlgorithm::run(mb, train, backward, grad_scale);
    check_batch(mb, true);
    const int64_t B = mb.B, L = mb.L, N = B * L, V = cfg().vocab_size;
    std::vector<CurriculumSequence> seq(B);
    NoisyBatch nb;  // α, α', σ of the curriculum's schedule and z_t of the relaxation
    nb.alpha.resize(B); nb.dalpha.resize(B); nb.sigma.resize(B); nb.z.resize(N);
    for (int64_t b = 0; b < B; ++b) {
      seq[b] = curriculum_sequence(lookup_, s.curriculum, mb.t[b]);
      nb.alpha[b] = seq[b].alpha; nb.dalpha[b] = seq[b].dalpha; nb.sigma[b] = seq[b].sigma;
    }
    CurriculumBatch cb;
    cb.x = mb.ids; cb.B = B; cb.L = L; cb.V = V; cb.seq = seq.data();
    cb.inverse_tau = inverse_temperature(s.curriculum, mb.step);
    cb.noise = mb.noise;
    DiTInput in = sigma_input(nb.sigma, B);
    const DType dt = model().options().dtype;
    if (s.curriculum_mode == "simple") {  // drawn by the backend: the B·L·V noise never crosses to the device
      cb.validate();
      std::vector<double> scales((size_t)B * 2);
      for (int64_t b = 0; b < B; ++b) scales[2 * b] = seq[b].alpha_tilde, scales[2 * b + 1] = seq[b].sigma_tilde;
      RelaxedInput& r = in.relaxed;  // the embedding draws w, z_t = argmax w and softmax(w/τ) (Ops::embed_relaxed)
      r.x = device(clean_ids_, DType::I32, {B, L});
      r.z = device(latents_, DType::I32, {N});
      r.scales = device(scales_, DType::F64, {B, 2});
      r.inverse_tau = cb.inverse_tau;
      r.noise = cb.noise;
      ops().from_host(r.x, mb.ids);
      ops().from_host(r.scales, scales.data());
    } else {
      const int k = s.top_k;
      std::vector<int32_t> ids((size_t)N * k);
      std::vector<float> w((size_t)N * k);
      efficient_latent_rows(cb, k, s.reference_bugs, 0, N, ids.data(), w.data(), nb.z.data());
      in.bag_ids = device(bag_ids_, DType::I32, {B, L, k});
      ops().from_host(in.bag_ids, ids.data());
      in.bag_weights = device(input_, dt, {B, L, k});
      upload(in.bag_weights, w);
    }
    Tensor y = model().forward_features(in, B, L, train, mb.dropout);
    HeadInputs tok = head_inputs(mb, nb);
    if (s.curriculum_mode == "simple") tok.z_on_device = in.relaxed.z;  // drawn on the device: the head reads it there
    return head(LossKind::DUO, y, tok, backward, grad_scale);
  }

 private:
  Tensor device(size_t off, DType t, std::initializer_list<int64_t> dims) {
    return Tensor(ws_.at(off), t, dims, ops().device());
  }
  void upload(Tensor& dst, const std::vector<float>& src) {
    if (dst.dtype == DType::F32) return ops().from_host(dst, src.data());
    std::vector<double> d(src.begin(), src.end());
    ops().from_host(dst, d.data());
  }

  TransformLookup lookup_;
  Arena ws_;
  size_t input_ = 0, bag_ids_ = 0, clean_ids_ = 0, latents_ = 0, scales_ = 0;
};

}  // namespace

std::unique_ptr<Algorithm> make_duo(const AlgoSettings& s, DiT& model, Ops& ops) {
  return std::make_unique<Duo>(s, model, ops);
}

}  // namespace duo
