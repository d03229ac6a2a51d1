// The engine end to end on the CUDA backend (through the emulator in `make test`, on the GPU in
// `make test-cuda`) against the CPU backend, on the tiny counting corpus: training of three algorithms with
// gradient accumulation, EMA, validation and checkpoints; bit-exact resume (dropout included); distillation;
// sampling from the trained checkpoint; the GPT-2 scorer of generative perplexity. Every host-side step of these
// paths runs with the emulator's device memory locked against host access, so a host read of device memory fails
// here as it would on a GPU.
//
// Tolerance: the CUDA backend rounds GEMM and attention inputs to bf16 (2^-9 relative), so the two backends'
// losses drift apart slowly over the steps (the first steps agree exactly: the output layer starts at zero);
// measured at most 2.2e-4 relative under the emulator, checked at 5e-3.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "backend/cpu/cpu_ops.h"
#include "cuda_test_util.h"
#include "metrics_util.h"
#include "eval/gpt2.h"
#include "io/safetensors.h"
#include "jobs/sample_job.h"
#include "tiny_corpus.h"
#include "train/distill_config.h"
#include "train/trainer.h"

using namespace duo;
namespace fs = std::filesystem;

namespace {

constexpr double kLossTol = 5e-3;

struct CountingCorpus : testing::TinyCorpus {
  CountingCorpus() : TinyCorpus({200, 3}, {30, 4}) {}
};

// A DiT with head dim 32 (the flash-attention path on the GPU backend), 4 steps of 2 micro-batches each.
TrainConfig tiny_run(const CountingCorpus& c, const std::string& algo, const std::string& run) {
  TrainConfig t = testing::tiny_train_config(c, algo, run, 4, 64);
  t.batch_size = 4; t.global_batch_size = 8; t.eval_batch_size = 4;
  t.optim.lr = 5e-3; t.optim.warmup_steps = 2; t.optim.ema = 0.9;
  t.val_check_interval = 4; t.limit_val_batches = 2; t.checkpoint_every = 2;
  t.curriculum.end = 2;  // duo: two curriculum steps, then the plain NELBO
  t.curriculum.gamma_min = -3.0; t.curriculum.gamma_max = 1.0;
  return t;
}

// step -> value of one metric of a run
std::map<int64_t, double> series(const TrainConfig& t, const std::string& key) {
  std::map<int64_t, double> out;
  for (const auto& j : testing::read_metrics(t.metrics_path))
    if (j.contains(key)) out[j["step"]] = j[key];
  return out;
}

void check_close(const std::map<int64_t, double>& gpu, const std::map<int64_t, double>& cpu, const std::string& what) {
  BOOST_TEST_REQUIRE(gpu.size() == cpu.size(), what << ": " << gpu.size() << " vs " << cpu.size() << " values");
  BOOST_TEST_REQUIRE(!cpu.empty(), what);
  for (const auto& [step, want] : cpu) {
    const double got = gpu.at(step), rel = std::abs(got - want) / std::abs(want);
    BOOST_TEST_MESSAGE(what << " step " << step << ": cuda " << got << " cpu " << want << " (rel " << rel << ")");
    BOOST_TEST(rel <= kLossTol, what << " step " << step << ": cuda " << got << " vs cpu " << want);
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

BOOST_AUTO_TEST_CASE(cuda_training_matches_the_cpu_backend) {
  CountingCorpus c;
  const std::string table = c.integral_table(-6.0, 6.0, 1201);
  for (const std::string algo : {"ar", "mdlm", "duo"}) {
    BOOST_TEST_CONTEXT(algo) {
      TrainConfig cpu_run = tiny_run(c, algo, algo + "_cpu"), gpu_run = tiny_run(c, algo, algo + "_gpu");
      cpu_run.curriculum.integral_cache_path = gpu_run.curriculum.integral_cache_path = table;
      CpuOps cpu;
      CudaOps gpu;
      Trainer(cpu_run, cpu).run();
      Trainer(gpu_run, gpu).run();
      check_close(series(gpu_run, "train/loss"), series(cpu_run, "train/loss"), algo + " train/loss");
      check_close(series(gpu_run, "val/nll"), series(cpu_run, "val/nll"), algo + " val/nll");
      BOOST_TEST(fs::exists(gpu_run.save_dir + "/step_2.safetensors"));
      BOOST_TEST(fs::exists(gpu_run.resume_path));
    }
  }
}

// Deterministic kernels: a run resumed on the GPU backend reproduces the uninterrupted one bit for bit.
BOOST_AUTO_TEST_CASE(cuda_resume_is_bit_exact) {
  CountingCorpus c;
  CudaOps gpu;
  TrainConfig full = tiny_run(c, "duo_base", "full");
  full.model.dropout = 0.1f;  // the dropout stream must resume too
  Trainer(full, gpu).run();
  TrainConfig part = testing::resumed_from(full, 2, c, "part");
  Trainer(part, gpu).run();
  const auto a = series(full, "train/loss"), b = series(part, "train/loss");
  BOOST_TEST(b.size() == 2u);
  for (const auto& [step, loss] : b) BOOST_TEST(loss == a.at(step), "step " << step);  // exactly equal
  BOOST_TEST(series(part, "val/nll").at(4) == series(full, "val/nll").at(4));
}

BOOST_AUTO_TEST_CASE(cuda_distillation_matches_the_cpu_backend) {
  CountingCorpus c;
  const std::string table = c.integral_table(-6.0, 2.0, 801);
  CpuOps cpu;
  CudaOps gpu;
  TrainConfig base = tiny_run(c, "duo_base", "base");
  Trainer(base, cpu).run();
  DistillSettings d;
  d.T = 16;
  d.update_teacher_every = 2;  // two rounds in four steps
  d.max_steps = 4;
  d.integral_path = table;
  std::map<std::string, std::map<int64_t, double>> loss;
  for (const std::string device : {"cpu", "gpu"}) {
    TrainConfig t = tiny_run(c, "duo_base", "distill_" + device);
    t.finetune_path = base.resume_path;
    t.optim.lr = 6e-4;
    Trainer(t, device == "cpu" ? static_cast<Ops&>(cpu) : gpu, distill_hooks(t, d)).run();
    loss[device] = series(t, "train/loss");
  }
  check_close(loss["gpu"], loss["cpu"], "distillation KL");
}

// Sampling on the GPU backend: the same seed gives the same samples, and they are valid ids of the corpus'
// vocabulary that decode. (Samples are not compared with the CPU's: a bf16 difference in one logit can flip
// a categorical draw, and the trajectories then part.)
BOOST_AUTO_TEST_CASE(cuda_sampling_from_a_trained_checkpoint) {
  CountingCorpus c;
  CudaOps gpu;
  TrainConfig t = tiny_run(c, "duo_base", "sample");
  Trainer(t, gpu).run();
  for (const std::string removal : {"ancestral", "greedy"}) {
    SampleOptions o;
    o.checkpoint_path = t.resume_path;
    o.vocab_dir = c.vocab_dir();
    o.steps = 8;
    o.noise_removal = removal;
    o.num_samples = 3;
    o.batch_size = 2;
    o.seed = 7;
    const SampleJob job(o);
    const SampleResult a = job.run(gpu, nullptr, nullptr), b = job.run(gpu, nullptr, nullptr);
    BOOST_TEST(a.ids == b.ids, removal);
    BOOST_TEST(a.ids.size() == size_t(3 * 16));
    for (int32_t id : a.ids) BOOST_TEST((id >= 0 && id < testing::TinyCorpus::kVocab));
    BOOST_TEST(a.texts.size() == 3u);
    BOOST_TEST(std::isfinite(a.entropy));
  }
}

// The generative-perplexity scorer (GPT-2 in HF layout) on the GPU backend: its logits against the float64
// PyTorch fixture (tests/fixtures/gpt2_tiny) within bf16 tolerance (measured 3.1e-3 relative under the emulator,
// against 2e-7 for the CPU backend), checked at 2e-2 against the fixture and against the CPU backend.
BOOST_AUTO_TEST_CASE(cuda_gpt2_scorer_matches_the_reference) {
  const SafeTensorsFile expected = SafeTensorsFile::open(testing::fixture("gpt2_tiny/expected.safetensors"));
  const StTensor& ids_t = expected.get("batch.ids");
  const StTensor& want_t = expected.get("batch.logits");
  const int64_t B = ids_t.shape[0], N = ids_t.shape[1];
  std::vector<int32_t> ids((size_t)ids_t.numel());
  std::vector<float> want((size_t)want_t.numel());
  std::memcpy(ids.data(), ids_t.data, ids_t.nbytes);
  std::memcpy(want.data(), want_t.data, want_t.nbytes);
  CpuOps cpu;
  CudaOps gpu;
  std::vector<float> on_cpu, on_gpu;
  load_gpt2(cpu, testing::fixture("gpt2_tiny"), B)->logits(ids, B, N, on_cpu);
  load_gpt2(gpu, testing::fixture("gpt2_tiny"), B)->logits(ids, B, N, on_gpu);
  DUO_CHECK_CLOSE("gpt2 logits cuda vs reference", on_gpu, want, 2e-2);
  DUO_CHECK_CLOSE("gpt2 logits cuda vs cpu", on_gpu, on_cpu, 2e-2);
}

BOOST_AUTO_TEST_SUITE_END()
