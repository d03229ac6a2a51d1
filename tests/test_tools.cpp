// The tools as a user runs them: build/duo-inspect on a Hugging Face folder, one of our safetensors files with
// metadata and a non-finite value, an integral table, and a file of no known kind; the failure cases of
// duo-integral, duo-eval and duo-distill from issue 17 (make test builds every executable before it runs this
// binary).
#include <boost/test/unit_test.hpp>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
#include <sys/stat.h>
#include <sys/wait.h>
#include <filesystem>
#include "data/shard.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "command_util.h"
#include "io_test_util.h"

namespace duo {
namespace {

using Run = testing::CommandRun;
using testing::exit_code;
using testing::run_command;

Run run(const std::string& args) { return run_command("build/duo-inspect " + args); }


bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(tools)

BOOST_AUTO_TEST_CASE(duo_inspect_lists_safetensors_and_tables) {
  const Run hf = run(testing::fixture("hf_tiny"));  // a folder: its model.safetensors
  BOOST_TEST(hf.status == 0);
  BOOST_TEST_INFO(hf.out);
  BOOST_TEST(has(hf.out, "tensors (31,"));
  BOOST_TEST(has(hf.out, "backbone.blocks.0.attn_qkv.weight"));
  BOOST_TEST(has(hf.out, "(192, 64)"));
  BOOST_TEST(has(hf.out, "format = pt"));

  testing::TempDir dir;
  const std::vector<float> w = {1.0f, -2.0f, NAN, 0.5f};
  const std::vector<uint16_t> h = {0x3f80, 0xc000};  // bf16 1 and -2
  write_safetensors(dir.file("ck.safetensors"),
                    {NamedTensor{"ema.backbone.w", DType::F32, {2, 2}, w.data()},
                     NamedTensor{"half", DType::BF16, {2}, h.data()}},
                    {{"algo", "duo"}, {"step", "7"}});
  const Run plain = run(dir.file("ck.safetensors"));
  BOOST_TEST(plain.status == 0);
  BOOST_TEST_INFO(plain.out);
  BOOST_TEST(has(plain.out, "algo = duo"));
  BOOST_TEST(has(plain.out, "step = 7"));
  BOOST_TEST(has(plain.out, "ema.backbone.w"));
  BOOST_TEST(has(plain.out, "BF16"));
  BOOST_TEST(!has(plain.out, "NON-FINITE"));
  const Run stats = run(dir.file("ck.safetensors") + " --stats");
  BOOST_TEST_INFO(stats.out);
  BOOST_TEST(has(stats.out, "min -2  max 1  mean|x| 1.16667  NON-FINITE 1"));
  BOOST_TEST(has(stats.out, "min -2  max 1  mean|x| 1.5"));

  const Run table = run("integral/gpt2.bin");
  BOOST_TEST(table.status == 0);
  BOOST_TEST_INFO(table.out);
  BOOST_TEST(has(table.out, "vocab_size  50258"));
  BOOST_TEST(has(table.out, "6001 points"));

  const Run bad = run("README.md");
  BOOST_TEST(bad.status != 0);
  BOOST_TEST_INFO(bad.out);
  BOOST_TEST(has(bad.out, "README.md"));
  BOOST_TEST(has(bad.out, "HINT"));
  const Run missing = run(dir.file("nothing.safetensors"));
  BOOST_TEST(missing.status != 0);
  BOOST_TEST(has(missing.out, "does not exist"));
}

// duo-integral on ranges it cannot tabulate (issue 17): γ so large that μ = e^{−γ/2} underflows was an exception
// inside an OpenMP loop (std::terminate, exit 134); a grid too coarse for its range was written although its own
// check printed max |Δα| = 5.7. Both are now one error, exit 1, and no file.
BOOST_AUTO_TEST_CASE(duo_integral_refuses_what_it_cannot_tabulate) {
  testing::TempDir dir;
  const Run huge = run_command("build/duo-integral --vocab_size 67 --gamma_max=2000 --output " + dir.file("a.bin"));
  BOOST_TEST_INFO(huge.out);
  BOOST_TEST(exit_code(huge) == 1);
  BOOST_TEST(has(huge.out, "--gamma_max: γ = 2000 puts μ = e^{−γ/2} = 0 outside the double range"));
  BOOST_TEST(!std::filesystem::exists(dir.file("a.bin")));
  const Run coarse =
      run_command("build/duo-integral --vocab_size 67 --gamma_min=-1000 --gamma_max=1000 --output " + dir.file("b.bin"));
  BOOST_TEST_INFO(coarse.out);
  BOOST_TEST(exit_code(coarse) == 1);
  BOOST_TEST(has(coarse.out, "b.bin: not written: the table misses its accuracy bound of 1e-06"));
  BOOST_TEST(has(coarse.out, "raise --num_points"));
  BOOST_TEST(!std::filesystem::exists(dir.file("b.bin")));
  const Run fine = run_command("build/duo-integral --vocab_size 67 --num_points 2001 --output " + dir.file("c.bin"));
  BOOST_TEST_INFO(fine.out);
  BOOST_TEST(exit_code(fine) == 0);
  BOOST_TEST(std::filesystem::exists(dir.file("c.bin")));
}

// duo-eval on a checkpoint without EMA weights: it used to evaluate the live weights and report "weights": "ema".
// And a checkpoint given as a FIFO: an error, not a process blocked forever.
BOOST_AUTO_TEST_CASE(duo_eval_says_what_it_cannot_evaluate) {
  testing::TempDir dir;
  ModelConfig m;
  m.vocab_size = 12; m.hidden = 16; m.n_blocks = 1; m.n_heads = 2; m.cond_dim = 8; m.length = 8; m.dropout = 0;
  ParamTable table(m);
  std::vector<float> w((size_t)table.total(), 0.01f);
  CheckpointContents c;
  c.params = w.data();
  c.metadata = {{"algo", "mdlm"}};
  save_checkpoint(dir.file("live.safetensors"), table, c);
  {
    ShardWriter shard(dir.file("valid.bin"), "char", 12);
    const uint32_t doc[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7};
    shard.add_document(doc, 16);
    shard.finish();
  }
  const std::string eval = "build/duo-eval --device cpu --data.valid " + dir.file("valid.bin") + " --eval.checkpoint_path ";
  const Run no_ema = run_command(eval + dir.file("live.safetensors"));
  BOOST_TEST_INFO(no_ema.out);
  BOOST_TEST(exit_code(no_ema) == 1);
  BOOST_TEST(has(no_ema.out, "live.safetensors: the checkpoint holds no EMA weights (ema.backbone.*)"));
  BOOST_TEST(has(no_ema.out, "--eval.disable_ema"));
  const Run live = run_command(eval + dir.file("live.safetensors") + " --eval.disable_ema");
  BOOST_TEST_INFO(live.out);
  BOOST_TEST(exit_code(live) == 0);
  BOOST_TEST(has(live.out, "\"weights\": \"live\""));
  BOOST_REQUIRE(::mkfifo(dir.file("pipe").c_str(), 0600) == 0);
  const Run fifo = run_command(eval + dir.file("pipe"));
  BOOST_TEST_INFO(fifo.out);
  BOOST_TEST(exit_code(fifo) == 1);  // not 124: it did not wait on the pipe
  BOOST_TEST(has(fifo.out, "is a FIFO (named pipe), not a regular file"));
}

// duo-distill has no curriculum: its options were accepted and ignored.
BOOST_AUTO_TEST_CASE(duo_distill_refuses_curriculum_options) {
  const Run r = run_command("build/duo-distill --data.train x.bin --training.finetune_path x.safetensors "
                            "--algo.curriculum.integral_cache_path integral/gpt2.bin");
  BOOST_TEST_INFO(r.out);
  BOOST_TEST(exit_code(r) == 1);
  BOOST_TEST(has(r.out, "--algo.curriculum.integral_cache_path: duo-distill has no curriculum"));
  BOOST_TEST(has(r.out, "--algo.integral_cache_path"));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace duo
