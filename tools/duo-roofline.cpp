// duo-roofline: the GPU time of one training step (and one sampling step) of a configuration, from the traffic
// model of the CUDA backend, on a machine without a GPU (docs/architecture.md §5).
//   build/duo-roofline --model small --batch 32 --model.length 1024 --vocab_size 50258 --algo duo --device h100
// The step runs on PlanOps (nothing computed, nothing allocated); every op becomes the kernels CudaOps launches for
// it, each priced at max(FLOPs / peak, bytes / bandwidth) on the device's data-sheet peaks. Prints the kernels
// grouped by op (--per_launch: every launch in order), the sum, and the MFU that time implies.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "backend/plan_ops.h"
#include "backend/roofline.h"
#include "core/error.h"
#include "io/cli.h"
#include "model/dit_runner.h"
#include "model/flops.h"
#include "train/step_plan.h"

namespace {

using namespace duo;

struct Row {
  std::string op, kernel;
  int64_t launches = 0;
  double tensor_flops = 0, read = 0, written = 0, seconds = 0;
  std::map<std::string, int64_t> bounds = {};  // launches by what bounds them (roofline_seconds)
};

// What a part of the step's time belongs to, so the table shows what bf16 activations and a fused vocabulary
// head would attack: the bf16 conversions before every GEMM, the kernels over (B·L, V) rows, the rest.
std::string category(const LaunchRecord& r, int64_t V) {
  if (r.k.kernel == "to_bf16_kernel") return "fp32 -> bf16 conversions";
  if (r.k.kernel == "gemm") return "GEMMs (cuBLASLt)";
  if (r.k.kernel.rfind("flash_", 0) == 0 || r.k.kernel.rfind("attention_", 0) == 0) return "attention";
  switch (r.op) {
    case OpKind::LossHead: case OpKind::LinearLossHead: case OpKind::GaussianRelaxation: case OpKind::EmbedSoft:
    case OpKind::LogSoftmax: case OpKind::DiffusionStep: case OpKind::EmbedRelaxed:
    case OpKind::CrossEntropy: case OpKind::KlHead:
      return str("(B*L, V = ", V, ") row kernels");
    default: break;
  }
  if (r.k.kernel == "cudaMemcpy" || r.k.kernel == "cudaMemset" || r.k.kernel == "find_bad_id_kernel")
    return "copies, id checks";
  return "elementwise, norms, reductions, optimizer";
}

double print_table(const char* title, const std::vector<LaunchRecord>& launches, const DeviceSpec& dev,
                   bool per_launch, int64_t V) {
  std::printf("\n%s\n", title);
  std::vector<Row> rows;
  std::map<std::pair<std::string, std::string>, size_t> at;
  std::map<std::string, double> by_category;
  double total = 0, tflops = 0, bytes = 0;
  if (per_launch) std::printf("%-28s %-36s %10s %10s %10s %9s\n", "op", "kernel", "GFLOP(tc)", "MB read",
                              "MB written", "us");
  for (const LaunchRecord& r : launches) {
    const char* bound = "";
    const double s = roofline_seconds(r.k, dev, &bound);
    if (per_launch)
      std::printf("%-28s %-36s %10.2f %10.2f %10.2f %9.2f\n", op_name(r.op), r.k.kernel.c_str(),
                  r.k.tensor_flops / 1e9, r.k.read / 1e6, r.k.written / 1e6, s * 1e6);
    const auto key = std::make_pair(std::string(op_name(r.op)), r.k.kernel);
    auto it = at.find(key);
    if (it == at.end()) {
      it = at.emplace(key, rows.size()).first;
      rows.push_back({key.first, key.second});
    }
    Row& row = rows[it->second];
    row.launches += 1;
    row.tensor_flops += r.k.tensor_flops;
    row.read += r.k.read;
    row.written += r.k.written;
    row.seconds += s;
    row.bounds[bound] += 1;
    by_category[category(r, V)] += s;
    total += s;
    tflops += r.k.tensor_flops;
    bytes += r.k.read + r.k.written;
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.seconds > b.seconds; });
  std::printf("%-28s %-36s %8s %10s %9s %9s %9s %6s %s\n", "op", "kernel", "launches", "TFLOP(tc)", "GB read",
              "GB written", "ms", "%", "bound");
  for (const Row& r : rows)
    std::printf("%-28s %-36s %8ld %10.3f %9.3f %9.3f %9.3f %5.1f%% %s\n", r.op.c_str(), r.kernel.c_str(),
                (long)r.launches, r.tensor_flops / 1e12, r.read / 1e9, r.written / 1e9, r.seconds * 1e3,
                100 * r.seconds / total,
                r.bounds.size() == 1 ? r.bounds.begin()->first.c_str() : "mixed");
  std::printf("%-28s %-36s %8ld %10.3f %9.3f %9s %9.3f\n", "total", "", (long)launches.size(), tflops / 1e12,
              bytes / 1e9, "(r+w)", total * 1e3);
  std::printf("by part:");
  for (const auto& [name, s] : by_category)
    std::printf("  %s %.2f ms (%.0f%%);", name.c_str(), s * 1e3, 100 * s / total);
  std::printf("\n");
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-roofline", [&] {
    using duo::po::value;
    duo::po::options_description desc("duo-roofline options");
    desc.add_options()("help,h", "show this help");
    duo::add_model_options(desc);
    desc.add_options()
        ("batch", value<int64_t>()->default_value(32), "sequences per training step (no accumulation)")
        ("algo", value<std::string>()->default_value("duo"), "ar | mdlm | sedd | d3pm | duo_base | duo")
        ("algo.curriculum.mode", value<std::string>()->default_value("simple"), "DUO curriculum: simple | efficient")
        ("algo.curriculum.top_k", value<int64_t>()->default_value(2), "efficient curriculum: ids per position")
        ("device", value<std::string>()->default_value("h100"), "data-sheet peaks of: h100 | h200 | a100")
        ("sampling", value<bool>()->default_value(true), "also one sampling step (a denoiser call) at --batch")
        ("per_launch", value<bool>()->default_value(false), "print every launch in order, then the grouped table");
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-roofline [--model small] [--batch 32] [--model.length 1024] "
                                 "[--vocab_size 50258] [--algo duo] [--device h100]"))
      return 0;
    using duo::str;
    duo::TrainConfig cfg;
    cfg.model = duo::model_config_from(vm);
    cfg.algo = vm["algo"].as<std::string>();
    cfg.batch_size = cfg.global_batch_size = cfg.eval_batch_size = vm["batch"].as<int64_t>();
    DUO_CHECK(cfg.batch_size >= 1, "--batch", str("must be >= 1, got ", cfg.batch_size), "");
    cfg.curriculum.mode = vm["algo.curriculum.mode"].as<std::string>();
    cfg.curriculum.top_k = vm["algo.curriculum.top_k"].as<int64_t>();
    if (cfg.algo == "d3pm") cfg.T = 1000;
    cfg.validate(/*needs_data=*/false);
    const duo::DeviceSpec& dev = duo::device_spec(vm["device"].as<std::string>());
    const duo::ModelConfig& m = cfg.model;
    std::printf("duo-roofline: %s%s, %s, batch %ld x %ld tokens, on %s (%.0f TFLOP/s bf16 dense, %.0f TFLOP/s fp32, "
                "%.2f TB/s, shared memory %.1f TB/s, host link %.0f GB/s)\n",
                cfg.algo.c_str(), cfg.algo == "duo" ? (" (" + cfg.curriculum.mode + " curriculum)").c_str() : "",
                m.describe().c_str(), (long)cfg.batch_size, (long)m.length, dev.description.c_str(),
                dev.bf16_flops / 1e12, dev.fp32_flops / 1e12, dev.bandwidth / 1e12, dev.shared_bandwidth / 1e12,
                dev.host_link / 1e9);
    std::printf("time per launch = max(tensor FLOPs / bf16 peak + other FLOPs / fp32 peak, bytes / bandwidth, "
                "fragment bytes / shared-memory bandwidth); bytes are each launch's footprint, fragment bytes what its "
                "ldmatrix loads (docs/architecture.md §5)\n");

    duo::PlanOps ops;
    duo::TrainingStepPlan plan(cfg, ops);
    duo::KernelLog log;
    // A step in a run's steady state: the one before it left AdamW's bf16 working copy of the weights current.
    plan.run_step(cfg.curriculum.start);
    ops.set_observer(&log);
    ops.reset_transfers();
    plan.run_step(cfg.curriculum.start);  // DUO: inside the curriculum
    ops.set_observer(nullptr);
    const bool per_launch = vm["per_launch"].as<bool>();
    const double step = print_table("training step (one optimizer step):", log.launches(), dev, per_launch,
                                    m.vocab_size);
    const double host = (ops.bytes_to_host() + ops.bytes_from_host()) / dev.host_link;
    const double tokens = double(cfg.batch_size * m.length);
    const double model_flops = duo::training_flops_per_token(m) * tokens;
    std::printf("host transfers: %.3f MB to the host, %.3f MB from it: %.3f ms over the host link (not in the sum)\n",
                ops.bytes_to_host() / 1e6, ops.bytes_from_host() / 1e6, host * 1e3);
    std::printf("training step: %.2f ms at the roofline; model FLOPs %.3g per step (%.3g per token): implied MFU "
                "%.1f%%, %.0f tokens/s\n",
                step * 1e3, model_flops, duo::training_flops_per_token(m), 100 * model_flops / step / dev.bf16_flops,
                tokens / step);
    std::printf("planned device memory: %s (PlanOps peak %s + CudaOps scratch %s; the CUDA context not included)\n",
                duo::human_bytes(double(ops.peak_bytes() + log.max_workspace())).c_str(),
                duo::human_bytes(double(ops.peak_bytes())).c_str(),
                duo::human_bytes(double(log.max_workspace())).c_str());

    if (vm["sampling"].as<bool>() && !m.causal) {
      duo::PlanOps sops;
      duo::DiTOptions o;
      o.max_batch = cfg.batch_size;
      o.training = false;
      duo::ModelState state(m, sops, false);
      duo::DiT model(m, sops, o);
      model.bind(state.params(), nullptr);
      duo::DiTRunner runner(model, sops);
      std::vector<int32_t> z(size_t(cfg.batch_size * m.length), 0);
      std::vector<double> sigma(size_t(cfg.batch_size), 1.0);
      duo::KernelLog slog;
      runner.forward(z.data(), cfg.batch_size, m.length, sigma.data());  // the first call makes the working copies
      sops.set_observer(&slog);
      sops.reset_transfers();
      duo::Tensor logits = runner.forward(z.data(), cfg.batch_size, m.length, sigma.data());
      const size_t forward_launches = slog.launches().size();
      // The sampler's update where the logits are (Ops::diffusion_step): DUO's ancestral step in float64.
      duo::Tensor ids = runner.ids(cfg.batch_size, m.length);
      duo::Tensor status(sops.alloc(8), duo::DType::I32, {2}, sops.device());
      duo::Tensor sig(sops.alloc(size_t(cfg.batch_size) * 8), duo::DType::F64, {cfg.batch_size}, sops.device());
      duo::DiffusionStepArgs step;
      step.alpha_t = 0.5;
      step.alpha_s = 0.6;
      sops.diffusion_step(ids, status, logits, duo::Tensor(), sig, step);
      sops.to_host(z.data(), ids);
      sops.set_observer(nullptr);
      const double s = print_table("sampling step (one denoiser call: the DiT forward in inference mode, then the "
                                   "sampler's update on the device):",
                                   slog.launches(), dev, per_launch, m.vocab_size);
      const double copy = (sops.bytes_from_host() + sops.bytes_to_host()) / dev.host_link;
      std::printf("sampling step: %.2f ms on the device + %.3f ms moving the ids and time inputs over the host link "
                  "(%.3f MB)\n",
                  s * 1e3, copy * 1e3, (sops.bytes_from_host() + sops.bytes_to_host()) / 1e6);
      std::printf("host launches a call: %zu kernels and copies, of which the forward's %zu are one CUDA graph launch from "
                  "a batch's second call on (docs/architecture.md §5.6): %zu launches\n",
                  slog.launches().size(), forward_launches, slog.launches().size() - forward_launches + 1);
    }
    return 0;
  });
}
