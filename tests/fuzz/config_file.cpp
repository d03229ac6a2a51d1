// Fuzz target: an ini-style --config file of duo-train (io/cli.h), read with duo-train's option table and then
// turned into the model and training configurations as duo-train does.
#include "fuzz_util.h"
#include "io/cli.h"
#include "train/train_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = duo::fuzz::write_file("train.ini", duo::fuzz::as_text(data, size));
  duo::fuzz::expect_clean([&] {
    duo::po::options_description desc("duo-train options");
    desc.add_options()("help,h", "show this help");
    duo::add_model_options(desc);
    duo::add_train_options(desc);
    duo::po::variables_map vm;
    std::string config_arg = "--config=" + path;
    char program[] = "duo-train";
    char* argv[] = {program, config_arg.data(), nullptr};
    try {
      if (!duo::parse_command_line(2, argv, desc, vm, "usage")) return;
    } catch (const duo::po::error& e) {
      (void)duo::option_error_message(e);  // what run_main prints (Boost's own what() can loop, cli.cpp)
      return;
    }
    (void)duo::model_config_from(vm);
    (void)duo::train_config_from(vm);
  });
  return 0;
}
