#include "data/blocks.h"
#include <algorithm>
#include "core/error.h"

namespace duo {

Corpus::Corpus(const std::vector<std::string>& paths, bool verify_tokens) {
  DUO_CHECK(!paths.empty(), "data", "no shard files given", "pass --data.train / --data.valid shard patterns");
  doc_start_.push_back(0);
  for (const auto& p : paths) {
    shards_.push_back(std::make_unique<Shard>(p, verify_tokens));
    const ShardInfo& a = shards_.front()->info();
    const ShardInfo& b = shards_.back()->info();
    DUO_CHECK(a.tokenizer == b.tokenizer && a.vocab_size == b.vocab_size, p,
              str("tokenizer ", b.tokenizer, " (vocab ", b.vocab_size, ") differs from ", paths.front(), "'s ",
                  a.tokenizer, " (vocab ", a.vocab_size, ")"),
              "all shards of one loader must come from the same tokenizer");
    doc_start_.push_back(doc_start_.back() + b.n_docs);
    n_tokens_ += b.n_tokens;
  }
}

std::pair<const Shard*, int64_t> Corpus::locate(int64_t d) const {
  DUO_ASSERT(d >= 0 && d < n_docs());
  const size_t s = std::upper_bound(doc_start_.begin(), doc_start_.end(), d) - doc_start_.begin() - 1;
  return {shards_[s].get(), d - doc_start_[s]};
}

int64_t Corpus::doc_length(int64_t d) const {
  auto [s, k] = locate(d);
  return s->doc_end(k) - s->doc_begin(k);
}

void Corpus::copy(int64_t d, int64_t begin, int64_t n, int32_t* out) const {
  auto [s, k] = locate(d);
  DUO_ASSERT(begin >= 0 && begin + n <= s->doc_end(k) - s->doc_begin(k));
  s->copy(s->doc_begin(k) + begin, n, out);
}

BlockLayout::BlockLayout(const Corpus& corpus, const BlockOptions& opt) : corpus_(corpus), opt_(opt) {
  const int64_t L = opt.length;
  DUO_CHECK(L >= 3, "--model.length", str("is ", L, "; rows need room for BOS, a token and EOS"), "use L >= 3");
  const int64_t D = corpus.n_docs();
  if (opt.mode == "wrap") {
    DUO_CHECK(opt.group_docs >= 0, "--data.wrap_group_docs", "must be >= 0", "");
    const int64_t piece = L - 2;
    doc_pos_.resize(D + 1);
    doc_pos_[0] = 0;
    for (int64_t d = 0; d < D; ++d) doc_pos_[d + 1] = doc_pos_[d] + corpus.doc_length(d) + (opt.insert_eos ? 1 : 0);
    const int64_t G = opt.group_docs > 0 ? opt.group_docs : std::max<int64_t>(D, 1);
    for (int64_t first = 0; first < D; first += G) {
      const int64_t last = std::min(D, first + G);
      group_first_block_.push_back(n_blocks_);
      group_pos_.push_back(doc_pos_[first]);
      n_blocks_ += (doc_pos_[last] - doc_pos_[first]) / piece;  // the group's remainder is dropped
    }
  } else if (opt.mode == "padded") {
    n_blocks_ = D;
  } else if (opt.mode == "packed") {
    int64_t used = L;  // forces a new row for the first document
    for (int64_t d = 0; d < D; ++d) {
      const int64_t need = std::min(corpus.doc_length(d) + 2, L);
      if (used + need > L) {
        row_first_doc_.push_back(d);
        used = 0;
      }
      used += need;
    }
    n_blocks_ = (int64_t)row_first_doc_.size();
    row_first_doc_.push_back(D);
  } else {
    fail("--data.mode", str("unknown mode '", opt.mode, "'"), "use wrap, padded or packed");
  }
}

void BlockLayout::fill_wrap(int64_t b, int32_t* ids) const {
  const int64_t piece = opt_.length - 2;
  const size_t g = std::upper_bound(group_first_block_.begin(), group_first_block_.end(), b) - group_first_block_.begin() - 1;
  int64_t pos = group_pos_[g] + (b - group_first_block_[g]) * piece;
  int64_t d = std::upper_bound(doc_pos_.begin(), doc_pos_.end(), pos) - doc_pos_.begin() - 1;
  ids[0] = opt_.bos;
  int64_t k = 0;
  while (k < piece) {
    const int64_t off = pos - doc_pos_[d], len = corpus_.doc_length(d);
    if (off < len) {
      const int64_t n = std::min(len - off, piece - k);
      corpus_.copy(d, off, n, ids + 1 + k);
      k += n;
      pos += n;
    } else {  // off == len: the separator after document d (only with insert_eos; else the next doc starts here)
      if (opt_.insert_eos) {
        ids[1 + k++] = opt_.eos;
        ++pos;
      }
      ++d;
    }
  }
  ids[opt_.length - 1] = opt_.eos;
}

void BlockLayout::fill(int64_t b, int32_t* ids, float* mask) const {
  DUO_ASSERT(b >= 0 && b < n_blocks_);
  const int64_t L = opt_.length;
  if (opt_.mode == "wrap") {
    fill_wrap(b, ids);
    std::fill(mask, mask + L, 1.0f);
    return;
  }
  std::fill(ids, ids + L, opt_.pad);
  std::fill(mask, mask + L, 0.0f);
  const int64_t first = opt_.mode == "padded" ? b : row_first_doc_[b];
  const int64_t last = opt_.mode == "padded" ? b + 1 : row_first_doc_[b + 1];
  int64_t at = 0;
  for (int64_t d = first; d < last; ++d) {
    const int64_t n = std::min(corpus_.doc_length(d), L - 2);  // right truncation keeps BOS and EOS
    ids[at] = opt_.bos;
    corpus_.copy(d, 0, n, ids + at + 1);
    ids[at + 1 + n] = opt_.eos;
    std::fill(mask + at, mask + at + n + 2, 1.0f);
    at += n + 2;
  }
}

}  // namespace duo
