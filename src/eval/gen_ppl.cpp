#include "eval/gen_ppl.h"
#include <algorithm>
#include <cmath>
#include "core/error.h"
#include "data/unicode.h"

namespace duo {

std::vector<uint8_t> gen_ppl_target_weights(std::span<const int32_t> chunk, int32_t eos) {
  std::vector<uint8_t> w(chunk.empty() ? 0 : chunk.size() - 1);
  int64_t eos_count = chunk.empty() ? 0 : (chunk[0] == eos);  // position 0 is context, but it is counted
  for (size_t j = 1; j < chunk.size(); ++j) {
    eos_count += (chunk[j] == eos);
    w[j - 1] = chunk[j] != eos || eos_count == 1;
  }
  return w;
}

GenPplResult generative_perplexity(Scorer& scorer, const std::vector<std::vector<int32_t>>& samples,
                                   const GenPplOptions& opt) {
  const char* where = "generative perplexity";
  DUO_CHECK(opt.batch_size >= 1 && opt.max_length >= 1, where,
            str("batch size ", opt.batch_size, " and max length ", opt.max_length, " must be positive"), "");
  DUO_CHECK(opt.batch_size <= scorer.max_batch(), where,
            str("batch size ", opt.batch_size, " exceeds the scorer's planned batch ", scorer.max_batch()),
            "build the scorer with max_batch >= eval.perplexity_batch_size");
  const int64_t n = (int64_t)samples.size(), C = scorer.context();
  GenPplResult res;
  const int64_t n_batches = opt.drop_last ? n / opt.batch_size : (n + opt.batch_size - 1) / opt.batch_size;
  res.samples_scored = std::min(n, n_batches * opt.batch_size);
  res.samples_dropped = n - res.samples_scored;

  // Truncate, then right-pad every sample of the call with EOS to the longest of them.   ids (n, N)
  std::vector<int64_t> lengths((size_t)n);
  for (int64_t i = 0; i < n; ++i)
    lengths[(size_t)i] = std::min<int64_t>((int64_t)samples[(size_t)i].size(), opt.max_length);
  const int64_t N = n ? *std::max_element(lengths.begin(), lengths.end()) : 0;
  std::vector<int32_t> ids((size_t)(n * N), opt.eos);
  for (int64_t i = 0; i < n; ++i) std::copy_n(samples[(size_t)i].begin(), lengths[(size_t)i], ids.begin() + i * N);

  std::vector<int32_t> chunk;
  std::vector<int64_t> chunk_lengths;
  std::vector<float> nll;
  for (int64_t i0 = 0; i0 < res.samples_scored; i0 += opt.batch_size) {
    const int64_t B = std::min(opt.batch_size, res.samples_scored - i0);
    // Chunks [c0, c0 + cn) of the scorer's context, each scored on its own (no context carried over).
    for (int64_t c0 = 0; c0 < N; c0 += C) {
      const int64_t cn = std::min(C, N - c0);
      if (cn < 2) continue;  // a one-token chunk has no target
      chunk.resize((size_t)(B * cn));
      chunk_lengths.resize((size_t)B);
      for (int64_t b = 0; b < B; ++b) {
        std::copy_n(ids.begin() + (i0 + b) * N + c0, cn, chunk.begin() + b * cn);
        chunk_lengths[(size_t)b] = std::clamp<int64_t>(lengths[(size_t)(i0 + b)] - c0, 0, cn);
      }
      scorer.target_nll(chunk, chunk_lengths, B, cn, nll);
      for (int64_t b = 0; b < B; ++b) {
        std::span<const int32_t> row(chunk.data() + b * cn, (size_t)cn);
        const std::vector<uint8_t> w = gen_ppl_target_weights(row, opt.eos);
        for (int64_t j = 0; j + 1 < cn; ++j) {
          if (!w[(size_t)j]) continue;
          // A counted target has only real tokens before it: from the first padding position on, every
          // target is a second (or later) EOS. So the scorer's nll is defined wherever the weight is 1.
          DUO_ASSERT(j < chunk_lengths[(size_t)b]);
          res.nll_sum += nll[(size_t)(b * (cn - 1) + j)];
          res.weight += 1;
        }
      }
    }
  }
  return res;
}

void GenPplResult::add(const GenPplResult& other) {
  nll_sum += other.nll_sum;
  weight += other.weight;
  samples_scored += other.samples_scored;
  samples_dropped += other.samples_dropped;
}

double GenPplResult::gen_ppl() const {
  DUO_CHECK(weight > 0, "generative perplexity", str("no token to score in ", samples_scored, " sample(s)"),
            "the samples are empty or only EOS (or drop_last dropped them all: fewer samples than a batch)");
  return std::exp(nll_sum / weight);
}

std::vector<std::vector<int32_t>> retokenize(const std::vector<std::string>& texts, const EncodeFn& encode,
                                             int32_t eos, int64_t vocab_size,
                                             const std::vector<SpecialText>& more_specials) {
  std::vector<SpecialText> specials = {{"<|endoftext|>", eos}};
  for (const SpecialText& s : more_specials)
    if (!s.text.empty() && s.text != specials[0].text) specials.push_back(s);
  // The earliest special text at or after `from` (npos when none), and which one.
  auto next_special = [&](std::string_view text, size_t from, const SpecialText** which) {
    size_t best = std::string_view::npos;
    for (const SpecialText& s : specials) {
      const size_t at = text.find(s.text, from);
      if (at < best) { best = at; *which = &s; }
    }
    return best;
  };
  std::vector<std::vector<int32_t>> out(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string_view text = texts[i];
    auto append = [&](std::string_view piece) {
      if (piece.empty()) return;
      for (uint32_t id : encode(piece)) {
        DUO_CHECK((int64_t)id < vocab_size, "generative perplexity",
                  str("sample ", i, " re-tokenises to id ", id, ", outside the scorer's vocabulary of ", vocab_size),
                  "use the scorer's own tokenizer (GPT-2 BPE for the GPT-2 scorers)");
        out[i].push_back((int32_t)id);
      }
    };
    size_t start = 0;
    const SpecialText* s = nullptr;
    for (size_t at = next_special(text, 0, &s); at != std::string_view::npos; at = next_special(text, start, &s)) {
      append(text.substr(start, at - start));
      out[i].push_back(s->id);
      start = at + s->text.size();
    }
    append(text.substr(start));
  }
  return out;
}

std::vector<std::vector<int32_t>> retokenize(const std::vector<std::string>& texts, const Tokenizer& tokenizer,
                                             int32_t eos, int64_t vocab_size) {
  auto cache = tokenizer.make_cache();
  EncodeFn encode = [&](std::string_view piece) {
    std::vector<uint32_t> ids;
    tokenizer.encode(replace_invalid_utf8(piece), ids, cache.get());
    return ids;
  };
  std::vector<SpecialText> more;
  const SpecialIds sp = tokenizer.specials();
  for (int64_t id : {sp.bos, sp.eos, sp.pad, sp.mask, sp.unk})
    if (id >= 0 && id < vocab_size) more.push_back({tokenizer.id_to_piece((uint32_t)id), (int32_t)id});
  return retokenize(texts, encode, eos, vocab_size, more);
}

}  // namespace duo
