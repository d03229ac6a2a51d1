#include "data/loader_options.h"
#include "core/error.h"

namespace duo {

namespace po = boost::program_options;

void add_data_options(po::options_description& desc) {
  desc.add_options()
      ("data.train", po::value<std::vector<std::string>>()->multitoken(), "training shards (paths or glob patterns)")
      ("data.valid", po::value<std::vector<std::string>>()->multitoken(), "validation shards (paths or glob patterns)")
      ("data.mode", po::value<std::string>()->default_value("wrap"),
       "wrap (concatenate, cut into BOS+L-2+EOS blocks) | padded (one document per row) | packed (whole documents "
       "packed into rows)")
      ("data.insert_train_eos", po::value<bool>()->default_value(true), "wrap: EOS between training documents")
      ("data.insert_valid_eos", po::value<bool>()->default_value(true),
       "wrap: EOS between validation documents (zero-shot runs: false)")
      ("data.wrap_group_docs", po::value<int64_t>()->default_value(0),
       "wrap: concatenate per group of N documents and drop each group's remainder (1000 = the reference's blocks)")
      ("data.bos", po::value<int64_t>()->default_value(-1), "BOS id (-1: the tokenizer's)")
      ("data.eos", po::value<int64_t>()->default_value(-1), "EOS id (-1: the tokenizer's; lm1b-wrap uses 101)")
      ("data.pad", po::value<int64_t>()->default_value(-1), "PAD id (-1: the tokenizer's)")
      ("data.verify", po::value<bool>()->default_value(true), "check every shard's crc32 and ids when opening")
      ("loader.batch_size", po::value<int64_t>()->default_value(32), "training rows per batch on each rank")
      ("loader.eval_batch_size", po::value<int64_t>()->default_value(32), "validation rows per batch on each rank");
}

std::vector<std::string> data_patterns(const po::variables_map& vm, bool train) {
  const char* key = train ? "data.train" : "data.valid";
  DUO_CHECK(vm.count(key) && !vm[key].as<std::vector<std::string>>().empty(), str("--", key), "is required",
            str("pass the shards, e.g. --", key, " 'data/tinyshakespeare/char/", train ? "train" : "valid", "_*.bin'"));
  return vm[key].as<std::vector<std::string>>();
}

LoaderConfig loader_config_from(const po::variables_map& vm, bool train, int64_t length, uint64_t seed, int64_t rank,
                                int64_t world_size) {
  LoaderConfig c;
  c.mode = vm["data.mode"].as<std::string>();
  c.length = length;
  c.batch_size = vm[train ? "loader.batch_size" : "loader.eval_batch_size"].as<int64_t>();
  c.insert_eos = vm[train ? "data.insert_train_eos" : "data.insert_valid_eos"].as<bool>();
  c.wrap_group_docs = vm["data.wrap_group_docs"].as<int64_t>();
  c.shuffle = train;
  c.infinite = train;
  c.seed = seed;
  c.rank = rank;
  c.world_size = world_size;
  c.bos = vm["data.bos"].as<int64_t>();
  c.eos = vm["data.eos"].as<int64_t>();
  c.pad = vm["data.pad"].as<int64_t>();
  c.verify_tokens = vm["data.verify"].as<bool>();
  return c;
}

}  // namespace duo
