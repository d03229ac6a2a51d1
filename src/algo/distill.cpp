// Discrete Consistency Distillation (docs/distillation.md): the round schedule, the teacher, and one step's loss.
#include "algo/distill.h"

#include <cmath>
#include "core/rng_streams.h"
#include "io/checkpoint.h"
#include "io/weights.h"

namespace duo {

namespace {


}  // namespace

KlDirection parse_distill_loss(const std::string& name) {
  if (name == "kl-bwd") return KlDirection::Backward;
  if (name == "kl-fwd") return KlDirection::Forward;
  fail("--algo.loss_type", "unknown distillation loss '" + name + "'",
       "use kl-bwd (KL(student‖teacher), the reference's default) or kl-fwd (the reference's config also "
       "accepts 'posterior' and 'kl-posterior', but its code computes no loss for them)");
}

const char* distill_loss_name(KlDirection d) { return d == KlDirection::Forward ? "kl-fwd" : "kl-bwd"; }

int64_t distill_round(const DistillSettings& s, int64_t step) { return step / s.update_teacher_every; }

bool teacher_refresh_due(const DistillSettings& s, int64_t step) { return step % s.update_teacher_every == 0; }

double distill_delta(const DistillSettings& s, int64_t step) {
  if (s.linear_growth_dt)
    return s.linear_growth_min + (double)step / (double)s.max_steps * (s.linear_growth_max - s.linear_growth_min);
  return std::ldexp(1.0, (int)std::min<int64_t>(distill_round(s, step), 1000)) / (double)s.T;
}

DistillTimes distill_times(double t, double delta) {
  DistillTimes r;
  r.t = std::min(std::max(t + delta, 0.0), 1.0);
  r.s = r.t - delta;
  return r;
}

void DistillSettings::validate() const {
  DUO_CHECK(T >= 1, "--algo.T", str("must be >= 1, got ", T), "the first round's step is 1/T; the reference uses 512");
  DUO_CHECK(update_teacher_every >= 1, "--algo.update_teacher_every", str("must be >= 1, got ", update_teacher_every),
            "the reference refreshes the teacher every 10000 steps");
  DUO_CHECK(max_steps >= 1, "--trainer.max_steps", str("must be >= 1, got ", max_steps), "");
  DUO_CHECK(std::isfinite(gamma_min) && std::isfinite(gamma_max) && gamma_min < gamma_max, "--algo.gamma_min/gamma_max",
            str("need a finite range gamma_min < gamma_max, got [", gamma_min, ", ", gamma_max, "]"),
            "the reference distils over [-4, -1]");
  if (linear_growth_dt)
    DUO_CHECK(linear_growth_min > 0 && linear_growth_min <= linear_growth_max && linear_growth_max <= 1,
              "--algo.linear_growth_min/max", str("need 0 < min <= max <= 1, got ", linear_growth_min, ", ",
                                                  linear_growth_max),
              "the reference uses 0.001 and 0.25");
  // s = clip(t + δ, 0, 1) − δ must stay a time in [0, 1]: δ ≤ 1 at the last step of the run.
  const double last = distill_delta(*this, max_steps - 1);
  DUO_CHECK(last <= 1.0, "--algo.T", str("the step size reaches δ = ", last, " > 1 at step ", max_steps - 1, " (round ",
                                         distill_round(*this, max_steps - 1), ")"),
            str("δ doubles every --algo.update_teacher_every steps from 1/T: use fewer rounds (raise "
                "update_teacher_every or lower trainer.max_steps) or a larger T"));
}

Distillation::Distillation(const AlgoSettings& a, const DistillSettings& d, DiT& student, StudentWeights weights,
                           Ops& ops)
    : Algorithm([&] { AlgoSettings s = a; s.name = "distill"; return s; }(), student, ops),
      d_(d),
      student_(std::move(weights)),
      teacher_(student.config(), ops, [&] {
        DiTOptions o = student.options();
        o.training = false;  // the teacher never runs backward
        o.soft_input = false;
        o.bag_k = 0;
        return o;
      }()),
      lookup_(TransformLookup::open_or_compute(d.integral_path, student.config().vocab_size,
                                    {d.nearest_lookup ? TableLookup::nearest : TableLookup::hermite, false})) {
  d_.validate();
  DUO_CHECK(student_.params, "distillation", "no source for the teacher's weights", "this is a bug in the caller");
  DUO_CHECK(!d_.teacher_ema || student_.ema, "--algo.teacher_ema", "the teacher should follow the EMA weights, but "
            "the run keeps no EMA", "set --training.ema (the reference uses 0.999) or drop --algo.teacher_ema");
  DUO_CHECK(!student.config().causal, "distillation", "the model is causal (AR)",
            "distillation needs a DUO model: pass a duo/duo_base checkpoint as --training.finetune_path");
  const IntegralTable& table = lookup_.table();
  DUO_CHECK(table.gamma_min() <= d_.gamma_min && d_.gamma_max <= table.gamma_max(), "--algo.gamma_min/gamma_max",
            str("the range [", d_.gamma_min, ", ", d_.gamma_max, "] is not inside the grid [", table.gamma_min(), ", ",
                table.gamma_max(), "] of ", d_.integral_path.empty() ? "the integral table" : d_.integral_path, ": α would be clipped to its edge"),
            str("narrow the range, or build a table that covers it: ",
                IntegralTable::regenerate_command(lookup_.model_vocab(), std::min(d_.gamma_min, table.gamma_min()),
                                                  std::max(d_.gamma_max, table.gamma_max()), table.num_points(),
                                                  "integral/<name>.bin")));
  gamma_range_.gamma_min = d_.gamma_min;
  gamma_range_.gamma_max = d_.gamma_max;

  const DiTOptions& o = student.options();
  const int64_t B = o.max_batch, L = o.max_length > 0 ? o.max_length : student.config().length;
  teacher_params_ = ops.alloc((size_t)teacher_.table().total() * dtype_size(o.dtype));
  teacher_.bind(teacher_params_, nullptr);
  ids_ = ws_.reserve((size_t)B * L * 4, "teacher input ids");
  sigma_ = ws_.reserve((size_t)B * dtype_size(o.dtype), "teacher sigma");
  clean_ids_ = ws_.reserve((size_t)B * L * 4, "clean ids");
  student_ids_ = ws_.reserve((size_t)B * L * 4, "student input ids");
  scales_ = ws_.reserve((size_t)B * 4 * 8, "relaxation scales at t and s");
  Ops* p = &ops;
  ws_.allocate([p](size_t n) { return p->alloc(n); }, [p](void* q) { p->release(q); });
}

Distillation::~Distillation() { ops().release(teacher_params_); }

Tensor Distillation::teacher_params() {
  return Tensor(teacher_params_, teacher_.options().dtype, {teacher_.table().total()}, ops().device());
}

void Distillation::refresh_teacher(int64_t step) {
  Tensor dst = teacher_params();
  if (d_.teacher_ema) student_.ema(dst);
  else student_.params(dst);
  teacher_step_ = step;
}

LossSums Distillation::run(const MicroBatch& mb, bool train, bool backward, double grad_scale) {
  check_batch(mb, true);
  // 1. The teacher: the reference copies the student lazily at its first call, then every N steps.
  if (teacher_step_ < 0 || (train && teacher_refresh_due(d_, mb.step) && teacher_step_ != mb.step))
    refresh_teacher(mb.step);

  // 2–4. δ of this round, the two times of each sequence and their schedule values. Validation after k steps
  // measures the round just trained (step k − 1) against its own teacher.
  const int64_t B = mb.B, L = mb.L, N = B * L;
  const double delta = distill_delta(d_, train ? mb.step : std::max<int64_t>(mb.step - 1, 0));
  std::vector<CurriculumSequence> at_t(B), at_s(B);
  std::vector<double> sigma_t(B), sigma_s(B);
  for (int64_t b = 0; b < B; ++b) {
    const DistillTimes ts = distill_times(mb.t[b], delta);
    at_t[b] = curriculum_sequence(lookup_, gamma_range_, ts.t);
    at_s[b] = curriculum_sequence(lookup_, gamma_range_, ts.s);
    sigma_t[b] = at_t[b].sigma;
    sigma_s[b] = at_s[b].sigma;
  }

  // 5. z_t and z_s: the argmax of the Gaussian relaxation of x at each time, drawn by the backend (on the
  // device for CUDA), so neither the B·L·V normals nor the latents cross to the host. One ε per token for both
  // times: ε is counter-based (row·V + j of the micro-batch's noise stream), so the second draw regenerates
  // exactly the same numbers instead of keeping a (B, L, V) tensor.
  const DType dt = teacher_.options().dtype;
  auto device = [&](size_t off, DType t, std::initializer_list<int64_t> dims) {
    return Tensor(ws_.at(off), t, dims, ops().device());
  };
  Tensor x = device(clean_ids_, DType::I32, {B, L});
  Tensor z_t = device(student_ids_, DType::I32, {B, L}), z_s = device(ids_, DType::I32, {B, L});
  Tensor scales = device(scales_, DType::F64, {2, B, 2});
  std::vector<double> host_scales((size_t)B * 4);
  for (int64_t b = 0; b < B; ++b) {
    host_scales[2 * b] = at_t[b].alpha_tilde, host_scales[2 * b + 1] = at_t[b].sigma_tilde;
    host_scales[2 * (B + b)] = at_s[b].alpha_tilde, host_scales[2 * (B + b) + 1] = at_s[b].sigma_tilde;
  }
  ops().from_host(x, mb.ids);
  ops().from_host(scales, host_scales.data());
  Tensor no_soft(nullptr, dt, {B, L, cfg().vocab_size}, ops().device());  // empty: no soft logits, only z
  Tensor scales_t(scales.data, DType::F64, {B, 2}, ops().device());
  Tensor scales_s(static_cast<double*>(scales.data) + 2 * B, DType::F64, {B, 2}, ops().device());
  ops().gaussian_relaxation(no_soft, z_t, x, scales_t, 1.0, mb.noise);  // 1/τ: only the argmax is used
  ops().gaussian_relaxation(no_soft, z_s, x, scales_s, 1.0, mb.noise);

  // 6. Teacher first (its own activations and inputs), then the student, whose forward the backward follows.
  DiTInput tin;
  tin.ids = z_s;
  tin.sigma = Tensor(ws_.at(sigma_), dt, {B}, ops().device());
  if (dt == DType::F64) {
    ops().from_host(tin.sigma, sigma_s.data());
  } else {
    std::vector<float> f(sigma_s.begin(), sigma_s.end());
    ops().from_host(tin.sigma, f.data());
  }
  const Philox teacher_dropout{mb.dropout.seed, stream_id(mb.dropout.subsequence, streams::kTeacherDropout)};
  Tensor teacher_logits = teacher_.forward(tin, B, L, train && d_.teacher_dropout, teacher_dropout);
  DiTInput sin = sigma_input(sigma_t, B);
  sin.ids = z_t;
  Tensor student_logits = model().forward(sin, B, L, train, mb.dropout);

  // 7. The KL per token, token-averaged by the caller's grad_scale.
  return kl_head(d_.loss, student_logits, teacher_logits, std::vector<double>(mb.mask, mb.mask + N), backward,
                 grad_scale);
}

void Distillation::save_state(CheckpointContents& c) {
  DUO_CHECK(teacher_.options().dtype == DType::F32, "distillation checkpoint", "checkpoints hold float32 weights",
            "float64 models are for gradient checks only");
  host_.resize((size_t)teacher_.table().total());
  ops().to_host(host_.data(), teacher_params());
  std::vector<NamedTensor> t = param_tensors(teacher_.table(), host_.data(), "teacher.");
  c.extra.insert(c.extra.end(), t.begin(), t.end());
  c.metadata["distillation"] = {
      {"teacher_step", teacher_step_},          {"loss_type", distill_loss_name(d_.loss)},
      {"T", d_.T},                              {"update_teacher_every", d_.update_teacher_every},
      {"teacher_ema", d_.teacher_ema},          {"teacher_dropout", d_.teacher_dropout},
      {"linear_growth_dt", d_.linear_growth_dt}, {"linear_growth_min", d_.linear_growth_min},
      {"linear_growth_max", d_.linear_growth_max}, {"gamma_min", d_.gamma_min},
      {"gamma_max", d_.gamma_max},              {"distilled_from", d_.distilled_from}};
  // The round the weights were trained in (the last step taken is step − 1) and its δ: the student samples in
  // 1/δ steps; the paper's best distilled sampler ends with the greedy tail (docs/training.md §9.1).
  const int64_t step = c.metadata.value("step", int64_t(0));
  const int64_t last = std::max<int64_t>(step - 1, 0);
  const double delta = distill_delta(d_, last);
  c.metadata["distillation"]["round"] = distill_round(d_, last);
  c.metadata["distillation"]["delta"] = delta;
  c.metadata["sampling"] = {{"steps", std::max<int64_t>(1, (int64_t)std::llround(1.0 / delta))},
                            {"noise_removal", "greedy"},
                            {"predictor", "ancestral"}};
}

void Distillation::load_state(const Checkpoint& ck) {
  const nlohmann::json& md = ck.metadata();
  DUO_CHECK(md.contains("distillation") && ck.file().has("teacher.backbone.vocab_embed.embedding"), ck.path(),
            "holds no distillation teacher (teacher.backbone.* and metadata 'distillation')",
            "it was not written by duo-distill; to distil from it, pass it as --training.finetune_path instead of "
            "resuming");
  const nlohmann::json& m = md.at("distillation");
  auto same = [&](const char* key, const char* option, const nlohmann::json& ours) {
    DUO_CHECK(m.at(key) == ours, option, str("is ", ours.dump(), " but the checkpoint's run used ", m.at(key).dump()),
              "resume with the run's own distillation settings (a change would not continue the same schedule)");
  };
  same("loss_type", "--algo.loss_type", distill_loss_name(d_.loss));
  same("T", "--algo.T", d_.T);
  same("update_teacher_every", "--algo.update_teacher_every", d_.update_teacher_every);
  same("teacher_ema", "--algo.teacher_ema", d_.teacher_ema);
  same("linear_growth_dt", "--algo.linear_growth_dt", d_.linear_growth_dt);
  host_.resize((size_t)teacher_.table().total());
  load_params(ck.file(), teacher_.table(), host_.data(), "teacher.");
  Tensor dst = teacher_params();
  ops().from_host(dst, host_.data());
  teacher_step_ = m.at("teacher_step").get<int64_t>();
  if (d_.distilled_from.empty()) d_.distilled_from = m.value("distilled_from", std::string());
}

size_t Distillation::teacher_bytes() const {
  return (size_t)teacher_.table().total() * dtype_size(teacher_.options().dtype) + teacher_.activation_bytes() +
         ws_.bytes();
}

std::string Distillation::memory_report() const {
  const size_t weights = (size_t)teacher_.table().total() * dtype_size(teacher_.options().dtype);
  return str("  teacher: weights ", human_bytes((double)weights), ", inference activations ",
             human_bytes((double)teacher_.activation_bytes()), ", inputs ", human_bytes((double)ws_.bytes()),
             " = ", human_bytes((double)teacher_bytes()), "\n");
}

}  // namespace duo
