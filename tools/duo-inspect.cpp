// duo-inspect: prints what a file or a model configuration contains.
//   duo-inspect --model small --vocab_size 50258 [--causal]     the parameter table and the total
//   duo-inspect SHARD [--vocab DIR] [--docs N]                   a shard's header and its first documents, decoded
//   duo-inspect --ids SHARD                                      token ids, one document per line
#include <filesystem>
#include <iostream>
#include "core/error.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "io/cli.h"
#include "model/params.h"

namespace {

namespace fs = std::filesystem;

// The tokenizer files for decoding a shard: --vocab, else the shard's own folder (char vocabularies live with
// their shards), else the shared data folder or data/.vocab (where the data scripts keep downloads).
std::string find_vocab(const duo::ShardInfo& info, const std::string& shard, const std::string& given) {
  if (!given.empty()) return given;
  const std::string dir = fs::path(shard).parent_path().string();
  if (info.tokenizer == "char") return dir.empty() ? "." : dir;
  for (const char* root : {"shared/data", "../shared/data", "../../shared/data", "data/.vocab"}) {
    const fs::path p = fs::path(root) / info.tokenizer;
    if (fs::exists(p)) return p.string();
  }
  return "";
}

void print_shard(const std::string& path, const std::string& vocab, int64_t docs) {
  duo::Shard s(path);
  const duo::ShardInfo& i = s.info();
  std::cout << path << "\n  tokenizer   " << i.tokenizer << "\n  vocab_size  " << i.vocab_size
            << "\n  token dtype uint" << 8 * i.token_bytes << "\n  tokens      " << i.n_tokens << "\n  documents   "
            << i.n_docs << "\n  tokens/doc  " << (i.n_docs ? (double)i.n_tokens / (double)i.n_docs : 0.0) << "\n";
  const std::string dir = find_vocab(i, path, vocab);
  std::unique_ptr<duo::Tokenizer> tok;
  if (!dir.empty()) tok = duo::load_tokenizer(i.tokenizer, dir);
  if (!tok) std::cout << "  (no tokenizer files found for decoding; pass --vocab DIR)\n";
  for (int64_t d = 0; d < std::min<int64_t>(docs, i.n_docs); ++d) {
    auto ids = s.document(d);
    const bool cut = ids.size() > 64;
    if (cut) ids.resize(64);
    std::cout << "\n-- document " << d << " (" << s.doc_end(d) - s.doc_begin(d) << " tokens)" << (cut ? ", first 64" : "")
              << "\n";
    if (tok) std::cout << tok->decode(ids) << "\n";
    for (uint32_t id : ids) std::cout << id << ' ';
    std::cout << "\n";
  }
}

void print_ids(const std::string& path) {
  duo::Shard s(path);
  std::string line;
  for (int64_t d = 0; d < s.n_docs(); ++d) {
    line.clear();
    for (int64_t t = s.doc_begin(d); t < s.doc_end(d); ++t) {
      if (t > s.doc_begin(d)) line += ' ';
      line += std::to_string(s.token(t));
    }
    line += '\n';
    std::cout << line;
  }
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-inspect", [&] {
    duo::po::options_description desc("duo-inspect options");
    desc.add_options()("help,h", "show this help")
        ("shard", duo::po::value<std::string>(), "a token shard (positional)")
        ("ids", duo::po::bool_switch(), "print the shard's token ids, one document per line")
        ("vocab", duo::po::value<std::string>()->default_value(""), "tokenizer folder for decoding a shard")
        ("docs", duo::po::value<int64_t>()->default_value(3), "documents to show");
    duo::add_model_options(desc);
    duo::po::positional_options_description pos;
    pos.add("shard", 1);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-inspect --model tiny|small|medium [--vocab_size K] [--causal]\n"
                                 "       duo-inspect SHARD [--vocab DIR] [--docs N]\n"
                                 "       duo-inspect --ids SHARD",
                                 &pos))
      return 0;
    if (vm.count("shard")) {
      const std::string shard = vm["shard"].as<std::string>();
      if (vm["ids"].as<bool>())
        print_ids(shard);
      else
        print_shard(shard, vm["vocab"].as<std::string>(), vm["docs"].as<int64_t>());
      return 0;
    }
    DUO_CHECK(!vm["ids"].as<bool>(), "--ids", "needs a shard file", "duo-inspect --ids data/x/train_000000.bin");
    duo::ModelConfig cfg = duo::model_config_from(vm);
    duo::ParamTable table(cfg);
    std::cout << cfg.describe() << "\n\n" << table.describe();
    return 0;
  });
}
