// Fuzz target: the model config JSON stored in a checkpoint's __metadata__ (io/config_json.h), then the
// parameter table of the model it describes.
#include "fuzz_util.h"
#include "io/config_json.h"
#include "model/params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(duo::fuzz::as_text(data, size));
  duo::fuzz::expect_clean([&] {
    const duo::ModelConfig c = duo::config_from_json_text(text, "fuzz.safetensors: __metadata__.config");
    const duo::ParamTable table(c);
    (void)table.total();
  });
  return 0;
}
