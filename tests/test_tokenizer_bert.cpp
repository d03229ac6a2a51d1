// BERT (bert-base-uncased) tokenizer: id parity with transformers' slow BertTokenizer on tricky strings
// (fixtures from tools/reference/tokenizer_fixtures.py), decoding, special ids, bad vocab files.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include "data/wordpiece.h"
#include "data_paths.h"

using namespace duo;

namespace {
const Tokenizer& bert() {
  static const auto tok = load_tokenizer("bert-base-uncased", test::vendor_data() + "/bert-base-uncased");
  return *tok;
}
}  // namespace

BOOST_AUTO_TEST_SUITE(tokenizer_bert)

BOOST_AUTO_TEST_CASE(known_ids_and_specials) {
  BOOST_TEST(bert().encode("i like strawberries") == (std::vector<uint32_t>{1045, 2066, 13137, 20968}),
             boost::test_tools::per_element());
  BOOST_TEST(bert().encode("Hello World") == (std::vector<uint32_t>{7592, 2088}), boost::test_tools::per_element());
  const SpecialIds s = bert().specials();
  BOOST_TEST(s.pad == 0);
  BOOST_TEST(s.unk == 100);
  BOOST_TEST(s.bos == 101);
  BOOST_TEST(s.eos == 102);
  BOOST_TEST(s.mask == 103);
  BOOST_TEST(bert().vocab_size() == 30522);
}

BOOST_AUTO_TEST_CASE(reference_parity_on_tricky_strings) {
  const auto fx = nlohmann::json::parse(test::read_all("tests/fixtures/tokenizer/bert.json"));
  BOOST_REQUIRE(fx.size() >= 40);
  for (const auto& r : fx) {
    const std::string text = r["text"];
    const auto expect = r["ids"].get<std::vector<uint32_t>>();
    const auto got = bert().encode(text);
    BOOST_TEST_CONTEXT("text " << nlohmann::json(text).dump()) {
      BOOST_TEST(got == expect, boost::test_tools::per_element());
      BOOST_TEST(bert().decode(expect) == r["decoded"].get<std::string>());
    }
  }
}

BOOST_AUTO_TEST_CASE(long_words_become_unk) {
  BOOST_TEST(bert().encode(std::string(101, 'x')) == std::vector<uint32_t>{100}, boost::test_tools::per_element());
  BOOST_TEST(bert().encode(std::string(100, 'x')).size() > 1u);
}

BOOST_AUTO_TEST_CASE(decode_joins_continuations) {
  const auto ids = bert().encode("strawberries are tasty, aren't they?");
  BOOST_TEST(bert().decode(ids) == "strawberries are tasty, aren't they?");
  BOOST_TEST(bert().decode(std::vector<uint32_t>{101, 7592, 102, 0}) == "[CLS] hello [SEP] [PAD]");
  BOOST_CHECK_THROW(bert().decode(std::vector<uint32_t>{30522}), Error);
}

BOOST_AUTO_TEST_CASE(bad_vocab_files) {
  test::TempDir dir("bertvocab");
  BOOST_CHECK_THROW(load_tokenizer("bert-base-uncased", dir.path.string()), Error);
  { std::ofstream(dir / "vocab.txt") << "[PAD]\nhello\nhello\n"; }
  try {
    load_tokenizer("bert-base-uncased", dir.path.string());
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("vocab.txt:3") != std::string::npos);
  }
  { std::ofstream(dir / "vocab.txt") << "[PAD]\nhello\n"; }
  BOOST_CHECK_THROW(load_tokenizer("bert-base-uncased", dir.path.string()), Error);  // specials missing
}

BOOST_AUTO_TEST_SUITE_END()
