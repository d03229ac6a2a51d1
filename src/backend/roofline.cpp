#include "backend/roofline.h"

#include <algorithm>

#include "core/error.h"

namespace duo {

const DeviceSpec& device_spec(const std::string& name) {
  // Data-sheet figures: dense (not sparse) bf16, SXM form factor; host link PCIe Gen5 x16 (Gen4 for the A100),
  // 64 (32) GB/s per direction. Shared memory: 128 bytes per clock and SM, at the clock the bf16 peak implies
  // (H100/H200: 132 SMs × 4096 FLOP a clock = 989.4 TFLOP/s at 1.83 GHz; A100: 108 SMs × 2048 at 1.41 GHz).
  static const std::vector<DeviceSpec> specs = {
      {"h100", "NVIDIA H100 SXM5 80 GB", 989.4e12, 66.9e12, 3.35e12, 64e9, 80e9, 132 * 128 * 1.83e9},
      {"h200", "NVIDIA H200 SXM 141 GB", 989.4e12, 66.9e12, 4.8e12, 64e9, 141e9, 132 * 128 * 1.83e9},
      {"a100", "NVIDIA A100 SXM4 80 GB", 312e12, 19.5e12, 2.039e12, 32e9, 80e9, 108 * 128 * 1.41e9},
  };
  for (const DeviceSpec& s : specs)
    if (s.name == name) return s;
  fail("--device", str("unknown device '", name, "'"), "use h100, h200 or a100");
}

void KernelLog::after(const OpCall& call) {
  const OpTraffic t = cuda_op_traffic(call);
  workspace_ = std::max(workspace_, t.workspace);
  for (const KernelTraffic& k : t.kernels) launches_.push_back({call.kind, k});
}

double roofline_seconds(const KernelTraffic& k, const DeviceSpec& d, const char** bound) {
  const double compute = k.tensor_flops / d.bf16_flops + k.flops / d.fp32_flops;
  const double memory = (k.read + k.written) / d.bandwidth;
  const double shared = k.fragment_bytes / d.shared_bandwidth;
  if (bound) *bound = shared > std::max(compute, memory) ? "shared memory" : compute > memory ? "compute" : "memory";
  return std::max({compute, memory, shared});
}

}  // namespace duo
