// duo-sample: draws samples from a trained model and measures them (the reference's mode=sample_eval).
//   build/duo-sample --eval.checkpoint_path runs/owt/last.safetensors --sampling.steps 32
//       --sampling.noise_removal greedy --sampling.num_samples 16 [--eval.gen_ppl_eval_model_name_or_path PATH]
// The samples go to --eval.generated_samples_path (JSON), decoded to stdout, the progress bar to stderr.
// Logic lives in jobs/sample_job.h (settings, sampling), jobs/sample_output.h (files) and
// jobs/gen_ppl_eval.h (the Gen-PPL evaluator).
#include <iostream>
#include <sstream>
#include "backend/select.h"
#include "jobs/gen_ppl_eval.h"
#include "io/cli.h"
#include "jobs/sample_output.h"

namespace {

using duo::po::value;

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(tok, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != tok.size() || v < 0 || v > INT32_MAX)
      duo::fail("--sampling.prefix_ids", "'" + tok + "' is not a token id", "give ids separated by spaces: \"50256 464\"");
    ids.push_back((int32_t)v);
  }
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-sample", [&] {
    duo::SampleOptions o;
    duo::po::options_description desc("duo-sample options");
    desc.add_options()("help,h", "show this help")
        ("config", value<std::string>(), "ini file with further options (the command line wins)")
        ("algo", value<std::string>(&o.algo), "ar | mdlm | sedd | d3pm | duo_base | duo (default: the checkpoint's)")
        ("eval.checkpoint_path", value<std::string>(&o.checkpoint_path)->required(),
         "our checkpoint (.safetensors) or a Hugging Face folder (s-sahoo/duo layout)")
        ("eval.disable_ema", value<bool>(&o.disable_ema)->implicit_value(true)->default_value(false),
         "sample with the live parameters instead of the EMA weights")
        ("sampling.steps", value<int64_t>(&o.steps)->default_value(0),
         "sampling steps S (NFE = S + 1; 0 = the checkpoint's recommendation, else 1000)")
        ("sampling.noise_removal", value<std::string>(&o.noise_removal),
         "final step: ancestral | greedy (greedy-tail) | none (default: the checkpoint's, else ancestral)")
        ("sampling.predictor", value<std::string>(&o.predictor),
         "ancestral | ancestral_cache | psi | analytic (default: ancestral_cache for MDLM, analytic for SEDD, "
         "else ancestral)")
        ("sampling.num_samples", value<int64_t>(&o.num_samples)->default_value(8), "number of samples")
        ("loader.eval_batch_size", value<int64_t>(&o.batch_size)->default_value(8), "samples drawn together")
        ("seed", value<uint64_t>(&o.seed)->default_value(1), "random seed (same seed, same samples)")
        ("device", value<std::string>()->default_value("auto"), "auto | cpu | cuda")
        ("threads", value<int>()->default_value(0), "CPU threads (0 = one per core)")
        ("compute", value<std::string>()->default_value("auto"), duo::compute_option_help())
        ("sampling.p_nucleus", value<double>(&o.p_nucleus)->default_value(1.0),
         "top-p of the network's prediction x̂ before the posterior (1 = off)")
        ("sampling.top_k", value<int64_t>(&o.top_k)->default_value(0),
         "keep the k most likely ids of x̂ before the posterior (0 = off)")
        ("sampling.greedy", duo::po::bool_switch(), "x̂ := one-hot of its argmax (= top_k 1); the posterior is still "
         "sampled (not the greedy tail: see --sampling.noise_removal)")
        ("sampling.use_float64", value<bool>(&o.use_float64)->default_value(true), "posterior and draws in float64")
        ("sampling.psi.time_profile", value<std::string>(&o.psi.time_profile)->default_value("linear"),
         "linear | linear-constant-linear-<c>[-inv]")
        ("sampling.psi.high_mode", value<std::string>(&o.psi.high_mode)->default_value("pure-posterior"), "Ψ mode")
        ("sampling.psi.middle_mode", value<std::string>(&o.psi.middle_mode)->default_value("pure-posterior"), "Ψ mode")
        ("sampling.psi.low_mode", value<std::string>(&o.psi.low_mode)->default_value("pure-posterior"), "Ψ mode")
        ("sampling.psi.high_frac", value<double>(&o.psi.high_frac)->default_value(0.45), "Ψ high segment fraction")
        ("sampling.psi.middle_frac", value<double>(&o.psi.middle_frac)->default_value(0.5), "Ψ middle fraction")
        ("model.length", value<int64_t>(&o.length)->default_value(0), "sample length L (0 = the model's)")
        ("data.tokenizer_name_or_path", value<std::string>(&o.tokenizer),
         "gpt2 | bert-base-uncased | char (default: the checkpoint's; gpt2 for HF folders)")
        ("vocab", value<std::string>(&o.vocab_dir), "folder of the tokenizer files (default: the checkpoint's or "
         "data/vendor/<tokenizer>)")
        ("noise", value<std::string>(&o.noise), "noise schedule log-linear | cosine (default: the checkpoint's)")
        ("noise.eps", value<double>(&o.noise_eps)->default_value(-1), "schedule eps (default: the checkpoint's, 1e-3)")
        ("sampling.prefix", value<std::string>(&o.prefix_text), "text prefix (after BOS), kept fixed in every sample")
        ("sampling.prefix_ids", value<std::string>(), "prefix as token ids \"1 2 3\", kept fixed")
        ("sampling.template", value<std::string>(&o.template_path),
         "infill: a text file fixing tokens anywhere (text, [[N]] = N free positions, [[ids a b]]; "
         "docs/sampling.md §12.1)")
        ("eval.generated_samples_path", value<std::string>()->default_value("samples.json"), "JSON output")
        ("sampling.output_ids", value<std::string>(), "also write the raw ids, one sample per line")
        ("eval.gen_ppl_eval_model_name_or_path", value<std::string>(),
         "Gen-PPL evaluator: a HF GPT-2 folder or one of our AR checkpoints (none: no Gen PPL)")
        ("eval.perplexity_batch_size", value<int64_t>(&o.perplexity_batch_size)->default_value(8),
         "samples per evaluator call")
        ("progress", value<bool>()->default_value(true), "progress bar on stderr");
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: duo-sample --eval.checkpoint_path PATH [options]"))
      return 0;
    if (vm["sampling.greedy"].as<bool>()) {
      DUO_CHECK(vm["sampling.top_k"].defaulted() || o.top_k == 1, "--sampling.greedy",
                duo::str("greedy is top_k 1, but --sampling.top_k ", o.top_k, " was given too"), "use one of the two");
      o.top_k = 1;
    }
    if (vm.count("sampling.prefix_ids")) o.prefix_ids = parse_ids(vm["sampling.prefix_ids"].as<std::string>());

    // Launched by mpirun: the ranks split the sampling batches; rank 0 reports, scores and writes.
    duo::Processes procs = duo::start_processes(vm["device"].as<std::string>(), vm["threads"].as<int>(),
                                                          vm["compute"].as<std::string>());
    duo::Comm& comm = procs.comm();
    const bool writer = comm.rank() == 0;
    duo::SampleJob job(o);
    const duo::SamplePlan& p = job.plan();
    if (writer) std::cerr << "duo-sample: " << p.model.path << "\n  model  " << p.model.config.describe() << "\n  algo   "
              << p.algo << "  predictor " << p.predictor << "  noise_removal " << p.noise_removal << "  steps "
              << p.steps << "\n  tokens " << p.num_samples << " samples x " << p.length << " (batches of "
              << p.batch_size << "), tokenizer " << p.tokenizer << " (" << p.vocab_dir << "), seed " << p.seed << "\n";
    for (const std::string& note : p.notes)
      if (writer) std::cerr << "  note: " << note << "\n";
    if (writer && comm.size() > 1) std::cerr << "  ranks  " << comm.size() << " (" << comm.name() << ")\n";

    duo::Ops& ops = *procs.ops;
    std::unique_ptr<duo::GenPplEvaluator> evaluator;
    if (writer && vm.count("eval.gen_ppl_eval_model_name_or_path")) {
      duo::EvaluatorOptions eo;
      eo.batch_size = o.perplexity_batch_size;
      eo.known_tokenizer = p.tokenizer;
      eo.known_vocab_dir = p.vocab_dir;
      evaluator = duo::load_gen_ppl_evaluator(vm["eval.gen_ppl_eval_model_name_or_path"].as<std::string>(), ops, eo);
      std::cerr << "  gen PPL evaluator " << evaluator->description() << "\n";
    }
    const duo::SampleResult r =
        job.run(ops, writer && vm["progress"].as<bool>() ? &std::cerr : nullptr, evaluator.get(), comm);
    if (!writer) return 0;
    duo::print_samples(std::cout, p, r);
    const std::string json_path = vm["eval.generated_samples_path"].as<std::string>();
    duo::write_sample_json(json_path, p, r);
    std::cerr << "duo-sample: wrote " << json_path;
    if (vm.count("sampling.output_ids")) {
      duo::write_sample_ids(vm["sampling.output_ids"].as<std::string>(), r);
      std::cerr << " and " << vm["sampling.output_ids"].as<std::string>();
    }
    std::cerr << "\n";
    return 0;
  });
}
