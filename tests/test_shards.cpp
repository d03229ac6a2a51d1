// Shard format: write/read round trip (uint16 and uint32 tokens), validation of every field on damaged files,
// and duo-tokenize's job end to end (splits, shard rotation, gz and JSON lines input, errors).
#include <boost/test/unit_test.hpp>
#include <sys/stat.h>
#include <zlib.h>
#include <cstring>
#include "data/shard.h"
#include "data/text_input.h"
#include "jobs/tokenize_job.h"
#include "data/tokenizer.h"
#include "data_paths.h"

using namespace duo;

namespace {

std::string bytes_of(const std::string& path) { return test::read_all(path); }
void write_bytes(const std::string& path, const std::string& b) { std::ofstream(path, std::ios::binary) << b; }

// Writes a small shard with docs {1,2,3}, {}, {4,5}.
void small_shard(const std::string& path, int64_t vocab) {
  ShardWriter w(path, "gpt2", vocab);
  const uint32_t a[] = {1, 2, 3}, b[] = {4, 5};
  w.add_document(a, 3);
  w.add_document(nullptr, 0);
  w.add_document(b, 2);
  w.finish();
}

// Expects opening path to fail with a message containing every piece of `needles`.
void expect_error(const std::string& path, std::initializer_list<const char*> needles) {
  try {
    Shard s(path);
    BOOST_FAIL("expected an error for " << path);
  } catch (const Error& e) {
    for (const char* n : needles) BOOST_TEST_CHECK(std::string(e.what()).find(n) != std::string::npos, e.what());
  }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shards)

BOOST_AUTO_TEST_CASE(round_trip_uint16_and_uint32) {
  test::TempDir dir("shard");
  for (int64_t vocab : {50258, 100000}) {
    const std::string p = dir / "a.bin";
    small_shard(p, vocab);
    Shard s(p);
    BOOST_TEST(s.info().token_bytes == (vocab <= 65536 ? 2 : 4));
    BOOST_TEST(s.info().tokenizer == "gpt2");
    BOOST_TEST(s.info().vocab_size == vocab);
    BOOST_TEST(s.n_tokens() == 5);
    BOOST_TEST(s.n_docs() == 3);
    BOOST_TEST(s.document(0) == (std::vector<uint32_t>{1, 2, 3}), boost::test_tools::per_element());
    BOOST_TEST(s.document(1).empty());
    BOOST_TEST(s.document(2) == (std::vector<uint32_t>{4, 5}), boost::test_tools::per_element());
    int32_t out[5];
    s.copy(0, 5, out);
    BOOST_TEST(out[4] == 5);
    BOOST_TEST(read_shard_info(p).n_docs == 3);
  }
}

BOOST_AUTO_TEST_CASE(every_damaged_field_is_named) {
  test::TempDir dir("badshard");
  const std::string good = dir / "good.bin", bad = dir / "bad.bin";
  small_shard(good, 50258);
  const std::string g = bytes_of(good);
  auto patched = [&](size_t off, const void* v, size_t n) {
    std::string b = g;
    std::memcpy(&b[off], v, n);
    write_bytes(bad, b);
  };
  const uint32_t three = 3, big_version = 9;
  const uint64_t huge = 1ull << 40, vocab_small = 3, seven = 7;
  patched(0, "NOTASHRD", 8);                  expect_error(bad, {"magic"});
  patched(8, &big_version, 4);                expect_error(bad, {"version"});
  patched(12, &three, 4);                     expect_error(bad, {"token_bytes"});
  patched(16, &huge, 8);                      expect_error(bad, {"vocab_size"});
  patched(24, &huge, 8);                      expect_error(bad, {"n_tokens"});
  patched(32, &seven, 8);                     expect_error(bad, {"file length"});
  patched(48, "g\x01", 2);                    expect_error(bad, {"tokenizer"});
  patched(100, "x", 1);                       expect_error(bad, {"reserved"});
  patched(16, &vocab_small, 8);               expect_error(bad, {"tokens", "token id 5 >= vocab_size 3"});
  patched(128, "\x09", 1);                    expect_error(bad, {"crc32"});
  // Offsets: start at 128 + 16 (5 uint16 tokens padded to 16 bytes); make offset[1] jump past offset[2].
  patched(128 + 16 + 8, &seven, 8);           expect_error(bad, {"document offsets"});
  write_bytes(bad, g.substr(0, g.size() - 3)); expect_error(bad, {"file length"});
  write_bytes(bad, g.substr(0, 40));          expect_error(bad, {"file length", "header"});
  write_bytes(bad, "");                       expect_error(bad, {"file length"});
  expect_error(dir / "missing.bin", {"cannot open"});
  expect_error(dir.path.string(), {"not a regular file"});
}

// A FIFO or a folder given as a shard is refused before anything opens it (issue 17: a FIFO blocked forever).
BOOST_AUTO_TEST_CASE(a_fifo_or_folder_is_not_a_shard) {
  test::TempDir dir("fifo");
  BOOST_REQUIRE(::mkfifo((dir / "pipe.bin").c_str(), 0600) == 0);
  expect_error(dir / "pipe.bin", {"pipe.bin", "FIFO", "not a regular file", "HINT"});
  BOOST_CHECK_THROW(read_shard_info(dir / "pipe.bin"), Error);
  std::filesystem::create_directories(dir / "folder.bin");
  expect_error(dir / "folder.bin", {"folder.bin", "a directory, not a regular file"});
}

BOOST_AUTO_TEST_CASE(unfinished_writer_leaves_no_file) {
  test::TempDir dir("unfinished");
  {
    ShardWriter w(dir / "x.bin", "gpt2", 50258);
    const uint32_t a[] = {1};
    w.add_document(a, 1);
  }
  BOOST_TEST(!std::filesystem::exists(dir / "x.bin"));
  BOOST_TEST(!std::filesystem::exists(dir / "x.bin.tmp"));
  ShardWriter w(dir / "y.bin", "gpt2", 10);
  const uint32_t bad[] = {10};
  BOOST_CHECK_THROW(w.add_document(bad, 1), Error);
}

BOOST_AUTO_TEST_CASE(tokenize_job_splits_and_rotates) {
  test::TempDir dir("job");
  {
    std::ofstream f(dir / "in.txt");
    for (int i = 0; i < 10; ++i) f << "document number " << i << "\n\n";
  }
  TokenizeOptions o;
  o.tokenizer = "gpt2";
  o.vocab_dir = test::vendor_data() + "/gpt2";
  o.inputs = {dir / "in.txt"};
  o.output_dir = dir / "out";
  o.valid_last_docs = 3;
  o.shard_tokens = 7;  // documents are 3 tokens: a shard closes after its third document (9 >= 7)
  o.progress = false;
  const TokenizeReport r = tokenize_to_shards(o);
  BOOST_TEST(r.docs[0] == 7);
  BOOST_TEST(r.docs[1] == 3);
  const auto train = expand_shard_paths({dir / "out/train_*.bin"});
  const auto valid = expand_shard_paths({dir / "out/valid_*.bin"});
  BOOST_TEST(train.size() == 3u);  // 7 documents: 3 + 3 + 1
  BOOST_TEST(valid.size() == 1u);
  const auto tok = load_tokenizer("gpt2", o.vocab_dir);
  Shard last(valid.back());
  BOOST_TEST(tok->decode(last.document(last.n_docs() - 1)) == "document number 9");
  Shard first(train.front());
  BOOST_TEST(tok->decode(first.document(0)) == "document number 0");

  // Asking for more validation documents than exist is an error.
  o.valid_last_docs = 11;
  BOOST_CHECK_THROW(tokenize_to_shards(o), Error);
}

BOOST_AUTO_TEST_CASE(tokenize_job_gz_jsonl_blank_and_errors) {
  test::TempDir dir("jobgz");
  {
    gzFile g = gzopen((dir / "in.jsonl.gz").c_str(), "wb");
    const char* text = "{\"text\": \"Hello world\", \"id\": 1}\n{\"text\": \"second\"}\n";
    gzwrite(g, text, (unsigned)std::strlen(text));
    gzclose(g);
  }
  TokenizeOptions o;
  o.tokenizer = "gpt2";
  o.vocab_dir = test::vendor_data() + "/gpt2";
  o.inputs = {dir / "in.jsonl.gz"};
  o.output_dir = dir / "out";
  o.progress = false;
  const TokenizeReport r = tokenize_to_shards(o);
  BOOST_TEST(r.docs[0] == 2);
  Shard s(dir / "out/train_000000.bin");
  BOOST_TEST(s.document(0) == (std::vector<uint32_t>{15496, 995}), boost::test_tools::per_element());

  // A truncated .gz is a read error naming the file, not a crash or a silent short read.
  {
    const std::string whole = test::read_all(dir / "in.jsonl.gz");
    write_bytes(dir / "cut.jsonl.gz", whole.substr(0, whole.size() - 12));
  }
  o.inputs = {dir / "cut.jsonl.gz"};
  try {
    tokenize_to_shards(o);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("cut.jsonl.gz") != std::string::npos);
  }
  // Half of a larger .gz (a download cut short): zlib hands back the half it could decode and flags the cut
  // stream; that is an error naming the file, not half the tokens with exit 0 (issue 17).
  {
    gzFile g = gzopen((dir / "big.txt.gz").c_str(), "wb");
    for (int i = 0; i < 20000; ++i) gzprintf(g, "line %d of a corpus that compresses into many blocks %d\n", i, i * 7919);
    gzclose(g);
    const std::string whole = test::read_all(dir / "big.txt.gz");
    write_bytes(dir / "half.txt.gz", whole.substr(0, whole.size() / 2));
  }
  o.inputs = {dir / "half.txt.gz"};
  try {
    tokenize_to_shards(o);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("half.txt.gz") != std::string::npos, e.what());
    BOOST_TEST(std::string(e.what()).find("truncated .gz") != std::string::npos, e.what());
  }
  // A record without the field names file:line.
  { std::ofstream(dir / "bad.jsonl") << "{\"text\": \"a\"}\n{\"body\": \"b\"}"; }  // no final newline
  o.inputs = {dir / "bad.jsonl"};
  try {
    tokenize_to_shards(o);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("bad.jsonl:2") != std::string::npos);
  }
  // Invalid UTF-8: an error naming file:line, or U+FFFD with replace.
  { std::ofstream(dir / "bad.txt", std::ios::binary) << "fine\nbad \xFF byte\n"; }
  o.inputs = {dir / "bad.txt"};
  try {
    tokenize_to_shards(o);
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("bad.txt:2") != std::string::npos);
  }
  o.input.replace_invalid_utf8 = true;
  tokenize_to_shards(o);
  const auto tok = load_tokenizer("gpt2", o.vocab_dir);
  BOOST_TEST(tok->decode(Shard(dir / "out/train_000000.bin").document(1)) == "bad \xEF\xBF\xBD byte");
  // Empty input: an error, and split=blank groups lines into paragraphs.
  { std::ofstream(dir / "empty.txt"); }
  o.inputs = {dir / "empty.txt"};
  BOOST_CHECK_THROW(tokenize_to_shards(o), Error);
  { std::ofstream(dir / "para.txt") << "a\nb\n\n\nc\n"; }
  o.inputs = {dir / "para.txt"};
  o.input.split = "blank";
  BOOST_TEST(tokenize_to_shards(o).docs[0] == 2);
  BOOST_TEST(tok->decode(Shard(dir / "out/train_000000.bin").document(0)) == "a\nb");
  o.input.split = "none";
  BOOST_TEST(tokenize_to_shards(o).docs[0] == 1);
  BOOST_TEST(tok->decode(Shard(dir / "out/train_000000.bin").document(0)) == "a\nb\n\n\nc\n");
}

BOOST_AUTO_TEST_CASE(document_reader_options) {
  test::TempDir dir("reader");
  { std::ofstream(dir / "w.txt") << " = Title = \n\n line two \nlast"; }
  auto read_all_docs = [&](const std::string& file, InputOptions opt) {
    DocumentReader r({file}, opt);
    std::vector<std::string> docs;
    for (std::string d; r.next(d);) docs.push_back(d);
    return docs;
  };
  InputOptions o;
  o.keep_newline = true;
  o.keep_empty = true;
  BOOST_TEST(read_all_docs(dir / "w.txt", o) == (std::vector<std::string>{" = Title = \n", "\n", " line two \n", "last"}),
             boost::test_tools::per_element());
  InputOptions st;
  st.strip = true;
  BOOST_TEST(read_all_docs(dir / "w.txt", st) == (std::vector<std::string>{"= Title =", "line two", "last"}),
             boost::test_tools::per_element());
  { std::ofstream(dir / "n.txt") << "\n a\n\n\n\nb \n"; }
  InputOptions sq;
  sq.split = "none";
  sq.squeeze_newlines = true;
  sq.strip = true;
  BOOST_TEST(read_all_docs(dir / "n.txt", sq) == std::vector<std::string>{"a\n\nb"}, boost::test_tools::per_element());
  // A JSON array field is joined with newlines (scientific_papers' article_text).
  { std::ofstream(dir / "p.jsonl") << "{\"article_text\": [\"one.\", \"two.\"]}\n"; }
  InputOptions js;
  js.field = "article_text";
  BOOST_TEST(read_all_docs(dir / "p.jsonl", js) == std::vector<std::string>{"one.\ntwo."}, boost::test_tools::per_element());
  { std::ofstream(dir / "q.jsonl") << "{\"article_text\": [\"one.\", 2]}\n"; }
  BOOST_CHECK_THROW(read_all_docs(dir / "q.jsonl", js), Error);
  BOOST_CHECK_THROW(read_all_docs(dir / "missing.txt", o), Error);
}

BOOST_AUTO_TEST_SUITE_END()
