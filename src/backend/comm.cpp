#include "backend/comm.h"

namespace duo {

Comm& single_process() {
  static SingleComm one;  // no state: every call of every caller behaves the same
  return one;
}

RankRange rank_range(long long n, int rank, int size) {
  const long long q = n / size, r = n % size;
  RankRange out;
  out.begin = rank * q + (rank < r ? rank : r);
  out.end = out.begin + q + (rank < r ? 1 : 0);
  return out;
}

RankRange shard_range(long long n, int rank, int size) {
  const RankRange blocks = rank_range((n + kShardGrain - 1) / kShardGrain, rank, size);
  RankRange out;
  out.begin = blocks.begin * kShardGrain < n ? blocks.begin * kShardGrain : n;
  out.end = blocks.end * kShardGrain < n ? blocks.end * kShardGrain : n;
  return out;
}

}  // namespace duo
