// FlashAttention-2 style attention (see flash_attention.cuh for the interface). Tiling: a block of 4 warps owns
// rows of the "resident" operand, held in registers as bf16 A fragments, and streams 64-row tiles of the other
// operands through shared memory, double-buffered with cp.async: tile j+1 is in flight while tile j is multiplied.
// The forward's block owns 128 query rows, 32 per warp as two m16 row tiles (rows 16w.. and 64 + 16w..), and every
// K or V fragment a warp loads from shared memory feeds both row tiles' mmas: half the shared-memory reads per mma,
// and half the K/V tile loads per query, of 16 rows per warp (FlashAttention-2's 128-row blocks). The backward's
// kernels own 64 rows, 16 per warp: they hold two resident operands and two accumulators, and twice that would not
// fit the register file. Every product is a 16×64 or 16×hd warp tile built from mma.m16n8k16 (bf16 in, fp32
// accumulate):
//   forward   per query block:  S = Q·Kᵀ, online softmax (running max m, running sum l), O += P·V
//   dK, dV    per key block:    Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ − lse), dV += Pᵀ·dO, dPᵀ = V·dOᵀ,
//                               dSᵀ = Pᵀ∘(dPᵀ − delta), dK += dSᵀ·Q
//   dQ        per query block:  S = Q·Kᵀ, P = exp(S − lse), dP = dO·Vᵀ, dS = P∘(dP − delta), dQ += dS·K
// Scores are kept in log2 units (s·scale·log2 e) so that the exponentials are exp2. Causal blocks stop at
// the diagonal tile (forward, dQ) or start at it (dK/dV); only diagonal and tail tiles pay for a mask.
// With a rotary table (Rot), q and k are the qkv layer's output before rotary: every Q and K tile is rotated in
// shared memory once it has landed (rotate_tile, the rotary kernel's arithmetic and rounding), and the backward
// turns dQ and dK back by the negative angle as it stores them (unrotate_store), so the rotary op and its backward
// never run and their (B, L, 3D) tensors are never written.
#include "kernels/flash_attention.cuh"
#include "kernels/rotary.cuh"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "ptx.cuh"
#include "tile.cuh"

namespace duo::cuda {
namespace {

using bf16 = __nv_bfloat16;
using Mma = duo::ptx::MmaM16N8K16;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTile = tile::kRows;  // rows per streamed tile, and per block of the backward: 16 per warp
constexpr int kRowTiles = 2;        // forward: 16-row tiles per warp, each streamed fragment used by both
constexpr int kQueryRows = kRowTiles * kTile;  // forward: query rows per block (128)
static_assert(kThreads == tile::kBlockThreads, "the block loads its tiles together");
constexpr float kLog2e = 1.4426950408889634f;

template <int HD>
using Row = tile::SmemTile<HD>;  // a tile is Row<HD>[kTile]
using tile::Acc;
using tile::Frags;

// Rotary on a landed tile: the pairs (j, j + HD/2) of rows row0..row0+63 (positions; rows past L stay zero) turned by
// the angles of rope (L, HD/2) as (cos, sin), each rounded to bf16 once, as the rotary kernel rounds them. The caller
// synchronises before and after (the tile is read by other warps' ldmatrix).
template <int HD>
__device__ __forceinline__ void rotate_tile(Row<HD>* tile, int row0, int L, const float2* rope) {
  constexpr int kHalf = HD / 2;
  for (int t = threadIdx.x; t < kTile * kHalf; t += kThreads) {
    const int r = t / kHalf, j = t % kHalf;
    if (row0 + r >= L) continue;
    const float2 cs = rope[size_t(row0 + r) * kHalf + j];
    float y1, y2;
    rotate_pair(__bfloat162float(tile[r][j]), __bfloat162float(tile[r][j + kHalf]), cs.x, cs.y, y1, y2);
    tile[r][j] = __float2bfloat16_rn(y1);
    tile[r][j + kHalf] = __float2bfloat16_rn(y2);
  }
}

// A pair of adjacent fp32 values stored as fp32 or as bf16 (the activation dtype).
template <class T>
__device__ __forceinline__ void store2(T* p, float a, float b) {
  if constexpr (std::is_same_v<T, float>) *reinterpret_cast<float2*>(p) = make_float2(a, b);
  else *reinterpret_cast<uint32_t*>(p) = duo::ptx::pack_bf16x2(a, b);
}

// Stores a 16×HD accumulator's row r (this lane's two rows: r = 0, 1) of one head into dst (the row's HD features),
// times scale: as it is, or (rope given) turned back by the negative angle of position pos, the rotary backward of a
// gradient at rotated features (each value scaled first, as the rotary backward reads the stored fp32 gradient).
template <int HD, class T>
__device__ __forceinline__ void store_row(T* dst, const Acc<HD>& acc, int r, float scale, const float2* rope,
                                          int pos) {
  const int lane = threadIdx.x % 32;
  if (!rope) {
    for (int n = 0; n < HD / 8; ++n)
      store2(dst + n * 8 + Mma::c_col(lane, 0), acc.c[n][2 * r] * scale, acc.c[n][2 * r + 1] * scale);
    return;
  }
  constexpr int kHalf = HD / 2, kPartner = kHalf / 8;  // the n-tile holding column c + HD/2: n + HD/16
  for (int n = 0; n < kPartner; ++n) {
    const int c = n * 8 + Mma::c_col(lane, 0);
    float lo[2], hi[2];
    for (int e = 0; e < 2; ++e) {
      const float2 cs = rope[size_t(pos) * kHalf + c + e];
      rotate_pair(acc.c[n][2 * r + e] * scale, acc.c[n + kPartner][2 * r + e] * scale, cs.x, -cs.y, lo[e], hi[e]);
    }
    store2(dst + c, lo[0], lo[1]);
    store2(dst + c + kHalf, hi[0], hi[1]);
  }
}

// Number of 64-key tiles the `rows` queries from q0 on attend to: all of them, or up to the diagonal.
__device__ __forceinline__ int key_tiles(int q0, int rows, int L, bool causal) {
  return ((causal ? min(L, q0 + rows) : L) + kTile - 1) / kTile;
}

// Whether the queries q0..q0+rows-1 against key tile k0 have any masked entry: a tail past L or the causal diagonal.
__device__ __forceinline__ bool needs_mask(int q0, int rows, int k0, int L, bool causal) {
  return k0 + kTile > L || q0 + rows > L || (causal && k0 + kTile - 1 > q0);
}

// Per (batch, head): q, k, v of the bf16 copy as (L, HD) matrices with row stride 3D.
struct HeadView {
  const bf16 *q, *k, *v;
  int ld;
};
__device__ __forceinline__ HeadView head_view(const bf16* qkv, int L, int H, int HD) {
  const int D = H * HD;
  const bf16* q = qkv + size_t(blockIdx.z) * L * 3 * D + size_t(blockIdx.y) * HD;
  return {q, q + D, q + 2 * D, 3 * D};
}

// ---- preprocessing: one rounding to bf16 of the tensor-core inputs ---------------------------------------

// dst = bf16(src), n4 groups of 4 values.
__global__ void to_bf16_kernel(bf16* dst, const float* src, size_t n4) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  const float4 x = reinterpret_cast<const float4*>(src)[i];
  reinterpret_cast<uint2*>(dst)[i] = make_uint2(duo::ptx::pack_bf16x2(x.x, x.y), duo::ptx::pack_bf16x2(x.z, x.w));
}

// Four consecutive values i·4 .. i·4+3 of an fp32 or bf16 array (16 or 8 bytes, aligned), as floats.
__device__ __forceinline__ float4 load4(const float* p, size_t i) { return reinterpret_cast<const float4*>(p)[i]; }
__device__ __forceinline__ float4 load4(const bf16* p, size_t i) {
  const uint2 raw = reinterpret_cast<const uint2*>(p)[i];
  __nv_bfloat162 lo, hi;
  memcpy(&lo, &raw.x, 4);
  memcpy(&hi, &raw.y, 4);
  const float2 a = __bfloat1622float2(lo), b = __bfloat1622float2(hi);
  return make_float4(a.x, a.y, b.x, b.y);
}

// delta[b,h,l] = Σ_d dO·O over the head's features (fp32 arithmetic; O and dO fp32, or bf16 when in the activation
// dtype), and an fp32 dO rounded to bf16 (a bf16 dO is the kernels' operand as it is). One thread per
// 4 features: the HD/4 threads of one (row, head) are aligned lanes of one warp and reduce by xor shuffles
// that stay inside the group. Threads past the end still shuffle (full-warp mask) but write nothing.
template <int HD, class Out, class DIn>
__global__ void delta_kernel(float* delta, bf16* dout16, const DIn* dout, const Out* out, int L, int H, size_t n4) {
  const size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool live = i < n4;
  const float4 d = live ? load4(dout, i) : make_float4(0, 0, 0, 0);
  const float4 o = live ? load4(out, i) : make_float4(0, 0, 0, 0);
  float s = d.x * o.x + d.y * o.y + d.z * o.z + d.w * o.w;
  for (int w = HD / 8; w >= 1; w /= 2) s += __shfl_xor_sync(0xffffffffu, s, w);
  if (!live) return;
  if constexpr (std::is_same_v<DIn, float>)
    reinterpret_cast<uint2*>(dout16)[i] =
        make_uint2(duo::ptx::pack_bf16x2(d.x, d.y), duo::ptx::pack_bf16x2(d.z, d.w));
  const size_t D = size_t(H) * HD, row = i * 4 / D;  // row = b·L + l
  const int h = int(i * 4 % D) / HD;
  if (i % (HD / 4) == 0) delta[(row / L * H + h) * L + row % L] = s;
}

// ---- forward: grid (query blocks, H, B) --------------------------------------------------------------------

// Scores in log2 units: s · scale_log2; with `masked` (a tail or diagonal tile), -inf where the key is past L or,
// causal, after the query. row_g: this lane's first query row (the second is row_g + 8); k0: the tile's first key.
__device__ __forceinline__ void scale_and_mask(Acc<kTile>& s, float scale_log2, int row_g, int k0, int L, bool causal,
                                               bool masked) {
  tile::for_each(s, [&](float& v, int r, int col) {
    const int key = k0 + col, row = row_g + 8 * r;
    v *= scale_log2;
    if (masked && (key >= L || (causal && key > row))) v = -INFINITY;
  });
}

// One tile of the online softmax, per row r: the new running max m (across the quad, which shares the row), the
// old sum l and O rescaled to it, and s turned into P = exp2(s − m) added to l (this lane's part of the row). The
// new max is finite: key 0 is visible to every row in tile 0, so m is finite from the first tile on and
// exp2(m_old − m_new) never sees inf − inf.
template <int HD>
__device__ __forceinline__ void online_softmax(Acc<kTile>& s, float (&m)[2], float (&l)[2], Acc<HD>& o) {
  for (int r = 0; r < 2; ++r) {
    const float mx = tile::quad_max(tile::row_max(s, r, m[r]));
    const float rescale = exp2f(m[r] - mx);
    m[r] = mx;
    l[r] *= rescale;
    tile::scale_row(o, r, rescale);
    for (int n = 0; n < kTile / 8; ++n)
      for (int i = 2 * r; i < 2 * r + 2; ++i) {
        s.c[n][i] = exp2f(s.c[n][i] - mx);  // P, unnormalised
        l[r] += s.c[n][i];
      }
  }
}

template <int HD, class Out, bool Rot>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(Out* out, float* lse, const bf16* qkv, const float2* rope, int L, int H, bool causal,
                   float scale_log2) {
  DUO_SHARED(Row<HD>, sK, 2 * kTile);  // K tiles, two stages; stage 1 first carries this block's queries 0..63
  DUO_SHARED(Row<HD>, sV, 2 * kTile);  // V tiles, two stages; stage 1 first carries its queries 64..127
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q0 = blockIdx.x * kQueryRows;
  // This lane's rows in row tile t: row_g(t) and row_g(t) + 8 (tile t is the block's queries 64t .. 64t + 63, of
  // which this warp owns 16).
  auto row_g = [&](int t) { return q0 + t * kTile + warp * 16 + lane / 4; };
  const HeadView hv = head_view(qkv, L, H, HD);
  const int n_tiles = key_tiles(q0, kQueryRows, L, causal);
  Row<HD>* const q_stage[kRowTiles] = {sK + kTile, sV + kTile};

  DUO_UNROLL for (int t = 0; t < kRowTiles; ++t) tile::load_async<HD>(q_stage[t], hv.q, hv.ld, q0 + t * kTile, L);
  tile::load_async<HD>(sK, hv.k, hv.ld, 0, L);
  tile::load_async<HD>(sV, hv.v, hv.ld, 0, L);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  __syncthreads();
  if constexpr (Rot) {  // the queries and the first K tile
    DUO_UNROLL for (int t = 0; t < kRowTiles; ++t) rotate_tile<HD>(q_stage[t], q0 + t * kTile, L, rope);
    rotate_tile<HD>(sK, 0, L, rope);
    __syncthreads();
  }
  Frags<HD> qf[kRowTiles];  // Q (16×HD) of this warp's row tiles, resident for the whole loop
  DUO_UNROLL for (int t = 0; t < kRowTiles; ++t) tile::load_frags(qf[t], q_stage[t], warp * 16);

  Acc<HD> o[kRowTiles];  // unnormalised O (16×HD) per row tile
  float m[kRowTiles][2], l[kRowTiles][2] = {};  // running max (log2 units) and this lane's partial row sums
  DUO_UNROLL for (auto& mt : m) mt[0] = mt[1] = -INFINITY;
  for (int j = 0; j < n_tiles; ++j) {
    const int st = j & 1, k0 = j * kTile;
    duo::ptx::cp_async_wait<0>();
    __syncthreads();  // tile j visible to all; every warp is done with stage st^1 (tile j-1, or the queries)
    if (j + 1 < n_tiles) {
      tile::load_async<HD>(sK + (st ^ 1) * kTile, hv.k, hv.ld, k0 + kTile, L);
      tile::load_async<HD>(sV + (st ^ 1) * kTile, hv.v, hv.ld, k0 + kTile, L);
      duo::ptx::cp_async_commit();
    }
    if (Rot && j > 0) {  // K tile j (tile 0 was rotated with the queries)
      rotate_tile<HD>(sK + st * kTile, k0, L, rope);
      __syncthreads();
    }
    Acc<kTile> s[kRowTiles];
    tile::mma_abt(s, qf, sK + st * kTile);  // S = Q·Kᵀ
    const bool masked = needs_mask(q0, kQueryRows, k0, L, causal);
    Frags<kTile> p[kRowTiles];
    DUO_UNROLL for (int t = 0; t < kRowTiles; ++t) {
      scale_and_mask(s[t], scale_log2, row_g(t), k0, L, causal, masked);
      online_softmax(s[t], m[t], l[t], o[t]);  // P = exp2(S − m) with the new running max; O and l rescaled to it
      p[t] = tile::to_frags(s[t]);
    }
    tile::mma_ab(o, p, sV + st * kTile);  // O += P·V
  }

  // Epilogue: row sums across the quad, O / l, lse = ln 2 · (m + log2 l).
  const int D = H * HD;
  DUO_UNROLL for (int t = 0; t < kRowTiles; ++t)
    for (int r = 0; r < 2; ++r) {
      l[t][r] = tile::quad_sum(l[t][r]);
      const int row = row_g(t) + r * 8;
      if (row >= L) continue;
      const float inv = 1.0f / l[t][r];
      Out* o_row = out + (size_t(blockIdx.z) * L + row) * D + blockIdx.y * HD;
      for (int n = 0; n < HD / 8; ++n)
        store2(o_row + n * 8 + Mma::c_col(lane, 0), o[t].c[n][2 * r] * inv, o[t].c[n][2 * r + 1] * inv);
      if (lane % 4 == 0) lse[(size_t(blockIdx.z) * H + blockIdx.y) * L + row] = (m[t][r] + log2f(l[t][r])) / kLog2e;
    }
}

// ---- backward, dK and dV: grid (key blocks, H, B) ----------------------------------------------------------

template <int HD, class DOut, bool Rot>
__global__ void __launch_bounds__(kThreads)
    backward_dkdv_kernel(DOut* dqkv, const bf16* qkv, const float2* rope, const bf16* dout, const float* lse,
                         const float* delta, int L, int H, bool causal, float scale_log2) {
  DUO_SHARED(Row<HD>, sQ, 2 * kTile);   // Q tiles, two stages; stage 1 first carries this block's K
  DUO_SHARED(Row<HD>, sdO, 2 * kTile);  // dO tiles, two stages; stage 1 first carries this block's V
  DUO_SHARED(float[kTile], sLse, 2);    // lse·log2 e of each tile query (0 past L, where P is masked)
  DUO_SHARED(float[kTile], sDelta, 2);  // delta of each tile query
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int key0 = blockIdx.x * kTile, D = H * HD;
  const HeadView hv = head_view(qkv, L, H, HD);
  const bf16* dO = dout + size_t(blockIdx.z) * L * D + blockIdx.y * HD;  // (L, HD), row stride D
  const size_t bh = (size_t(blockIdx.z) * H + blockIdx.y) * L;
  const int first = causal ? blockIdx.x : 0, n_tiles = (L + kTile - 1) / kTile;  // query tiles that see this block

  // The row statistics of a query tile go through plain stores: visible after the next barrier, like the copies.
  auto load_query_tile = [&](int j, int st) {
    tile::load_async<HD>(sQ + st * kTile, hv.q, hv.ld, j * kTile, L);
    tile::load_async<HD>(sdO + st * kTile, dO, D, j * kTile, L);
    duo::ptx::cp_async_commit();
    for (int t = threadIdx.x; t < 2 * kTile; t += kThreads) {
      const int q = j * kTile + t % kTile;
      if (t < kTile) sLse[st][t] = q < L ? lse[bh + q] * kLog2e : 0.0f;
      else sDelta[st][t - kTile] = q < L ? delta[bh + q] : 0.0f;
    }
  };
  tile::load_async<HD>(sQ + kTile, hv.k, hv.ld, key0, L);
  tile::load_async<HD>(sdO + kTile, hv.v, hv.ld, key0, L);
  load_query_tile(first, 0);
  duo::ptx::cp_async_wait<0>();
  __syncthreads();
  if constexpr (Rot) {  // this block's K and the first Q tile
    rotate_tile<HD>(sQ + kTile, key0, L, rope);
    rotate_tile<HD>(sQ, first * kTile, L, rope);
    __syncthreads();
  }
  Frags<HD> kf, vf;  // K and V (16×HD) of this warp's keys, resident
  tile::load_frags(kf, sQ + kTile, warp * 16);
  tile::load_frags(vf, sdO + kTile, warp * 16);

  const int key_g = key0 + warp * 16 + lane / 4;  // this lane's keys: key_g, key_g + 8
  Acc<HD> dk, dv;
  for (int j = first; j < n_tiles; ++j) {
    const int st = (j - first) & 1, q0 = j * kTile;
    duo::ptx::cp_async_wait<0>();
    __syncthreads();  // tile j visible to all; every warp is done with stage st^1 (tile j-1, or K and V)
    if (j + 1 < n_tiles) load_query_tile(j + 1, st ^ 1);
    if (Rot && j > first) {  // Q tile j
      rotate_tile<HD>(sQ + st * kTile, q0, L, rope);
      __syncthreads();
    }
    const Row<HD>* q_tile = sQ + st * kTile;
    const Row<HD>* do_tile = sdO + st * kTile;

    Acc<kTile> p;  // Sᵀ (16 keys × 64 queries), then Pᵀ = exp2(Sᵀ − lse), 0 where masked
    tile::mma_abt(p, kf, q_tile);
    const bool masked = needs_mask(q0, kTile, key0, L, causal);
    tile::for_each(p, [&](float& v, int r, int col) {
      const int key = key_g + 8 * r, query = q0 + col;
      v = exp2f(v * scale_log2 - sLse[st][col]);
      if (masked && (query >= L || key >= L || (causal && query < key))) v = 0.0f;
    });
    tile::mma_ab(dv, tile::to_frags(p), do_tile);  // dV += Pᵀ·dO

    Acc<kTile> ds;  // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ∘(dPᵀ − delta)
    tile::mma_abt(ds, vf, do_tile);
    tile::for_each_with(ds, p, [&](float& d, float pv, int, int col) { d = pv * (d - sDelta[st][col]); });
    tile::mma_ab(dk, tile::to_frags(ds), q_tile);  // dK += dSᵀ·Q (times scale below)
  }

  const float scale = scale_log2 / kLog2e;
  for (int r = 0; r < 2; ++r) {
    const int key = key_g + 8 * r;
    if (key >= L) continue;
    DOut* dk_row = dqkv + (size_t(blockIdx.z) * L + key) * 3 * D + D + blockIdx.y * HD;
    store_row<HD>(dk_row, dk, r, scale, Rot ? rope : nullptr, key);
    store_row<HD>(dk_row + D, dv, r, 1.0f, nullptr, key);
  }
}

// ---- backward, dQ: grid (query blocks, H, B) ---------------------------------------------------------------

template <int HD, class DOut, bool Rot>
__global__ void __launch_bounds__(kThreads)
    backward_dq_kernel(DOut* dqkv, const bf16* qkv, const float2* rope, const bf16* dout, const float* lse,
                       const float* delta, int L, int H, bool causal, float scale_log2) {
  DUO_SHARED(Row<HD>, sK, 2 * kTile);  // K tiles, two stages; stage 1 first carries this block's Q
  DUO_SHARED(Row<HD>, sV, 2 * kTile);  // V tiles, two stages; stage 1 first carries this block's dO
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int q0 = blockIdx.x * kTile, row_g = q0 + warp * 16 + lane / 4, D = H * HD;
  const HeadView hv = head_view(qkv, L, H, HD);
  const bf16* dO = dout + size_t(blockIdx.z) * L * D + blockIdx.y * HD;
  const size_t bh = (size_t(blockIdx.z) * H + blockIdx.y) * L;
  const int n_tiles = key_tiles(q0, kTile, L, causal);

  tile::load_async<HD>(sK + kTile, hv.q, hv.ld, q0, L);
  tile::load_async<HD>(sV + kTile, dO, D, q0, L);
  tile::load_async<HD>(sK, hv.k, hv.ld, 0, L);
  tile::load_async<HD>(sV, hv.v, hv.ld, 0, L);
  duo::ptx::cp_async_commit();
  duo::ptx::cp_async_wait<0>();
  __syncthreads();
  if constexpr (Rot) {  // this block's Q and the first K tile
    rotate_tile<HD>(sK + kTile, q0, L, rope);
    rotate_tile<HD>(sK, 0, L, rope);
    __syncthreads();
  }
  Frags<HD> qf, df;  // Q and dO (16×HD) of this warp's rows, resident
  tile::load_frags(qf, sK + kTile, warp * 16);
  tile::load_frags(df, sV + kTile, warp * 16);
  float lse2[2], dlt[2];  // lse·log2 e and delta of rows row_g, row_g + 8 (0 past L: never written)
  for (int r = 0; r < 2; ++r) {
    const int row = row_g + r * 8;
    lse2[r] = row < L ? lse[bh + row] * kLog2e : 0.0f;
    dlt[r] = row < L ? delta[bh + row] : 0.0f;
  }

  Acc<HD> dq;
  for (int j = 0; j < n_tiles; ++j) {
    const int st = j & 1, k0 = j * kTile;
    duo::ptx::cp_async_wait<0>();
    __syncthreads();  // tile j visible to all; every warp is done with stage st^1 (tile j-1, or Q and dO)
    if (j + 1 < n_tiles) {
      tile::load_async<HD>(sK + (st ^ 1) * kTile, hv.k, hv.ld, k0 + kTile, L);
      tile::load_async<HD>(sV + (st ^ 1) * kTile, hv.v, hv.ld, k0 + kTile, L);
      duo::ptx::cp_async_commit();
    }
    if (Rot && j > 0) {  // K tile j
      rotate_tile<HD>(sK + st * kTile, k0, L, rope);
      __syncthreads();
    }
    const Row<HD>* k_tile = sK + st * kTile;

    Acc<kTile> p;  // S (16×64), then P = exp2(S − lse), 0 where masked
    tile::mma_abt(p, qf, k_tile);
    const bool masked = needs_mask(q0, kTile, k0, L, causal);
    tile::for_each(p, [&](float& v, int r, int col) {
      const int key = k0 + col, row = row_g + 8 * r;
      v = exp2f(v * scale_log2 - lse2[r]);
      if (masked && (key >= L || (causal && key > row))) v = 0.0f;
    });
    Acc<kTile> ds;  // dP = dO·Vᵀ, then dS = P∘(dP − delta)
    tile::mma_abt(ds, df, sV + st * kTile);
    tile::for_each_with(ds, p, [&](float& d, float pv, int r, int) { d = pv * (d - dlt[r]); });
    tile::mma_ab(dq, tile::to_frags(ds), k_tile);  // dQ += dS·K (times scale below)
  }

  const float scale = scale_log2 / kLog2e;
  for (int r = 0; r < 2; ++r) {
    const int row = row_g + r * 8;
    if (row >= L) continue;
    store_row<HD>(dqkv + (size_t(blockIdx.z) * L + row) * 3 * D + blockIdx.y * HD, dq, r, scale,
                  Rot ? rope : nullptr, row);
  }
}

// ---- launchers ---------------------------------------------------------------------------------------------

void check_shape(const char* op, int B, int L, int H, int hd) {
  DUO_CHECK(B >= 1 && L >= 1 && H >= 1, op, str("B=", B, " L=", L, " H=", H, " must all be positive"), "");
  DUO_CHECK(hd == 32 || hd == 64, op, str("head_dim ", hd, " has no kernel instance"),
            "flash attention is instantiated for head_dim 32 and 64");
}

// The fp32 tensors are read as float4 and the workspace parts are cp.async sources: all 16-byte aligned.
void check_aligned(const char* op, std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    DUO_CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0, op, "a tensor or the workspace is not 16-byte aligned",
              "pass whole allocations (cudaMalloc memory is 256-byte aligned)");
}

struct Workspace {
  bf16* qkv;     // (B, L, 3D)
  bf16* dout;    // (B, L, D)
  float* delta;  // (B, H, L)
};
Workspace carve(void* ws, int B, int L, int H, int hd) {
  const size_t n = size_t(B) * L * H * hd;  // B·L·D; a multiple of 8 (hd is), so every part stays 16-byte aligned
  bf16* qkv = static_cast<bf16*>(ws);
  return {qkv, qkv + 3 * n, reinterpret_cast<float*>(qkv + 4 * n)};
}

// A bad launch (configuration, shared memory, registers) is reported by the launch that caused it, naming it.
void launched(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess)
    fail(what, str("kernel launch: ", cudaGetErrorString(e)),
         "check the shapes (head_dim 32 or 64) and the device's shared-memory limit; run under compute-sanitizer");
}

constexpr int kPrepThreads = 256;
unsigned prep_blocks(size_t n4) { return unsigned((n4 + kPrepThreads - 1) / kPrepThreads); }

template <int HD, class Out, bool Rot>
void forward_impl(Out* out, float* lse, const bf16* qkv, const float2* rope, int B, int L, int H, bool causal,
                  cudaStream_t stream) {
  const dim3 grid((L + kQueryRows - 1) / kQueryRows, H, B);
  auto* flash_forward = forward_kernel<HD, Out, Rot>;  // (the emulator names a launch by this variable)
  DUO_LAUNCH(flash_forward, grid, kThreads, 0, stream)(out, lse, qkv, rope, L, H, causal,
                                                       kLog2e / std::sqrt(float(HD)));
  launched("flash_attention_forward");
}

template <int HD, class Out, class DOut, bool Rot>
void backward_impl(DOut* dqkv, const void* dout, bool dout_bf16, const bf16* qkv, const float2* rope, const Out* out,
                   const float* lse, Workspace w, int B, int L, int H, bool causal, cudaStream_t stream) {
  const size_t n4 = size_t(B) * L * H * HD / 4;
  const bf16* d16 = w.dout;  // the bf16 dO the kernels read
  if (dout_bf16) {  // dO is the kernels' operand as it is
    auto* flash_delta = delta_kernel<HD, Out, bf16>;
    DUO_LAUNCH(flash_delta, prep_blocks(n4), kPrepThreads, 0, stream)(w.delta, nullptr, static_cast<const bf16*>(dout),
                                                                      out, L, H, n4);
    d16 = static_cast<const bf16*>(dout);
  } else {
    auto* flash_delta = delta_kernel<HD, Out, float>;
    DUO_LAUNCH(flash_delta, prep_blocks(n4), kPrepThreads, 0, stream)(w.delta, w.dout,
                                                                      static_cast<const float*>(dout), out, L, H, n4);
  }
  launched("flash_attention_backward (delta)");
  const dim3 grid((L + kTile - 1) / kTile, H, B);
  const float scale_log2 = kLog2e / std::sqrt(float(HD));
  auto* flash_dkdv = backward_dkdv_kernel<HD, DOut, Rot>;
  DUO_LAUNCH(flash_dkdv, grid, kThreads, 0, stream)(dqkv, qkv, rope, d16, lse, w.delta, L, H, causal,
                                                    scale_log2);
  launched("flash_attention_backward (dK, dV)");
  auto* flash_dq = backward_dq_kernel<HD, DOut, Rot>;
  DUO_LAUNCH(flash_dq, grid, kThreads, 0, stream)(dqkv, qkv, rope, d16, lse, w.delta, L, H, causal, scale_log2);
  launched("flash_attention_backward (dQ)");
}

// The instance for the call's head dim and dtypes: f(HD, Out-is-bf16, Rot) with compile-time tags.
template <class F>
void dispatch(int hd, bool bf16_act, bool rot, F&& f) {
  auto on_rot = [&](auto hd_tag, auto out_tag) {
    if (rot) f(hd_tag, out_tag, std::true_type{});
    else f(hd_tag, out_tag, std::false_type{});
  };
  auto on_out = [&](auto hd_tag) {
    if (bf16_act) on_rot(hd_tag, bf16{});
    else on_rot(hd_tag, float{});
  };
  if (hd == 64) on_out(std::integral_constant<int, 64>{});
  else on_out(std::integral_constant<int, 32>{});
}

// The bf16 qkv the kernels read: qkv itself when already bf16, else its rounding into the workspace's first part.
const bf16* qkv_in_bf16(const Workspace& w, const void* qkv, bool bf16_act, int B, int L, int H, int hd,
                        cudaStream_t stream) {
  if (bf16_act) return static_cast<const bf16*>(qkv);
  const size_t n4 = size_t(B) * L * 3 * H * hd / 4;
  DUO_LAUNCH(to_bf16_kernel, prep_blocks(n4), kPrepThreads, 0, stream)(w.qkv, static_cast<const float*>(qkv), n4);
  launched("flash_attention (qkv to bf16)");
  return w.qkv;
}

}  // namespace

size_t flash_attention_workspace_bytes(int B, int L, int H, int hd) {
  const size_t n = size_t(B) * L * H * hd;
  return 4 * n * sizeof(bf16) + size_t(B) * H * L * sizeof(float);
}

void flash_attention_forward(void* out, float* lse, const void* qkv, bool bf16_act, const float2* rope,
                             void* workspace, int B, int L, int H, int hd, bool causal, cudaStream_t stream) {
  check_shape("flash_attention_forward", B, L, H, hd);
  check_aligned("flash_attention_forward", {qkv, workspace});
  const Workspace w = carve(workspace, B, L, H, hd);
  const bf16* q16 = qkv_in_bf16(w, qkv, bf16_act, B, L, H, hd, stream);
  dispatch(hd, bf16_act, rope != nullptr, [&](auto hd_tag, auto out_tag, auto rot_tag) {
    using Out = decltype(out_tag);
    forward_impl<decltype(hd_tag)::value, Out, decltype(rot_tag)::value>(static_cast<Out*>(out), lse, q16, rope, B,
                                                                         L, H, causal, stream);
  });
}

void flash_attention_backward(void* dqkv, bool dqkv_bf16, const void* dout, bool dout_bf16, const void* qkv,
                              const void* out, bool bf16_act, const float2* rope, const float* lse, void* workspace,
                              int B, int L, int H, int hd, bool causal, cudaStream_t stream) {
  check_shape("flash_attention_backward", B, L, H, hd);
  check_aligned("flash_attention_backward", {dout, qkv, out, workspace});
  DUO_CHECK(!dqkv_bf16 || rope, "flash_attention_backward", "a bf16 dqkv comes with the rotary table",
            "the unrotated gradient is fp32 (the rotary backward reads it)");
  const Workspace w = carve(workspace, B, L, H, hd);
  const bf16* q16 = qkv_in_bf16(w, qkv, bf16_act, B, L, H, hd, stream);
  dispatch(hd, bf16_act, rope != nullptr, [&](auto hd_tag, auto out_tag, auto rot_tag) {
    using Out = decltype(out_tag);
    constexpr int HD = decltype(hd_tag)::value;
    constexpr bool Rot = decltype(rot_tag)::value;
    const Out* o = static_cast<const Out*>(out);
    if constexpr (Rot) {
      if (dqkv_bf16) {
        backward_impl<HD, Out, bf16, true>(static_cast<bf16*>(dqkv), dout, dout_bf16, q16, rope, o, lse, w, B, L, H,
                                           causal, stream);
        return;
      }
    }
    backward_impl<HD, Out, float, Rot>(static_cast<float*>(dqkv), dout, dout_bf16, q16, rope, o, lse, w, B, L, H,
                                       causal, stream);
  });
}

}  // namespace duo::cuda
