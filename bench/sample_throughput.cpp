// Sampling throughput of DUO ancestral sampling on the CPU backend, next to the PyTorch reference's step.
//   build/bench-sample_throughput [--models tiny,small] [--length 128] [--batch 1] [--steps 4]
//                                 [--vocab_size 50258] [--torch /usr/bin/python3 | --torch none] [--compute bf16]
//   build/cuda/bench-sample_throughput --device cuda ...   (bench/gpu_check.sh): the GPU backend; no network /
//                                 sampler split (the step is one stream of kernels), the step's time alone.
// Per model (random weights, float32 DiT, float64 posterior as sampling.use_float64): after one untimed warm-up
// step, one full sample_diffusion run of S steps + the ancestral tail (S + 1 NFE) through the path duo-sample runs
// (the denoiser's in-place step, Ops::diffusion_step: log-softmax and update where the logits are, only ids back),
// reporting tokens/s and latency per step; on the CPU also its split into the diffusion_step op (the rows'
// log-softmax, the posterior and the draw, timed inside the run) and the rest (the network: uploads and forward).
// With --torch, bench/torch_sample_step.py runs the same configuration and step in PyTorch (forward +
// log_softmax + float64 posterior + categorical), so the two are compared in one run, its forward both in fp32 and
// under CPU autocast to bf16; the ratio takes the faster of the two. One markdown row each.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <omp.h>
#include <sstream>
#include <string>
#include <vector>
#include "backend/op_kinds.h"
#include "backend/select.h"
#include "core/timer.h"
#include "io/cli.h"
#include "sample/dit_denoiser.h"
#include "train/model_state.h"

namespace {

using namespace duo;

// Times the run's diffusion_step ops (Ops::diffusion_step: the rows' post-processing, the posterior and the draw), each
// from the end of the op before it (the network's last) to its own end. Ops are run where they are called on the
// CPU, so these are their times.
class StepOpTimer final : public OpObserver {
 public:
  void after(const OpCall& c) override {
    const auto now = std::chrono::steady_clock::now();
    if (c.kind == OpKind::DiffusionStep) seconds += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  double seconds = 0;

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Runs the PyTorch step for the same configuration (its forward under CPU autocast to bf16 with bf16 = true);
// returns its output line ("" when it could not run).
std::string torch_step(const std::string& python, const std::string& model, int64_t V, int64_t L, int64_t B,
                       bool bf16) {
  const std::string cmd = python + " bench/torch_sample_step.py --model " + model + " --vocab_size " +
                          std::to_string(V) + " --length " + std::to_string(L) + " --batch " + std::to_string(B) +
                          " --threads " + std::to_string(omp_get_max_threads()) + (bf16 ? " --bf16" : "") + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("bench-sample_throughput", [&] {
    po::options_description desc("bench-sample_throughput options");
    desc.add_options()("help,h", "show this help")
        ("models", po::value<std::string>()->default_value("tiny,small"), "comma-separated presets")
        ("length", po::value<int64_t>()->default_value(128), "sequence length L")
        ("batch", po::value<int64_t>()->default_value(1), "samples drawn together")
        ("steps", po::value<int64_t>()->default_value(4), "sampling steps S (NFE = S + 1)")
        ("vocab_size", po::value<int64_t>()->default_value(50258), "vocabulary (GPT-2 + [PAD])")
        ("compute", po::value<std::string>()->default_value("fp32"), "fp32 or bf16 (our GEMM inputs)")
        ("device", po::value<std::string>()->default_value("cpu"), "cpu, or cuda (a build with the CUDA backend)")
        ("torch", po::value<std::string>()->default_value("/usr/bin/python3"),
         "pythons with torch for the reference step, comma-separated (each gets its cell), or none");
    po::variables_map vm;
    if (!parse_command_line(argc, argv, desc, vm, "usage: bench-sample_throughput [options]")) return 0;
    const int64_t L = vm["length"].as<int64_t>(), B = vm["batch"].as<int64_t>(), S = vm["steps"].as<int64_t>();
    const int64_t V = vm["vocab_size"].as<int64_t>();
    const std::string python = vm["torch"].as<std::string>();

    // Each torch cell: "version: step ms (forward ms) -> torch forward / our whole step" (the measure: our
    // network + sampler against the reference's network forward alone).
    std::vector<std::string> pythons;
    if (python != "none") {
      std::stringstream list(python);
      for (std::string p; std::getline(list, p, ',');) pythons.push_back(p);
    }
    std::cout << "| model | params | B x L | steps | NFE | total s | tokens/s | ms/step | network ms/step | "
                 "log-softmax + sampler ms/step |";
    for (size_t i = 0; i < pythons.size(); ++i)
      std::cout << " torch ms/step (forward fp32 / autocast bf16), faster forward / our step |";
    std::cout << "\n|---|---|---|---|---|---|---|---|---|---|";
    for (size_t i = 0; i < pythons.size(); ++i) std::cout << "---|";
    std::cout << "\n";
    std::stringstream names(vm["models"].as<std::string>());
    std::string name;
    while (std::getline(names, name, ',')) {
      ModelConfig cfg = model_preset(name);
      cfg.vocab_size = V;
      cfg.length = L;
      cfg.dropout = 0.0f;
      const std::string device = vm["device"].as<std::string>();
      std::unique_ptr<Ops> backend = make_backend(device, 0, device == "cpu" ? vm["compute"].as<std::string>() : "auto");
      Ops& ops = *backend;
      ModelState state(cfg, ops, false);
      DiTOptions o;
      o.max_batch = B;
      o.training = false;
      DiT dit(cfg, ops, o);
      dit.bind(state.params(), nullptr);
      // Random weights everywhere (a from-scratch init has a zero head, whose flat output is not representative).
      std::vector<float> w((size_t)state.table().total());
      const Philox r{1, 2};
      for (int64_t i = 0; i < state.table().total(); ++i) w[(size_t)i] = (float)(0.04 * (2 * r.uniform_double(i) - 1));
      Tensor params(state.params(), DType::F32, {state.table().total()}, ops.device());
      ops.from_host(params, w.data());

      DiTDenoiser den(dit, ops, DiffusionFamily::uniform, -1);
      AlphaSchedule sched;
      sched.alpha = [](double t) { return 1.0 - (1.0 - 1e-3) * t; };
      DiffusionSamplerConfig c;
      c.steps = S;
      c.seed = 7;
      std::vector<int32_t> z((size_t)(B * L));
      // Warm-up of the in-place step, not counted: the first touch of the activations and the step's scratch,
      // OpenBLAS's buffers, a device's first launches.
      std::vector<double> sigma((size_t)B, 1.0);
      {
        DiffusionStepArgs a;
        a.alpha_t = 0.5;
        a.alpha_s = 0.6;
        den.evaluate_and_update(z.data(), B, L, sigma.data(), a, nullptr, false);
        std::fill(z.begin(), z.end(), 0);
      }
      // The CPU's split: the diffusion_step ops (the rest) and everything else (the network). A device's ops are
      // issued, not run, when the observer sees them: no split there.
      const bool split = ops.device() == Device::CPU;
      StepOpTimer step_ops;
      if (split) ops.set_observer(&step_ops);
      Timer t;
      const SamplerStats st = sample_diffusion(den, sched, c, B, L, Prompt{}, z.data());
      const double total = t.seconds();
      ops.set_observer(nullptr);
      const double per = total / (double)st.nfe, rest = step_ops.seconds / (double)st.nfe;
      const double net = split ? per - rest : NAN;
      std::string cells;
      for (const std::string& py : pythons) {  // PyTorch's forward in fp32 and under autocast; the faster counts
        double tms[2] = {NAN, NAN}, tfwd[2] = {NAN, NAN};
        char version[64] = "?";
        for (int bf16 = 0; bf16 < 2; ++bf16) {
          const std::string torch = torch_step(py, name, V, L, B, bf16 == 1);
          std::sscanf(torch.c_str(), "torch_ms_per_step %lf forward_ms %lf threads %*d torch %63s", &tms[bf16],
                      &tfwd[bf16], version);
          if (std::isnan(tms[bf16])) std::cerr << "torch (" << py << (bf16 ? ", autocast" : "") << "): " << torch << "\n";
        }
        if (std::isnan(tfwd[0]) && std::isnan(tfwd[1])) {
          cells += " - |";
        } else {
          const double fastest = std::isnan(tfwd[1]) ? tfwd[0] : std::isnan(tfwd[0]) ? tfwd[1] : std::min(tfwd[0], tfwd[1]);
          cells += str(" ", version, ": ", std::lround(tms[0]), " (", std::lround(tfwd[0]), " / ", std::lround(tfwd[1]),
                       "), ", std::round(fastest / (per * 1e3) * 100) / 100, "x |");
        }
      }
      const std::string net_ms = split ? str(std::round(net * 1e4) / 10) : "-";
      const std::string sampler_ms = split ? str(std::round(rest * 1e4) / 10) : "- (" + device + ", in place)";
      std::printf("| %s | %s | %ld x %ld | %ld | %ld | %.3f | %.1f | %.2f | %s | %s |%s\n", name.c_str(),
                  with_commas(state.table().total()).c_str(), (long)B, (long)L, (long)S, (long)st.nfe, total,
                  (double)(B * L) / total, per * 1e3, net_ms.c_str(), sampler_ms.c_str(), cells.c_str());
      std::fflush(stdout);
    }
    return 0;
  });
}
