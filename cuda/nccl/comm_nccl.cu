#include "nccl/comm_nccl.h"
#include <cuda_runtime.h>
#include <nccl.h>
#include <algorithm>
#include <exception>
#include <vector>
#include "backend/shared_file_launch.h"
#include "core/error.h"
#include "cuda_ops.h"

namespace duo {

namespace {

void check_nccl(ncclResult_t r, const char* call) {
  if (r != ncclSuccess)
    fail(str("NCCL ", call), ncclGetErrorString(r), "set NCCL_DEBUG=INFO for NCCL's own account of the failure");
}

void check_cuda(cudaError_t e, const char* call) {
  if (e != cudaSuccess) fail(str("CUDA ", call), cudaGetErrorString(e), "check the GPU with nvidia-smi");
}

// host: the communicator that carries the host collectives (MPI), or nullptr: NCCL carries them too (a
// shared-file launch, which has no other).
class NcclComm final : public Comm {
 public:
  NcclComm(Comm* host, int rank, int size, const ncclUniqueId& id, Ops& ops)
      : host_(host), rank_(rank), size_(size), ops_(ops) {
    auto* cuda = dynamic_cast<CudaOps*>(&ops);
    DUO_CHECK(cuda != nullptr, "NCCL", str("carries GPU buffers, and the backend is ", ops.name()),
              "run with --device cuda");
    ops_stream_ = static_cast<cudaStream_t>(cuda->stream());
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check_cuda(cudaEventCreateWithFlags(&ops_reached_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    check_cuda(cudaEventCreateWithFlags(&sums_done_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  }
  // A failing rank aborts its NCCL communicator (the others may be inside a collective with it).
  ~NcclComm() override {
    if (std::uncaught_exceptions() == 0) ncclCommDestroy(comm_);
    else ncclCommAbort(comm_);
    if (staging_) cudaFree(staging_);
    cudaEventDestroy(ops_reached_);
    cudaEventDestroy(sums_done_);
    cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // Host float64 without MPI: every rank's values gathered through NCCL, then added on the host in rank order,
  // ((x0 + x1) + x2) + ..., the chain's order (backend/comm_mpi.cpp), so every rank gets the same bits.
  void all_reduce_sum(double* data, size_t n) override {
    if (host_) return host_->all_reduce_sum(data, n);
    if (n == 0) return;
    auto* all = static_cast<double*>(stage(n * size_t(size_) * sizeof(double)));
    check_cuda(cudaMemcpyAsync(all + size_t(rank_) * n, data, n * sizeof(double), cudaMemcpyHostToDevice, stream_),
               "cudaMemcpyAsync");
    check_nccl(ncclAllGather(all + size_t(rank_) * n, all, n, ncclFloat64, comm_, stream_), "ncclAllGather");
    std::vector<double> host(n * size_t(size_));
    check_cuda(cudaMemcpyAsync(host.data(), all, host.size() * sizeof(double), cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    for (size_t i = 0; i < n; ++i) {
      double sum = host[i];
      for (int r = 1; r < size_; ++r) sum = sum + host[size_t(r) * n + i];
      data[i] = sum;
    }
  }
  // No host synchronisation: NCCL's stream waits for the backend's stream to reach this point (the backward has
  // issued the ops that write data), sums there while the backend goes on, and finish_started_sums makes the
  // backend's stream wait for the sums.
  void start_all_reduce_sum(float* data, size_t n) override {
    if (n == 0) return;
    check_cuda(cudaEventRecord(ops_reached_, ops_stream_), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream_, ops_reached_, 0), "cudaStreamWaitEvent");
    check_nccl(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
  }
  // Each rank's share of [begin, end) reduced onto it, one grouped ncclReduce per rank whose part meets the range.
  void start_reduce_scatter_sum(float* data, size_t n, size_t begin, size_t end) override {
    if (end <= begin) return;
    check_cuda(cudaEventRecord(ops_reached_, ops_stream_), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(stream_, ops_reached_, 0), "cudaStreamWaitEvent");
    reduce_parts(data, n, begin, end);
  }
  void finish_started_sums() override {
    check_cuda(cudaEventRecord(sums_done_, stream_), "cudaEventRecord");
    check_cuda(cudaStreamWaitEvent(ops_stream_, sums_done_, 0), "cudaStreamWaitEvent");
  }
  // Without MPI every part holds the all-reduce's bits (the rest too).
  void reduce_scatter_sum(double* data, size_t n) override {
    if (host_) return host_->reduce_scatter_sum(data, n);
    all_reduce_sum(data, n);
  }
  // GPU memory: the backend's stream is drained first (it wrote the buffer), then NCCL sums on its own stream.
  void all_reduce_sum(float* data, size_t n) override {
    if (n == 0) return;  // a world of one runs NCCL too (DUO_NCCL_ALWAYS, bench/gpu_check.sh)
    ops_.sync();
    check_nccl(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  // Each rank's part summed onto its owner, the size() reductions in one NCCL group (the parts of shard_range
  // differ in size, which ncclReduceScatter's equal counts do not allow).
  void reduce_scatter_sum(float* data, size_t n) override {
    if (n == 0) return;
    ops_.sync();
    reduce_parts(data, n, 0, n);
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  // Each rank's part broadcast from its owner, the size() broadcasts in one NCCL group.
  void all_gather(float* data, size_t n) override {
    if (n == 0) return;  // a world of one runs NCCL too (DUO_NCCL_ALWAYS, bench/gpu_check.sh)
    ops_.sync();
    for_each_part(n, 0, n, [&](int r, size_t lo, size_t count) {
      check_nccl(ncclBroadcast(data + lo, data + lo, count, ncclFloat32, r, comm_, stream_), "ncclBroadcast");
    });
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void broadcast(void* data, size_t bytes, int root) override {
    if (host_) return host_->broadcast(data, bytes, root);
    if (bytes == 0) return;
    void* d = stage(bytes);
    if (rank_ == root)
      check_cuda(cudaMemcpyAsync(d, data, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync");
    check_nccl(ncclBroadcast(d, d, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    check_cuda(cudaMemcpyAsync(data, d, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }
  void barrier() override {
    if (host_) return host_->barrier();
    void* d = stage(sizeof(float));
    check_nccl(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce");
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

 private:
  // f(owner, first, count) for each rank's part of n elements (shard_range) that meets [begin, end), inside one
  // NCCL group.
  template <class F>
  void for_each_part(size_t n, size_t begin, size_t end, F&& f) {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (int r = 0; r < size_; ++r) {
      const RankRange part = shard_range((long long)n, r, size_);
      const size_t lo = std::max((size_t)part.begin, begin), hi = std::min((size_t)part.end, end);
      if (hi > lo) f(r, lo, hi - lo);
    }
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }
  // The parts of [begin, end) summed onto their owners, on NCCL's stream.
  void reduce_parts(float* data, size_t n, size_t begin, size_t end) {
    for_each_part(n, begin, end, [&](int r, size_t lo, size_t count) {
      check_nccl(ncclReduce(data + lo, data + lo, count, ncclFloat32, ncclSum, r, comm_, stream_), "ncclReduce");
    });
  }

  // Device memory for the host collectives that NCCL carries: grows to the largest asked for, freed at the end.
  void* stage(size_t bytes) {
    if (bytes > staged_) {
      check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
      if (staging_) check_cuda(cudaFree(staging_), "cudaFree");
      staging_ = nullptr;
      staged_ = 0;
      check_cuda(cudaMalloc(&staging_, bytes), "cudaMalloc");
      staged_ = bytes;
    }
    return staging_;
  }

  Comm* host_;
  int rank_, size_;
  Ops& ops_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr, ops_stream_ = nullptr;
  cudaEvent_t ops_reached_ = nullptr, sums_done_ = nullptr;  // recorded again for each start and each finish
  void* staging_ = nullptr;
  size_t staged_ = 0;
};

}  // namespace

std::unique_ptr<Comm> make_nccl_comm(Comm& bootstrap, Ops& ops) {
  ncclUniqueId id{};
  if (bootstrap.rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  bootstrap.broadcast(&id, sizeof id, 0);
  return std::make_unique<NcclComm>(&bootstrap, bootstrap.rank(), bootstrap.size(), id, ops);
}

std::unique_ptr<Comm> make_nccl_comm_shared_file(const SharedFileLaunch& launch, Ops& ops) {
  ncclUniqueId id{};
  if (launch.rank == 0) {
    check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    publish_launch_data(launch, &id, sizeof id);
  } else {
    wait_for_launch_data(launch, &id, sizeof id);
  }
  auto comm = std::make_unique<NcclComm>(nullptr, launch.rank, launch.size, id, ops);
  // ncclCommInitRank returns once every rank has joined, so every rank has read the file.
  if (launch.rank == 0) withdraw_launch_data(launch);
  return comm;
}

}  // namespace duo
