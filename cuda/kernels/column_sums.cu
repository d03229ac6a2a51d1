// Deterministic column sums over many rows (the bias gradient, LayerNorm's dweight, and per sequence LayerNorm's
// dshift/dscale and the residual's dgate): a one-thread-per-column
// loop over all N rows would leave a GPU nearly idle (D threads for N·D additions), and float atomics would
// make the result schedule-dependent. Instead rows are cut into chunks of kColumnSumRows: stage 1 (the
// caller's kernel, or column_chunk_sums_kernel for a plain matrix) writes one partial row per chunk, stage 2
// adds the partials in chunk order. The order of additions is fixed, so the bits are run-to-run identical; with
// N ≤ kColumnSumRows it is the CPU's sequential order exactly.
#include "cuda_common.cuh"

namespace duo::cuda {

namespace {

// partial[c, d] = sum of x[n, d] over the rows n of chunk c, in order.        grid (chunks, column blocks)
// x: fp32, or bf16 (a gradient kept in the activation dtype), summed in fp32; rows ld elements apart.
template <class T>
__global__ void column_chunk_sums_kernel(float* partial, const T* x, int64_t N, int D, int64_t ld) {
  const int64_t c = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  const int64_t n0 = c * kColumnSumRows, n1 = n0 + kColumnSumRows < N ? n0 + kColumnSumRows : N;
  float acc = 0.0f;
  for (int64_t n = n0; n < n1; ++n) acc += act_load(x[n * ld + d]);
  partial[c * D + d] = acc;
}

// dst[r·stride + d] = (or +=) sum_c partial[r, c, d], chunks in order.      grid (rows, column blocks)
__global__ void sum_chunks_kernel(float* dst, int64_t stride, bool accumulate, const float* partial, int64_t chunks,
                                  int D) {
  const int64_t r = blockIdx.x;
  const int d = int(blockIdx.y * blockDim.x + threadIdx.x);
  if (d >= D) return;
  const float* p = partial + r * chunks * D;
  float acc = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) acc += p[c * D + d];
  float* out = dst + r * stride + d;
  *out = accumulate ? *out + acc : acc;
}

}  // namespace

void sum_chunks(float* dst, int64_t stride, bool accumulate, const float* partial, int64_t rows, int64_t chunks, int D,
                cudaStream_t s) {
  if (rows <= 0 || D <= 0) return;
  DUO_LAUNCH(sum_chunks_kernel, dim3(unsigned(rows), blocks_for(D)), kThreads, 0, s)(dst, stride, accumulate,
                                                                                      partial, chunks, D);
  DUO_CU_LAUNCHED("sum_chunks");  // checked here, not after the caller's next launch
}

template <class T>
void add_column_sums_of(float* dst, const T* x, int64_t N, int D, float* partial, cudaStream_t s, int64_t ld) {
  if (N == 0 || D == 0) return;
  const int64_t chunks = column_sum_chunks(N);
  DUO_LAUNCH_NAMED(column_chunk_sums_kernel<T>, named<T>("column_chunk_sums_kernel", "column_chunk_sums_bf16_kernel"),
                   dim3(unsigned(chunks), blocks_for(D)), kThreads, 0, s)(partial, x, N, D, ld ? ld : D);
  DUO_CU_LAUNCHED("column_sums");
  sum_chunks(dst, 0, true, partial, 1, chunks, D, s);
}

void add_column_sums(float* dst, const float* x, int64_t N, int D, float* partial, cudaStream_t s, int64_t ld) {
  add_column_sums_of(dst, x, N, D, partial, s, ld);
}
void add_column_sums(float* dst, const __nv_bfloat16* x, int64_t N, int D, float* partial, cudaStream_t s,
                     int64_t ld) {
  add_column_sums_of(dst, x, N, D, partial, s, ld);
}

}  // namespace duo::cuda
