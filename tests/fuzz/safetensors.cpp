// Fuzz target: a safetensors file handed to duo-eval / duo-sample / duo-inspect (io/safetensors.h), then read
// as one of our checkpoints (io/checkpoint.h): header JSON, metadata, the stored model config, and the
// parameters loaded into the table that config describes. See fuzz_util.h for the contract.
#include <vector>
#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(duo::fuzz::as_text(data, size));
  duo::fuzz::expect_clean([&] {
    const duo::SafeTensorsFile f = duo::SafeTensorsFile::parse("fuzz.safetensors", bytes);
    double sum = 0;  // every byte of every tensor is readable
    for (const duo::StTensor& t : f.tensors())
      for (size_t i = 0; i < t.nbytes; ++i) sum += ((const unsigned char*)t.data)[i];
    for (const duo::StTensor& t : f.tensors())
      if (t.shape.size() <= 4) (void)t.view();
    (void)sum;
  });
  duo::fuzz::expect_clean([&] {
    const duo::Checkpoint ck = duo::Checkpoint::open(duo::fuzz::write_file("ck.safetensors", bytes));
    const duo::ParamTable table(ck.config());
    std::vector<float> buffer((size_t)table.total());
    for (duo::Group g : {duo::Group::Params, duo::Group::Ema, duo::Group::AdamM, duo::Group::AdamV})
      ck.load_if_present(g, table, buffer.data());
  });
  return 0;
}
