// Data parallel runs as a user launches them: build/duo-train, duo-distill and duo-eval under
// `mpirun -np 2` (Open MPI from Debian, as root where CI is) against the same executables in one process with
// the same global batch. One micro-batch per rank sums the gradient in the single process's order, so the runs
// agree bit for bit (losses, gradient norms, every tensor of the checkpoint); a 2-rank run resumes on 1 rank and
// on 2 from the same point; ZeRO-1 changes none of the numbers; distributed evaluation gives the single-process NELBO to the last digit.
// Skipped, with a message, only where mpirun is not installed (`make deps` installs it).
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include "command_util.h"
#include "io/checkpoint.h"
#include "metrics_util.h"
#include "tiny_corpus.h"

using namespace duo;

namespace {

using Run = testing::CommandRun;

Run run_command(const std::string& command) { return testing::run_command(command, 120); }

bool exited_ok(const Run& r) { return testing::exit_code(r) == 0; }

// Precondition of the suite: mpirun on the PATH. A skipped case is reported as skipped, never as passed.
boost::test_tools::assertion_result have_mpirun(boost::unit_test::test_unit_id) {
  boost::test_tools::assertion_result r(std::system("command -v mpirun > /dev/null 2>&1") == 0);
  r.message() << "mpirun is not installed (make deps installs openmpi-bin): the multi-process tests cannot run";
  return r;
}

// `ranks` processes (mpirun with shared memory only; 1 = the executable started directly), one CPU thread each.
// Open MPI's launcher needs a network interface for its own bookkeeping, and CI runs without any (a network
// namespace whose loopback is down): where the user may, mpirun runs in a private network namespace of its own
// with only the loopback up, so it works there and never sees another network.
std::string launch(int ranks) {
  if (ranks == 1) return "";
  static const bool own_namespace =
      std::system("unshare -n sh -c 'ip link set lo up' > /dev/null 2>&1") == 0;
  const std::string mpirun =
      "mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader -np " + std::to_string(ranks) + " ";
  if (!own_namespace) return mpirun;
  return "unshare -n sh -c 'ip link set lo up && exec \"$@\"' sh " + mpirun;
}

// The counting corpus and the tiny DiT (tiny_corpus.h) as command-line options.
struct MpiCorpus : testing::TinyCorpus {
  MpiCorpus() : testing::TinyCorpus({200, 1}, {30, 2}) {}
  std::string model() const {
    return " --device cpu --threads 1 --model.hidden_size 32 --model.n_blocks 1 --model.n_heads 2 --model.cond_dim 16"
           " --model.length 16 --data.train " + train_glob() + " --data.valid " + valid_glob();
  }
};

// A duo_base training run: per-rank batch B, global batch G, dropout and EMA on (their random streams and
// state must follow the global micro-batch too), a checkpoint every 3 steps.
std::string train_args(const MpiCorpus& c, const std::string& run, int64_t B, int64_t G, int64_t steps) {
  return c.model() + " --algo duo_base --model.dropout 0.1 --training.ema 0.99 --optim.lr 3e-3"
         " --lr_scheduler.num_warmup_steps 2 --loader.batch_size " + std::to_string(B) +
         " --loader.global_batch_size " + std::to_string(G) + " --loader.eval_batch_size 4 --trainer.max_steps " +
         std::to_string(steps) + " --trainer.log_every_n_steps 1 --trainer.val_check_interval 3"
         " --trainer.limit_val_batches 3 --callbacks.checkpoint_every_n_steps.every_n_train_steps 3"
         " --checkpointing.save_dir " + c.file(run);
}

// An executable with its arguments on `ranks` processes, which must succeed.
Run run_ok(int ranks, const std::string& command) {
  const Run r = run_command(launch(ranks) + command);
  BOOST_TEST_INFO(r.out);
  BOOST_REQUIRE(exited_ok(r));
  return r;
}

Run train(int ranks, const std::string& args) { return run_ok(ranks, "build/duo-train" + args); }

// step -> (train/loss, grad_norm) and step -> val/nll of a run's metrics file.
struct Logged {
  std::map<int64_t, std::pair<double, double>> train;
  std::map<int64_t, double> val;
};
Logged logged(const std::string& path) {
  Logged l;
  for (const auto& j : testing::read_metrics(path)) {
    if (j.contains("train/loss")) l.train[j["step"]] = {j["train/loss"], j["grad_norm"]};
    if (j.contains("val/nll")) l.val[j["step"]] = j["val/nll"];
  }
  return l;
}

// Every group of two checkpoints agrees bit for bit; the data position too.
void same_checkpoint(const std::string& a, const std::string& b) {
  BOOST_TEST_CONTEXT(a << " vs " << b) {
    Checkpoint x = Checkpoint::open(a), y = Checkpoint::open(b);
    ParamTable table(x.config());
    std::vector<float> px((size_t)table.total()), py((size_t)table.total());
    for (Group g : {Group::Params, Group::Ema, Group::AdamM, Group::AdamV}) {
      x.load(g, table, px.data());
      y.load(g, table, py.data());
      BOOST_TEST(std::memcmp(px.data(), py.data(), px.size() * sizeof(float)) == 0);
    }
    BOOST_TEST(x.metadata().at("data_position") == y.metadata().at("data_position"));
    BOOST_TEST(x.metadata().at("step") == y.metadata().at("step"));
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(distributed, *boost::unit_test::precondition(have_mpirun))

// 1 process × 2 micro-batches of 2 and 2 ranks × 1 micro-batch of 2: the same global batch of 4.
BOOST_AUTO_TEST_CASE(two_ranks_train_as_one_bit_for_bit) {
  MpiCorpus c;
  train(1, train_args(c, "one", 2, 4, 6));
  const Run two = train(2, train_args(c, "two", 2, 4, 6));
  BOOST_TEST(two.out.find("batch 2 x 1 accumulation x 2 ranks (mpi) = 4 sequences per step") != std::string::npos);
  BOOST_TEST(two.out.find("(2 ranks, ") != std::string::npos);  // the progress line's per-rank rate
  const Logged a = logged(c.file("one/metrics.jsonl")), b = logged(c.file("two/metrics.jsonl"));
  BOOST_TEST(a.train.size() == 6u);
  BOOST_TEST(b.train.size() == 6u);  // rank 0 alone writes the metrics
  for (const auto& [step, v] : a.train) {
    BOOST_TEST_CONTEXT("step " << step) {
      BOOST_TEST(b.train.at(step).first == v.first);    // the loss, exactly
      BOOST_TEST(b.train.at(step).second == v.second);  // the gradient norm, exactly
    }
  }
  BOOST_TEST(a.val.size() == 2u);
  for (const auto& [step, v] : a.val) BOOST_TEST(b.val.at(step) == v);  // validation split over the ranks
  for (const char* f : {"step_3", "last", "best"}) same_checkpoint(c.file(std::string("one/") + f + ".safetensors"),
                                                                   c.file(std::string("two/") + f + ".safetensors"));
  // ZeRO-1: each rank keeps half of the Adam moments and the EMA and updates half of the weights; the numbers and
  // the gathered checkpoints are the same.
  const Run zero = train(2, train_args(c, "zero", 2, 4, 6) + " --training.zero1 true");
  BOOST_TEST(zero.out.find("(ZeRO-1: moments and EMA of ") != std::string::npos);
  const Logged z = logged(c.file("zero/metrics.jsonl"));
  BOOST_TEST(z.train.size() == 6u);
  for (const auto& [step, v] : a.train) {
    BOOST_TEST(z.train.at(step).first == v.first);
    BOOST_TEST(z.train.at(step).second == v.second);
  }
  for (const auto& [step, v] : a.val) BOOST_TEST(z.val.at(step) == v);  // validated on the gathered EMA
  for (const char* f : {"step_3", "last", "best"}) same_checkpoint(c.file(std::string("one/") + f + ".safetensors"),
                                                                   c.file(std::string("zero/") + f + ".safetensors"));
}

// With 2 micro-batches per rank the float64 sum is associated per rank, ((g0 + g1) + (g2 + g3)) instead of
// (((g0 + g1) + g2) + g3): each gradient entry differs by at most 1 float32 ulp after rounding (the float64 sums
// differ by ~2^-52 of their terms). Over 3 steps that moves the losses by far less than 1e-5 relative, while a
// mis-scaled or mis-ordered sum (the wrong rows, times or noise) moves them by percents.
BOOST_AUTO_TEST_CASE(two_micro_batches_per_rank_stay_within_rounding) {
  MpiCorpus c;
  train(1, train_args(c, "one", 1, 4, 3));
  train(2, train_args(c, "two", 1, 4, 3));
  const Logged a = logged(c.file("one/metrics.jsonl")), b = logged(c.file("two/metrics.jsonl"));
  BOOST_TEST(b.train.size() == 3u);
  for (const auto& [step, v] : a.train) {
    BOOST_TEST_CONTEXT("step " << step) {
      BOOST_TEST(std::abs(b.train.at(step).first - v.first) <= 1e-5 * std::abs(v.first));
      BOOST_TEST(std::abs(b.train.at(step).second - v.second) <= 1e-5 * std::abs(v.second));
    }
  }
}

// A 2-rank run's step-3 checkpoint resumed on 1 rank, on 2 ranks and on 2 ranks with ZeRO-1: each sees the data
// of the uninterrupted run (the losses of steps 4-6 and the final state are its own, bit for bit).
BOOST_AUTO_TEST_CASE(a_two_rank_run_resumes_on_one_rank_and_on_two) {
  MpiCorpus c;
  train(2, train_args(c, "full", 2, 4, 6));
  const Logged full = logged(c.file("full/metrics.jsonl"));
  for (int ranks : {1, 2, 3}) {  // 3: two ranks with ZeRO-1, each loading its half of the optimizer state
    BOOST_TEST_CONTEXT(ranks << " rank(s)") {
      const std::string run = "resumed" + std::to_string(ranks);
      std::filesystem::create_directories(c.file(run));
      std::filesystem::copy_file(c.file("full/step_3.safetensors"), c.file(run + "/last.safetensors"));
      const Run r = train(std::min(ranks, 2), train_args(c, run, 2, 4, 6) + " --checkpointing.resume_from_ckpt true" +
                                                  (ranks == 3 ? " --training.zero1 true" : ""));
      BOOST_TEST(r.out.find("resumed at step 3") != std::string::npos);
      const Logged part = logged(c.file(run + "/metrics.jsonl"));
      BOOST_TEST(part.train.size() == 3u);
      for (const auto& [step, v] : part.train) BOOST_TEST(v.first == full.train.at(step).first);
      same_checkpoint(c.file("full/last.safetensors"), c.file(run + "/last.safetensors"));
    }
  }
}

// A run that fails on its ranks stops all of them with the error (no rank left waiting in MPI_Finalize).
BOOST_AUTO_TEST_CASE(a_failing_run_stops_every_rank_with_its_error) {
  MpiCorpus c;
  const Run r = run_command(launch(2) + "build/duo-train" + train_args(c, "bad", 2, 6, 3));
  BOOST_TEST_INFO(r.out);
  BOOST_TEST(testing::exit_code(r) != 0);
  BOOST_TEST(testing::exit_code(r) != 124);  // not the time limit
  BOOST_TEST(r.out.find("--loader.global_batch_size: 6 is not a multiple of 2 ranks x --loader.batch_size 2") !=
             std::string::npos);
}

// duo-eval on 2 ranks: every batch evaluated with its own times and noise, the sums formed in pass order.
BOOST_AUTO_TEST_CASE(distributed_evaluation_gives_the_single_process_nelbo) {
  MpiCorpus c;
  train(1, train_args(c, "model", 2, 4, 3));
  std::map<int, nlohmann::json> result;
  for (int ranks : {1, 2}) {
    const std::string out = c.file("eval" + std::to_string(ranks) + ".json");
    run_ok(ranks, "build/duo-eval --device cpu --threads 1 --eval.checkpoint_path " + c.file("model/last.safetensors") +
                      " --data.valid " + c.valid_glob() + " --loader.eval_batch_size 3 --eval.mc_samples 2 --eval.output " + out);
    result[ranks] = nlohmann::json::parse(std::ifstream(out));
  }
  BOOST_TEST(result[2].at("ranks") == 2);
  for (const char* key : {"nll", "std_err", "seq_std_err", "tokens", "sequences"})
    BOOST_TEST(result[2].at(key) == result[1].at(key), key);
  BOOST_TEST((result[1].at("sequences").get<int64_t>() + 2) / 3 % 2 == 1);  // an odd number of batches: shares differ
}

// duo-sample on 2 ranks: rank r draws batches r, r + 2, ... (3 batches of 2 and one of 1 here); rank 0 writes
// the same samples one process draws.
BOOST_AUTO_TEST_CASE(distributed_sampling_draws_the_single_process_samples) {
  MpiCorpus c;
  train(1, train_args(c, "model", 2, 4, 3));
  std::map<int, std::string> ids;
  for (int ranks : {1, 2}) {
    const std::string out = c.file("ids" + std::to_string(ranks) + ".txt");
    run_ok(ranks, "build/duo-sample --device cpu --threads 1 --progress false --eval.checkpoint_path " +
                      c.file("model/last.safetensors") +
                      " --sampling.steps 4 --sampling.num_samples 7 --loader.eval_batch_size 2"
                      " --eval.generated_samples_path " + c.file("samples" + std::to_string(ranks) + ".json") +
                      " --sampling.output_ids " + out);
    std::ifstream f(out);
    ids[ranks].assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  BOOST_TEST(std::count(ids[1].begin(), ids[1].end(), '\n') == 7);
  BOOST_TEST(ids[2] == ids[1]);
}

// duo-distill on 2 ranks against 1, from the same DUO base model: the teacher's refreshes and the doubling step
// size follow the global step, so the runs agree bit for bit.
BOOST_AUTO_TEST_CASE(two_ranks_distill_as_one_bit_for_bit) {
  MpiCorpus c;
  train(1, train_args(c, "teacher", 2, 4, 3));
  // A 4-step distillation on 1 rank and on 2 with the same options (and `two` on the 2-rank run only); the logs and
  // the final checkpoints must agree to the bit.
  auto compare = [&](const std::string& name, const std::string& options, const std::string& two) {
    for (int ranks : {1, 2})
      run_ok(ranks, "build/duo-distill" + c.model() + " --training.finetune_path " + c.file("teacher/last.safetensors") +
                        " --algo.T 16 --algo.update_teacher_every 2" + options +
                        " --loader.batch_size 2 --loader.global_batch_size 4 --loader.eval_batch_size 4"
                        " --trainer.max_steps 4 --trainer.log_every_n_steps 1 --trainer.val_check_interval 0"
                        " --checkpointing.save_dir " + c.file(name + std::to_string(ranks)) + (ranks == 2 ? two : ""));
    const Logged a = logged(c.file(name + "1/metrics.jsonl")), b = logged(c.file(name + "2/metrics.jsonl"));
    BOOST_TEST(a.train.size() == 4u);
    for (const auto& [step, v] : a.train) {
      BOOST_TEST(b.train.at(step).first == v.first);
      BOOST_TEST(b.train.at(step).second == v.second);
    }
    same_checkpoint(c.file(name + "1/last.safetensors"), c.file(name + "2/last.safetensors"));
  };
  compare("distill", "", "");
  // ZeRO-1 with the teacher refreshed from the EMA weights (Algorithm 2), which each rank keeps a part of: the
  // refresh gathers them, and the run is one process's bit for bit.
  compare("ema", " --training.ema 0.9 --algo.teacher_ema true", " --training.zero1 true");
}

BOOST_AUTO_TEST_SUITE_END()
