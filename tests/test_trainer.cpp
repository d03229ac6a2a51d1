// The training engine end to end on a tiny synthetic corpus: every algorithm lowers its validation loss;
// a run resumed from a checkpoint reproduces the uninterrupted run bit for bit; bad options and incompatible
// checkpoints give clear errors.
#include <boost/test/unit_test.hpp>
#include "metrics_util.h"
#include "tiny_corpus.h"
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "backend/cpu/cpu_ops.h"
#include "io/checkpoint.h"
#include "train/trainer.h"

using namespace duo;

namespace {

// The 12-id counting corpus (tiny_corpus.h): 400 training and 60 validation documents.
struct TinyCorpus : testing::TinyCorpus {
  TinyCorpus() : testing::TinyCorpus({400, 1}, {60, 2}) {}
};

TrainConfig tiny_config(const TinyCorpus& c, const std::string& algo, const std::string& run) {
  TrainConfig t = testing::tiny_train_config(c, algo, run, 150);
  t.batch_size = 8; t.global_batch_size = 16; t.eval_batch_size = 8;
  t.optim.lr = 5e-3; t.optim.warmup_steps = 5; t.optim.ema = 0;
  t.val_check_interval = 5;
  if (algo == "d3pm") t.T = 1000;
  t.curriculum.end = 75;  // duo: curriculum for half the run, then the plain NELBO
  t.curriculum.gamma_min = -3.0; t.curriculum.gamma_max = 1.0;
  return t;
}

std::vector<nlohmann::json> metrics(const std::string& path) { return testing::read_metrics(path); }

}  // namespace

BOOST_AUTO_TEST_SUITE(trainer)

BOOST_AUTO_TEST_CASE(every_algorithm_lowers_the_validation_loss) {
  TinyCorpus c;
  // An integral table for this vocabulary (DUO with curriculum).
  const std::string table = c.integral_table(-6.0, 6.0, 1201);
  for (const std::string algo : {"ar", "mdlm", "sedd", "d3pm", "duo_base", "duo"}) {
    TrainConfig t = tiny_config(c, algo, algo);
    t.curriculum.integral_cache_path = table;
    CpuOps ops;
    Trainer(t, ops).run();
    double first = 0, last = 0;
    for (const auto& j : metrics(t.metrics_path))
      if (j.contains("val/nll")) { if (first == 0) first = j["val/nll"]; last = j["val/nll"]; }
    BOOST_TEST_INFO(algo << ": validation NLL " << first << " at step 5 -> " << last << " at step 150");
    BOOST_TEST(last < 0.9 * first);
  }
}

BOOST_AUTO_TEST_CASE(resume_is_bit_exact) {
  TinyCorpus c;
  CpuOps ops;
  TrainConfig full = tiny_config(c, "duo_base", "full");
  full.max_steps = full.optim.max_steps = 12;
  full.checkpoint_every = 6;
  full.optim.ema = 0.99;
  full.model.dropout = 0.1f;  // dropout streams must resume too
  Trainer(full, ops).run();

  TrainConfig part = testing::resumed_from(full, 6, c, "part");  // a second run, from the step-6 checkpoint
  Trainer(part, ops).run();

  auto a = metrics(full.metrics_path), b = metrics(part.metrics_path);
  std::map<int64_t, double> loss_a, loss_b;
  for (const auto& j : a) if (j.contains("train/loss")) loss_a[j["step"]] = j["train/loss"];
  for (const auto& j : b) if (j.contains("train/loss")) loss_b[j["step"]] = j["train/loss"];
  BOOST_TEST(loss_b.size() == 6u);
  for (auto [step, l] : loss_b) BOOST_TEST(l == loss_a.at(step));  // exactly equal
  Checkpoint x = Checkpoint::open(full.save_dir + "/last.safetensors");
  Checkpoint y = Checkpoint::open(part.save_dir + "/last.safetensors");
  ParamTable table(x.config());
  std::vector<float> px(table.total()), py(table.total());
  for (Group g : {Group::Params, Group::Ema, Group::AdamM, Group::AdamV}) {
    x.load(g, table, px.data());
    y.load(g, table, py.data());
    BOOST_TEST(std::memcmp(px.data(), py.data(), px.size() * sizeof(float)) == 0);
  }
}

BOOST_AUTO_TEST_CASE(bad_options_and_checkpoints) {
  TinyCorpus c;
  CpuOps ops;
  TrainConfig t = tiny_config(c, "duo_base", "bad");
  t.global_batch_size = 12;  // not a multiple of 8
  BOOST_CHECK_THROW(t.validate(), Error);
  t = tiny_config(c, "duo_base", "bad");
  t.vocab_given = true;
  t.model.vocab_size = 50258;  // the shards say 12
  BOOST_CHECK_THROW(Trainer(t, ops), Error);
  t = tiny_config(c, "duo_base", "bad");
  t.train_glob = c.file("nothing_*.bin");
  BOOST_CHECK_THROW(Trainer(t, ops), Error);
  // A checkpoint of another model size cannot be resumed.
  t = tiny_config(c, "duo_base", "small");
  t.max_steps = t.optim.max_steps = 2;
  t.checkpoint_every = 1;
  Trainer(t, ops).run();
  TrainConfig other = t;
  other.model.hidden = 64;
  other.resume = true;
  BOOST_CHECK_THROW(Trainer(other, ops), Error);
  other = t;  // another algorithm
  other.algo = "mdlm";
  other.resume = true;
  BOOST_CHECK_THROW(Trainer(other, ops), Error);
}

BOOST_AUTO_TEST_SUITE_END()
