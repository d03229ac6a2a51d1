#include "nccl/comm_nccl.h"
#include <cuda_runtime.h>
#include <nccl.h>
#include <exception>
#include "core/error.h"

namespace duo {

namespace {

void check_nccl(ncclResult_t r, const char* call) {
  if (r != ncclSuccess)
    fail(str("NCCL ", call), ncclGetErrorString(r), "set NCCL_DEBUG=INFO for NCCL's own account of the failure");
}

void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess) fail(str("CUDA ", call), cudaGetErrorString(e), "check the GPU with nvidia-smi");
}

class NcclComm final : public Comm {
 public:
  NcclComm(Comm& bootstrap, Ops& ops) : boot_(bootstrap), ops_(ops) {
    ncclUniqueId id{};
    if (boot_.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    boot_.broadcast(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&comm_, boot_.size(), id, boot_.rank()), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  // A failing rank aborts its NCCL communicator (the others may be inside a collective with it).
  ~NcclComm() override {
    if (std::uncaught_exceptions() == 0) ncclCommDestroy(comm_);
    else ncclCommAbort(comm_);
    cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "nccl"; }
  int rank() const override { return boot_.rank(); }
  int size() const override { return boot_.size(); }
  void all_reduce_sum(double* data, size_t n) override { boot_.all_reduce_sum(data, n); }
  // GPU memory: the backend's stream is drained first (it wrote the buffer), then NCCL sums on its own stream.
  void all_reduce_sum(float* data, size_t n) override {
    if (n == 0) return;  // a world of one runs NCCL too (DUO_NCCL_ALWAYS, bench/gpu_check.sh)
    ops_.sync();
    check_nccl(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void reduce_scatter_sum(double* data, size_t n) override { boot_.reduce_scatter_sum(data, n); }
  // Each rank's part summed onto its owner, the size() reductions in one NCCL group (the parts of shard_range
  // differ in size, which ncclReduceScatter's equal counts do not allow).
  void reduce_scatter_sum(float* data, size_t n) override {
    if (n == 0) return;
    ops_.sync();
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size(); ++r) {
      const RankRange part = shard_range((long long)n, r, size());
      float* at = data + part.begin;
      if (part.end > part.begin)
        check_nccl(ncclReduce(at, at, (size_t)(part.end - part.begin), ncclFloat32, ncclSum, r, comm_, stream_),
                   "ncclReduce");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  // Each rank's part broadcast from its owner, the size() broadcasts in one NCCL group.
  void all_gather(float* data, size_t n) override {
    if (n == 0) return;  // a world of one runs NCCL too (DUO_NCCL_ALWAYS, bench/gpu_check.sh)
    ops_.sync();
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size(); ++r) {
      const RankRange part = shard_range((long long)n, r, size());
      float* at = data + part.begin;
      if (part.end > part.begin)
        check_nccl(ncclBroadcast(at, at, (size_t)(part.end - part.begin), ncclFloat32, r, comm_, stream_),
                   "ncclBroadcast");
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void broadcast(void* data, size_t bytes, int root) override { boot_.broadcast(data, bytes, root); }
  void barrier() override { boot_.barrier(); }

 private:
  Comm& boot_;
  Ops& ops_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& bootstrap, Ops& ops) { return std::make_unique<NcclComm>(bootstrap, ops); }

}  // namespace duo
