// The inspection tool as a user runs it: build/duo-inspect on a Hugging Face folder, one of our safetensors files
// with metadata and a non-finite value, an integral table, and a file of no known kind (make test builds every
// executable before it runs this binary).
#include <boost/test/unit_test.hpp>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
#include "io/safetensors.h"
#include "io_test_util.h"

namespace duo {
namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout and stderr together
};

Run run(const std::string& args) {
  Run r;
  FILE* p = ::popen(("build/duo-inspect " + args + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(p);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  r.status = ::pclose(p);
  return r;
}

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

BOOST_AUTO_TEST_SUITE_END()

}  // namespace duo
