// Forward + backward step time of the DiT on the CPU backend (fp32, or bf16 GEMMs with --compute bf16), with
// a mean cross-entropy head, for the same configuration as bench/torch_dit_step.py. Prints one line of JSON
// (median over the timed steps). --head fused runs the output layer and the cross-entropy as the trainer does
// (Ops::linear_loss_head, in chunks of rows: no (B·L, V) logits), instead of the reference step's three ops.
//   build/bench-dit_step --model tiny --vocab_size 65 --batch 8 --model.length 256 --threads 2 [--compute bf16]
//                        [--head fused]
#include <omp.h>
#include <algorithm>
#include <cstdio>
#include <vector>
#include "backend/select.h"
#include "core/timer.h"
#include "io/cli.h"
#include "model/dit.h"
#include "train/model_state.h"

int main(int argc, char** argv) {
  return duo::run_main("bench-dit_step", [&] {
    duo::po::options_description desc("bench-dit_step options");
    desc.add_options()("help,h", "show this help")
        ("batch", duo::po::value<int64_t>()->default_value(8), "sequences per step")
        ("steps", duo::po::value<int>()->default_value(5), "timed steps")
        ("warmup", duo::po::value<int>()->default_value(1), "untimed steps first")
        ("threads", duo::po::value<int>()->default_value(0), "OpenMP threads (0 = all)")
        ("compute", duo::po::value<std::string>()->default_value("fp32"), "fp32 or bf16 (GEMM inputs)")
        ("head", duo::po::value<std::string>()->default_value("logits"),
         "logits (the output GEMM, cross-entropy, its backward: the reference step) or fused (linear_loss_head)");
    duo::add_model_options(desc);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: bench-dit_step --model tiny --vocab_size 65 ...")) return 0;
    duo::ModelConfig cfg = duo::model_config_from(vm);
    cfg.dropout = 0;
    const int64_t B = vm["batch"].as<int64_t>(), L = cfg.length, V = cfg.vocab_size, N = B * L;
    const std::string compute = vm["compute"].as<std::string>(), head = vm["head"].as<std::string>();
    DUO_CHECK(head == "logits" || head == "fused", "--head", "unknown head '" + head + "'", "use logits or fused");
    std::unique_ptr<duo::Ops> backend = duo::make_backend("cpu", vm["threads"].as<int>(), compute);
    duo::Ops& ops = *backend;
    duo::ModelState state(cfg, ops, true);
    duo::DiTOptions opt;
    opt.max_batch = B;
    duo::DiT model(cfg, ops, opt);
    model.bind(state.params(), state.grads());
    model.init_parameters(1);
    std::vector<int32_t> ids(N), targets(N);
    std::vector<float> sigma(B), losses(N), dlogits(N * V);
    duo::Philox rng{7, 0};
    for (int64_t i = 0; i < N; ++i) { ids[i] = rng.bits(2 * i) % V; targets[i] = rng.bits(2 * i + 1) % V; }
    for (int64_t b = 0; b < B; ++b) sigma[b] = rng.uniform(1000000 + b);
    duo::DiTInput in;
    in.ids = duo::Tensor(ids.data(), duo::DType::I32, {B, L});
    in.sigma = duo::Tensor(sigma.data(), duo::DType::F32, {B});
    duo::Tensor tl(losses.data(), duo::DType::F32, {N}), td(dlogits.data(), duo::DType::F32, {N, V});
    duo::Tensor tt(targets.data(), duo::DType::I32, {N});
    // The fused head's per-token inputs: cross-entropy (LossKind::CE) at the targets, weight 1/N.
    std::vector<double> alpha(N, 0.0), dalpha(N, 0.0), weight(N, 1.0 / double(N));
    duo::Tensor ta(alpha.data(), duo::DType::F64, {N}), tda(dalpha.data(), duo::DType::F64, {N});
    duo::Tensor tw(weight.data(), duo::DType::F64, {N});
    duo::LossHeadArgs ce;
    ce.kind = duo::LossKind::CE;

    std::vector<double> times;
    const int warmup = vm["warmup"].as<int>(), steps = vm["steps"].as<int>();
    for (int i = 0; i < warmup + steps; ++i) {
      duo::Timer t;
      state.zero_grads();
      duo::FrozenWeights frozen(ops, state.params(), model.param_bytes());  // as the trainer holds them
      if (head == "fused") {
        duo::Tensor y = model.forward_features(in, B, L, true, duo::Philox{1, (uint64_t)i});
        const duo::OutputLayer out = model.output_layer();
        duo::Tensor dy = model.features_grad(), dw = out.dw, db = out.db;
        ops.linear_loss_head(ce, tl, dy, dw, db, y.view({N, cfg.hidden}), out.w, out.b, tt, tt, ta, tda, tw);
        model.backward_features(dy);
      } else {
        duo::Tensor logits = model.forward(in, B, L, true, duo::Philox{1, (uint64_t)i});
        ops.cross_entropy(tl, td, logits.view({N, V}), tt, 1.0 / N);
        model.backward(td.view({B, L, V}));
      }
      if (i >= warmup) times.push_back(t.ms());
    }
    std::sort(times.begin(), times.end());
    const double ms = times[times.size() / 2];
    std::printf("{\"impl\": \"duo.cu\", \"head\": \"%s\", \"compute\": \"%s\", \"threads\": %d, \"model\": \"%s\", \"batch\": %ld, "
                "\"length\": %ld, \"vocab\": %ld, \"ms_per_step\": %.2f, \"tokens_per_s\": %.1f}\n",
                head.c_str(), compute.c_str(), omp_get_max_threads(), vm["model"].as<std::string>().c_str(), (long)B, (long)L,
                (long)V, ms, N / (ms / 1000));
    return 0;
  });
}
