// Parameter table: names, shapes and the exact totals of docs/model.md §12.
#include <boost/test/unit_test.hpp>
#include "model/params.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(params)

static int64_t total(const std::string& preset, int64_t vocab, bool causal) {
  ModelConfig c = model_preset(preset);
  c.vocab_size = vocab;
  c.causal = causal;
  return ParamTable(c).total();
}

BOOST_AUTO_TEST_CASE(totals_match_the_reference) {
  BOOST_TEST(total("small", 50258, false) == 169627218);
  BOOST_TEST(total("small", 50258, true) == 162246482);
  BOOST_TEST(total("tiny", 50258, false) == 33789010);
  BOOST_TEST(total("tiny", 50258, true) == 32088402);
  BOOST_TEST(total("tiny", 30522, false) == 23664442);
  BOOST_TEST(total("small", 30522, false) == 139292986);
  BOOST_TEST(total("small", 30522, true) == 131912250);
  BOOST_TEST(total("medium", 50258, false) == 424477010);
  BOOST_TEST(total("medium", 30522, true) == 364702522);
}

BOOST_AUTO_TEST_CASE(names_and_shapes) {
  ParamTable t(model_preset("small"));
  const ParamInfo& qkv = t.info("backbone.blocks.3.attn_qkv.weight");
  BOOST_TEST(qkv.shape.size() == 2u);
  BOOST_TEST(qkv.shape[0] == 2304);
  BOOST_TEST(qkv.shape[1] == 768);
  BOOST_TEST(t.info("backbone.blocks.11.adaLN_modulation.weight").shape[0] == 4608);
  BOOST_TEST(t.info("backbone.output_layer.adaLN_modulation.bias").shape[0] == 1536);
  BOOST_TEST(t.params().front().name == "backbone.vocab_embed.embedding");
  BOOST_TEST(t.params().back().name == "backbone.output_layer.adaLN_modulation.bias");
  // offsets are contiguous, in registration order
  int64_t off = 0;
  for (const ParamInfo& p : t.params()) { BOOST_TEST(p.offset == off); off += p.numel; }
  BOOST_TEST(off == t.total());
}

BOOST_AUTO_TEST_CASE(causal_has_no_conditioning) {
  ModelConfig c = model_preset("tiny");
  c.causal = true;
  ParamTable t(c);
  BOOST_TEST(!t.has("backbone.sigma_map.mlp.0.weight"));
  BOOST_TEST(!t.has("backbone.blocks.0.adaLN_modulation.weight"));
  BOOST_TEST(t.has("backbone.blocks.0.attn_qkv.weight"));
  BOOST_CHECK_THROW(t.info("backbone.sigma_map.mlp.0.weight"), Error);
}

BOOST_AUTO_TEST_CASE(bad_configs_are_rejected) {
  ModelConfig c = model_preset("tiny");
  c.n_heads = 7;
  BOOST_CHECK_THROW(ParamTable{c}, Error);
  BOOST_CHECK_THROW(model_preset("huge"), Error);
}

// Sizes come from files (config.json, a checkpoint's config): found by fuzzing, a size past 2^62 overflowed
// mlp_ratio * hidden (signed overflow, undefined behaviour) and a negative mlp_ratio gave negative shapes.
BOOST_AUTO_TEST_CASE(sizes_from_a_file_are_bounded) {
  auto rejected = [](void (*edit)(ModelConfig&), const std::string& expected) {
    ModelConfig c = model_preset("tiny");
    edit(c);
    BOOST_CHECK_EXCEPTION(ParamTable{c}, Error, [&](const Error& e) {
      BOOST_TEST_INFO("message: " << e.what());
      return std::string(e.what()).find(expected) != std::string::npos;
    });
  };
  rejected([](ModelConfig& c) { c.mlp_ratio = -3; }, "mlp_ratio must be >= 1");
  rejected([](ModelConfig& c) { c.mlp_ratio = 0; }, "mlp_ratio must be >= 1");
  rejected([](ModelConfig& c) { c.hidden = int64_t(1) << 62; }, "hidden_size must be at most 16777216");
  rejected([](ModelConfig& c) { c.length = int64_t(1) << 40; }, "length must be at most 16777216");
  // Every size within the bound, but hidden x mlp_ratio * hidden = 2^72 elements: an error, not a wrap.
  rejected([](ModelConfig& c) { c.hidden = c.mlp_ratio = int64_t(1) << 24; }, "more than 2^63");
}

BOOST_AUTO_TEST_CASE(view_points_into_the_buffer) {
  ModelConfig c = model_preset("tiny");
  c.vocab_size = 11;
  ParamTable t(c);
  std::vector<float> buf(t.total());
  Tensor v = t.view(buf.data(), DType::F32, "backbone.blocks.1.mlp.0.bias");
  BOOST_TEST(v.ptr<float>() - buf.data() == t.info("backbone.blocks.1.mlp.0.bias").offset);
  BOOST_TEST(v.numel() == 1024);
}

BOOST_AUTO_TEST_SUITE_END()
