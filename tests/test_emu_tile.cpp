// The typed warp tiles of cuda/tile.cuh under the emulator: a block of 4 warps loads 64-row tiles with cp.async
// (rows past the end zero-filled), takes A fragments, forms S = A·Bᵀ, turns S into the A operand of O = S·V, and
// reduces S's rows across each quad; every value against a host product. The inputs are small integers, so every
// product and sum is exact in fp32 and every S entry exact in bf16: the comparisons are equalities, and any lane map
// or k-step out of place shows.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <vector>

#include "core/philox.h"
#include "emu_test_util.h"
#include "tile.cuh"

using duo::testing::DeviceVec;

namespace {

using bf16 = __nv_bfloat16;
namespace tile = duo::cuda::tile;

// s_out (64 × 64) = A·Bᵀ with B's rows from b_rows on zero; o_out (64 × N) = S·V; stats[row] = (max, sum) of row.
template <int K, int N>
__global__ void tile_products(const bf16* a, const bf16* b, const bf16* v, int b_rows, float* s_out, float* o_out,
                              float* stats) {
  DUO_SHARED(tile::SmemTile<K>, sA, tile::kRows);
  DUO_SHARED(tile::SmemTile<K>, sB, tile::kRows);
  DUO_SHARED(tile::SmemTile<N>, sV, tile::kRows);
  tile::load_async<K>(sA, a, K, 0, tile::kRows);
  tile::load_async<K>(sB, b, K, 0, b_rows);
  tile::load_async<N>(sV, v, N, 0, tile::kRows);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  __syncthreads();
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, row_g = warp * 16 + lane / 4;

  tile::Frags<K> fa;
  tile::load_frags(fa, sA, warp * 16);
  tile::Acc<tile::kRows> s;
  tile::mma_abt(s, fa, sB);
  tile::for_each(s, [&](float& x, int r, int col) { s_out[(row_g + 8 * r) * tile::kRows + col] = x; });

  tile::Acc<N> o;
  tile::mma_ab(o, tile::to_frags(s), sV);
  tile::for_each(o, [&](float& x, int r, int col) { o_out[(row_g + 8 * r) * N + col] = x; });

  for (int r = 0; r < 2; ++r) {
    float part = 0.0f;  // this lane's share of row r
    tile::for_each(s, [&](float& x, int rr, int) {
      if (rr == r) part += x;
    });
    const float mx = tile::quad_max(tile::row_max(s, r, -INFINITY)), sum = tile::quad_sum(part);
    if (lane % 4 == 0) {
      stats[(row_g + 8 * r) * 2] = mx;
      stats[(row_g + 8 * r) * 2 + 1] = sum;
    }
  }
}

// The same two products for a warp that owns two row tiles (rows 16w.. and 64 + 16w.. of a 128-row A, in two
// shared-memory tiles), each B and V fragment loaded once for both: s_out (128 × 64), o_out (128 × N).
template <int K, int N>
__global__ void two_row_tile_products(const bf16* a, const bf16* b, const bf16* v, float* s_out, float* o_out) {
  DUO_SHARED(tile::SmemTile<K>, sA0, tile::kRows);
  DUO_SHARED(tile::SmemTile<K>, sA1, tile::kRows);
  DUO_SHARED(tile::SmemTile<K>, sB, tile::kRows);
  DUO_SHARED(tile::SmemTile<N>, sV, tile::kRows);
  tile::load_async<K>(sA0, a, K, 0, 2 * tile::kRows);
  tile::load_async<K>(sA1, a, K, tile::kRows, 2 * tile::kRows);
  tile::load_async<K>(sB, b, K, 0, tile::kRows);
  tile::load_async<N>(sV, v, N, 0, tile::kRows);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  __syncthreads();
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  tile::Frags<K> fa[2];
  tile::load_frags(fa[0], sA0, warp * 16);
  tile::load_frags(fa[1], sA1, warp * 16);
  tile::Acc<tile::kRows> s[2];
  tile::mma_abt(s, fa, sB);
  const tile::Frags<tile::kRows> p[2] = {tile::to_frags(s[0]), tile::to_frags(s[1])};
  tile::Acc<N> o[2];
  tile::mma_ab(o, p, sV);
  for (int t = 0; t < 2; ++t) {
    const int row_g = t * tile::kRows + warp * 16 + lane / 4;
    tile::for_each(s[t], [&](float& x, int r, int col) { s_out[(row_g + 8 * r) * tile::kRows + col] = x; });
    tile::for_each(o[t], [&](float& x, int r, int col) { o_out[(row_g + 8 * r) * N + col] = x; });
  }
}

std::vector<bf16> small_ints(size_t n, uint64_t seed, int span) {
  duo::Philox r{seed, 0};
  std::vector<bf16> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = bf16(float(int(r.bits(i) % uint32_t(2 * span + 1)) - span));
  return v;
}

template <int K, int N>
void check_products(int b_rows) {
  constexpr int R = tile::kRows;
  const std::vector<bf16> a = small_ints(R * K, 1, 1), b = small_ints(R * K, 2, 1), v = small_ints(R * N, 3, 2);
  DeviceVec<float> s_out(R * R, 0.0f), o_out(R * N, 0.0f), stats(R * 2, 0.0f);
  DUO_LAUNCH((tile_products<K, N>), 1, tile::kBlockThreads, 0, nullptr)(DeviceVec(a), DeviceVec(b), DeviceVec(v),
                                                                         b_rows, s_out, o_out, stats);
  const std::vector<float> S = s_out.host(), O = o_out.host(), st = stats.host();
  std::vector<float> want_s(R * R, 0.0f);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < R; ++j)
      for (int k = 0; k < K && j < b_rows; ++k) want_s[i * R + j] += float(a[i * K + k]) * float(b[j * K + k]);
  int bad = 0;
  for (int i = 0; i < R * R; ++i) bad += S[i] != want_s[i];
  BOOST_TEST(bad == 0, bad << " entries of A·Bᵀ differ (K " << K << ")");
  bad = 0;
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) {
      float want = 0;
      for (int j = 0; j < R; ++j) want += want_s[i * R + j] * float(v[j * N + n]);
      bad += O[i * N + n] != want;
    }
  BOOST_TEST(bad == 0, bad << " entries of S·V differ (N " << N << ")");
  bad = 0;
  for (int i = 0; i < R; ++i) {
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < R; ++j) {
      mx = std::max(mx, want_s[i * R + j]);
      sum += want_s[i * R + j];
    }
    bad += st[i * 2] != mx || st[i * 2 + 1] != sum;
  }
  BOOST_TEST(bad == 0, bad << " rows' max or sum differ");
}

template <int K, int N>
void check_two_row_tiles() {
  constexpr int R = tile::kRows, RA = 2 * R;
  const std::vector<bf16> a = small_ints(RA * K, 4, 1), b = small_ints(R * K, 5, 1), v = small_ints(R * N, 6, 2);
  DeviceVec<float> s_out(RA * R, 0.0f), o_out(RA * N, 0.0f);
  DUO_LAUNCH((two_row_tile_products<K, N>), 1, tile::kBlockThreads, 0, nullptr)(DeviceVec(a), DeviceVec(b),
                                                                                 DeviceVec(v), s_out, o_out);
  const std::vector<float> S = s_out.host(), O = o_out.host();
  int bad_s = 0, bad_o = 0;
  for (int i = 0; i < RA; ++i) {
    std::vector<float> row(R, 0.0f);
    for (int j = 0; j < R; ++j) {
      for (int k = 0; k < K; ++k) row[j] += float(a[i * K + k]) * float(b[j * K + k]);
      bad_s += S[i * R + j] != row[j];
    }
    for (int n = 0; n < N; ++n) {
      float want = 0;
      for (int j = 0; j < R; ++j) want += row[j] * float(v[j * N + n]);
      bad_o += O[i * N + n] != want;
    }
  }
  BOOST_TEST(bad_s == 0, bad_s << " entries of A·Bᵀ differ with two row tiles a warp (K " << K << ")");
  BOOST_TEST(bad_o == 0, bad_o << " entries of S·V differ with two row tiles a warp (N " << N << ")");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(emu_tile)

BOOST_AUTO_TEST_CASE(products_and_row_reductions_match_the_host) {
  check_products<64, 64>(64);
  check_products<32, 32>(64);
  check_products<64, 32>(50);  // B's rows past 50 land as zeros
}

// A warp's two row tiles against one streamed tile (the forward attention's 32 rows a warp): both products as the
// host forms them, so a fragment that served the wrong row tile, or only one of them, shows.
BOOST_AUTO_TEST_CASE(two_row_tiles_share_each_fragment) {
  check_two_row_tiles<64, 64>();
  check_two_row_tiles<32, 32>();
}

BOOST_AUTO_TEST_SUITE_END()
