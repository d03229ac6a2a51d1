// The committed model files: the Hugging Face folder fixture (config.json + model.safetensors, the real
// layout) and the DiT parity fixtures of tools/reference/make_fixtures.py (their names and shapes must match
// the ParamTable of the config they store, so dit_parity can consume them).
#include <boost/test/unit_test.hpp>
#include <cstring>
#include <filesystem>
#include <vector>
#include "io/checkpoint.h"
#include "io/config_json.h"
#include "io/hf.h"
#include "io/weights.h"
#include "io_test_util.h"

using namespace duo;
using duo::testing::fixture;
using duo::testing::TempDir;
namespace fs = std::filesystem;

namespace {

bool message_has(const Error& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }

void write_config(const TempDir& dir, const std::string& text) {
  duo::testing::write_bytes(dir.file("config.json"), text);
}

const char* kGoodConfig = R"({"model_type": "mdlm", "hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 4,
  "vocab_size": 67, "model_length": 32, "dropout": 0.1, "time_conditioning": false})";

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpoint)

BOOST_AUTO_TEST_CASE(hf_folder_fixture_loads) {
  const std::string folder = fixture("hf_tiny");
  BOOST_TEST((detect_model_source(folder) == ModelSource::HfFolder));
  HfConfig h = read_hf_config(folder);
  BOOST_TEST(h.model_type == "DUO");
  BOOST_TEST(h.time_conditioning);
  const ModelConfig& c = h.model;
  BOOST_TEST(c.vocab_size == 67);
  BOOST_TEST(c.hidden == 64);
  BOOST_TEST(c.n_blocks == 2);
  BOOST_TEST(c.n_heads == 4);
  BOOST_TEST(c.cond_dim == 32);
  BOOST_TEST(c.freq_dim == 256);
  BOOST_TEST(c.mlp_ratio == 4);
  BOOST_TEST(c.length == 32);
  BOOST_TEST(c.dropout == 0.1f);
  BOOST_TEST(!c.causal);

  ParamTable t(c);
  std::vector<float> hf((size_t)t.total(), NAN), ours((size_t)t.total(), NAN);
  load_hf_weights(folder, t, hf.data());  // name-sorted file with rotary_emb.inv_freq
  load_params(fixture("dit_params.safetensors"), t, ours.data());
  BOOST_TEST(std::memcmp(hf.data(), ours.data(), hf.size() * 4) == 0);
  BOOST_TEST(hf[0] != 0.0f);
}

BOOST_AUTO_TEST_CASE(hf_config_variants_and_errors) {
  TempDir dir;
  write_config(dir, kGoodConfig);
  HfConfig h = read_hf_config(dir.path().string());
  BOOST_TEST(!h.time_conditioning);  // MDLM: sigma is zeroed by the algorithm
  BOOST_TEST(!h.model.causal);

  auto rejects = [&](const std::string& text, const std::string& expected) {
    write_config(dir, text);
    BOOST_CHECK_EXCEPTION(read_hf_config(dir.path().string()), Error, [&](const Error& e) {
      BOOST_TEST_INFO("message: " << e.what());
      return message_has(e, expected) && message_has(e, "config.json") && !e.hint().empty();
    });
  };
  rejects(R"({"hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "vocab_size": 67, "model_length": 32})", "has no 'n_heads'");
  rejects(R"({"hidden_dim": "64", "cond_dim": 32, "n_blocks": 2, "n_heads": 4, "vocab_size": 67, "model_length": 32})",
          "'hidden_dim' must be an integer");
  rejects(R"({"model_type": "gpt2", "hidden_dim": 64})", "model_type 'gpt2' is not a DUO, MDLM or AR model");
  rejects(R"({"model_type": "AR", "hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 4, "vocab_size": 67,
             "model_length": 32, "causal": false})", "model_type 'AR' with \"causal\": false");
  rejects(R"({"model_type": "DUO", "hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 4, "vocab_size": 67,
             "model_length": 32, "causal": true})", "model_type 'DUO' with \"causal\": true");
  // The reference's AR baseline: model_type AR, causal true (or causal left out); an AR model for every tool.
  for (const char* causal : {R"(, "causal": true)", ""}) {
    write_config(dir, std::string(R"({"model_type": "AR", "hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 4,
      "vocab_size": 67, "model_length": 32)") + causal + "}");
    BOOST_TEST(read_hf_config(dir.path().string()).model.causal);
  }
  rejects(R"({"hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 4, "vocab_size": 67, "model_length": 32,
             "causal": "no"})", "'causal' must be true or false");
  rejects(R"({"hidden_dim": 64, "cond_dim": 32, "n_blocks": 2, "n_heads": 5, "vocab_size": 67, "model_length": 32})",
          "not divisible");
  rejects("{\"hidden_dim\": ", "not valid JSON");
  rejects("{\"hidden_dim\": 1e400}", "not valid JSON");  // the JSON library's out_of_range (found by fuzzing)
}

BOOST_AUTO_TEST_CASE(detects_folders_and_checkpoints) {
  TempDir dir;
  BOOST_CHECK_EXCEPTION(detect_model_source(dir.file("missing")), Error,
                        [](const Error& e) { return message_has(e, "no such file or directory"); });
  write_config(dir, kGoodConfig);  // a folder with config.json but no weights
  BOOST_CHECK_EXCEPTION(detect_model_source(dir.path().string()), Error,
                        [](const Error& e) { return message_has(e, "without model.safetensors"); });
  duo::testing::write_bytes(dir.file("notes.txt"), "hello, this is not a model");
  BOOST_CHECK_EXCEPTION(detect_model_source(dir.file("notes.txt")), Error,
                        [](const Error& e) { return message_has(e, "neither a safetensors checkpoint nor a model folder"); });
  BOOST_TEST((detect_model_source(fixture("dit_params.safetensors")) == ModelSource::Checkpoint));
  fs::copy_file(fixture("hf_tiny/model.safetensors"), dir.file("model.safetensors"));
  BOOST_TEST((detect_model_source(dir.path().string()) == ModelSource::HfFolder));
}

// Every DiT parity fixture: config in the metadata, a weights file that loads into that config's
// ParamTable, one F32 grad.<name> per parameter with its shape, inputs and outputs with the documented shapes.
BOOST_AUTO_TEST_CASE(dit_fixtures_match_their_param_tables) {
  for (const std::string cs : {"ids", "soft", "bag", "causal"}) {
    BOOST_TEST_CONTEXT("dit_" << cs) {
      SafeTensorsFile f = SafeTensorsFile::open(fixture("dit_" + cs + ".safetensors"));
      BOOST_TEST(f.meta("case") == cs);
      const ModelConfig c = config_from_json_text(f.meta("config"), f.path());
      BOOST_TEST(c.causal == (cs == "causal"));
      BOOST_TEST(c.dropout == 0.0f);
      ParamTable t(c);
      const int64_t B = std::stoll(f.meta("batch")), L = c.length, V = c.vocab_size;

      SafeTensorsFile pf = SafeTensorsFile::open(fixture(f.meta("params_file")));
      BOOST_TEST(config_to_json(config_from_json_text(pf.meta("config"), pf.path())) == config_to_json(c));
      std::vector<float> params((size_t)t.total());
      load_params(pf, t, params.data());
      BOOST_TEST(pf.tensors().size() == t.params().size());

      std::vector<float> grads((size_t)t.total());
      load_params(f, t, grads.data(), "grad.");  // every grad.backbone.* present, right shape, nothing extra
      size_t n_grads = 0;
      for (const StTensor& s : f.tensors()) n_grads += s.name.rfind("grad.", 0) == 0;
      BOOST_TEST(n_grads == t.params().size());
      for (const ParamInfo& p : t.params()) f.get("grad." + p.name, DType::F32, p.shape);

      if (cs == "ids" || cs == "causal") f.get("input.ids", DType::I32, {B, L});
      if (cs == "soft") f.get("input.soft", DType::F32, {B, L, V});
      if (cs == "bag") {
        f.get("input.bag_ids", DType::I32, {B, L, 3});
        f.get("input.bag_weights", DType::F32, {B, L, 3});
      }
      BOOST_TEST(f.has("input.sigma") == !c.causal);
      if (!c.causal) f.get("input.sigma", DType::F32, {B});
      const int32_t* targets = static_cast<const int32_t*>(f.get("targets", DType::I32, {B, L}).data);
      for (int64_t i = 0; i < B * L; ++i) BOOST_TEST((targets[i] >= 0 && targets[i] < V));
      f.get("logits", DType::F32, {B, L, V});
      const float loss = *static_cast<const float*>(f.get("loss", DType::F32, {1}).data);
      BOOST_TEST((loss > 3.0f && loss < 6.0f));  // about log(67) = 4.2 for a random model
      if (cs == "ids" || cs == "causal") {
        const float* losses = static_cast<const float*>(f.get("adamw.losses", DType::F32, {10}).data);
        BOOST_TEST(losses[0] == loss);
        BOOST_TEST(losses[9] < losses[0]);
        f.get("adamw.grad_norms", DType::F32, {10});
        f.get("adamw.final_loss", DType::F32, {1});
        nlohmann::json adamw = nlohmann::json::parse(f.meta("adamw"));
        BOOST_TEST(adamw["lr"].get<double>() == 1e-3);
        BOOST_TEST(adamw["steps"].get<int>() == 10);
      }
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
