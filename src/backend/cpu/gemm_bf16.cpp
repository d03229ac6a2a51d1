// bf16 GEMMs on oneDNN's matmul: see gemm_bf16.h.
#include "backend/cpu/gemm_bf16.h"

#include <omp.h>
#include <cstring>
#include <dnnl.hpp>
#include <mutex>
#include <unordered_map>
#include "core/error.h"
#include "core/simd.h"

namespace duo::cpu {

DUO_SIMD_CLONES void to_bf16(const float* x, bf16_t* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= ((int64_t)1 << 16))
  for (int64_t i = 0; i < n; ++i) y[i] = to_bf16(x[i]);
}

bool cpu_has_bf16_gemm() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512bf16")) return true;
  // AMX-BF16 (Sapphire Rapids and later) is not in gcc 12's __builtin_cpu_supports list: CPUID leaf 7, EDX bit 22.
  unsigned a, b, c, d;
  __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
  return (d >> 22) & 1u;
}

std::string bf16_gemm_summary() {
  const dnnl_version_t* v = dnnl_version();
  __builtin_cpu_init();
  return str("GEMMs in bf16 (dense layers, attention; fp32 sums) on oneDNN ", v->major, ".", v->minor, ".", v->patch, ", ",
             __builtin_cpu_supports("avx512bf16") ? "AVX512-BF16" : "AMX-BF16");
}

namespace {

using dnnl::memory;
using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, uint32_t>;

// A row-major (rows, cols) matrix with leading dimension ld, read transposed when `t` (it is stored (cols, rows)).
memory::desc matrix(int64_t rows, int64_t cols, int64_t ld, bool t, memory::data_type type) {
  return memory::desc({rows, cols}, type, t ? memory::dims{1, ld} : memory::dims{ld, 1});
}

}  // namespace

struct Bf16Gemm::Impl {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  struct Prim {
    dnnl::matmul matmul;
    memory::desc a, b, c, bias;
  };
  std::map<Key, Prim> prims;
  std::mutex mutex;  // prims may be looked up from several threads at once

  Prim& get(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = prims.find(key);
    if (it != prims.end()) return it->second;
    const auto [ta, tb, M, N, K, lda, ldb, ldc, accumulate, has_bias, alpha_bits] = key;
    Prim p;
    p.a = matrix(M, K, lda, ta, memory::data_type::bf16);
    p.b = matrix(K, N, ldb, tb, memory::data_type::bf16);
    p.c = memory::desc({M, N}, memory::data_type::f32, memory::dims{ldc, 1});
    dnnl::primitive_attr attr;
    float alpha;
    std::memcpy(&alpha, &alpha_bits, 4);
    if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
    if (accumulate) {
      dnnl::post_ops po;
      po.append_sum(1.0f);
      attr.set_post_ops(po);
    }
    if (has_bias) p.bias = memory::desc({1, N}, memory::data_type::f32, memory::dims{N, 1});
    const dnnl::matmul::desc desc = has_bias ? dnnl::matmul::desc(p.a, p.b, p.bias, p.c) : dnnl::matmul::desc(p.a, p.b, p.c);
    p.matmul = dnnl::matmul(dnnl::matmul::primitive_desc(desc, attr, engine));
    return prims.emplace(key, std::move(p)).first->second;
  }
};

Bf16Gemm::Bf16Gemm() : impl_(std::make_unique<Impl>()) {}
Bf16Gemm::~Bf16Gemm() = default;

void Bf16Gemm::operator()(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16_t* A,
                          int64_t lda, const bf16_t* B, int64_t ldb, float beta, float* C, int64_t ldc,
                          const float* bias) {
  DUO_ASSERT(beta == 0.0f || beta == 1.0f);
  DUO_ASSERT(alpha == 1.0f || bias == nullptr);  // oneDNN would scale the bias too
  if (M == 0 || N == 0) return;
  if (K == 0) {  // C = beta * C (+ bias), as BLAS defines it (oneDNN refuses empty reductions)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = (beta == 0.0f ? 0.0f : C[m * ldc + n]) + (bias ? bias[n] : 0.0f);
    return;
  }
  uint32_t alpha_bits;
  std::memcpy(&alpha_bits, &alpha, 4);
  Impl::Prim& p = impl_->get(Key{ta, tb, M, N, K, lda, ldb, ldc, beta != 0.0f, bias != nullptr, alpha_bits});
  memory a(p.a, impl_->engine, const_cast<bf16_t*>(A)), b(p.b, impl_->engine, const_cast<bf16_t*>(B)),
      c(p.c, impl_->engine, C);
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c}};
  if (bias) args.emplace(DNNL_ARG_BIAS, memory(p.bias, impl_->engine, const_cast<float*>(bias)));
  if (omp_in_parallel()) {  // a task of the caller's parallel loop: a stream of its own (oneDNN runs it on this thread)
    dnnl::stream own(impl_->engine);
    p.matmul.execute(own, args);
    own.wait();
    return;
  }
  p.matmul.execute(impl_->stream, args);
  impl_->stream.wait();
}

}  // namespace duo::cpu
