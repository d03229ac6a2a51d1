// The roofline of a sequence of ops on the CUDA backend (docs/architecture.md §5): a KernelLog observes the ops
// a backend runs (PlanOps, or CudaOps itself), turns each into the kernels CudaOps launches for it
// (kernel_traffic.h), and prices every launch on a device's data-sheet peaks:
//   time = max(tensor FLOPs / bf16 dense peak + other FLOPs / fp32 peak, bytes / memory bandwidth,
//              fragment bytes / shared-memory bandwidth)
// with no launch overhead, no overlap between kernels and perfect caching inside a launch: a lower bound on a
// real step that is reached only by kernels at their roofline.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "backend/kernel_traffic.h"

namespace duo {

struct DeviceSpec {
  std::string name;         // "h100"
  std::string description;  // "NVIDIA H100 SXM5 80 GB"
  double bf16_flops;        // dense tensor-core peak, FLOP/s
  double fp32_flops;        // CUDA-core fp32 peak, FLOP/s
  double bandwidth;         // HBM, bytes/s
  double host_link;         // host <-> device, bytes/s per direction (PCIe)
  double memory;            // bytes of device memory
  double shared_bandwidth;  // shared memory to the SMs' registers, all SMs, bytes/s (ldmatrix's fragments)
};
// h100, h200, a100 (SXM parts); throws naming --device for another name.
const DeviceSpec& device_spec(const std::string& name);

struct LaunchRecord {
  OpKind op;
  KernelTraffic k;
};

class KernelLog : public OpObserver {
 public:
  void after(const OpCall& call) override;
  const std::vector<LaunchRecord>& launches() const { return launches_; }
  size_t max_workspace() const { return workspace_; }  // the largest scratch any op asked for
  void clear() { launches_.clear(); }

 private:
  std::vector<LaunchRecord> launches_;
  size_t workspace_ = 0;
};

// Roofline time of one launch on a device, seconds; bound: "compute" or "memory".
double roofline_seconds(const KernelTraffic& k, const DeviceSpec& d, const char** bound = nullptr);

}  // namespace duo
