#include "algo/transform_lookup.h"
#include <algorithm>
#include <cmath>
#include <iostream>
#include "algo/diffusion_transform.h"
#include "core/error.h"

namespace duo {

TableLookup parse_table_lookup(const std::string& name) {
  if (name == "hermite") return TableLookup::hermite;
  if (name == "nearest") return TableLookup::nearest;
  fail("table lookup", str("unknown mode '", name, "'"),
       "use 'hermite' (interpolated, accurate) or 'nearest' (the reference's nearest grid point)");
}

TransformLookup::TransformLookup(IntegralTable table, int64_t model_vocab, TransformLookupOptions options,
                                 std::string source)
    : table_(std::move(table)), model_vocab_(model_vocab), options_(options), source_(std::move(source)),
      clip_(std::make_unique<ClipReport>()) {
  const int64_t vt = table_.vocab_size();
  DUO_CHECK(model_vocab >= 2, source_, str("model vocabulary size ", model_vocab, " is below 2"),
            "pass the model's vocabulary size (len(tokenizer))");
  DUO_CHECK(vt == model_vocab || options_.allow_vocab_mismatch, source_,
            str("field 'vocab_size' = ", vt, " but the model's vocabulary has ", model_vocab, " entries"),
            "T depends on V; make the table for this model: " +
                IntegralTable::regenerate_command(model_vocab, table_.gamma_min(), table_.gamma_max(),
                                                  table_.num_points(), command_path()));
  // The reference's forward difference steps 0.001 in γ; on a grid not much finer than that both lookups hit
  // the same point (α' = 0) or neighbours, so nearest mode only makes sense on reference-like grids.
  DUO_CHECK(options_.mode != TableLookup::nearest || table_.spacing() <= kNearestMaxSpacing, source_,
            str("nearest lookup needs a grid spacing ≤ ", kNearestMaxSpacing, " (the reference's is 4e-5), this "
                "table's is ", table_.spacing()),
            "use the hermite lookup, or build a reference-like table: " +
                IntegralTable::regenerate_command(vt, -5, -1, 100000, command_path()));
  // P = (1 + (Vt−1)·α_t)/Vt and α_m = (Vm·P − 1)/(Vm − 1), written as one affine map of α_t.
  const double Vt = static_cast<double>(vt), Vm = static_cast<double>(model_vocab);
  scale_ = Vm * (Vt - 1) / (Vt * (Vm - 1));
  offset_ = (Vm - Vt) / (Vt * (Vm - 1));
}

TransformLookup TransformLookup::open(const std::string& path, int64_t model_vocab, TransformLookupOptions options) {
  return TransformLookup(IntegralTable::read(path, model_vocab), model_vocab, options, path);
}

TransformLookup TransformLookup::open_or_compute(const std::string& path, int64_t model_vocab,
                                                 TransformLookupOptions options) {
  if (!path.empty()) return open(path, model_vocab, options);
  IntegralTable table = IntegralTable::compute(DiffusionTransform(model_vocab), kDefaultGammaMin, kDefaultGammaMax,
                                               kDefaultNumPoints);
  return TransformLookup(std::move(table), model_vocab, options,
                         str("the integral table computed for V = ", model_vocab));
}

// The path to put in a suggested duo-integral command: the table's own file when it came from one.
std::string TransformLookup::command_path() const {
  return source_.ends_with(".bin") ? source_ : "integral/<name>.bin";
}

void TransformLookup::report_clip(double gamma) const {
  clip_->count.fetch_add(1, std::memory_order_relaxed);
  if (clip_->warned.exchange(true)) return;
  // Suggest a grid widened to whole numbers around γ, with the same spacing.
  const double lo = std::min(std::floor(gamma), table_.gamma_min());
  const double hi = std::max(std::ceil(gamma), table_.gamma_max()) + 0.0;  // + 0.0 turns −0 into 0
  const auto points = static_cast<int64_t>(std::llround((hi - lo) / table_.spacing())) + 1;
  std::cerr << "warning: " << source_ << ": γ = " << gamma << " lies outside the table's grid ["
            << table_.gamma_min() << ", " << table_.gamma_max()
            << "]; clipped to it (as the reference does). Further clips are only counted.\n"
            << "---> HINT: make a table that covers the γ range: "
            << IntegralTable::regenerate_command(table_.vocab_size(), lo, hi, points, command_path()) << "\n";
}

double TransformLookup::clip(double gamma) const {
  DUO_CHECK(std::isfinite(gamma), source_, str("lookup at γ = ", gamma), "γ must be finite; check t and the γ range");
  if (gamma < table_.gamma_min() || gamma > table_.gamma_max()) {
    report_clip(gamma);
    return std::clamp(gamma, table_.gamma_min(), table_.gamma_max());
  }
  return gamma;
}

// Cubic Hermite on [γ_k, γ_k+1] with s = (γ − γ_k)/h:
//   α(γ) = h00(s)·α_k + h·h10(s)·α'_k + h01(s)·α_k+1 + h·h11(s)·α'_k+1,
//   h00 = 2s³−3s²+1, h10 = s³−2s²+s, h01 = −2s³+3s², h11 = s³−s²,
// and its exact derivative. The error is ≤ h⁴/384·max|α''''| for α and O(h³) for dα/dγ.
GammaValue TransformLookup::hermite(double gamma) const {
  gamma = clip(gamma);
  const auto& a = table_.alpha();
  const auto& d = table_.dalpha_dgamma();
  const double h = table_.spacing();
  const int64_t last = table_.num_points() - 2;
  const int64_t k = std::clamp(static_cast<int64_t>(std::floor((gamma - table_.gamma_min()) / h)), int64_t{0}, last);
  const double s = (gamma - table_.gamma_at(k)) / h;
  const double s2 = s * s, s3 = s2 * s;
  const double alpha = (2 * s3 - 3 * s2 + 1) * a[k] + h * (s3 - 2 * s2 + s) * d[k] +
                       (-2 * s3 + 3 * s2) * a[k + 1] + h * (s3 - s2) * d[k + 1];
  const double dalpha =
      (6 * s2 - 6 * s) / h * (a[k] - a[k + 1]) + (3 * s2 - 4 * s + 1) * d[k] + (3 * s2 - 2 * s) * d[k + 1];
  return {scale_ * alpha + offset_, scale_ * dalpha};
}

// The reference's Integral.forward, step by step in float32 as torch evaluates it, then the float64 α.
double TransformLookup::nearest_alpha(float gamma) const {
  const float lo = static_cast<float>(table_.gamma_min());
  const float hi = static_cast<float>(table_.gamma_max());
  if (gamma < lo || gamma > hi) {
    report_clip(gamma);
    gamma = std::clamp(gamma, lo, hi);
  }
  const float from_start = gamma - lo;
  const float scaled = static_cast<float>(table_.num_points() - 1) * from_start;
  const float position = scaled / static_cast<float>(table_.gamma_max() - table_.gamma_min());
  const auto k = std::clamp(static_cast<int64_t>(std::nearbyint(position)), int64_t{0}, table_.num_points() - 1);
  return scale_ * table_.alpha()[k] + offset_;  // nearbyint rounds half to even, like torch.round
}

GammaValue TransformLookup::at_gamma(double gamma) const {
  if (options_.mode == TableLookup::hermite) return hermite(gamma);
  DUO_CHECK(std::isfinite(gamma), source_, str("lookup at γ = ", gamma), "γ must be finite; check t and the γ range");
  const float g = static_cast<float>(gamma);
  const double a0 = nearest_alpha(g), a1 = nearest_alpha(g + 0.001f);
  return {a0, 1000.0 * (a1 - a0)};
}

ScheduleValue TransformLookup::at_time(double t, double gamma_min, double gamma_max) const {
  if (options_.mode == TableLookup::hermite) {
    const GammaValue v = hermite(gamma_min + t * (gamma_max - gamma_min));
    return {v.alpha, (gamma_max - gamma_min) * v.dalpha_dgamma};
  }
  // DUO._gamma_to_alpha_dalpha_cached: t and γ are float32 tensors, the Python scalars are cast to float32.
  DUO_CHECK(std::isfinite(t), source_, str("lookup at t = ", t), "t must be finite");
  const float gamma =
      static_cast<float>(gamma_min) + static_cast<float>(t) * static_cast<float>(gamma_max - gamma_min);
  const double a0 = nearest_alpha(gamma), a1 = nearest_alpha(gamma + 0.001f);
  return {a0, (gamma_max - gamma_min) * 1000.0 * (a1 - a0)};
}

}  // namespace duo
