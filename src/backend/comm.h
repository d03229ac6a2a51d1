// The processes of a data-parallel run and their collectives: the one interface the trainer, the evaluation
// and the sampling jobs use, whatever carries the bytes (nothing in a single process, Open MPI between CPU
// processes, NCCL between GPUs, cuda/nccl/).
//
//   duo::Processes p = duo::start_processes("cpu", 0);  // backend/select.h: MPI when launched by mpirun, else one
//   p.comm->all_reduce_sum(grads, n);                   // the backend's buffer, summed over the ranks
//   if (p.comm->rank() == 0) save(...);
//
// Reduction order: host float64 sums (all_reduce_sum(double*)) are formed in rank order, ((x0 + x1) + x2) + ...,
// and every rank receives the same bits; a run's numbers therefore do not depend on the MPI library's choice of
// algorithm. The float32 sum of backend buffers is the same on the CPU (MPI: float64 in rank order, rounded once);
// NCCL sums float32 in its own ring order (the same bits on every rank, not necessarily those of one process).
#pragma once
#include <cstddef>

namespace duo {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual const char* name() const = 0;  // "single", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Host memory: data[i] = Σ over ranks in rank order, on every rank.
  virtual void all_reduce_sum(double* data, size_t n) = 0;
  // A buffer of the run's backend (host memory on the CPU, GPU memory on CUDA): data[i] = Σ over ranks.
  virtual void all_reduce_sum(float* data, size_t n) = 0;
  // A buffer of the run's backend, summed like all_reduce_sum but possibly later: complete once
  // finish_started_sums() returns (on CUDA: for the work the backend's stream issues after that call). The backend's
  // work issued before the call has written data; nothing may write it until finished. NCCL runs it on its own
  // stream, overlapping the backend's work (train/grad_buckets.h); the default is the blocking sum.
  virtual void start_all_reduce_sum(float* data, size_t n) { all_reduce_sum(data, n); }
  // The same for ZeRO-1: of data's n elements (parts by shard_range), those in [begin, end) are summed onto the rank
  // whose part holds them; the rest of data is left unspecified. Default: the blocking sum of [begin, end).
  virtual void start_reduce_scatter_sum(float* data, size_t n, size_t begin, size_t end) {
    (void)n;
    all_reduce_sum(data + begin, end - begin);
  }
  virtual void finish_started_sums() {}
  // ZeRO-1's collectives work on the parts shard_range(n, r, size) gives (below).
  // Host memory: data[part of this rank] = Σ over ranks in rank order (the same bits all_reduce_sum gives there);
  // the rest of data is left unspecified.
  virtual void reduce_scatter_sum(double* data, size_t n) = 0;
  // A buffer of the run's backend: data[part of this rank] = Σ over ranks (the gradient of the shard this rank
  // updates); the rest of data is left unspecified. Half the traffic of all_reduce_sum.
  virtual void reduce_scatter_sum(float* data, size_t n) = 0;
  // A buffer of the run's backend: rank r's part goes to every rank (ZeRO-1's weights after each rank updated its
  // part). A copy: every rank ends with the same bits.
  virtual void all_gather(float* data, size_t n) = 0;
  // Host memory: every rank receives root's bytes.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
};

// One process: rank 0 of 1, every collective leaves its data as it is.
class SingleComm final : public Comm {
 public:
  const char* name() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum(double*, size_t) override {}
  void all_reduce_sum(float*, size_t) override {}
  void reduce_scatter_sum(double*, size_t) override {}
  void reduce_scatter_sum(float*, size_t) override {}
  void all_gather(float*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
};

// The communicator of a run that has none of its own (tests, library callers): stateless, so sharing it is safe.
Comm& single_process();

// [begin, end) of n items that rank `rank` of `size` takes: contiguous, sizes differing by at most one.
struct RankRange {
  long long begin = 0, end = 0;
};
RankRange rank_range(long long n, int rank, int size);

// ZeRO-1's shards of a flat vector of n: whole blocks of kShardGrain elements, the blocks split by rank_range (the
// last rank's part may end in a partial block; a rank gets an empty part when there are fewer blocks than ranks).
// The grain is a multiple of every backend's sum-of-squares chunk (Ops::sum_squares_chunk), so the chunks of a
// shard are chunks of the whole vector (ModelState::grad_norm adds them in the order one process does).
constexpr long long kShardGrain = 8192;
RankRange shard_range(long long n, int rank, int size);

}  // namespace duo
