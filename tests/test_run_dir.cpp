// What a training run promises about its save directory and metrics file when things go wrong (README
// "Failure behaviour", issue 17): one run per folder (a lock), no new run over an old one without
// --checkpointing.overwrite, stale temporary files of killed writers removed at start, metrics lines whole or
// an error (disk full), a resumed run's metrics cut back to its checkpoint, resume refusing another model shape,
// and evaluation refusing a network whose output is not finite (algo/algorithm.cpp's loss check).
#include <boost/test/unit_test.hpp>
#include "metrics_util.h"
#include "tiny_corpus.h"
#include <sys/resource.h>
#include <sys/wait.h>
#include <csignal>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include "backend/cpu/cpu_ops.h"
#include "eval/perplexity.h"
#include "io/checkpoint.h"
#include "train/metrics_log.h"
#include "train/run_dir.h"
#include "train/trainer.h"

using namespace duo;
namespace fs = std::filesystem;

namespace {

struct TinyCorpus : testing::TinyCorpus {
  TinyCorpus() : testing::TinyCorpus({200, 1}, {20, 2}) {}
};

TrainConfig short_run(const TinyCorpus& c, const std::string& run, int64_t steps) {
  TrainConfig t = testing::tiny_train_config(c, "mdlm", run, steps);
  t.batch_size = 4; t.global_batch_size = 4; t.eval_batch_size = 4;
  t.optim.lr = 1e-3; t.optim.warmup_steps = 0; t.optim.ema = 0.9;
  t.checkpoint_every = 2;
  return t;
}

bool has(const Error& e, const std::string& s) {
  BOOST_TEST_INFO("message: " << e.what());
  return std::string(e.what()).find(s) != std::string::npos && !e.hint().empty();
}

// The steps of the training lines of a metrics file, in order.
std::vector<int64_t> logged_steps(const std::string& metrics) {
  std::vector<int64_t> steps;
  for (const auto& j : testing::read_metrics(metrics))
    if (j.contains("train/loss")) steps.push_back(j.at("step").get<int64_t>());
  return steps;
}

// The pid of a process that has ended (a child that exits at once, reaped).
long dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return (long)child;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(run_dir)

BOOST_AUTO_TEST_CASE(one_run_per_save_dir) {
  TinyCorpus c;
  const std::string dir = c.file("locked");
  {
    RunDir first(dir, "duo-train");
    BOOST_CHECK_EXCEPTION(RunDir(dir, "duo-train"), Error, [&](const Error& e) {
      return has(e, dir + ": another training run is using this save directory (duo-train pid " +
                        std::to_string(::getpid()) + ")");
    });
    // The trainer takes the same lock: a second run on the folder stops before touching anything.
    CpuOps ops;
    TrainConfig t = short_run(c, "locked", 2);
    BOOST_CHECK_EXCEPTION(Trainer(t, ops), Error, [](const Error& e) { return has(e, "another training run"); });
    BOOST_TEST(!fs::exists(t.metrics_path));
  }
  RunDir again(dir, "duo-train");  // released with its holder (the kernel does the same for a killed process)
}

BOOST_AUTO_TEST_CASE(stale_temporary_files_are_removed_at_start) {
  TinyCorpus c;
  const std::string dir = c.file("stale");
  fs::create_directories(dir);
  const std::string dead = dir + "/last.safetensors.tmp." + std::to_string(dead_pid());
  const std::string alive = dir + "/best.safetensors.tmp." + std::to_string((long)::getppid());  // a live writer
  const std::string other = dir + "/notes.tmp.txt";
  for (const std::string& f : {dead, alive, other}) std::ofstream(f) << "partial";
  RunDir d(dir, "duo-train");
  BOOST_TEST(!fs::exists(dead));
  BOOST_TEST(fs::exists(alive));
  BOOST_TEST(fs::exists(other));
  BOOST_TEST(d.removed_temporaries() == std::vector<std::string>{dead});
  BOOST_TEST(temporary_file_pid("x.safetensors.tmp.123") == 123);
  BOOST_TEST(temporary_file_pid("x.tmp.12a") == -1);
  BOOST_TEST(temporary_file_pid(".tmp.5") == -1);
}

BOOST_AUTO_TEST_CASE(a_new_run_needs_an_empty_save_dir_or_overwrite) {
  TinyCorpus c;
  CpuOps ops;
  TrainConfig t = short_run(c, "again", 4);
  Trainer(t, ops).run();
  BOOST_TEST(fs::exists(t.save_dir + "/step_4.safetensors"));
  // The same command again: refused, and nothing of the first run is touched.
  const auto before = fs::last_write_time(t.save_dir + "/last.safetensors");
  BOOST_CHECK_EXCEPTION(Trainer(t, ops), Error, [&](const Error& e) {
    return has(e, t.save_dir + ": holds the files of a previous run (best.safetensors, last.safetensors, metrics.jsonl, "
                               "step_2.safetensors, step_4.safetensors)") &&
           e.hint().find("--checkpointing.overwrite true") != std::string::npos;
  });
  BOOST_TEST((fs::last_write_time(t.save_dir + "/last.safetensors") == before));
  BOOST_TEST(logged_steps(t.metrics_path).size() == 4u);
  // With --checkpointing.overwrite the old run's files go first: no step_4 of the old run beside the new one.
  TrainConfig o = t;
  o.overwrite = true;
  o.max_steps = o.optim.max_steps = 2;
  Trainer(o, ops).run();
  BOOST_TEST(!fs::exists(t.save_dir + "/step_4.safetensors"));
  BOOST_TEST(fs::exists(t.save_dir + "/step_2.safetensors"));
  BOOST_TEST((logged_steps(t.metrics_path) == std::vector<int64_t>{1, 2}));
  // Overwrite never deletes the checkpoint the new run fine-tunes from.
  TrainConfig f = o;
  f.finetune_path = t.save_dir + "/last.safetensors";
  BOOST_CHECK_EXCEPTION(Trainer(f, ops), Error, [](const Error& e) { return has(e, "--training.finetune_path"); });
  BOOST_TEST(fs::exists(f.finetune_path));
}

BOOST_AUTO_TEST_CASE(resume_cuts_the_metrics_back_to_the_checkpoint) {
  TinyCorpus c;
  CpuOps ops;
  TrainConfig t = short_run(c, "cut", 6);
  Trainer(t, ops).run();
  // As if killed after step 6's metrics line but before its checkpoint, halfway through writing step 7's line:
  // the newest checkpoint is step 4's.
  fs::copy_file(t.save_dir + "/step_4.safetensors", t.save_dir + "/last.safetensors",
                fs::copy_options::overwrite_existing);
  std::ofstream(t.metrics_path, std::ios::app) << "{\"step\": 7, \"train/lo";
  TrainConfig r = t;
  r.resume = true;
  Trainer(r, ops).run();
  BOOST_TEST((logged_steps(t.metrics_path) == std::vector<int64_t>{1, 2, 3, 4, 5, 6}));  // each step once, all whole

  // The cut alone: whole lines through the step kept in order, the rest (and junk) dropped.
  std::ofstream(c.file("m.jsonl")) << "{\"step\": 1}\nnot json\n{\"step\": 3, \"a\": 1}\n{\"step\": 2}\n{\"step\": 2";
  BOOST_TEST(keep_metrics_through(c.file("m.jsonl"), 2) == 3);
  BOOST_TEST(testing::read_metrics(c.file("m.jsonl")).size() == 2u);
  BOOST_TEST(keep_metrics_through(c.file("missing.jsonl"), 2) == 0);
  BOOST_TEST(!fs::exists(c.file("missing.jsonl")));
}

BOOST_AUTO_TEST_CASE(a_failed_metrics_write_stops_the_run) {
  // /dev/full fails every write with ENOSPC, as a full disk does.
  MetricsLog log("/dev/full", -1);
  BOOST_CHECK_EXCEPTION(log.append({{"step", 1}}), Error,
                        [](const Error& e) { return has(e, "/dev/full: writing a metrics line failed: No space left"); });
  TinyCorpus c;
  // A write that stops part-way (here the file-size limit, as a disk filling up mid-line): the partial line is
  // cut back off, so the file still ends with a whole line.
  {
    MetricsLog part(c.file("part.jsonl"), -1);
    part.append({{"step", 1}});
    const std::string whole = testing::read_bytes(c.file("part.jsonl"));
    rlimit saved{};
    ::getrlimit(RLIMIT_FSIZE, &saved);
    rlimit small = saved;
    small.rlim_cur = whole.size() + 10;
    void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);  // EFBIG instead of the signal
    ::setrlimit(RLIMIT_FSIZE, &small);
    bool failed = false;
    try {
      part.append({{"step", 2}, {"train/loss", 1.25}, {"note", std::string(100, 'x')}});
    } catch (const Error& e) {
      failed = std::string(e.what()).find("writing a metrics line failed: File too large") != std::string::npos;
    }
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
    BOOST_TEST(failed);
    BOOST_TEST(testing::read_bytes(c.file("part.jsonl")) == whole);
  }
  CpuOps ops;
  TrainConfig t = short_run(c, "full", 2);
  t.metrics_path = "/dev/full";
  BOOST_CHECK_EXCEPTION(Trainer(t, ops).run(), Error, [](const Error& e) { return has(e, "No space left"); });
}

BOOST_AUTO_TEST_CASE(resume_refuses_another_architecture_of_the_same_size) {
  TinyCorpus c;
  CpuOps ops;
  TrainConfig t = short_run(c, "heads", 2);
  Trainer(t, ops).run();
  TrainConfig r = t;
  r.resume = true;
  r.model.n_heads = 4;  // the same weights' shapes as 2 heads
  BOOST_CHECK_EXCEPTION(Trainer(r, ops), Error,
                        [](const Error& e) { return has(e, "--model.n_heads is 4 in this run but 2 in the checkpoint"); });
  BOOST_TEST(Checkpoint::open(t.save_dir + "/last.safetensors").config().n_heads == 2);  // untouched
}

BOOST_AUTO_TEST_CASE(evaluation_refuses_a_non_finite_network_output) {
  // Finite weights so large that the first attention overflows: the loss is NaN, and evaluation says so
  // instead of returning a perplexity.
  TinyCorpus c;
  CpuOps ops;
  const ModelConfig m = testing::tiny_model();
  ModelState state(m, ops, false);
  DiTOptions o;
  o.max_batch = 4;
  o.training = false;
  DiT model(m, ops, o);
  model.bind(state.params(), nullptr);
  model.init_parameters(1);
  const ParamInfo* qkv = nullptr;
  for (const ParamInfo& p : state.table().params())
    if (p.name == "backbone.blocks.0.attn_qkv.weight") qkv = &p;
  BOOST_REQUIRE(qkv);
  float* w = static_cast<float*>(state.params()) + qkv->offset;
  std::fill(w, w + qkv->numel, 3e38f);
  LoaderConfig lc;
  lc.length = m.length;
  lc.batch_size = 4;
  lc.shuffle = false;
  lc.infinite = false;
  Loader valid({c.valid_glob()}, lc);
  TrainConfig eval_cfg;
  eval_cfg.algo = "mdlm";
  auto algo = make_algorithm(algo_settings(eval_cfg, data_vocab(valid, c.valid_glob())), model, ops);
  BOOST_CHECK_EXCEPTION(evaluate(*algo, valid, EvalOptions{}), Error,
                        [](const Error& e) {
                          return has(e, "the mdlm loss is not finite") && has(e, "non-finite log-probability") &&
                                 e.hint().find("checked at load time") != std::string::npos;
                        });
}

BOOST_AUTO_TEST_SUITE_END()
