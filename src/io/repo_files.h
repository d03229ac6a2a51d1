// Files the engine ships in its repository and reads at run time: the vendored tokenizer files and corpus
// (data/vendor/, sources and licences in data/vendor/README.md) and the integral tables (integral/). They are
// found from the working directory (the repository root, where make and the scripts run) or from the running
// executable's folder (build/duo-*, build/cuda/duo-*: one or two levels below the root), so an executable
// started from elsewhere still finds them.
#pragma once
#include <string>

namespace duo {

// The path of the repository file `relative` (e.g. "integral/gpt2.bin"), or "" when it is found neither from
// the working directory nor from the executable's folder and its parents.
std::string repo_file(const std::string& relative);

// data/vendor of the repository; "" when not found.
std::string vendor_dir();

// The folder of a tokenizer's files: `given` if not empty, else <vendor_dir>/<name>; "" when neither exists.
std::string find_vocab_dir(const std::string& name, const std::string& given);

}  // namespace duo
