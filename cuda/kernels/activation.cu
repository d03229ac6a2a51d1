// Elementwise activations (SiLU of the time conditioning, tanh-GELU of the MLP). fp32 arithmetic on fp32 tensors,
// or on GELU's bf16 activations (Ops::activation_dtype); one element per thread in grid-stride loops; the
// formulas are the CPU backend's, term by term.
#include "cuda_common.cuh"
#include "kernels/gelu.cuh"

namespace duo {
using namespace cuda;

namespace {

// silu(x) = x sigmoid(x);  silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
struct Silu {
  __device__ static float f(float x) { return x / (1.0f + expf(-x)); }
  __device__ static float df(float x) {
    const float s = 1.0f / (1.0f + expf(-x));
    return s * (1.0f + x * (1.0f - s));
  }
};

// y[i] = f(x[i])                                                                   x, y: (n)
template <class F, class T>
__device__ void map_forward(T* y, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = act_store<T>(F::f(act_load(x[i])));
}
// dx[i] = dy[i] f'(x[i])                                                           (n)
template <class F, class T>
__device__ void map_backward(T* dx, const T* dy, const T* x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = act_store<T>(act_load(dy[i]) * F::df(act_load(x[i])));
}
// fp32 activations, and bf16 ones (the activation dtype: GELU's input and output in the MLP, and in the backward
// the gradients of both, which the MLP's backward GEMMs write and read)
template <class F>
__global__ void map_forward_kernel(float* y, const float* x, int64_t n) { map_forward<F>(y, x, n); }
template <class F>
__global__ void map_backward_kernel(float* dx, const float* dy, const float* x, int64_t n) {
  map_backward<F>(dx, dy, x, n);
}
template <class F>
__global__ void map_forward_bf16_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, int64_t n) {
  map_forward<F>(y, x, n);
}
template <class F>
__global__ void map_backward_bf16_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                                         int64_t n) {
  map_backward<F>(dx, dy, x, n);
}

// The shapes were checked by the Ops front (checks::elementwise); here only the dtype the kernels take.
void check_elementwise(const char* op, const Tensor& a, const Tensor& b) { check_f32(op, {&a, &b}); }

}  // namespace

void CudaOps::do_silu(Tensor& out, const Tensor& in) {
  check_elementwise("silu", out, in);
  const int64_t n = in.numel();
  if (n) DUO_LAUNCH(map_forward_kernel<Silu>, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(out), fptr(in), n);
  DUO_CU_LAUNCHED("silu");
}

void CudaOps::do_silu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  check_elementwise("silu_backward", din, in);
  check_elementwise("silu_backward", dout, in);
  const int64_t n = in.numel();
  if (n)
    DUO_LAUNCH(map_backward_kernel<Silu>, blocks_for(n), kThreads, 0, as_stream(stream_))(fptr(din), fptr(dout),
                                                                                          fptr(in), n);
  DUO_CU_LAUNCHED("silu_backward");
}

void CudaOps::do_gelu(Tensor& out, const Tensor& in) {
  check_f32_or_bf16("gelu", {&out, &in});
  const int64_t n = in.numel();
  cudaStream_t st = as_stream(stream_);
  if (n && is_bf16(in))
    DUO_LAUNCH(map_forward_bf16_kernel<Gelu>, blocks_for(n), kThreads, 0, st)(hptr(out), hptr(in), n);
  else if (n)
    DUO_LAUNCH(map_forward_kernel<Gelu>, blocks_for(n), kThreads, 0, st)(fptr(out), fptr(in), n);
  DUO_CU_LAUNCHED("gelu");
}

void CudaOps::do_gelu_backward(Tensor& din, const Tensor& dout, const Tensor& in) {
  check_f32_or_bf16("gelu_backward", {&in, &din, &dout});
  const int64_t n = in.numel();
  cudaStream_t st = as_stream(stream_);
  if (n && is_bf16(in))
    DUO_LAUNCH(map_backward_bf16_kernel<Gelu>, blocks_for(n), kThreads, 0, st)(hptr(din), hptr(dout), hptr(in), n);
  else if (n)
    DUO_LAUNCH(map_backward_kernel<Gelu>, blocks_for(n), kThreads, 0, st)(fptr(din), fptr(dout), fptr(in), n);
  DUO_CU_LAUNCHED("gelu_backward");
}

}  // namespace duo
