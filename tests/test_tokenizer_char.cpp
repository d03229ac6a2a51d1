// Char tokenizer: vocabulary built from a corpus, the id layout (chars, then <|endoftext|>, then [PAD]),
// the vocabulary file, round trips and errors.
#include <boost/test/unit_test.hpp>
#include "data/char_vocab.h"
#include "data/shard.h"
#include "jobs/tokenize_job.h"
#include "data_paths.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(tokenizer_char)

BOOST_AUTO_TEST_CASE(layout_and_round_trip) {
  CharCollector c;
  c.add("hello wörld\né");
  const CharTokenizer tok(c.chars());
  // sorted code points: \n, space, d e h l o r w, é, ö
  BOOST_TEST(tok.chars().size() == 11u);
  BOOST_TEST(tok.vocab_size() == 13);
  BOOST_TEST(tok.specials().bos == 11);
  BOOST_TEST(tok.specials().eos == 11);
  BOOST_TEST(tok.specials().pad == 12);
  BOOST_TEST(tok.encode("\nd") == (std::vector<uint32_t>{0, 2}), boost::test_tools::per_element());
  BOOST_TEST(tok.encode("é") == std::vector<uint32_t>{9}, boost::test_tools::per_element());
  BOOST_TEST(tok.decode(tok.encode("höllo wé")) == "höllo wé");
  BOOST_TEST(tok.decode(std::vector<uint32_t>{11, 12}) == "<|endoftext|>[PAD]");
  BOOST_CHECK_THROW(tok.encode("x"), Error);  // not in the vocabulary
  BOOST_CHECK_THROW(tok.decode(std::vector<uint32_t>{13}), Error);
}

BOOST_AUTO_TEST_CASE(vocab_file_round_trip_and_errors) {
  test::TempDir dir("charvocab");
  CharCollector c;
  c.add("ab\xF0\x9F\x98\x80");
  CharTokenizer(c.chars()).write(dir / kCharVocabFile);
  const auto tok = load_tokenizer("char", dir.path.string());
  BOOST_TEST(tok->vocab_size() == 5);
  BOOST_TEST(tok->encode("\xF0\x9F\x98\x80" "a") == (std::vector<uint32_t>{2, 0}), boost::test_tools::per_element());
  { std::ofstream(dir / kCharVocabFile) << "# x\n0061\nzz\n"; }
  try {
    load_tokenizer("char", dir.path.string());
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("vocab_chars.txt:3") != std::string::npos);
  }
  { std::ofstream(dir / kCharVocabFile) << "0062\n0061\n"; }  // not increasing
  BOOST_CHECK_THROW(load_tokenizer("char", dir.path.string()), Error);
  std::filesystem::remove(dir / kCharVocabFile);
  BOOST_CHECK_THROW(load_tokenizer("char", dir.path.string()), Error);
}

BOOST_AUTO_TEST_CASE(tinyshakespeare_vocabulary) {
  // The default run's vocabulary: 65 characters + <|endoftext|> + [PAD] = 67.
  CharCollector c;
  c.add(test::read_all(test::tinyshakespeare_path()));
  const CharTokenizer tok(c.chars());
  BOOST_TEST(tok.chars().size() == 65u);
  BOOST_TEST(tok.vocab_size() == 67);
  BOOST_TEST((uint32_t)tok.chars()[0] == 10u);
  BOOST_TEST((uint32_t)tok.chars()[1] == 32u);
  BOOST_TEST((uint32_t)tok.chars()[64] == (uint32_t)'z');
}

BOOST_AUTO_TEST_CASE(tokenize_job_builds_the_vocabulary_then_reuses_it) {
  test::TempDir dir("charjob");
  { std::ofstream(dir / "in.txt") << "ab\n\nba\n\ncab\n\nzz\n"; }
  TokenizeOptions o;
  o.tokenizer = "char";
  o.vocab_dir = dir / "out";
  o.inputs = {dir / "in.txt"};
  o.output_dir = dir / "out";
  o.input.split = "blank";
  o.valid_fraction = 0.25;  // the last of 4 documents
  o.progress = false;
  const TokenizeReport r = tokenize_to_shards(o);
  BOOST_TEST(r.vocab_size == 4 + 2);  // a b c z + <|endoftext|> + [PAD]
  BOOST_TEST(r.docs[0] == 3);
  BOOST_TEST(r.docs[1] == 1);
  const auto tok = load_tokenizer("char", dir / "out");
  BOOST_TEST(tok->decode(Shard(dir / "out/valid_000000.bin").document(0)) == "zz");
  // A second corpus with a new character fails against the stored vocabulary instead of silently changing ids.
  { std::ofstream(dir / "in2.txt") << "abq\n"; }
  o.inputs = {dir / "in2.txt"};
  o.valid_fraction = 0;
  BOOST_CHECK_THROW(tokenize_to_shards(o), Error);
}

BOOST_AUTO_TEST_SUITE_END()
