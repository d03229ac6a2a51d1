// What duo-sample writes: the JSON file of the reference's sample_eval (generative_ppl, entropy,
// generated_seqs) plus our extras, a readable text view, and the raw ids.
//
// JSON (eval.generated_samples_path):
//   {"generative_ppl": 41.2 | null (no evaluator), "entropy": 5.61, "generated_seqs": ["...", ...],
//    "entropies": [...], "algo": "duo_base", "checkpoint": PATH, "weights": "EMA weights", "steps": 32,
//    "nfe": 33 (per sample), "network_calls": 264 (all batches), "seconds": 12.5, "tokens_per_second": 655.4, "num_samples": 8, "length": 1024,
//    "gen_ppl": {"evaluator": ..., "tokens": ..., "samples_scored": ...} | null,
//    "settings": {"predictor", "noise_removal", "p_nucleus", "top_k", "use_float64", "seed", "batch_size", "noise",
//                 "noise_eps", "tokenizer", "mask_id", "prefix_ids", "template", "fixed_positions", "psi": {...}}}
#pragma once
#include <iosfwd>
#include <string>
#include <nlohmann/json.hpp>
#include "jobs/sample_job.h"

namespace duo {

nlohmann::json sample_json(const SamplePlan& plan, const SampleResult& r);
// Writes the JSON atomically (temporary file, then rename).
void write_sample_json(const std::string& path, const SamplePlan& plan, const SampleResult& r);
// One line per sample: its ids separated by spaces.
void write_sample_ids(const std::string& path, const SampleResult& r);
// Each sample decoded under a header with its entropy, then a summary line.
void print_samples(std::ostream& out, const SamplePlan& plan, const SampleResult& r);

}  // namespace duo
