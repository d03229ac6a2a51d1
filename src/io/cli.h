// Command-line helpers shared by the executables: Boost.Program_options tables whose long names mirror the
// reference's Hydra keys (--model.hidden_size, --loader.batch_size, ...), an ini-style --config file, and a
// main() wrapper that turns duo::Error into one clear message and exit code 1.
#pragma once
#include <boost/program_options.hpp>
#include <functional>
#include <string>
#include "model/config.h"

namespace duo {

namespace po = boost::program_options;

// Runs body(); prints "error: ..." (with its HINT) for duo::Error and option errors, returns the exit code.
int run_main(const char* program, const std::function<int()>& body);

// The text of an option error, as Boost words it, but safe for any option name or value: Boost's own what()
// never returns when a name or value contains one of its placeholders (`%value%`, `%canonical_option%`).
std::string option_error_message(const po::error& e);

// --model, --model.hidden_size, --model.n_blocks, --model.n_heads, --model.cond_dim, --model.length,
// --model.dropout, --vocab_size, --causal
void add_model_options(po::options_description& desc);
// Preset first, then every explicitly given override; validated.
ModelConfig model_config_from(const po::variables_map& vm);

// Parses argv (and the ini file named by --config, if the table has that option). Prints help and returns
// false when --help was given. Unknown options and bad numbers throw duo::Error.
bool parse_command_line(int argc, char** argv, const po::options_description& desc, po::variables_map& vm,
                        const std::string& usage, const po::positional_options_description* positional = nullptr);

}  // namespace duo
