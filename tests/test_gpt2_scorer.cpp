// GPT-2 scorer and generative perplexity against tests/fixtures/gpt2_tiny (tools/reference/make_gpt2_fixtures.py:
// a random V=50, n_ctx=16, d=32, 2-layer, 4-head GPT-2 in HF layout, computed in float64).
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>
#include "backend/cpu/cpu_ops.h"
#include "eval/gen_ppl.h"
#include "eval/gpt2.h"
#include "io/safetensors.h"
#include "data_paths.h"
#include "io_test_util.h"

using namespace duo;
using duo::testing::fixture;
using duo::testing::TempDir;

namespace {

bool message_has(const Error& e, const std::string& s) { return std::string(e.what()).find(s) != std::string::npos; }

template <class T> std::vector<T> values(const StTensor& t) {
  BOOST_REQUIRE(t.nbytes == (size_t)t.numel() * sizeof(T));
  std::vector<T> v((size_t)t.numel());
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

struct Fixture {
  SafeTensorsFile expected = SafeTensorsFile::open(fixture("gpt2_tiny/expected.safetensors"));
  GPT2Config cfg = read_gpt2_config(fixture("gpt2_tiny/config.json"));
  int32_t eos = std::stoi(expected.meta("eos"));

  std::vector<std::vector<int32_t>> samples() const {
    const std::vector<int32_t> ids = values<int32_t>(expected.get("samples.ids"));
    const std::vector<int32_t> off = values<int32_t>(expected.get("samples.offsets"));
    std::vector<std::vector<int32_t>> out;
    for (size_t i = 0; i + 1 < off.size(); ++i) out.emplace_back(ids.begin() + off[i], ids.begin() + off[i + 1]);
    return out;
  }
};

// The fixture's model.safetensors rewritten into `dir` with `edit` applied to the list of tensors.
std::string rewritten_weights(const TempDir& dir, const std::function<void(std::vector<NamedTensor>&)>& edit) {
  SafeTensorsFile file = SafeTensorsFile::open(fixture("gpt2_tiny/model.safetensors"));
  std::vector<NamedTensor> ts;
  for (const StTensor& t : file.tensors()) ts.push_back({t.name, t.dtype, t.shape, t.data});
  edit(ts);
  const std::string path = dir.file("model.safetensors");
  write_safetensors(path, ts);
  return path;
}

// max |a - b| / max(1, max |b|): the error relative to the scale of the reference values.
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  BOOST_REQUIRE(a.size() == b.size());
  double err = 0, scale = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, (double)std::fabs(a[i] - b[i]));
    scale = std::max(scale, (double)std::fabs(b[i]));
  }
  return err / scale;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gpt2_scorer)

BOOST_AUTO_TEST_CASE(config_json_is_read) {
  Fixture f;
  BOOST_TEST(f.cfg.vocab_size == 50);
  BOOST_TEST(f.cfg.n_positions == 16);
  BOOST_TEST(f.cfg.n_embd == 32);
  BOOST_TEST(f.cfg.n_layer == 2);
  BOOST_TEST(f.cfg.n_head == 4);
  BOOST_TEST(f.cfg.n_inner == 128);  // null in the file: 4 n_embd
}

BOOST_AUTO_TEST_CASE(unsupported_config_is_an_error) {
  TempDir dir;
  const std::string path = dir.file("config.json");
  auto with = [&](const std::string& extra) {
    duo::testing::write_bytes(path, R"({"n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 16,
      "vocab_size": 50)" + extra + "}");
    return path;
  };
  BOOST_CHECK_NO_THROW(read_gpt2_config(with("")));
  BOOST_CHECK_EXCEPTION(read_gpt2_config(with(R"(, "layer_norm_epsilon": 1e-6)")), Error,
                        [&](const Error& e) { return e.where() == path && message_has(e, "layer_norm_epsilon"); });
  BOOST_CHECK_EXCEPTION(read_gpt2_config(with(R"(, "activation_function": "relu")")), Error,
                        [&](const Error& e) { return message_has(e, "activation_function"); });
  BOOST_CHECK_EXCEPTION(read_gpt2_config(with(R"(, "scale_attn_by_inverse_layer_idx": true)")), Error,
                        [&](const Error& e) { return message_has(e, "scale_attn_by_inverse_layer_idx"); });
  BOOST_CHECK_EXCEPTION(read_gpt2_config(with(R"(, "n_head": 5)")), Error,
                        [&](const Error& e) { return message_has(e, "n_head"); });
  duo::testing::write_bytes(path, R"({"n_embd": 1e400})");  // the JSON library's out_of_range (found by fuzzing)
  BOOST_CHECK_EXCEPTION(read_gpt2_config(path), Error,
                        [&](const Error& e) { return e.where() == path && message_has(e, "not valid JSON"); });
  duo::testing::write_bytes(path, R"({"n_embd": 32, "n_layer": 2})");
  BOOST_CHECK_EXCEPTION(read_gpt2_config(path), Error, [&](const Error& e) { return message_has(e, "n_head"); });
}

BOOST_AUTO_TEST_CASE(logits_match_the_reference) {
  Fixture f;
  CpuOps ops;
  auto model = load_gpt2(ops, fixture("gpt2_tiny"), 3);
  const StTensor& ids_t = f.expected.get("batch.ids");
  const int64_t B = ids_t.shape[0], N = ids_t.shape[1];
  std::vector<float> logits;
  model->logits(values<int32_t>(ids_t), B, N, logits);
  const double err = rel_error(logits, values<float>(f.expected.get("batch.logits")));
  BOOST_TEST_MESSAGE("logits relative error " << err);
  BOOST_TEST(err < 1e-4);
}

BOOST_AUTO_TEST_CASE(target_nll_matches_and_ignores_padding) {
  Fixture f;
  CpuOps ops;
  auto model = load_gpt2(ops, fixture("gpt2_tiny"), 3);
  const StTensor& ids_t = f.expected.get("batch.ids");
  const int64_t B = ids_t.shape[0], N = ids_t.shape[1];
  const std::vector<int32_t> ids = values<int32_t>(ids_t);
  const std::vector<int32_t> len32 = values<int32_t>(f.expected.get("batch.lengths"));
  const std::vector<int64_t> lengths(len32.begin(), len32.end());
  const std::vector<float> want = values<float>(f.expected.get("batch.nll"));  // (B, N-1), padding included
  std::vector<float> nll;
  model->target_nll(ids, lengths, B, N, nll);
  BOOST_REQUIRE(nll.size() == (size_t)(B * (N - 1)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j + 1 < N; ++j) {
      const float got = nll[(size_t)(b * (N - 1) + j)], ref = want[(size_t)(b * (N - 1) + j)];
      if (j < lengths[(size_t)b])
        BOOST_TEST(std::fabs(got - ref) <= 1e-4f * std::max(1.0f, ref), "b " << b << " j " << j);
      else
        BOOST_TEST(got == 0.0f, "padded context b " << b << " j " << j);
    }

  // Padding cannot reach a real position: the short row alone, and with other padding ids, gives the same.
  const int64_t b = 2, L = lengths[2];
  std::vector<int32_t> row(ids.begin() + b * N, ids.begin() + b * N + N);
  std::fill(row.begin() + L + 1, row.end(), 3);  // row[L] is the target of position L-1
  std::vector<float> alone;
  model->target_nll(row, std::vector<int64_t>{L}, 1, N, alone);
  // One row against the same row inside a batch of B: other GEMM shapes, so the fp32 sums may be ordered
  // differently (K ≤ 4d terms, each dot product off by at most K·2^-24 of the sum of |terms|, O(1) here); the
  // NLLs (O(log V)) agree far inside 1e-4.
  for (int64_t j = 0; j < L; ++j) BOOST_TEST(std::fabs(alone[(size_t)j] - nll[(size_t)(b * (N - 1) + j)]) <= 1e-4f);
}

BOOST_AUTO_TEST_CASE(target_weights_follow_the_reference_rule) {
  const int32_t E = 9;
  // EOS at 0 (context only), then text, a second EOS (not counted), text (counted), padding.
  std::vector<int32_t> a = {E, 1, 2, E, 3, E, E};
  BOOST_TEST((gen_ppl_target_weights(a, E) == std::vector<uint8_t>{1, 1, 0, 1, 0, 0}));
  // No EOS in the text: the first padding EOS counts, the rest do not.
  std::vector<int32_t> b = {1, 2, 3, E, E};
  BOOST_TEST((gen_ppl_target_weights(b, E) == std::vector<uint8_t>{1, 1, 1, 0}));
  // An interior EOS counts when it is the first; text after it counts too.
  std::vector<int32_t> c = {1, E, 2, E};
  BOOST_TEST((gen_ppl_target_weights(c, E) == std::vector<uint8_t>{1, 1, 0}));
  BOOST_TEST(gen_ppl_target_weights(std::vector<int32_t>{E}, E).empty());
}

BOOST_AUTO_TEST_CASE(gen_ppl_matches_the_reference) {
  Fixture f;
  CpuOps ops;
  auto model = load_gpt2(ops, fixture("gpt2_tiny"), 3);
  GenPplOptions opt;
  opt.max_length = std::stoi(f.expected.meta("max_length"));
  opt.batch_size = std::stoi(f.expected.meta("batch_size"));
  opt.eos = f.eos;
  for (bool drop_last : {false, true}) {
    opt.drop_last = drop_last;
    const std::vector<double> want = values<double>(f.expected.get(drop_last ? "gen_ppl.drop_last" : "gen_ppl.all"));
    GenPplResult r = generative_perplexity(*model, f.samples(), opt);
    BOOST_TEST(r.weight == want[2]);
    BOOST_TEST(std::fabs(r.nll_sum - want[1]) <= 1e-5 * want[1]);
    BOOST_TEST(std::fabs(r.gen_ppl() - want[0]) <= 1e-4 * want[0]);
    BOOST_TEST(r.samples_scored == (drop_last ? 3 : 4));
    BOOST_TEST(r.samples_dropped == (drop_last ? 1 : 0));
  }
}

BOOST_AUTO_TEST_CASE(gen_ppl_bad_inputs) {
  Fixture f;
  CpuOps ops;
  auto model = load_gpt2(ops, fixture("gpt2_tiny"), 2);
  GenPplOptions opt;
  opt.eos = f.eos;
  opt.batch_size = 3;  // more than the scorer's planned batch
  BOOST_CHECK_EXCEPTION(generative_perplexity(*model, f.samples(), opt), Error,
                        [](const Error& e) { return message_has(e, "planned batch"); });
  opt.batch_size = 2;
  std::vector<std::vector<int32_t>> only_eos = {{f.eos, f.eos}, {}};
  BOOST_CHECK_EXCEPTION(generative_perplexity(*model, only_eos, opt).gen_ppl(), Error,
                        [](const Error& e) { return message_has(e, "no token to score"); });
  std::vector<std::vector<int32_t>> out_of_vocab = {{1, 2, 50}};
  BOOST_CHECK_EXCEPTION(generative_perplexity(*model, out_of_vocab, opt), Error,
                        [](const Error& e) { return message_has(e, "outside the vocabulary"); });
}

BOOST_AUTO_TEST_CASE(retokenize_maps_endoftext_to_eos) {
  // A stand-in tokenizer: one id per byte ('a' -> 0, ...), "<|endoftext|>" is not special to it.
  EncodeFn encode = [](std::string_view s) {
    std::vector<uint32_t> ids;
    for (char ch : s) ids.push_back((uint32_t)(ch - 'a'));
    return ids;
  };
  auto out = retokenize({"<|endoftext|>ab<|endoftext|><|endoftext|>c", "", "ba"}, encode, 49, 50);
  BOOST_TEST((out[0] == std::vector<int32_t>{49, 0, 1, 49, 49, 2}));
  BOOST_TEST(out[1].empty());
  BOOST_TEST((out[2] == std::vector<int32_t>{1, 0}));
  BOOST_CHECK_EXCEPTION(retokenize({"az"}, encode, 49, 20), Error,
                        [](const Error& e) { return message_has(e, "sample 0 re-tokenises to id 25"); });
}

BOOST_AUTO_TEST_CASE(retokenize_with_the_gpt2_tokenizer) {
  const auto tok = load_tokenizer("gpt2", test::vendor_data() + "/gpt2");
  auto ids = [&](const std::string& s) {
    std::vector<uint32_t> u = tok->encode(s);
    return std::vector<int32_t>(u.begin(), u.end());
  };
  // What a sampled BOS/EOS and [PAD] decode to; the text "<|endoftext|>" is one special token for the reference.
  auto out = retokenize({"<|endoftext|>Hello world<|endoftext|>[PAD] x"}, *tok, 50256, 50257);
  std::vector<int32_t> want = {50256};
  for (int32_t id : ids("Hello world")) want.push_back(id);
  want.push_back(50256);
  for (int32_t id : ids("[PAD] x")) want.push_back(id);
  BOOST_TEST(out[0] == want, boost::test_tools::per_element());
  BOOST_TEST((ids("Hello world") == std::vector<int32_t>{15496, 995}));
  // A cut multi-byte character: the stray byte is scored as U+FFFD, like decode(errors="replace").
  auto cut = retokenize({"a\xe2" "b"}, *tok, 50256, 50257);
  BOOST_TEST(cut[0] == ids("a\xef\xbf\xbd" "b"), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(prefixed_names_load_the_same_model) {
  Fixture f;
  TempDir dir;
  const std::string path = rewritten_weights(dir, [](std::vector<NamedTensor>& ts) {
    for (NamedTensor& t : ts) t.name = "transformer." + t.name;
  });
  CpuOps ops;
  GPT2 prefixed(ops, f.cfg, SafeTensorsFile::open(path), 1);
  auto bare = load_gpt2(ops, fixture("gpt2_tiny"), 1);
  std::vector<int32_t> ids = {5, 1, 49, 7, 7, 0};
  std::vector<float> a, b;
  prefixed.logits(ids, 1, 6, a);
  bare->logits(ids, 1, 6, b);
  BOOST_TEST(a == b);
}

BOOST_AUTO_TEST_CASE(loading_errors_name_the_file_and_tensor) {
  Fixture f;
  CpuOps ops;
  auto fails_with = [&](const std::function<void(std::vector<NamedTensor>&)>& edit, const std::string& text) {
    TempDir dir;
    const std::string path = rewritten_weights(dir, edit);
    BOOST_CHECK_EXCEPTION(GPT2(ops, f.cfg, SafeTensorsFile::open(path), 1), Error, [&](const Error& e) {
      BOOST_TEST_MESSAGE(e.what());
      return e.where() == path && message_has(e, text) && !e.hint().empty();
    });
  };
  auto drop = [](const std::string& name) {
    return [name](std::vector<NamedTensor>& ts) {
      ts.erase(std::remove_if(ts.begin(), ts.end(), [&](const NamedTensor& t) { return t.name == name; }), ts.end());
    };
  };
  fails_with(drop("h.1.mlp.c_fc.bias"), "h.1.mlp.c_fc.bias");
  fails_with(drop("wte.weight"), "wte.weight");
  // c_attn stored [out, in] (nn.Linear layout) instead of Conv1D's [in, out]
  fails_with([](std::vector<NamedTensor>& ts) {
    for (NamedTensor& t : ts)
      if (t.name == "h.0.attn.c_attn.weight") std::swap(t.shape[0], t.shape[1]);
  }, "h.0.attn.c_attn.weight");
  // a tensor of a third layer: the config does not match the weights
  std::vector<float> extra(32, 1.0f);
  fails_with([&](std::vector<NamedTensor>& ts) { ts.push_back({"h.2.ln_1.weight", DType::F32, {32}, extra.data()}); },
             "h.2.ln_1.weight");
  // half-precision weights are refused with a hint
  std::vector<uint16_t> half(32, 0);
  fails_with([&](std::vector<NamedTensor>& ts) {
    for (NamedTensor& t : ts)
      if (t.name == "ln_f.bias") { t.dtype = DType::F16; t.data = half.data(); }
  }, "F16");
  // a non-finite weight is named, not scored into a NaN perplexity
  std::vector<float> poisoned;
  fails_with([&](std::vector<NamedTensor>& ts) {
    for (NamedTensor& t : ts)
      if (t.name == "h.1.mlp.c_fc.weight") {
        size_t n = 1;
        for (int64_t d : t.shape) n *= (size_t)d;
        poisoned.assign(static_cast<const float*>(t.data), static_cast<const float*>(t.data) + n);
        poisoned[5] = std::nanf("");
        t.data = poisoned.data();
      }
  }, "h.1.mlp.c_fc.weight");
  BOOST_CHECK_EXCEPTION(load_gpt2(ops, fixture("no_such_gpt2"), 1), Error,
                        [](const Error& e) { return message_has(e, "config.json"); });
}

BOOST_AUTO_TEST_CASE(batch_and_length_limits) {
  CpuOps ops;
  auto model = load_gpt2(ops, fixture("gpt2_tiny"), 2);
  std::vector<float> out;
  std::vector<int32_t> ids(3 * 4, 1);
  BOOST_CHECK_EXCEPTION(model->logits(ids, 3, 4, out), Error, [](const Error& e) { return message_has(e, "planned"); });
  std::vector<int32_t> long_ids(17, 1);
  BOOST_CHECK_EXCEPTION(model->logits(long_ids, 1, 17, out), Error,
                        [](const Error& e) { return message_has(e, "planned"); });
}

BOOST_AUTO_TEST_SUITE_END()
