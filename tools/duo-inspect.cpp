// duo-inspect: prints what a file or a model configuration contains.
//   duo-inspect --model small --vocab_size 50258 [--causal]     the parameter table and the total
#include <iostream>
#include "io/cli.h"
#include "model/params.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-inspect", [&] {
    duo::po::options_description desc("duo-inspect options");
    desc.add_options()("help,h", "show this help");
    duo::add_model_options(desc);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-inspect --model tiny|small|medium [--vocab_size K] [--causal]"))
      return 0;
    duo::ModelConfig cfg = duo::model_config_from(vm);
    duo::ParamTable table(cfg);
    std::cout << cfg.describe() << "\n\n" << table.describe();
    return 0;
  });
}
