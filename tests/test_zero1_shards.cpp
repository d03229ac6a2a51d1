// ZeRO-1's shards (backend/comm.h shard_range, train/model_state.h zero1_shard) and the chunk sums its gradient
// norm is built from (Ops::sum_squares_chunks). The collectives themselves run under mpirun in
// test_distributed.cpp, where a ZeRO-1 run gives one process's losses, gradient norms and checkpoints bit for bit.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>
#include "backend/comm.h"
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "model/params.h"
#include "train/model_state.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(zero1_shards)

// The parts tile [0, n) in rank order, each starting at a whole grain; sizes differ by at most one grain (the
// last part may end in a partial one); with fewer grains than ranks the last ranks get empty parts.
BOOST_AUTO_TEST_CASE(parts_tile_the_vector_in_whole_grains) {
  const long long g = kShardGrain;
  for (long long n : {1LL, g - 1, g, g + 1, 3 * g, 3 * g + 5, 10 * g + 123, 1000 * g + 7})
    for (int size : {1, 2, 3, 4, 7, 8}) {
      BOOST_TEST_CONTEXT("n " << n << ", " << size << " ranks") {
        long long at = 0, smallest = n, largest = 0;
        for (int r = 0; r < size; ++r) {
          const RankRange p = shard_range(n, r, size);
          BOOST_TEST(p.begin == at);
          BOOST_TEST(p.end >= p.begin);
          BOOST_TEST((p.begin % g == 0 || p.begin == n));
          at = p.end;
          const long long blocks = (p.end - p.begin + g - 1) / g;
          smallest = std::min(smallest, blocks);
          largest = std::max(largest, blocks);
        }
        BOOST_TEST(at == n);
        BOOST_TEST(largest - smallest <= 1);
        const long long grains = (n + g - 1) / g;
        BOOST_TEST((shard_range(n, size - 1, size).end > shard_range(n, size - 1, size).begin) == (grains >= size));
      }
    }
}

// A model with fewer blocks of parameters than ranks is refused, naming the option.
BOOST_AUTO_TEST_CASE(a_model_too_small_to_shard_is_refused) {
  ModelConfig cfg;
  cfg.hidden = 32;
  cfg.n_blocks = 1;
  cfg.n_heads = 2;
  cfg.cond_dim = 16;
  cfg.length = 16;
  cfg.vocab_size = 65;
  const long long total = ParamTable(cfg).total(), blocks = (total + kShardGrain - 1) / kShardGrain;
  BOOST_TEST(blocks >= 2);
  const RankRange first = zero1_shard(cfg, 0, 2), second = zero1_shard(cfg, 1, 2);
  BOOST_TEST(first.begin == 0);
  BOOST_TEST(first.end == second.begin);
  BOOST_TEST(second.end == total);
  try {
    zero1_shard(cfg, 0, (int)blocks + 1);
    BOOST_FAIL("no error");
  } catch (const Error& e) {
    BOOST_TEST(e.where() == "--training.zero1");
    BOOST_TEST(e.hint().find("drop --training.zero1") != std::string::npos);
  }
}

// The chunk sums of a part that starts at a whole chunk are the whole vector's chunk sums there, and the whole
// vector's chunk sums added in chunk order are sum_squares, bit for bit (what makes ZeRO-1's norm one process's).
BOOST_AUTO_TEST_CASE(chunk_sums_of_a_part_are_the_wholes) {
  CpuOps ops;
  const int64_t chunk = ops.sum_squares_chunk(), n = 5 * chunk + 77;
  BOOST_TEST(kShardGrain % chunk == 0);
  std::vector<float> x((size_t)n);
  for (int64_t i = 0; i < n; ++i) x[(size_t)i] = std::sin(0.37f * (float)i) * (1.0f + (float)(i % 13));
  const Tensor whole(x.data(), DType::F32, {n}, Device::CPU);
  const std::vector<double> all = ops.sum_squares_chunks(whole);
  BOOST_TEST(all.size() == 6u);
  double sum = 0;
  for (double c : all) sum += c;
  BOOST_TEST(sum == ops.sum_squares(whole));  // bit for bit
  const Tensor tail(x.data() + 2 * chunk, DType::F32, {n - 2 * chunk}, Device::CPU);
  const std::vector<double> part = ops.sum_squares_chunks(tail);
  BOOST_TEST(part.size() == 4u);
  for (size_t c = 0; c < part.size(); ++c) BOOST_TEST(part[c] == all[c + 2]);
  double last = 0;
  for (int64_t i = 5 * chunk; i < n; ++i) last += (double)x[(size_t)i] * (double)x[(size_t)i];
  BOOST_TEST(all[5] == last);
}

BOOST_AUTO_TEST_SUITE_END()
