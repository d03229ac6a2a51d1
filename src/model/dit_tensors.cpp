#include "model/dit_tensors.h"
#include "model/param_list.h"

namespace duo {

DiTTensors bind_dit_tensors(const ParamTable& table, void* buffer, DType dtype, Device device) {
  DiTTensors p;
  p.blocks.resize((size_t)table.config().n_blocks);
  for_each_param(table.config(), [&](const std::string& name, const std::vector<int64_t>&, Init, int64_t,
                                     const ParamSlot& slot) {
    Tensor t = table.view(buffer, dtype, name);
    t.device = device;
    if (slot.model) p.*slot.model = t;
    else p.blocks[(size_t)slot.block].*slot.in_block = t;
  });
  return p;
}

}  // namespace duo
