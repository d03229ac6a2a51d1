#include "backend/comm_mpi.h"
#include <mpi.h>
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>
#include "core/error.h"

namespace duo {

bool launched_by_mpi() { return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK"); }

int mpi_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::atoi(v);
  return 0;
}

namespace {

// Messages of at most this many elements: MPI counts are int, and a chain of ranks pipelines chunk by chunk.
constexpr size_t kChunk = size_t(1) << 20;

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail(std::string("MPI ") + call, std::string(text, (size_t)len), "check the launch (mpirun -np N ...) and the MPI installation");
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    DUO_CHECK(!initialized, "MPI", "initialised twice in one process", "make one communicator per process");
    int provided = 0;
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  // A rank that fails (an exception leaving the scope that owns the communicator) does not finalise:
  // MPI_Finalize would wait for ranks that may be waiting for this one. Exiting without it (status 1, after
  // run_main prints the error) makes mpirun stop every rank.
  ~MpiComm() override {
    if (std::uncaught_exceptions() == 0) MPI_Finalize();
  }

  const char* name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  // A chain: rank r receives the partial sum of ranks 0..r-1, adds its own values (partial + x, in that order),
  // passes it on; the last rank holds the sum in rank order and broadcasts it.
  void all_reduce_sum(double* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    chain_sum(data, n);
    broadcast(data, n * sizeof(double), size_ - 1);
  }

  // The same chain; the last rank then sends each rank its part.
  void reduce_scatter_sum(double* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    chain_sum(data, n);
    const Parts parts = shard_parts(n);
    const RankRange mine = shard_range((long long)n, rank_, size_);
    check(MPI_Scatterv(data, parts.counts.data(), parts.offsets.data(), MPI_DOUBLE,
                       rank_ == size_ - 1 ? MPI_IN_PLACE : data + mine.begin, (int)(mine.end - mine.begin), MPI_DOUBLE,
                       size_ - 1, MPI_COMM_WORLD),
          "MPI_Scatterv");
  }

  // Host float32 (the CPU backend's buffers): summed in float64 in rank order, rounded once.
  void all_reduce_sum(float* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    std::vector<double> wide(data, data + n);
    all_reduce_sum(wide.data(), n);
    std::copy(wide.begin(), wide.end(), data);
  }

  void reduce_scatter_sum(float* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    std::vector<double> wide(data, data + n);
    reduce_scatter_sum(wide.data(), n);
    const RankRange mine = shard_range((long long)n, rank_, size_);
    std::copy(wide.begin() + mine.begin, wide.begin() + mine.end, data + mine.begin);
  }

  void all_gather(float* data, size_t n) override {
    if (size_ == 1 || n == 0) return;
    const Parts parts = shard_parts(n);
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, parts.counts.data(), parts.offsets.data(),
                         MPI_FLOAT, MPI_COMM_WORLD),
          "MPI_Allgatherv");
  }

  void broadcast(void* data, size_t bytes, int root) override {
    for (size_t off = 0; off < bytes; off += kChunk * 8) {
      const int c = (int)std::min(kChunk * 8, bytes - off);
      check(MPI_Bcast(static_cast<char*>(data) + off, c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }

  void barrier() override { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

 private:
  // Leaves Σ over ranks, in rank order, in the last rank's data (chunk by chunk, so the ranks work in a pipeline).
  void chain_sum(double* data, size_t n) {
    std::vector<double> partial(std::min(n, kChunk));
    for (size_t off = 0; off < n; off += kChunk) {
      const int c = (int)std::min(kChunk, n - off);
      double* x = data + off;
      if (rank_ > 0) {
        check(MPI_Recv(partial.data(), c, MPI_DOUBLE, rank_ - 1, kTag, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
        for (int i = 0; i < c; ++i) x[i] = partial[(size_t)i] + x[i];
      }
      if (rank_ + 1 < size_) check(MPI_Send(x, c, MPI_DOUBLE, rank_ + 1, kTag, MPI_COMM_WORLD), "MPI_Send");
    }
  }

  // The ranks' parts of n elements (shard_range) as MPI's int counts and offsets.
  struct Parts {
    std::vector<int> counts, offsets;
  };
  Parts shard_parts(size_t n) const {
    DUO_CHECK(n <= (size_t)INT_MAX, "MPI ZeRO-1 collective", str(n, " elements"),
              "more than MPI's int counts: shard a smaller model");
    Parts p;
    for (int r = 0; r < size_; ++r) {
      const RankRange part = shard_range((long long)n, r, size_);
      p.counts.push_back((int)(part.end - part.begin));
      p.offsets.push_back((int)part.begin);
    }
    return p;
  }

  static constexpr int kTag = 19;
  int rank_ = 0, size_ = 1;
};

}  // namespace

std::unique_ptr<Comm> make_mpi_comm() { return std::make_unique<MpiComm>(); }

}  // namespace duo
