// duo-eval: validation or zero-shot perplexity of a checkpoint (ours, or a Hugging Face style folder) on any
// shard set. Diffusion models: the NELBO with the reference's stratified times (an upper bound on the
// perplexity; --eval.mc_samples N averages N time samples per sequence) and its Monte-Carlo standard error
// (docs/evaluation.md §1.1); AR: the exact NLL.
//   build/duo-eval --algo duo_base --eval.checkpoint_path runs/x/best.safetensors --data.valid 'data/x/valid_*.bin'
#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include "backend/select.h"
#include "data/loader.h"
#include "eval/perplexity.h"
#include "io/checkpoint.h"
#include "io/cli.h"
#include "io/hf.h"
#include "train/model_state.h"
#include "train/trainer.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-eval", [&] {
    namespace po = duo::po;
    po::options_description desc("duo-eval options");
    desc.add_options()("help,h", "show this help")
        ("algo", po::value<std::string>()->default_value(""), "ar | mdlm | sedd | d3pm | duo_base | duo (default: the checkpoint's)")
        ("eval.checkpoint_path", po::value<std::string>()->required(), "our checkpoint (.safetensors) or a Hugging Face folder")
        ("data.valid", po::value<std::string>()->required(), "shards to evaluate (glob)")
        ("data.wrap", po::value<bool>()->default_value(true), "wrap documents into blocks (false: one padded row each)")
        ("data.insert_valid_eos", po::value<bool>()->default_value(true), "EOS between documents (zero-shot runs use false)")
        ("data.wrap_group_docs", po::value<int64_t>()->default_value(0), "wrap: cut blocks per group of N documents "
         "(1000 = the reference's block boundaries; 0 = one stream)")
        ("data.bos", po::value<int64_t>()->default_value(-1), "BOS id (-1: the tokenizer's; lm1b-wrap: 101)")
        ("data.eos", po::value<int64_t>()->default_value(-1), "EOS id (-1: the tokenizer's; lm1b-wrap: 101)")
        ("model.length", po::value<int64_t>(), "sequence length (default: the checkpoint's)")
        ("loader.eval_batch_size", po::value<int64_t>()->default_value(16), "sequences per batch (the stratification set)")
        ("eval.mc_samples", po::value<int64_t>()->default_value(1), "time samples per sequence (diffusion models): "
         "mc_samples x rows strata per batch; >= 2 for a tight std_err")
        ("eval.time_power", po::value<double>()->default_value(0.0), "importance sampling of t with density "
         "∝ t^-a, exactly reweighted (0 = uniform, the reference's; 0.5 lowers DUO's variance, docs/evaluation.md §1.2)")
        ("eval.disable_ema", po::bool_switch(), "use the live weights instead of the EMA weights")
        ("eval.limit_batches", po::value<int64_t>()->default_value(0), "evaluate only this many batches (0 = all)")
        ("eval.output", po::value<std::string>()->default_value(""), "also write the result as JSON here")
        ("noise", po::value<std::string>()->default_value(""), "noise schedule (default: the checkpoint's, else log-linear)")
        ("algo.T", po::value<int64_t>()->default_value(0), "D3PM discrete steps (default: the checkpoint's, else 1000)")
        ("algo.reference_bugs", po::value<bool>()->default_value(false), "reproduce the reference's known bugs (README)")
        ("seed", po::value<uint64_t>()->default_value(1), "seed of the time and noise draws")
        ("device", po::value<std::string>()->default_value("auto"), "auto | cpu | cuda")
        ("threads", po::value<int>()->default_value(0), "CPU threads (0 = one per core)")
        ("compute", po::value<std::string>()->default_value("auto"), duo::compute_option_help());
    po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: duo-eval --eval.checkpoint_path PATH --data.valid GLOB [options]"))
      return 0;
    const std::string path = vm["eval.checkpoint_path"].as<std::string>();
    // Launched by mpirun: each rank evaluates every ranks-th batch, rank 0 prints and writes the pass's result.
    duo::Processes procs = duo::start_processes(vm["device"].as<std::string>(), vm["threads"].as<int>(),
                                                      vm["compute"].as<std::string>());
    duo::Ops* ops = procs.ops.get();
    duo::Comm& comm = procs.comm();

    // The model: our checkpoint (EMA weights unless disabled) or an HF folder.
    duo::ModelConfig mc;
    nlohmann::json md = nlohmann::json::object();
    std::unique_ptr<duo::Checkpoint> ck;
    std::string algo = vm["algo"].as<std::string>();
    if (duo::detect_model_source(path) == duo::ModelSource::HfFolder) {
      duo::HfConfig hf = duo::read_hf_config(path);
      mc = hf.model;
      std::string type = hf.model_type;
      for (char& ch : type) ch = (char)std::tolower((unsigned char)ch);
      if (algo.empty()) algo = hf.model.causal ? "ar" : (type == "mdlm" || !hf.time_conditioning ? "mdlm" : "duo_base");
    } else {
      ck = std::make_unique<duo::Checkpoint>(duo::Checkpoint::open(path));
      mc = ck->config();
      md = ck->metadata();
      if (algo.empty()) algo = md.value("algo", std::string("duo_base"));
    }
    if (algo == "duo") algo = "duo_base";  // evaluation is always the plain DUO NELBO
    if (vm.count("model.length")) mc.length = vm["model.length"].as<int64_t>();
    mc.validate("model");

    duo::LoaderConfig lc;
    lc.mode = vm["data.wrap"].as<bool>() ? "wrap" : "padded";
    lc.length = mc.length;
    lc.batch_size = vm["loader.eval_batch_size"].as<int64_t>();
    lc.insert_eos = vm["data.insert_valid_eos"].as<bool>();
    lc.wrap_group_docs = vm["data.wrap_group_docs"].as<int64_t>();
    lc.bos = vm["data.bos"].as<int64_t>();
    lc.eos = vm["data.eos"].as<int64_t>();
    lc.shuffle = false;
    lc.infinite = false;
    lc.rank = comm.rank();
    lc.world_size = comm.size();
    duo::Loader loader({vm["data.valid"].as<std::string>()}, lc);
    duo::DataVocab vocab = duo::data_vocab(loader, vm["data.valid"].as<std::string>());
    DUO_CHECK(vocab.vocab_size == mc.vocab_size, vm["data.valid"].as<std::string>(),
              duo::str("the shards' vocabulary (", vocab.vocab_size, ", ", vocab.tokenizer, ") differs from the model's (",
                       mc.vocab_size, ")"), "tokenize the evaluation data with the model's tokenizer");

    duo::ModelState state(mc, *ops, false);
    const bool ema = !vm["eval.disable_ema"].as<bool>();
    std::vector<float> params((size_t)state.table().total());
    if (ck) {
      // The EMA weights are what the reference evaluates; a checkpoint without them is evaluated only when asked
      // to, so the "weights" field of the result always says what was evaluated.
      DUO_CHECK(!ema || ck->has(duo::Group::Ema), path, "the checkpoint holds no EMA weights (ema.backbone.*)",
                "pass --eval.disable_ema to evaluate its live parameters (backbone.*)");
      ck->load(ema ? duo::Group::Ema : duo::Group::Params, state.table(), params.data());
    } else {
      duo::load_hf_weights(path, state.table(), params.data());
    }
    state.upload(state.params(), params);
    duo::DiTOptions o;
    o.max_batch = lc.batch_size;
    o.training = false;
    o.full_logits = false;  // evaluation runs the algorithm's loss head fused with the output layer
    duo::DiT model(mc, *ops, o);
    model.bind(state.params(), nullptr);

    duo::TrainConfig tc;  // the algorithm settings a training run would use
    tc.algo = algo;
    std::string noise = vm["noise"].as<std::string>();
    tc.noise = noise.empty() ? md.value("noise", std::string("log-linear")) : noise;
    tc.noise_eps = md.value("noise_eps", 1e-3);
    tc.T = vm["algo.T"].as<int64_t>();
    if (tc.T == 0 && md.contains("T") && md["T"].is_number_integer()) tc.T = md["T"].get<int64_t>();  // as trained
    if (algo == "d3pm" && tc.T == 0) tc.T = 1000;
    tc.reference_bugs = vm["algo.reference_bugs"].as<bool>();
    auto algorithm = duo::make_algorithm(duo::algo_settings(tc, vocab), model, *ops);

    duo::EvalOptions eo;
    eo.mc_samples = vm["eval.mc_samples"].as<int64_t>();
    eo.seed = vm["seed"].as<uint64_t>();
    eo.limit_batches = vm["eval.limit_batches"].as<int64_t>();
    eo.uses_time = algo != "ar";
    eo.time_power = vm["eval.time_power"].as<double>();
    duo::EvalResult r = duo::evaluate(*algorithm, loader, eo, comm);
    nlohmann::json out = {{"algo", algo}, {"checkpoint", path}, {"data", vm["data.valid"].as<std::string>()},
                          {"nll", r.nll}, {"ppl", r.ppl}, {"bpd", r.bpd}, {"tokens", r.tokens},
                          {"std_err", r.std_err}, {"seq_std_err", r.seq_std_err}, {"sequences", r.sequences}, {"mc_samples", eo.uses_time ? eo.mc_samples : 1}, {"time_power", eo.time_power},
                          {"weights", ck && ema ? "ema" : "live"}, {"bound", algo == "ar" ? "exact" : "NELBO upper bound"}};
    if (comm.size() > 1) out["ranks"] = comm.size();
    std::printf("%s\n", out.dump(2).c_str());
    const std::string file = vm["eval.output"].as<std::string>();
    if (!file.empty() && comm.rank() == 0) {
      std::ofstream f(file);
      DUO_CHECK(f && (f << out.dump(2) << "\n"), file, "cannot write the result", "check --eval.output");
    }
    return 0;
  });
}
