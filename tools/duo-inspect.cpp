// duo-inspect: prints what a file or a model configuration contains.
//   duo-inspect --model small --vocab_size 50258 [--causal]     the parameter table and the total
//   duo-inspect SHARD [--vocab DIR] [--docs N]                   a shard's header and its first documents, decoded
//   duo-inspect --ids SHARD                                      token ids, one document per line
//   duo-inspect FILE.safetensors | HF_FOLDER [--stats]            metadata, then every tensor's name, dtype and
//                                                                shape (--stats: min, max, mean |x|, non-finite)
//   duo-inspect TABLE.bin                                        an integral table's header (integral/*.bin)
// The kind of file is told by its first bytes (shards start "DUOTOKEN", integral tables "DUOINTGL").
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include "algo/integral_table.h"
#include "core/error.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "io/repo_files.h"
#include "io/cli.h"
#include "io/safetensors.h"
#include "io/weights.h"
#include "model/params.h"

namespace {

namespace fs = std::filesystem;

// The tokenizer files for decoding a shard: --vocab, else the shard's own folder (char vocabularies live with
// their shards), else the vendored copy (io/repo_files.h).
std::string find_vocab(const duo::ShardInfo& info, const std::string& shard, const std::string& given) {
  if (!given.empty()) return given;
  const std::string dir = fs::path(shard).parent_path().string();
  if (info.tokenizer == "char") return dir.empty() ? "." : dir;
  return duo::find_vocab_dir(info.tokenizer, "");
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

// The first 8 bytes of a file ("" when shorter or unreadable).
std::string magic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char b[8];
  if (!f.read(b, 8)) return "";
  return std::string(b, 8);
}

// Element i of a tensor as a double, whatever its dtype (data offsets need not be aligned: memcpy).
double element(const duo::StTensor& t, int64_t i) {
  const char* p = static_cast<const char*>(t.data) + (size_t)i * duo::dtype_size(t.dtype);
  auto get = [p]<class T>(T) { T v; std::memcpy(&v, p, sizeof v); return v; };
  switch (t.dtype) {
    case duo::DType::F32: return get(float{});
    case duo::DType::F64: return get(double{});
    case duo::DType::BF16: return duo::bf16_to_float(get(uint16_t{}));
    case duo::DType::F16: return duo::f16_to_float(get(uint16_t{}));
    case duo::DType::I32: return get(int32_t{});
    case duo::DType::I64: return (double)get(int64_t{});
    case duo::DType::U16: return get(uint16_t{});
    case duo::DType::U32: return get(uint32_t{});
    case duo::DType::U8: return get(uint8_t{});
  }
  return NAN;
}

void print_safetensors(const std::string& path, bool stats) {
  const duo::SafeTensorsFile f = duo::SafeTensorsFile::open(path);
  std::cout << path << "\n  metadata (" << f.metadata().size() << " keys)\n";
  for (const auto& [key, value] : f.metadata()) {
    const bool cut = value.size() > 160;
    std::cout << "    " << key << " = " << (cut ? value.substr(0, 160) + " ... (" + std::to_string(value.size()) + " chars)"
                                                : value) << "\n";
  }
  size_t width = 4, shape_width = 4, bytes = 0;
  int64_t elements = 0;
  for (const duo::StTensor& t : f.tensors()) {
    width = std::max(width, t.name.size());
    shape_width = std::max(shape_width, t.shape_str().size());
    bytes += t.nbytes;
    elements += t.numel();
  }
  std::cout << "  tensors (" << f.tensors().size() << ", " << elements << " elements, " << bytes << " bytes)\n";
  for (const duo::StTensor& t : f.tensors()) {
    std::cout << "    " << std::left << std::setw((int)width) << t.name << "  " << std::setw(4)
              << duo::dtype_name(t.dtype) << "  " << std::setw((int)shape_width) << t.shape_str();
    if (stats) {
      double lo = INFINITY, hi = -INFINITY, abs_sum = 0;
      int64_t bad = 0;
      for (int64_t i = 0; i < t.numel(); ++i) {
        const double v = element(t, i);
        if (!std::isfinite(v)) { ++bad; continue; }
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        abs_sum += std::abs(v);
      }
      const int64_t good = t.numel() - bad;
      std::cout << "  min " << (good ? lo : NAN) << "  max " << (good ? hi : NAN) << "  mean|x| "
                << (good ? abs_sum / (double)good : NAN);
      if (bad) std::cout << "  NON-FINITE " << bad;
    }
    std::cout << "\n";
  }
}

void print_integral_table(const std::string& path) {
  const duo::IntegralTable t = duo::IntegralTable::read(path);
  std::cout << path << "\n  Diffusion Transformation table\n  vocab_size  " << t.vocab_size() << "\n  gamma grid  ["
            << t.gamma_min() << ", " << t.gamma_max() << "], " << t.num_points() << " points (spacing " << t.spacing()
            << ")\n  alpha       " << t.alpha().front() << " at gamma_min, " << t.alpha().back() << " at gamma_max\n";
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-inspect", [&] {
    duo::po::options_description desc("duo-inspect options");
    desc.add_options()("help,h", "show this help")
        ("shard", duo::po::value<std::string>(), "a token shard, safetensors file, Hugging Face folder or integral "
         "table (positional)")
        ("stats", duo::po::bool_switch(), "safetensors: per-tensor min, max, mean |x| and non-finite count")
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
                                 "       duo-inspect --ids SHARD\n"
                                 "       duo-inspect FILE.safetensors|HF_FOLDER [--stats]\n"
                                 "       duo-inspect integral/TABLE.bin",
                                 &pos))
      return 0;
    if (vm.count("shard")) {
      std::string shard = vm["shard"].as<std::string>();
      if (fs::is_directory(shard)) {
        DUO_CHECK(fs::exists(fs::path(shard) / "model.safetensors"), shard,
                  "is a folder without model.safetensors", "pass a shard, a .safetensors file or a Hugging Face folder");
        shard = (fs::path(shard) / "model.safetensors").string();
      }
      DUO_CHECK(fs::exists(shard), shard, "does not exist", "pass a shard, a .safetensors file or an integral table");
      const std::string kind = magic(shard);
      if (kind != "DUOTOKEN") {
        DUO_CHECK(!vm["ids"].as<bool>(), "--ids", shard + " is not a token shard", "pass a shard (data/x/train_*.bin)");
        if (kind == duo::IntegralTable::kMagic) print_integral_table(shard);
        else print_safetensors(shard, vm["stats"].as<bool>());
      } else if (vm["ids"].as<bool>())
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
