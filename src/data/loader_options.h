// Command-line options of the data loaders, named like the reference's Hydra keys, for the executables that
// train or evaluate:  --data.train 'data/owt/train_*.bin' --data.valid 'data/owt/valid_*.bin' --data.mode wrap
// --data.insert_valid_eos false --loader.batch_size 32 --loader.eval_batch_size 16
// (sequence length, seed, rank and world size come from the caller: they belong to the model and the run).
#pragma once
#include <boost/program_options.hpp>
#include <string>
#include <vector>
#include "data/loader.h"

namespace duo {

void add_data_options(boost::program_options::options_description& desc);

// Shard patterns of --data.train / --data.valid (an error naming the option when it is missing).
std::vector<std::string> data_patterns(const boost::program_options::variables_map& vm, bool train);

// The training loader (shuffled, endless) or the validation loader (sequential, one pass) of these options.
LoaderConfig loader_config_from(const boost::program_options::variables_map& vm, bool train, int64_t length,
                                uint64_t seed, int64_t rank = 0, int64_t world_size = 1);

}  // namespace duo
