// Running one case of the op-test harness on one backend: the case's buffers allocated between guard elements
// and filled with its seeded initial values (CaseBuffers), the op called, the outputs read back and the guards
// checked (run_case). The test suite `ops` and the ops benchmark (bench/ops.cpp) share it.
#pragma once
#include <memory>
#include <vector>
#include "op_harness.h"

namespace duo::test::ops {

// The buffers of one case on one backend, Kind::Float ones in `floats`. Freed with the object.
class CaseBuffers {
 public:
  CaseBuffers(const OpCase& c, Ops& ops, DType floats);
  ~CaseBuffers();
  CaseBuffers(const CaseBuffers&) = delete;
  CaseBuffers& operator=(const CaseBuffers&) = delete;

  std::vector<Tensor>& tensors() { return tensors_; }
  // Every Out / InOut buffer in order, as double; throws duo::Error naming the case, the backend and the buffer
  // when a guard element was overwritten.
  std::vector<std::vector<double>> outputs(const char* backend);

 private:
  struct Alloc;
  const OpCase& case_;
  Ops& ops_;
  std::vector<std::unique_ptr<Alloc>> allocs_;
  std::vector<Tensor> tensors_;
};

// The case once on the backend: its outputs, then its scalar results (if any) as one more output.
std::vector<std::vector<double>> run_case(const OpCase& c, Ops& ops, DType floats, const char* backend);

}  // namespace duo::test::ops
