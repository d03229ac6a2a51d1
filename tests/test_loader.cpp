// Loaders: the row layout of each mode, deterministic shuffling, resume mid-epoch, disjoint and complete rank
// coverage, one-pass evaluation.
#include <boost/test/unit_test.hpp>
#include <algorithm>
#include <numeric>
#include <memory>
#include <set>
#include <tuple>
#include "data/loader.h"
#include "io/cli.h"
#include "train/train_config.h"
#include "data_paths.h"

using namespace duo;

namespace {

// Document d holds the tokens 100*(d+1) + k for k < len(d), so every token says where it came from.
// Vocabulary 5000, tokenizer "char": BOS = EOS = 4998, PAD = 4999.
constexpr int32_t kEos = 4998, kPad = 4999;
std::vector<int64_t> write_docs(const std::string& path, const std::vector<int64_t>& lengths) {
  ShardWriter w(path, "char", 5000);
  for (size_t d = 0; d < lengths.size(); ++d) {
    std::vector<uint32_t> ids;
    for (int64_t k = 0; k < lengths[d]; ++k) ids.push_back((uint32_t)(100 * (d + 1) + k));
    w.add_document(ids.data(), ids.size());
  }
  w.finish();
  return lengths;
}

LoaderConfig config(const std::string& mode, int64_t L, int64_t B) {
  LoaderConfig c;
  c.mode = mode;
  c.length = L;
  c.batch_size = B;
  c.seed = 7;
  c.prefetch = true;
  return c;
}

std::vector<int32_t> row(const Batch& b, int64_t r) { return {b.ids.begin() + r * b.L, b.ids.begin() + (r + 1) * b.L}; }

}  // namespace

BOOST_AUTO_TEST_SUITE(loader)

BOOST_AUTO_TEST_CASE(wrap_layout_follows_the_stream) {
  test::TempDir dir("wrap");
  // Two shards, so blocks cross a shard boundary too.
  write_docs(dir / "a_0.bin", {5, 3});
  write_docs(dir / "a_1.bin", {7});
  // The stream with EOS after each document: 100..104 E 200..202 E 100..106 E  (18 tokens; the third document
  // is the first of shard 2, so its tokens restart at 100). L = 6: pieces of 4, 4 blocks, 2 tokens dropped.
  LoaderConfig c = config("wrap", 6, 4);
  c.shuffle = false;
  Loader ld({dir / "a_*.bin"}, c);
  BOOST_TEST(ld.n_blocks() == 4);
  Batch b;
  BOOST_REQUIRE(ld.next(b));
  const std::vector<std::vector<int32_t>> expect = {{kEos, 100, 101, 102, 103, kEos},
                                                    {kEos, 104, kEos, 200, 201, kEos},
                                                    {kEos, 202, kEos, 100, 101, kEos},
                                                    {kEos, 102, 103, 104, 105, kEos}};
  for (int r = 0; r < 4; ++r) BOOST_TEST(row(b, r) == expect[r], boost::test_tools::per_element());
  BOOST_TEST(std::all_of(b.mask.begin(), b.mask.end(), [](float m) { return m == 1.0f; }));

  // Without EOS between documents the stream is 15 tokens: 3 blocks.
  c.insert_eos = false;
  Loader ld2({dir / "a_*.bin"}, c);
  BOOST_TEST(ld2.n_blocks() == 3);
  BOOST_REQUIRE(ld2.next(b));
  BOOST_TEST(row(b, 1) == (std::vector<int32_t>{kEos, 104, 200, 201, 202, kEos}), boost::test_tools::per_element());

  // Grouping by 2 documents (the reference's per-batch concatenation): group 1 = docs 0,1 (10 tokens -> 2 blocks,
  // 2 dropped), group 2 = doc 2 (8 tokens -> 2 blocks).
  c.insert_eos = true;
  c.wrap_group_docs = 2;
  Loader ld3({dir / "a_*.bin"}, c);
  BOOST_TEST(ld3.n_blocks() == 4);
  BOOST_REQUIRE(ld3.next(b));
  BOOST_TEST(row(b, 2) == (std::vector<int32_t>{kEos, 100, 101, 102, 103, kEos}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(padded_and_packed_layouts) {
  test::TempDir dir("pad");
  write_docs(dir / "a.bin", {2, 9, 1, 0});
  LoaderConfig c = config("padded", 6, 4);
  c.shuffle = false;
  Loader ld({dir / "a.bin"}, c);
  Batch b;
  BOOST_REQUIRE(ld.next(b));
  BOOST_TEST(row(b, 0) == (std::vector<int32_t>{kEos, 100, 101, kEos, kPad, kPad}), boost::test_tools::per_element());
  BOOST_TEST(row(b, 1) == (std::vector<int32_t>{kEos, 200, 201, 202, 203, kEos}), boost::test_tools::per_element());
  BOOST_TEST(row(b, 3) == (std::vector<int32_t>{kEos, kEos, kPad, kPad, kPad, kPad}), boost::test_tools::per_element());
  const std::vector<float> m0(b.mask.begin(), b.mask.begin() + 6);
  BOOST_TEST(m0 == (std::vector<float>{1, 1, 1, 1, 0, 0}), boost::test_tools::per_element());

  // packed, L = 8: row 0 = doc 0 (4) ; doc 1 (8, truncated) needs a new row; row 2 = doc 2 (3) + doc 3 (2).
  c.mode = "packed";
  c.length = 8;
  c.batch_size = 3;
  Loader lp({dir / "a.bin"}, c);
  BOOST_TEST(lp.n_blocks() == 3);
  BOOST_REQUIRE(lp.next(b));
  BOOST_TEST(row(b, 0) == (std::vector<int32_t>{kEos, 100, 101, kEos, kPad, kPad, kPad, kPad}),
             boost::test_tools::per_element());
  BOOST_TEST(row(b, 1) == (std::vector<int32_t>{kEos, 200, 201, 202, 203, 204, 205, kEos}),
             boost::test_tools::per_element());
  BOOST_TEST(row(b, 2) == (std::vector<int32_t>{kEos, 300, kEos, kEos, kEos, kPad, kPad, kPad}),
             boost::test_tools::per_element());
  const std::vector<float> m2(b.mask.begin() + 16, b.mask.begin() + 24);
  BOOST_TEST(m2 == (std::vector<float>{1, 1, 1, 1, 1, 0, 0, 0}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(shuffle_is_a_seeded_permutation_per_epoch) {
  test::TempDir dir("shuf");
  write_docs(dir / "a.bin", std::vector<int64_t>(40, 3));
  LoaderConfig c = config("padded", 8, 10);
  auto epoch_order = [&](uint64_t seed, int epochs) {
    c.seed = seed;
    Loader ld({dir / "a.bin"}, c);
    std::vector<int64_t> order;
    Batch b;
    for (int i = 0; i < 4 * epochs; ++i) {
      ld.next(b);
      order.insert(order.end(), b.blocks.begin(), b.blocks.end());
    }
    return order;
  };
  const auto a = epoch_order(7, 2), a2 = epoch_order(7, 2), other = epoch_order(8, 2);
  BOOST_TEST(a == a2, boost::test_tools::per_element());
  BOOST_TEST(a != other);
  std::vector<int64_t> e0(a.begin(), a.begin() + 40), e1(a.begin() + 40, a.end());
  BOOST_TEST(e0 != e1);  // a new order each epoch
  std::vector<int64_t> ident(40);
  std::iota(ident.begin(), ident.end(), 0);
  BOOST_TEST(e0 != ident);
  std::sort(e0.begin(), e0.end());
  std::sort(e1.begin(), e1.end());
  BOOST_TEST(e0 == ident, boost::test_tools::per_element());
  BOOST_TEST(e1 == ident, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(resume_mid_epoch_gives_the_same_next_batch) {
  test::TempDir dir("resume");
  write_docs(dir / "a.bin", std::vector<int64_t>(40, 7));
  const LoaderConfig c = config("wrap", 16, 3);
  Loader a({dir / "a.bin"}, c);
  Batch b;
  for (int i = 0; i < 7; ++i) a.next(b);  // 40 * 8 = 320 tokens = 22 blocks: 21 rows taken, mid-epoch
  const nlohmann::json saved = a.position();
  Batch expect1, expect2;
  a.next(expect1);
  a.next(expect2);  // crosses into epoch 1
  BOOST_TEST(a.position().epoch == 1);

  LoaderConfig sync = c;
  sync.prefetch = false;  // the restored loader reads on the caller's thread: the same batches either way
  Loader r({dir / "a.bin"}, sync);
  r.restore(saved.get<LoaderPosition>());
  Batch got;
  r.next(got);
  BOOST_TEST(got.ids == expect1.ids, boost::test_tools::per_element());
  r.next(got);
  BOOST_TEST(got.ids == expect2.ids, boost::test_tools::per_element());
  BOOST_TEST(got.blocks == expect2.blocks, boost::test_tools::per_element());

  // A position from other settings is refused, naming the field.
  LoaderConfig c2 = c;
  c2.seed = 99;
  Loader other({dir / "a.bin"}, c2);
  try {
    other.restore(saved.get<LoaderPosition>());
    BOOST_FAIL("expected an error");
  } catch (const Error& e) {
    BOOST_TEST(std::string(e.what()).find("seed") != std::string::npos);
  }
  BOOST_CHECK_THROW(nlohmann::json({{"epoch", 1}}).get<LoaderPosition>(), Error);
}

BOOST_AUTO_TEST_CASE(ranks_are_disjoint_and_cover_every_block) {
  // 36 blocks, a global batch of 12 rows per step: one process with 3 batches of 4 per step, and every split of it
  // over ranks and micro-batches, read the same rows in the same global order, step after step, across the epoch
  // boundary (36 is not a multiple of 8 or 12 · 4 steps = 48 > 36), so the ranks are disjoint and cover every block.
  test::TempDir dir("ranks");
  write_docs(dir / "a.bin", std::vector<int64_t>(36, 2));
  const int64_t global = 12, steps = 4;
  auto read = [&](int64_t W, int64_t A, int64_t B) {
    std::vector<std::unique_ptr<Loader>> owned;
    for (int64_t r = 0; r < W; ++r) {
      LoaderConfig c = config("padded", 8, B);
      c.rank = r;
      c.world_size = W;
      c.accum_steps = A;
      owned.push_back(std::make_unique<Loader>(std::vector<std::string>{dir / "a.bin"}, c));
    }
    std::vector<int64_t> order;  // the global rows of every step: rank 0's micro-batches, then rank 1's, ...
    for (int64_t s = 0; s < steps; ++s) {
      for (int64_t r = 0; r < W; ++r)
        for (int64_t k = 0; k < A; ++k) {
          Batch b;
          BOOST_REQUIRE(owned[r]->next(b));
          BOOST_TEST(b.blocks[0] == b.ids[0 * 8 + 1] / 100 - 1);  // the row is the block it claims to be
          order.insert(order.end(), b.blocks.begin(), b.blocks.end());
        }
      for (int64_t r = 0; r < W; ++r) BOOST_TEST(owned[r]->position().index == (s + 1) * global % 36);
    }
    return order;
  };
  const std::vector<int64_t> one = read(1, 3, 4);
  BOOST_TEST(std::set<int64_t>(one.begin(), one.begin() + 36).size() == 36u);  // epoch 0: every block once
  for (auto [W, A, B] : {std::tuple{2, 1, 6}, {2, 3, 2}, {3, 1, 4}, {4, 3, 1}, {1, 1, 12}}) {
    BOOST_TEST_CONTEXT("W " << W << " A " << A << " B " << B) {
      const std::vector<int64_t> split = read(W, A, B);
      BOOST_TEST(split == one, boost::test_tools::per_element());
    }
  }
}

BOOST_AUTO_TEST_CASE(a_position_resumes_on_any_number_of_ranks) {
  // Two ranks save after 2 steps; one rank and three ranks (other batch shapes, the same global batch) go on from
  // there and read what the two would have read.
  test::TempDir dir("rank_resume");
  write_docs(dir / "a.bin", std::vector<int64_t>(30, 2));
  auto make = [&](int64_t r, int64_t W, int64_t A, int64_t B) {
    LoaderConfig c = config("padded", 8, B);
    c.rank = r;
    c.world_size = W;
    c.accum_steps = A;
    return std::make_unique<Loader>(std::vector<std::string>{dir / "a.bin"}, c);
  };
  auto step = [](std::vector<std::unique_ptr<Loader>>& ranks, int64_t A) {
    std::vector<int64_t> rows;
    for (auto& ld : ranks)
      for (int64_t k = 0; k < A; ++k) {
        Batch b;
        BOOST_REQUIRE(ld->next(b));
        rows.insert(rows.end(), b.blocks.begin(), b.blocks.end());
      }
    return rows;
  };
  std::vector<std::unique_ptr<Loader>> two;
  for (int64_t r = 0; r < 2; ++r) two.push_back(make(r, 2, 2, 2));  // 8 rows per step
  step(two, 2);
  step(two, 2);
  const LoaderPosition saved = two[0]->position();
  BOOST_TEST(saved.index == 16);
  std::vector<std::vector<int64_t>> expect;
  for (int s = 0; s < 3; ++s) expect.push_back(step(two, 2));  // runs into epoch 1 (30 blocks)
  std::vector<std::unique_ptr<Loader>> one, three;
  one.push_back(make(0, 1, 4, 2));
  for (int64_t r = 0; r < 4; ++r) three.push_back(make(r, 4, 1, 2));
  for (auto& ld : one) ld->restore(saved);
  for (auto& ld : three) ld->restore(saved);
  for (int s = 0; s < 3; ++s) {
    BOOST_TEST(step(one, 4) == expect[s], boost::test_tools::per_element());
    BOOST_TEST(step(three, 1) == expect[s], boost::test_tools::per_element());
  }
  Batch b;
  two[0]->next(b);  // mid-step: no position to save
  BOOST_CHECK_THROW(two[0]->position(), Error);
}

BOOST_AUTO_TEST_CASE(evaluation_is_one_sequential_pass) {
  test::TempDir dir("eval");
  write_docs(dir / "a.bin", std::vector<int64_t>(10, 2));
  LoaderConfig c = config("padded", 6, 4);
  c.infinite = false;
  c.shuffle = false;
  c.rank = 1;
  c.world_size = 2;
  c.batch_size = 2;  // batches 0-1 | 2-3 | 4-5 | 6-7 | 8-9: rank 1 reads the second and the fourth
  Loader ld({dir / "a.bin"}, c);
  Batch b;
  std::vector<int64_t> got;
  int batches = 0;
  while (ld.next(b)) {
    ++batches;
    got.insert(got.end(), b.blocks.begin(), b.blocks.end());
    BOOST_TEST(b.rows == b.B);
  }
  BOOST_TEST(batches == 2);
  BOOST_TEST(got == (std::vector<int64_t>{2, 3, 6, 7}), boost::test_tools::per_element());
  c.rank = 0;  // 10 blocks in batches of 4, 0-3 | 4-7 | 8-9 + padding: rank 0 reads the first and the last
  c.batch_size = 4;
  c.world_size = 2;
  Loader zero({dir / "a.bin"}, c);
  got.clear();
  batches = 0;
  while (zero.next(b)) {
    ++batches;
    got.insert(got.end(), b.blocks.begin(), b.blocks.end());
    if (b.rows < b.B) {
      BOOST_TEST(b.rows == 2);
      BOOST_TEST(std::all_of(b.mask.begin() + b.rows * 6, b.mask.end(), [](float m) { return m == 0.0f; }));
      BOOST_TEST(b.ids.back() == kPad);
    }
  }
  BOOST_TEST(batches == 2);
  BOOST_TEST(got == (std::vector<int64_t>{0, 1, 2, 3, 8, 9}), boost::test_tools::per_element());
  BOOST_TEST(!zero.next(b));
  zero.rewind();
  BOOST_TEST(zero.next(b));
  BOOST_TEST(b.blocks[0] == 0);
}

BOOST_AUTO_TEST_CASE(configuration_errors) {
  test::TempDir dir("lerr");
  write_docs(dir / "a.bin", {3});
  { ShardWriter w(dir / "b.bin", "gpt2", 50258); w.finish(); }
  BOOST_CHECK_THROW(Loader({dir / "a.bin"}, config("wrap", 2, 1)), Error);        // L < 3
  BOOST_CHECK_THROW(Loader({dir / "a.bin"}, config("scrambled", 8, 1)), Error);   // unknown mode
  BOOST_CHECK_THROW(Loader({dir / "a.bin"}, config("wrap", 64, 1)), Error);       // no block fits
  BOOST_CHECK_THROW(Loader({dir / "none_*.bin"}, config("wrap", 4, 1)), Error);   // no file matches
  BOOST_CHECK_THROW(Loader({dir / "a.bin", dir / "b.bin"}, config("padded", 8, 1)), Error);  // mixed tokenizers
  LoaderConfig c = config("padded", 8, 1);
  c.rank = 2;
  c.world_size = 2;
  BOOST_CHECK_THROW(Loader({dir / "a.bin"}, c), Error);
}

BOOST_AUTO_TEST_CASE(options_build_both_loaders) {
  // duo-train's data options as a user types them: the two loaders of the run, the reference's lm1b-wrap rows.
  test::TempDir dir("opts");
  write_docs(dir / "train.bin", std::vector<int64_t>(20, 5));
  write_docs(dir / "valid.bin", std::vector<int64_t>(3, 5));
  boost::program_options::options_description desc;
  add_model_options(desc);
  add_train_options(desc);
  const std::string tr = dir / "train.bin", va = dir / "valid.bin";
  const char* argv[] = {"x", "--data.train", tr.c_str(), "--data.valid", va.c_str(), "--data.wrap", "false",
                        "--loader.batch_size", "4", "--loader.eval_batch_size", "2", "--data.insert_valid_eos", "false",
                        "--data.bos", "3", "--data.eos", "3", "--data.wrap_group_docs", "1000", "--model.length", "8"};
  boost::program_options::variables_map vm;
  boost::program_options::store(boost::program_options::parse_command_line(21, argv, desc), vm);
  const TrainConfig c = train_config_from(vm);
  const LoaderConfig t = loader_config(c, true), v = loader_config(c, false);
  BOOST_TEST(t.mode == "padded");
  BOOST_TEST(t.batch_size == 4);
  BOOST_TEST((t.shuffle && t.infinite && t.insert_eos));
  BOOST_TEST(v.batch_size == 2);
  BOOST_TEST((!v.shuffle && !v.infinite && !v.insert_eos));
  BOOST_TEST((t.bos == 3 && t.eos == 3 && v.bos == 3 && v.eos == 3));
  BOOST_TEST((t.wrap_group_docs == 1000 && v.wrap_group_docs == 1000));
  BOOST_TEST(t.length == 8);
  Loader train({c.train_glob}, t), valid({c.valid_glob}, v);
  BOOST_TEST(train.n_blocks() == 20);
  BOOST_TEST(valid.n_blocks() == 3);
}

// Values that cannot mean anything are refused naming the option, and a --config that is not a file is an
// error, not "nothing applied" (issue 17).
BOOST_AUTO_TEST_CASE(bad_option_values_and_config_paths_are_refused) {
  test::TempDir dir("badopt");
  write_docs(dir / "train.bin", std::vector<int64_t>(20, 5));
  const std::string tr = dir / "train.bin";
  auto parse = [&](std::vector<std::string> extra) {
    boost::program_options::options_description desc;
    desc.add_options()("help", "");
    add_model_options(desc);
    add_train_options(desc);
    std::vector<std::string> args = {"duo-train", "--data.train", tr};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    boost::program_options::variables_map vm;
    parse_command_line((int)argv.size(), argv.data(), desc, vm, "usage");
    return train_config_from(vm);
  };
  auto refused = [&](std::vector<std::string> extra, const std::string& needle) {
    try {
      parse(extra);
      BOOST_ERROR("accepted " << extra[0] << " " << extra[1]);
    } catch (const Error& e) {
      BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
  };
  BOOST_TEST(parse({}).optim.ema > 0);  // the defaults pass
  refused({"--training.ema", "-0.5"}, "--training.ema: must be in [0, 1)");
  refused({"--trainer.gradient_clip_val", "-1"}, "--trainer.gradient_clip_val: must be >= 0");
  refused({"--algo.T", "-3"}, "--algo.T: must be >= 0");
  refused({"--trainer.val_check_interval", "-10"}, "--trainer.val_check_interval: must be >= 0");
  refused({"--config", dir.path.string()}, "the --config file is a directory, not a regular file");
  refused({"--config", dir / "missing.ini"}, "cannot open the --config file");
  { std::ofstream(dir / "good.ini") << "optim.lr = 0.25\n"; }
  BOOST_TEST(parse({"--config", dir / "good.ini"}).optim.lr == 0.25);
}

// An option name or value holding one of Boost's message placeholders (`%value%`, `%canonical_option%`) made
// Boost's what() loop forever (a fuzzed --config file found it): the error is reported once, with the text as
// given.
BOOST_AUTO_TEST_CASE(option_errors_with_placeholder_text_are_reported) {
  test::TempDir dir("placeholder");
  auto message = [&](std::vector<std::string> args) -> std::string {
    boost::program_options::options_description desc;
    desc.add_options()("help", "");
    add_model_options(desc);
    add_train_options(desc);
    args.insert(args.begin(), "duo-train");
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    boost::program_options::variables_map vm;
    try {
      parse_command_line((int)argv.size(), argv.data(), desc, vm, "usage");
    } catch (const boost::program_options::error& e) {
      return option_error_message(e);
    } catch (const Error& e) {
      return e.what();
    }
    return "accepted";
  };
  BOOST_TEST(message({"--model.length=%value%"}) ==
             "the argument ('%value%') for option '--model.length' is invalid");
  BOOST_TEST(message({"--x%canonical_option%=1"}) == "unrecognised option '--x%canonical_option%=1'");
  BOOST_TEST(message({"--model.length=12x"}) == "the argument ('12x') for option '--model.length' is invalid");
  {
    std::ofstream f(dir / "bad.ini", std::ios::binary);
    f << std::string("algo = duo\0\0evice = cpu\nse%original_token%ed =checkpointing.o%canonical_option%k=_p$  5\n",
                     88);
  }
  const std::string bad = message({"--config", dir / "bad.ini"});
  BOOST_TEST(bad.find("bad.ini") != std::string::npos, bad);
  BOOST_TEST(bad.find("se%original_token%ed") != std::string::npos, bad);
}

BOOST_AUTO_TEST_SUITE_END()
