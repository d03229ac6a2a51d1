// BERT (bert-base-uncased) tokenizer, id-exact with Hugging Face's BertTokenizer (the reference's slow tokenizer,
// do_lower_case=True):
//   1. clean: drop NUL, U+FFFD and control characters (category C*, except \t \n \r); whitespace (\t \n \r and
//      category Zs) becomes ' ';
//   2. put spaces around CJK ideographs (each becomes its own word);
//   3. split on whitespace; per word: lower-case (with Greek final sigma, as Python's str.lower), NFD, remove
//      combining marks (Mn): "Café" -> "cafe";
//   4. split off every punctuation character (category P*, and the ASCII symbol ranges ! - / : - @ [ - ` { - ~);
//   5. WordPiece: greedy longest match from the left, continuation pieces prefixed "##"; a word with no full
//      segmentation, or longer than 100 code points, becomes [UNK].
// Special ids: [PAD]=0, [UNK]=100, [CLS]=101 (BOS), [SEP]=102 (EOS), [MASK]=103. Special-token text in the input
// ("[MASK]") is not recognised: it is tokenised as ordinary text.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>
#include "data/tokenizer.h"

namespace duo {

class BertTokenizer final : public Tokenizer {
 public:
  explicit BertTokenizer(const std::string& vocab_dir);  // reads vocab_dir/vocab.txt (30522 lines)

  std::string name() const override { return "bert-base-uncased"; }
  int64_t vocab_size() const override { return (int64_t)pieces_.size(); }
  SpecialIds specials() const override;
  using Tokenizer::encode;
  void encode(std::string_view text, std::vector<uint32_t>& out, EncodeCache* cache) const override;
  // Joins the pieces with spaces, glues "##" continuations, then applies Hugging Face's
  // clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...), as BertTokenizer.decode does by default.
  std::string decode(std::span<const uint32_t> ids) const override;
  std::string id_to_piece(uint32_t id) const override;

  // Steps 1-4 alone: the words WordPiece sees (exposed for tests and inspection).
  std::vector<std::string> basic_tokenize(std::string_view text) const;

 private:
  void wordpiece(const std::string& word, std::vector<uint32_t>& out) const;
  std::vector<std::string> pieces_;                 // id -> piece
  std::unordered_map<std::string, uint32_t> ids_;  // piece -> id
};

std::unique_ptr<Tokenizer> load_bert(const std::string& vocab_dir);

}  // namespace duo
