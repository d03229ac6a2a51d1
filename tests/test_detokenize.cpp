// Detokenizers: each rule list on inputs that exercise every rewrite. tests/fixtures/detokenize/cases.json holds
// [name, input, expected]; the expected strings were produced by running the reference's rules with Python's re
// (so the PCRE2 translation of each regex, \w and $ included, is checked against Python's semantics).
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include "data/detokenize.h"
#include "data_paths.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(detokenize)

BOOST_AUTO_TEST_CASE(reference_rules) {
  const auto cases = nlohmann::json::parse(test::read_all("tests/fixtures/detokenize/cases.json"));
  BOOST_REQUIRE(cases.size() >= 8);
  for (const auto& c : cases) {
    const Detokenizer d(c[0].get<std::string>());
    BOOST_TEST_CONTEXT(c[0].get<std::string>() << " on " << c[1].dump()) {
      BOOST_TEST(d.apply(c[1].get<std::string>()) == c[2].get<std::string>());
    }
  }
}

BOOST_AUTO_TEST_CASE(hand_checked_examples) {
  BOOST_TEST(Detokenizer("wikitext").apply("a @-@ b @,@ c @.@ d") == "a-b,c.d");
  BOOST_TEST(Detokenizer("ptb").apply("we do n't \\/ ca n't") == "we don't / can't");
  BOOST_TEST(Detokenizer("lm1b").apply("Hello , world .") == "Hello, world.");
  BOOST_TEST(Detokenizer("lambada").apply("  x  ") == "\nx");
  BOOST_TEST(Detokenizer("none").apply(" a , b ") == " a , b ");
  BOOST_CHECK_THROW(Detokenizer("wiki"), Error);
}

BOOST_AUTO_TEST_SUITE_END()
