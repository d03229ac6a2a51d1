// GPT-2 tokenizer: id parity with tiktoken on tricky strings (fixtures from tools/reference/tokenizer_fixtures.py),
// the whole of tinyshakespeare (338,025 tokens, lossless round trip), bad input and bad vocab files.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include "data/bpe.h"
#include "data_paths.h"

using namespace duo;

namespace {
const Tokenizer& gpt2() {
  static const auto tok = load_tokenizer("gpt2", test::vendor_data() + "/gpt2");
  return *tok;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(tokenizer_gpt2)

BOOST_AUTO_TEST_CASE(known_ids) {
  BOOST_TEST(gpt2().encode("Hello world") == (std::vector<uint32_t>{15496, 995}), boost::test_tools::per_element());
  BOOST_TEST(gpt2().vocab_size() == 50258);
  BOOST_TEST(gpt2().specials().bos == 50256);
  BOOST_TEST(gpt2().specials().eos == 50256);
  BOOST_TEST(gpt2().specials().pad == 50257);
  BOOST_TEST(gpt2().id_to_piece(262) == " the");
}

BOOST_AUTO_TEST_CASE(tiktoken_parity_on_tricky_strings) {
  const auto fx = nlohmann::json::parse(test::read_all("tests/fixtures/tokenizer/gpt2.json"));
  BOOST_REQUIRE(fx.size() >= 40);
  auto cache = gpt2().make_cache();
  for (const auto& r : fx) {
    const std::string text = r["text"];
    const auto expect = r["ids"].get<std::vector<uint32_t>>();
    std::vector<uint32_t> got;
    gpt2().encode(text, got, cache.get());
    BOOST_TEST_CONTEXT("text " << nlohmann::json(text).dump()) {
      BOOST_TEST(got == expect, boost::test_tools::per_element());
      BOOST_TEST(gpt2().decode(got) == text);
    }
  }
}

BOOST_AUTO_TEST_CASE(cache_gives_the_same_ids) {
  // The word cache must not change results: encode twice with one cache, once without.
  const std::string text = "the cat and the hat and the bat, the end";
  auto cache = gpt2().make_cache();
  std::vector<uint32_t> a, b;
  gpt2().encode(text, a, cache.get());
  gpt2().encode(text, b, cache.get());
  BOOST_TEST(a == b, boost::test_tools::per_element());
  BOOST_TEST(gpt2().encode(text) == a, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(tinyshakespeare_whole_file) {
  const std::string text = test::read_all(test::tinyshakespeare_path());
  const auto ids = gpt2().encode(text);
  BOOST_TEST(ids.size() == 338025u);
  BOOST_TEST((gpt2().decode(ids) == text));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_is_an_error_naming_the_offset) {
  const std::string bad = std::string("ok \xC3\x28 bad");
  try {
    gpt2().encode(bad);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("invalid UTF-8 at byte 3") != std::string::npos);
  }
  BOOST_CHECK_THROW(gpt2().encode(std::string("\xED\xA0\x80")), Error);  // a surrogate
  BOOST_CHECK_THROW(gpt2().encode(std::string("\xC0\xAF")), Error);      // overlong '/'
  BOOST_TEST(gpt2().encode("").empty());
}

BOOST_AUTO_TEST_CASE(decode_specials_and_out_of_range) {
  BOOST_TEST(gpt2().decode(std::vector<uint32_t>{50256, 50257}) == "<|endoftext|>[PAD]");
  BOOST_CHECK_THROW(gpt2().decode(std::vector<uint32_t>{50258}), Error);
}

BOOST_AUTO_TEST_CASE(hugging_face_file_names) {
  test::TempDir dir("hfnames");
  std::filesystem::copy_file(test::vendor_data() + "/gpt2/encoder.json", dir / "vocab.json");
  std::filesystem::copy_file(test::vendor_data() + "/gpt2/vocab.bpe", dir / "merges.txt");
  const auto tok = load_tokenizer("gpt2", dir.path.string());
  BOOST_TEST(tok->encode("Hello world") == (std::vector<uint32_t>{15496, 995}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_and_malformed_vocab_files) {
  test::TempDir dir("gpt2vocab");
  BOOST_CHECK_THROW(load_tokenizer("gpt2", dir.path.string()), Error);
  { std::ofstream(dir / "encoder.json") << "{\"a\": 0,"; }
  { std::ofstream(dir / "vocab.bpe") << "#version: 0.2\na b\n"; }
  try {
    load_tokenizer("gpt2", dir.path.string());
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("encoder.json") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("malformed JSON") != std::string::npos);
  }
  // A good encoder.json with a broken merges line: the error names file:line.
  std::filesystem::copy_file(test::vendor_data() + "/gpt2/encoder.json", dir / "encoder.json",
                             std::filesystem::copy_options::overwrite_existing);
  { std::ofstream(dir / "vocab.bpe") << "#version: 0.2\n\xC4\xA0 t\nonlyonesymbol\n"; }
  try {
    load_tokenizer("gpt2", dir.path.string());
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("vocab.bpe:3") != std::string::npos);
  }
  BOOST_CHECK_THROW(load_tokenizer("gpt3", dir.path.string()), Error);
}

BOOST_AUTO_TEST_CASE(merges_read_against_another_tokenizers_vocabulary) {
  // The constructor the merges fuzz target uses: the same vocab.bpe gives the same ids; a bad one is an error
  // naming file:line and encoder.json.
  const Gpt2Tokenizer base(test::vendor_data() + "/gpt2");
  const Gpt2Tokenizer same(base, test::vendor_data() + "/gpt2/vocab.bpe");
  const std::string text = "Hello world, the quick brown fox \xC3\xA9t\xC3\xA9 1234!";
  BOOST_TEST(same.encode(text) == base.encode(text), boost::test_tools::per_element());
  test::TempDir dir("gpt2merges");
  { std::ofstream(dir / "vocab.bpe") << "#version: 0.2\nh e\nzzzq x\n"; }
  try {
    const Gpt2Tokenizer bad(base, dir / "vocab.bpe");
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("vocab.bpe:3") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("not in encoder.json") != std::string::npos);
  }
}

BOOST_AUTO_TEST_SUITE_END()
