// Fuzz target: config.json of a Hugging Face model folder (io/hf.h), then the parameter table of the model it
// describes (what loading the folder's weights builds next).
#include "fuzz_util.h"
#include "io/hf.h"
#include "model/params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  duo::fuzz::write_file("config.json", duo::fuzz::as_text(data, size));
  duo::fuzz::expect_clean([&] {
    const duo::HfConfig h = duo::read_hf_config(duo::fuzz::scratch_dir());
    const duo::ParamTable table(h.model);
    (void)table.total();
  });
  return 0;
}
