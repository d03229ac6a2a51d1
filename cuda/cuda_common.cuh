// Shared pieces of the CUDA backend's kernel files: error checks that name the op and give a HINT, the shape
// checks of the ops interface (as the CPU backend's, prefixed "CudaOps::"), launch sizing, and the warp/block
// reductions. Reductions here are fixed trees over a fixed thread layout, so their results never depend on
// the thread schedule (the emulator's DUO_EMU_SCHEDULE=reverse checks that).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "backend/shape_checks.h"
#include "core/error.h"
#include "core/tensor.h"
#include "cuda_ops.h"
#include "runtime.cuh"

namespace duo::cuda {

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// A failed runtime call: where (op, file:line), what (the CUDA error), and what to do.
inline void check(cudaError_t e, const char* op, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  fail(str("CudaOps::", op, " (", file, ":", line, ")"), str(call, ": ", cudaGetErrorString(e)),
       e == cudaErrorMemoryAllocation ? "the GPU is out of memory: use a smaller batch, model or sequence length"
                                      : "check the tensor sizes and that every tensor lives on the GPU; "
                                        "run under compute-sanitizer for the failing access");
}
#define DUO_CU(op, call) ::duo::cuda::check((call), (op), #call, __FILE__, __LINE__)
// After a kernel launch: a bad configuration shows here (under the emulator it was already thrown).
#define DUO_CU_LAUNCHED(op) DUO_CU(op, cudaGetLastError())

// ---- shape checks ------------------------------------------------------------------------------------------
// A host tensor handed to a kernel would be a wild pointer on a GPU (and silently work under the emulator).
inline void check_on_device(const char* op, const Tensor& t) {
  DUO_CHECK(t.empty() || t.device == Device::CUDA, str("CudaOps::", op),
            str("a ", t.shape_str(), " tensor is host memory (device tag cpu)"),
            "allocate it with CudaOps::alloc and fill it with from_host");
}
inline void check_f32(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts) {
    check_on_device(op, *t);
    DUO_CHECK(t->empty() || t->dtype == DType::F32, str("CudaOps::", op),
              str("unsupported dtype ", dtype_name(t->dtype)),
              "the CUDA backend computes in F32 (bf16 inside its GEMMs); use CpuOps for F64 gradient checks");
  }
}
// The tensors an op takes in the backend's activation dtype (Ops::activation_dtype): F32 or BF16, all one of them.
inline void check_f32_or_bf16(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    check_on_device(op, *t);
    if (t->empty()) continue;
    DUO_CHECK(t->dtype == DType::F32 || t->dtype == DType::BF16, str("CudaOps::", op),
              str("unsupported dtype ", dtype_name(t->dtype), " for an activation"),
              "activations are F32 or the backend's BF16 (Ops::activation_dtype)");
    if (!first) first = t;
    DUO_CHECK(t->dtype == first->dtype, str("CudaOps::", op),
              str("mixed activation dtypes ", dtype_name(first->dtype), " and ", dtype_name(t->dtype)),
              "give these tensors one dtype");
  }
}
inline bool is_bf16(const Tensor& t) { return t.dtype == DType::BF16; }
inline void check_dtype(const char* op, const char* name, const Tensor& t, DType want) {
  check_on_device(op, t);
  checks::dtype(str("CudaOps::", op), name, t, want);
}
inline void check_present(const char* op, const char* name, const Tensor& t) {
  checks::present(str("CudaOps::", op), name, t);
}
// A contiguous tensor read as [rows, cols] (leading dims fold into rows).
inline void check_matrix(const char* op, const char* name, const Tensor& t, int64_t rows, int64_t cols) {
  checks::matrix(str("CudaOps::", op), name, t, rows, cols);
}
inline void check_numel(const char* op, const char* name, const Tensor& t, int64_t n) {
  checks::numel(str("CudaOps::", op), name, t, n);
}
// A [B, D] view whose rows may be strided (a column block of the adaLN output).
inline void check_row_view(const char* op, const char* name, const Tensor& t, int64_t B, int64_t D) {
  checks::row_view(str("CudaOps::", op), name, t, B, D);
}
using checks::rows_of;
inline float* fptr(const Tensor& t) { return static_cast<float*>(t.data); }
inline __nv_bfloat16* hptr(const Tensor& t) { return static_cast<__nv_bfloat16*>(t.data); }

// The emulator's name of a launch of a kernel template over the element type T (DUO_LAUNCH_NAMED, runtime.cuh):
//   DUO_LAUNCH_NAMED(k<T>, named<T>("k<float>", "k<__nv_bfloat16>"), grid, block, 0, stream)(...)
template <class T>
constexpr const char* named(const char* if_float, const char* if_bf16) {
  return std::is_same_v<T, float> ? if_float : if_bf16;
}

// Reading and writing an activation of either dtype in fp32 arithmetic (one kernel template serves both).
__device__ inline float act_load(float x) { return x; }
__device__ inline float act_load(__nv_bfloat16 x) { return __bfloat162float(x); }
template <class T> __device__ inline T act_store(float x);
template <> __device__ inline float act_store<float>(float x) { return x; }
template <> __device__ inline __nv_bfloat16 act_store<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
inline const int32_t* iptr(const Tensor& t) { return static_cast<const int32_t*>(t.data); }

// A token id as a kernel uses it: an id outside [0, V) reads as 0. CudaOps::check_ids has recorded it, and the op
// fails at the next synchronisation (CudaOps::check_id_errors); until then no kernel reads outside its table.
__device__ __forceinline__ int32_t valid_id(int32_t id, int64_t V) { return id >= 0 && id < V ? id : 0; }

// ---- launch sizing -----------------------------------------------------------------------------------------
constexpr int kThreads = 256;  // elementwise and per-row kernels
// Blocks for a grid-stride loop over n items: enough to fill a GPU, bounded so tiny tensors stay cheap.
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

// 16-byte alignment: what cuBLASLt's epilogue pointers (bias, GELU aux) and the vectorised kernels need.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Bytes rounded up to 256: the alignment of each buffer an op carves out of one workspace request.
inline size_t round_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

// ---- column sums over rows (kernels/column_sums.cu) ---------------------------------------------------------
constexpr int64_t kColumnSumRows = 64;  // rows per partial sum
inline int64_t column_sum_chunks(int64_t N) { return (N + kColumnSumRows - 1) / kColumnSumRows; }
// Stage 2, after a caller's stage-1 kernel: for each of `rows` outputs r, dst[r·stride + d] = (or += when
// accumulate) sum_c partial[(r·chunks + c)·D + d], chunks c in order.
void sum_chunks(float* dst, int64_t stride, bool accumulate, const float* partial, int64_t rows, int64_t chunks, int D,
                cudaStream_t s);
// dst[d] += sum_n x[n, d] for x (N, D) with rows ld apart (0: D), fp32 or bf16, both stages; partial:
// column_sum_chunks(N)·D floats of scratch.
void add_column_sums(float* dst, const float* x, int64_t N, int D, float* partial, cudaStream_t s, int64_t ld = 0);
void add_column_sums(float* dst, const __nv_bfloat16* x, int64_t N, int D, float* partial, cudaStream_t s,
                     int64_t ld = 0);

// ---- reductions --------------------------------------------------------------------------------------------
template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
template <class T>
__device__ __forceinline__ T warp_max(T v) {
  for (int off = 16; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
// Sum over a block of blockDim.x (a multiple of 32, ≤ 1024) threads; every thread gets the result. scratch
// holds 32 values; the warps' partials are added in warp order, so the result is schedule-independent.
template <class T>
__device__ T block_sum(T v, T* scratch) {
  v = warp_sum(v);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, warps = int(blockDim.x) / 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = scratch[0];
  for (int w = 1; w < warps; ++w) total += scratch[w];
  __syncthreads();  // scratch is reused by the next reduction
  return total;
}
__device__ inline float block_max(float v, float* scratch) {
  v = warp_max(v);
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32, warps = int(blockDim.x) / 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = scratch[0];
  for (int w = 1; w < warps; ++w) m = fmaxf(m, scratch[w]);
  __syncthreads();
  return m;
}

// (key, j) ← the larger of (key, j) and (ok, oj); equal keys keep the smaller index: a total order, so a reduction
// tree gives the pair a sequential scan in index order gives, whatever the schedule (the relaxation's argmax, the
// samplers' race).
template <class T>
__device__ __forceinline__ void keep_first_max(T& key, int& j, T ok, int oj) {
  if (ok > key || (ok == key && oj < j)) key = ok, j = oj;
}

// The block's first maximum of (key, j); every thread gets it. kv, kj: 32 entries of shared memory.
template <class T>
__device__ int block_first_argmax(T key, int j, T* kv, int* kj) {
  for (int off = 16; off > 0; off /= 2) {
    const T ok = __shfl_xor_sync(0xffffffffu, key, off);
    const int oj = __shfl_xor_sync(0xffffffffu, j, off);
    keep_first_max(key, j, ok, oj);
  }
  const int warp = int(threadIdx.x) / 32, lane = int(threadIdx.x) % 32;
  if (lane == 0) kv[warp] = key, kj[warp] = j;
  __syncthreads();
  T best = kv[0];
  int best_j = kj[0];
  for (int w = 1; w < int(blockDim.x) / 32; ++w) keep_first_max(best, best_j, kv[w], kj[w]);
  __syncthreads();
  return best_j;
}

// ---- LayerNorm rows (kernels/layernorm.cu and the fused residual + LayerNorm of kernels/residual.cu) -----------
constexpr float kLayerNormEps = 1e-5f;  // PyTorch's default
// A warp's row n of LayerNorm: 1/std from this lane's partial sum of squared deviations from the mean m (reduced
// over the warp); lane 0 saves mean and rstd for the backward. Both LayerNorm kernels use it, so they agree bitwise.
__device__ inline float layernorm_row_rstd(float var_partial, float m, int D, int lane, int64_t n, float* mean,
                                           float* rstd) {
  const float r = 1.0f / sqrtf(warp_sum(var_partial) / float(D) + kLayerNormEps);
  if (lane == 0) {
    mean[n] = m;
    rstd[n] = r;
  }
  return r;
}
// One output of LayerNorm + adaLN modulate for the row value v (row mean m, 1/std r, weight wd), with the row's
// (shift, scale) at column d when sh is given: the one expression both LayerNorm kernels use, so they agree bitwise.
__device__ inline float layernorm_modulate_value(float v, float m, float r, float wd, const float* sh,
                                                 const float* sc, int d) {
  return sh ? ((v - m) * r * wd) * (1.0f + sc[d]) + sh[d] : (v - m) * r * wd;
}

}  // namespace duo::cuda
