// duo-sample's outputs: see sample_output.h.
#include "jobs/sample_output.h"

#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>
#include "io/atomic_file.h"

namespace duo {

nlohmann::json sample_json(const SamplePlan& p, const SampleResult& r) {
  using nlohmann::json;
  json j;
  j["generative_ppl"] = r.gen_ppl ? json(r.gen_ppl->gen_ppl()) : json(nullptr);
  j["entropy"] = r.entropy;
  j["generated_seqs"] = r.texts;
  j["entropies"] = r.entropies;
  j["algo"] = p.algo;
  j["checkpoint"] = p.model.path;
  j["weights"] = r.weights;
  j["steps"] = p.steps;
  if (r.nfe == std::floor(r.nfe)) j["nfe"] = (int64_t)r.nfe;  // per sample, as the reference
  else j["nfe"] = r.nfe;
  j["network_calls"] = r.network_calls;
  j["seconds"] = r.seconds;
  j["tokens_per_second"] = r.seconds > 0 ? (double)(r.num_samples * r.length) / r.seconds : 0.0;
  j["num_samples"] = r.num_samples;
  j["length"] = r.length;
  if (r.gen_ppl)
    j["gen_ppl"] = {{"evaluator", r.evaluator},
                    {"tokens", r.gen_ppl->weight},
                    {"nll_sum", r.gen_ppl->nll_sum},
                    {"samples_scored", r.gen_ppl->samples_scored}};
  else
    j["gen_ppl"] = nullptr;
  json s;
  s["predictor"] = p.predictor;
  s["noise_removal"] = p.noise_removal;
  s["p_nucleus"] = p.p_nucleus;
  s["top_k"] = p.top_k;
  s["use_float64"] = p.precision == SamplePrecision::f64;
  s["seed"] = p.seed;
  s["batch_size"] = p.batch_size;
  s["noise"] = p.noise;
  s["noise_eps"] = p.noise_eps;
  s["tokenizer"] = p.tokenizer;
  s["mask_id"] = p.mask_id;
  s["prefix_ids"] = p.prefix;
  s["template"] = p.template_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.template_path);
  s["fixed_positions"] = p.fixed.fixed();
  if (!p.ar && p.diffusion.predictor == Predictor::psi)
    s["psi"] = {{"time_profile", p.diffusion.psi.time_profile}, {"high_mode", p.diffusion.psi.high_mode},
                {"middle_mode", p.diffusion.psi.middle_mode},   {"low_mode", p.diffusion.psi.low_mode},
                {"high_frac", p.diffusion.psi.high_frac},       {"middle_frac", p.diffusion.psi.middle_frac}};
  j["settings"] = s;
  return j;
}

void write_sample_json(const std::string& path, const SamplePlan& p, const SampleResult& r) {
  // GPT-2 decoding may cut a multi-byte character: such bytes become U+FFFD instead of failing the dump.
  write_file_atomic(path, sample_json(p, r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void write_sample_ids(const std::string& path, const SampleResult& r) {
  std::ostringstream os;
  for (int64_t i = 0; i < r.num_samples; ++i) {
    for (int64_t j = 0; j < r.length; ++j) os << (j ? " " : "") << r.ids[(size_t)(i * r.length + j)];
    os << "\n";
  }
  write_file_atomic(path, os.str());
}

void print_samples(std::ostream& out, const SamplePlan& p, const SampleResult& r) {
  for (int64_t i = 0; i < r.num_samples; ++i)
    out << "=== sample " << i + 1 << "/" << r.num_samples << "  (entropy " << std::fixed << std::setprecision(3)
        << r.entropies[(size_t)i] << ") ===\n"
        << r.texts[(size_t)i] << "\n\n";
  out << std::defaultfloat << "algo " << p.algo << "  steps " << p.steps << "  NFE per sample " << r.nfe << " (" << r.network_calls << " calls)  "
      << r.num_samples << " x " << r.length << " tokens in " << std::fixed << std::setprecision(2) << r.seconds
      << " s (" << std::setprecision(1)
      << (r.seconds > 0 ? (double)(r.num_samples * r.length) / r.seconds : 0.0) << " tokens/s)  entropy "
      << std::setprecision(4) << r.entropy << "  gen PPL ";
  if (r.gen_ppl) out << std::setprecision(3) << r.gen_ppl->gen_ppl();
  else out << "n/a (no --eval.gen_ppl_eval_model_name_or_path)";
  out << std::defaultfloat << "\n";
}

}  // namespace duo
