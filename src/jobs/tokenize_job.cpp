#include "jobs/tokenize_job.h"
#include <omp.h>
#include <cstdio>
#include <deque>
#include <exception>
#include <filesystem>
#include <memory>
#include "core/error.h"
#include "core/timer.h"
#include "data/char_vocab.h"
#include "data/detokenize.h"
#include "data/shard.h"
#include "data/tokenizer.h"

namespace duo {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBatchBytes = 16u << 20;  // documents are tokenised in parallel batches of about this size
constexpr size_t kBatchDocs = 1u << 16;

// Writes documents to <dir>/<prefix>_NNNNNN.bin, starting a new shard past shard_tokens.
class ShardSequence {
 public:
  ShardSequence(std::string dir, std::string prefix, const Tokenizer& tok, int64_t shard_tokens, TokenizeReport& rep,
                int split)
      : dir_(std::move(dir)), prefix_(std::move(prefix)), tok_(tok), limit_(shard_tokens), rep_(rep), split_(split) {}
  void add(const std::vector<uint32_t>& ids) {
    if (!w_) {
      char name[64];
      std::snprintf(name, sizeof name, "_%06d.bin", index_);
      const std::string path = (fs::path(dir_) / (prefix_ + name)).string();
      w_ = std::make_unique<ShardWriter>(path, tok_.name(), tok_.vocab_size());
      rep_.shards.push_back(path);
      ++index_;
    }
    w_->add_document(ids.data(), ids.size());
    rep_.docs[split_] += 1;
    rep_.tokens[split_] += (int64_t)ids.size();
    if (w_->n_tokens() >= limit_) finish();
  }
  void finish() {
    if (w_) w_->finish();
    w_.reset();
  }

 private:
  std::string dir_, prefix_;
  const Tokenizer& tok_;
  int64_t limit_;
  TokenizeReport& rep_;
  int split_;
  int index_ = 0;
  std::unique_ptr<ShardWriter> w_;
};

std::string human_time(double s) {
  const long t = (long)s;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

// Removes shards of an earlier run so that a glob never mixes old and new files.
void remove_old_shards(const std::string& dir, const std::string& prefix) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string n = e.path().filename().string();
    if (n.rfind(prefix + "_", 0) == 0 && n.size() > 4 && n.compare(n.size() - 4, 4, ".bin") == 0) fs::remove(e.path());
  }
}

// Builds the char vocabulary from the inputs (a first pass) when vocab_chars.txt does not exist yet.
void ensure_char_vocab(const TokenizeOptions& opt, const Detokenizer& detok) {
  const fs::path path = fs::path(opt.vocab_dir) / kCharVocabFile;
  if (fs::exists(path)) return;
  fs::create_directories(opt.vocab_dir);
  DocumentReader reader(opt.inputs, opt.input);
  CharCollector chars;
  std::string doc;
  while (reader.next(doc)) chars.add(detok.apply(std::move(doc)));
  CharTokenizer tok(chars.chars());
  tok.write(path.string());
  if (opt.progress)
    std::fprintf(stderr, "duo-tokenize: wrote %s: %zu characters, vocabulary %lld (with <|endoftext|> and [PAD])\n",
                 path.string().c_str(), tok.chars().size(), (long long)tok.vocab_size());
}

int64_t count_documents(const TokenizeOptions& opt) {
  DocumentReader reader(opt.inputs, opt.input);
  std::string doc;
  int64_t n = 0;
  while (reader.next(doc)) ++n;
  return n;
}

}  // namespace

TokenizeReport tokenize_to_shards(const TokenizeOptions& opt) {
  DUO_CHECK(opt.shard_tokens > 0, "--shard_tokens", "must be positive", "");
  DUO_CHECK(opt.valid_last_docs >= 0, "--valid_last_docs", "must be >= 0", "");
  DUO_CHECK(opt.valid_fraction >= 0 && opt.valid_fraction < 1, "--valid_fraction", "must be in [0, 1)", "");
  DUO_CHECK(!(opt.valid_last_docs > 0 && opt.valid_fraction > 0), "--valid_fraction",
            "cannot be combined with --valid_last_docs", "choose one way to split");
  DUO_CHECK(opt.prefix != "valid" || (opt.valid_last_docs == 0 && opt.valid_fraction == 0), "--prefix",
            "prefix 'valid' already holds the whole input; a split would mix both", "drop the split options");
  const Detokenizer detok(opt.detokenizer);
  if (opt.tokenizer == "char") ensure_char_vocab(opt, detok);
  const auto tok = load_tokenizer(opt.tokenizer, opt.vocab_dir);
  fs::create_directories(opt.output_dir);

  int64_t n_valid = opt.valid_last_docs;
  if (opt.valid_fraction > 0) n_valid = (int64_t)(opt.valid_fraction * (double)count_documents(opt) + 0.5);
  remove_old_shards(opt.output_dir, opt.prefix);
  if (n_valid > 0) remove_old_shards(opt.output_dir, "valid");

  TokenizeReport rep;
  rep.vocab_size = tok->vocab_size();
  ShardSequence train(opt.output_dir, opt.prefix, *tok, opt.shard_tokens, rep, 0);
  ShardSequence valid(opt.output_dir, "valid", *tok, opt.shard_tokens, rep, 1);
  // The last n_valid documents are only known at the end: hold that many back, in order.
  std::deque<std::vector<uint32_t>> held;

  const int threads = opt.threads > 0 ? opt.threads : omp_get_max_threads();
  std::vector<std::unique_ptr<EncodeCache>> caches(threads);
  for (auto& c : caches) c = tok->make_cache();
  DocumentReader reader(opt.inputs, opt.input);
  Timer timer;
  double last_report = 0;
  std::vector<std::string> docs;
  std::vector<std::vector<uint32_t>> ids;
  std::string doc;
  bool more = true;
  while (more) {
    docs.clear();
    size_t bytes = 0;
    while (bytes < kBatchBytes && docs.size() < kBatchDocs && (more = reader.next(doc))) {
      bytes += doc.size();
      docs.push_back(std::move(doc));
    }
    ids.resize(docs.size());
    std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 16)
    for (size_t i = 0; i < docs.size(); ++i) {
      try {
        ids[i].clear();
        tok->encode(detok.apply(std::move(docs[i])), ids[i], caches[omp_get_thread_num()].get());
      } catch (...) {
#pragma omp critical
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    rep.bytes += bytes;
    for (size_t i = 0; i < docs.size(); ++i) {
      if (n_valid == 0) {
        train.add(ids[i]);
        continue;
      }
      held.push_back(std::move(ids[i]));
      if ((int64_t)held.size() > n_valid) {
        train.add(held.front());
        held.pop_front();
      }
    }
    const double t = timer.seconds();
    if (opt.progress && (t - last_report >= 2 || !more)) {
      last_report = t;
      const double done = (double)reader.bytes_done(), total = (double)std::max<uint64_t>(1, reader.bytes_total());
      const double mbs = (double)rep.bytes / 1e6 / std::max(t, 1e-9);
      const double eta = done > 0 ? t * (total - done) / done : 0;
      std::fprintf(stderr, "duo-tokenize: %.1f / %.1f MB (%.0f%%), %.1f MB/s, %lld docs, %lld tokens, ETA %s\n",
                   done / 1e6, total / 1e6, 100 * done / total, mbs, (long long)(rep.docs[0] + rep.docs[1] + held.size()),
                   (long long)(rep.tokens[0] + rep.tokens[1]), human_time(eta).c_str());
    }
  }
  DUO_CHECK((int64_t)held.size() == n_valid || n_valid == 0, "--valid_last_docs",
            str("asks for ", n_valid, " validation documents but the input has only ", held.size()),
            "use a smaller number");
  for (const auto& d : held) valid.add(d);
  train.finish();
  valid.finish();
  DUO_CHECK(rep.docs[0] + rep.docs[1] > 0, opt.inputs[0], "no documents in the input", "the input files are empty");
  rep.seconds = timer.seconds();
  return rep;
}

}  // namespace duo
