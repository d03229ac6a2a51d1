// The GEMM libraries Debian offers, side by side on the DiT's GEMM shapes (docs/cpu_performance.md §1): OpenBLAS
// as the CPU backend runs it (kernels chosen from the CPU's flags), BLIS (libblis4-openmp) and oneDNN's sgemm
// (libdnnl2). BLIS and oneDNN are loaded at run time when installed (`apt-get install libblis4-openmp libdnnl2`),
// so the engine itself never depends on them. Prints one row per shape: GFLOP/s of each library (median of
// --repeat calls) and the best.
//   build/bench-gemm_libraries --threads 2 [--repeat 7]
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include "backend/cpu/cpu_common.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/process_setup.h"
#include "core/timer.h"
#include "io/cli.h"

namespace {

// Row-major C[M,N] = op(A) op(B), the three forms of a linear layer y = x W^T: forward (N, T), input
// gradient (N, N), weight gradient (T, N).
struct Shape {
  const char* what;
  bool ta, tb;
  int64_t M, N, K;
};

using Gemm = void (*)(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C);

// cblas_sgemm of a library opened with its own symbols first (RTLD_DEEPBIND), so it never calls OpenBLAS's.
using CblasSgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float, float*, int);
CblasSgemm g_blis = nullptr;
// oneDNN: row-major, transposes as 'N'/'T'; returns a status (0 = success).
using DnnlSgemm = int (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t,
                          float, float*, int64_t);
DnnlSgemm g_dnnl = nullptr;

void run_openblas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  duo::cpu::gemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
}
void run_blis(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;
  g_blis(kRowMajor, ta ? kTrans : kNoTrans, tb ? kTrans : kNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)(ta ? M : K),
         B, (int)(tb ? K : N), 0.0f, C, (int)N);
}
void run_dnnl(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  const int status = g_dnnl(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
  if (status != 0) duo::fail("dnnl_sgemm", duo::str("returned status ", status), "");
}

void* open_library(const char* path) { return dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND); }

double gflops(Gemm f, const Shape& s, int repeat, std::vector<float>& a, std::vector<float>& b, std::vector<float>& c) {
  f(s.ta, s.tb, s.M, s.N, s.K, a.data(), b.data(), c.data());  // warm-up
  std::vector<double> secs;
  for (int r = 0; r < repeat; ++r) {
    duo::Timer t;
    f(s.ta, s.tb, s.M, s.N, s.K, a.data(), b.data(), c.data());
    secs.push_back(t.seconds());
  }
  std::sort(secs.begin(), secs.end());
  return 2.0 * s.M * s.N * s.K / secs[secs.size() / 2] / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("bench-gemm_libraries", [&] {
    duo::po::options_description desc("bench-gemm_libraries options");
    desc.add_options()("help,h", "show this help")
        ("threads", duo::po::value<int>()->default_value(0), "threads for every library (0 = one per core)")
        ("repeat", duo::po::value<int>()->default_value(7), "timed calls per shape (the median is reported)");
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: bench-gemm_libraries [--threads N]")) return 0;
    duo::cpu::set_threads(vm["threads"].as<int>());
    const int threads = duo::cpu::max_threads(), repeat = std::max(1, vm["repeat"].as<int>());
    setenv("BLIS_NUM_THREADS", std::to_string(threads).c_str(), 1);  // read when BLIS starts
    if (void* h = open_library("/usr/lib/x86_64-linux-gnu/blis-openmp/libblis.so.4"))
      g_blis = (CblasSgemm)dlsym(h, "cblas_sgemm");
    if (void* h = open_library("libdnnl.so.2")) g_dnnl = (DnnlSgemm)dlsym(h, "dnnl_sgemm");

    // tiny (d 256, V 65, B 8 x L 256 = 2048 rows) and small (d 768, V 50258, B 1 x L 256) of the DUO DiT.
    const std::vector<Shape> shapes = {
        {"tiny qkv fwd", false, true, 2048, 768, 256},   {"tiny mlp1 fwd", false, true, 2048, 1024, 256},
        {"tiny mlp2 fwd", false, true, 2048, 256, 1024}, {"tiny mlp1 dX", false, false, 2048, 256, 1024},
        {"tiny mlp1 dW", true, false, 1024, 256, 2048},  {"small qkv fwd", false, true, 256, 2304, 768},
        {"small mlp1 fwd", false, true, 256, 3072, 768}, {"small mlp1 dW", true, false, 3072, 768, 256},
        {"small head fwd", false, true, 256, 50258, 768}, {"small head dX", false, false, 256, 768, 50258},
        {"small head dW", true, false, 50258, 768, 256},
    };
    std::printf("GEMM GFLOP/s, %d threads; OpenBLAS: %s\n", threads, duo::cpu::cpu_compute_summary().c_str());
    std::printf("%-16s %6s %6s %6s %10s %10s %10s\n", "shape", "M", "N", "K", "OpenBLAS", g_blis ? "BLIS" : "(no BLIS)",
                g_dnnl ? "oneDNN" : "(no oneDNN)");
    for (const Shape& s : shapes) {
      std::vector<float> a(s.M * s.K), b(s.K * s.N), c(s.M * s.N);
      for (size_t i = 0; i < a.size(); ++i) a[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
      for (size_t i = 0; i < b.size(); ++i) b[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
      std::printf("%-16s %6ld %6ld %6ld %10.1f", s.what, (long)s.M, (long)s.N, (long)s.K,
                  gflops(run_openblas, s, repeat, a, b, c));
      if (g_blis) std::printf(" %10.1f", gflops(run_blis, s, repeat, a, b, c)); else std::printf(" %10s", "-");
      if (g_dnnl) std::printf(" %10.1f", gflops(run_dnnl, s, repeat, a, b, c)); else std::printf(" %10s", "-");
      std::printf("\n");
      std::fflush(stdout);
    }
    return 0;
  });
}
