// Model weights and checkpoints: loading a ParamTable buffer from safetensors (conversions, missing /
// mis-shaped / unexpected tensors, prefixes), and our checkpoint files (round trip, optional groups,
// metadata).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <utility>
#include <vector>
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/weights.h"
#include "io_test_util.h"

using namespace duo;
using duo::testing::TempDir;

namespace {

ModelConfig small_config(bool causal = false) {
  ModelConfig c;
  c.vocab_size = 11;
  c.hidden = 8;
  c.n_blocks = 2;
  c.n_heads = 2;
  c.cond_dim = 4;
  c.freq_dim = 16;
  c.length = 6;
  c.causal = causal;
  return c;
}

// Distinct, exactly representable values (also in bf16 and f16): k/64 for small k.
std::vector<float> pattern(const ParamTable& t, float offset = 0) {
  std::vector<float> v((size_t)t.total());
  for (size_t i = 0; i < v.size(); ++i) v[i] = offset + (float)((int)(i % 97) - 48) / 64.0f;
  return v;
}

bool message_has(const Error& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }

uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (uint16_t)(u >> 16);  // exact for the pattern values
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(half_precision_conversions) {
  BOOST_TEST(f16_to_float(0x3c00) == 1.0f);
  BOOST_TEST(f16_to_float(0xc000) == -2.0f);
  BOOST_TEST(f16_to_float(0x7bff) == 65504.0f);
  BOOST_TEST(f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  BOOST_TEST(f16_to_float(0x3555) == 1365.0f / 4096.0f);  // 1/3 rounded down: (1024 + 0x155) * 2^-12
  BOOST_TEST(std::isinf(f16_to_float(0x7c00)));
  BOOST_TEST(std::isnan(f16_to_float(0x7e00)));
  BOOST_TEST(std::signbit(f16_to_float(0x8000)));
  BOOST_TEST(bf16_to_float(0x3f80) == 1.0f);
  BOOST_TEST(bf16_to_float(0xc0a0) == -5.0f);
}

BOOST_AUTO_TEST_CASE(params_round_trip_and_prefix) {
  TempDir dir;
  ParamTable t(small_config());
  std::vector<float> a = pattern(t), b = pattern(t, 0.5f);
  std::vector<NamedTensor> all = param_tensors(t, a.data());
  for (const NamedTensor& n : param_tensors(t, b.data(), "ema.")) all.push_back(n);
  write_safetensors(dir.file("w.safetensors"), all);
  SafeTensorsFile f = SafeTensorsFile::open(dir.file("w.safetensors"));
  std::vector<float> got((size_t)t.total(), -7.0f);
  load_params(f, t, got.data());  // the ema.* tensors are left alone
  BOOST_TEST(std::memcmp(got.data(), a.data(), a.size() * 4) == 0);
  load_params(f, t, got.data(), "ema.");
  BOOST_TEST(std::memcmp(got.data(), b.data(), b.size() * 4) == 0);
}

BOOST_AUTO_TEST_CASE(converts_bf16_f16_f64) {
  TempDir dir;
  ParamTable t(small_config());
  const std::vector<float> want = pattern(t);
  std::vector<uint16_t> bf(want.size()), half(want.size());
  std::vector<double> wide(want.begin(), want.end());
  for (size_t i = 0; i < want.size(); ++i) {
    bf[i] = bf16_bits(want[i]);
    // the pattern is k/64 with |k| <= 48: exact in f16 too; build the bits by hand.
    const float a = std::fabs(want[i]);
    uint16_t bits = 0;
    if (a != 0) {
      int e;
      float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
      bits = (uint16_t)(((e - 1 + 15) << 10) | ((int)std::lround((m * 2 - 1) * 1024) & 0x3ff));
    }
    half[i] = (uint16_t)(bits | (want[i] < 0 ? 0x8000 : 0));
  }
  struct Case { DType dtype; const void* base; size_t size; };
  for (Case c : {Case{DType::BF16, bf.data(), 2}, Case{DType::F16, half.data(), 2}, Case{DType::F64, wide.data(), 8}}) {
    std::vector<NamedTensor> named_tensors;
    for (const ParamInfo& p : t.params())
      named_tensors.push_back({p.name, c.dtype, p.shape, static_cast<const char*>(c.base) + p.offset * c.size});
    const std::string path = dir.file(std::string(dtype_name(c.dtype)) + ".safetensors");
    write_safetensors(path, named_tensors);
    std::vector<float> got((size_t)t.total(), -7.0f);
    load_params(path, t, got.data());
    BOOST_TEST_INFO("dtype " << dtype_name(c.dtype));
    BOOST_TEST(got == want);
  }
}

BOOST_AUTO_TEST_CASE(missing_wrong_shape_wrong_dtype_unexpected) {
  TempDir dir;
  ParamTable t(small_config());
  std::vector<float> a = pattern(t), got((size_t)t.total());
  const std::string path = dir.file("w.safetensors");
  auto write_with = [&](auto edit) {
    std::vector<NamedTensor> v = param_tensors(t, a.data());
    edit(v);
    write_safetensors(path, v);
  };
  // missing
  write_with([](std::vector<NamedTensor>& v) { v.erase(v.begin() + 3); });
  BOOST_CHECK_EXCEPTION(load_params(path, t, got.data()), Error, [&](const Error& e) {
    return message_has(e, "tensor 'backbone.sigma_map.mlp.2.weight' is missing") && e.where() == path;
  });
  // wrong shape (same element count, so only the shape check can catch it)
  write_with([](std::vector<NamedTensor>& v) { v[0].shape = {8, 11}; });
  BOOST_CHECK_EXCEPTION(load_params(path, t, got.data()), Error, [](const Error& e) {
    return message_has(e, "'backbone.vocab_embed.embedding' has shape (8, 11), the model expects (11, 8)");
  });
  // a dtype that cannot become float32 weights
  std::vector<int32_t> ints(a.size());
  write_with([&](std::vector<NamedTensor>& v) {
    v[1].dtype = DType::I32;
    v[1].data = ints.data();
  });
  BOOST_CHECK_EXCEPTION(load_params(path, t, got.data()), Error,
                        [](const Error& e) { return message_has(e, "has dtype I32, which cannot be converted"); });
  // unexpected backbone tensor -> error; inv_freq and other prefixes -> ignored
  float extra[4] = {1, 2, 3, 4};
  write_with([&](std::vector<NamedTensor>& v) { v.push_back({"backbone.blocks.2.norm1.weight", DType::F32, {4}, extra}); });
  BOOST_CHECK_EXCEPTION(load_params(path, t, got.data()), Error, [](const Error& e) {
    return message_has(e, "'backbone.blocks.2.norm1.weight' is not a parameter of this model");
  });
  write_with([&](std::vector<NamedTensor>& v) {
    v.push_back({"backbone.rotary_emb.inv_freq", DType::F32, {2}, extra});
    v.push_back({"optim.m.backbone.whatever", DType::F32, {4}, extra});
    v.push_back({"rng.state", DType::F32, {4}, extra});
  });
  load_params(path, t, got.data());
  BOOST_TEST(got == a);
}

BOOST_AUTO_TEST_CASE(causal_and_non_causal_files_do_not_mix) {
  TempDir dir;
  ParamTable full(small_config(false)), causal(small_config(true));
  std::vector<float> a = pattern(full), c = pattern(causal), got((size_t)full.total());
  write_safetensors(dir.file("full"), param_tensors(full, a.data()));
  write_safetensors(dir.file("causal"), param_tensors(causal, c.data()));
  BOOST_CHECK_EXCEPTION(load_params(dir.file("full"), causal, got.data()), Error,
                        [](const Error& e) { return message_has(e, "'backbone.sigma_map.mlp.0.weight' is not a parameter"); });
  BOOST_CHECK_EXCEPTION(load_params(dir.file("causal"), full, got.data()), Error,
                        [](const Error& e) { return message_has(e, "'backbone.sigma_map.mlp.0.weight' is missing"); });
}

BOOST_AUTO_TEST_CASE(checkpoint_round_trip) {
  TempDir dir;
  const ModelConfig cfg = small_config();
  ParamTable t(cfg);
  std::vector<float> p = pattern(t), e = pattern(t, 1), m = pattern(t, 2), v = pattern(t, 3);
  p[5] = -0.0f;  // bit-exact, sign of zero included
  int64_t rng[2] = {1234567890123, -5};
  CheckpointContents c;
  c.params = p.data();
  c.ema = e.data();
  c.adam_m = m.data();
  c.adam_v = v.data();
  c.extra = {{"rng.state", DType::I64, {2}, rng}};
  c.metadata = {{"algorithm", "duo"}, {"step", 1500}, {"data", {{"shard", 3}, {"position", 9007199254740993LL}}}};
  const std::string path = dir.file("ck.safetensors");
  save_checkpoint(path, t, c);

  Checkpoint ck = Checkpoint::open(path);
  BOOST_TEST(config_to_json(ck.config()) == config_to_json(cfg));
  BOOST_TEST(ck.metadata() == c.metadata);
  BOOST_TEST(ck.metadata()["data"]["position"].get<int64_t>() == 9007199254740993LL);  // not rounded via double
  for (auto [g, want] : {std::pair{Group::Params, &p}, {Group::Ema, &e}, {Group::AdamM, &m}, {Group::AdamV, &v}}) {
    BOOST_TEST(ck.has(g));
    std::vector<float> got((size_t)t.total());
    ck.load(g, t, got.data());
    BOOST_TEST_INFO(group_label(g));
    BOOST_TEST(std::memcmp(got.data(), want->data(), got.size() * 4) == 0);
  }
  BOOST_TEST(std::memcmp(ck.file().get("rng.state", DType::I64, {2}).data, rng, 16) == 0);
}

// A NaN or inf in a loaded tensor is an error naming the tensor and the file (issue 17: one NaN in a weight gave
// a finite perplexity), whichever group it is in.
BOOST_AUTO_TEST_CASE(non_finite_weights_are_named_at_load) {
  TempDir dir;
  const ModelConfig cfg = small_config();
  ParamTable t(cfg);
  std::vector<float> p = pattern(t), e = pattern(t, 1);
  const ParamInfo& qkv = t.params()[3];
  p[(size_t)qkv.offset + 7] = std::nanf("");
  e[(size_t)qkv.offset] = INFINITY;
  e[(size_t)qkv.offset + 1] = -INFINITY;
  CheckpointContents c;
  c.params = p.data();
  c.ema = e.data();
  save_checkpoint(dir.file("ck"), t, c);
  Checkpoint ck = Checkpoint::open(dir.file("ck"));  // the file itself is well-formed
  std::vector<float> got((size_t)t.total());
  BOOST_CHECK_EXCEPTION(ck.load(Group::Params, t, got.data()), Error, [&](const Error& err) {
    return message_has(err, dir.file("ck")) && message_has(err, "tensor '" + qkv.name + "' holds 1 non-finite value") &&
           message_has(err, "flat index 7") && message_has(err, "duo-inspect --stats");
  });
  BOOST_CHECK_EXCEPTION(ck.load(Group::Ema, t, got.data()), Error, [&](const Error& err) {
    return message_has(err, "tensor 'ema." + qkv.name + "' holds 2 non-finite values (the first, inf,");
  });
}

BOOST_AUTO_TEST_CASE(optional_groups) {
  TempDir dir;
  ParamTable t(small_config());
  std::vector<float> p = pattern(t);
  CheckpointContents c;
  c.params = p.data();
  save_checkpoint(dir.file("ck"), t, c);
  Checkpoint ck = Checkpoint::open(dir.file("ck"));
  BOOST_TEST(ck.has(Group::Params));
  BOOST_TEST(!ck.has(Group::Ema));
  std::vector<float> got((size_t)t.total(), -7.0f);
  BOOST_TEST(!ck.load_if_present(Group::AdamM, t, got.data()));
  BOOST_TEST(got[0] == -7.0f);  // untouched
  BOOST_CHECK_EXCEPTION(ck.load(Group::Ema, t, got.data()), Error, [](const Error& e) {
    return message_has(e, "holds no EMA weights (ema.backbone.*)") && !e.hint().empty();
  });
  BOOST_TEST(ck.load_if_present(Group::Params, t, got.data()));
  BOOST_TEST(got == p);
}

BOOST_AUTO_TEST_CASE(checkpoint_errors) {
  TempDir dir;
  ParamTable t(small_config());
  std::vector<float> p = pattern(t);
  CheckpointContents c;
  c.params = p.data();
  c.metadata = {{"config", "mine"}};
  BOOST_CHECK_EXCEPTION(save_checkpoint(dir.file("a"), t, c), Error,
                        [](const Error& e) { return message_has(e, "'config' is reserved"); });
  c.metadata = nlohmann::json::object();
  float x = 0;
  c.extra = {{"ema.something", DType::F32, {1}, &x}};
  BOOST_CHECK_THROW(save_checkpoint(dir.file("a"), t, c), Error);
  // A plain safetensors file (e.g. an HF model.safetensors) is not a checkpoint.
  write_safetensors(dir.file("plain"), param_tensors(t, p.data()), {{"format", "pt"}});
  BOOST_CHECK_EXCEPTION(Checkpoint::open(dir.file("plain")), Error,
                        [](const Error& e) { return message_has(e, "not a duo.cu checkpoint"); });
  // A damaged config entry.
  write_safetensors(dir.file("badcfg"), param_tensors(t, p.data()),
                    {{"format", kCheckpointFormat}, {"config", R"({"vocab_size": 11, "hiden": 8})"}});
  BOOST_CHECK_EXCEPTION(Checkpoint::open(dir.file("badcfg")), Error,
                        [](const Error& e) { return message_has(e, "no 'hidden'"); });
  // A config far larger than the file's tensors (a 16M-token vocabulary over a small model's weights): an error
  // before anyone allocates the claimed model's buffers.
  ModelConfig huge = t.config();
  huge.vocab_size = 16000000;
  write_safetensors(dir.file("huge"), param_tensors(t, p.data()),
                    {{"format", kCheckpointFormat}, {"config", config_to_json(huge).dump()}});
  BOOST_CHECK_EXCEPTION(Checkpoint::open(dir.file("huge")), Error, [&](const Error& e) {
    return e.where() == dir.file("huge") && message_has(e, "bytes of tensors");
  });
  // A number beyond double's range in the config or in another metadata value (the JSON library throws
  // out_of_range, not parse_error; found by fuzzing): one error naming the file.
  for (const auto& [key, text] : std::vector<std::pair<std::string, std::string>>{
           {"config", R"({"vocab_size": 1e999})"}, {"step", "1e999"}}) {
    std::map<std::string, std::string> meta = {{"format", kCheckpointFormat}, {"config", config_to_json(t.config()).dump()}};
    meta[key] = text;
    write_safetensors(dir.file("bignum"), param_tensors(t, p.data()), meta);
    BOOST_CHECK_EXCEPTION(Checkpoint::open(dir.file("bignum")), Error, [&](const Error& e) {
      return e.where() == dir.file("bignum") && message_has(e, "not valid JSON");
    });
  }
}

BOOST_AUTO_TEST_CASE(config_json_round_trip_and_errors) {
  ModelConfig c = model_preset("tiny");
  c.causal = true;
  c.dropout = 0.1f;
  ModelConfig back = config_from_json(config_to_json(c), "x");
  BOOST_TEST(config_to_json(back) == config_to_json(c));
  BOOST_TEST(back.dropout == 0.1f);
  nlohmann::json j = config_to_json(c);
  j["n_layers"] = 3;
  BOOST_CHECK_EXCEPTION(config_from_json(j, "x"), Error, [](const Error& e) { return message_has(e, "unknown model config key 'n_layers'"); });
  j = config_to_json(c);
  j["n_heads"] = "8";
  BOOST_CHECK_EXCEPTION(config_from_json(j, "x"), Error, [](const Error& e) { return message_has(e, "'n_heads' must be an integer"); });
  j = config_to_json(c);
  j["n_heads"] = 7;  // validate(): 256 is not divisible by 7
  BOOST_CHECK_THROW(config_from_json(j, "x"), Error);
  BOOST_CHECK_THROW(config_from_json_text("{oops", "x"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
