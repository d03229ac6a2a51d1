// Stream capture and CUDA graphs under the emulator (cuda/emu/capture.h): a capturing stream records its work
// and runs none of it; a graph launch runs the records with the arguments they were recorded with, every time; the
// calls a GPU refuses while a thread captures are refused here too, and the capture they break fails to end.
#include <boost/test/unit_test.hpp>
#include <functional>
#include <utility>
#include <vector>

#include "emu_test_util.h"
#include "runtime.cuh"

namespace {

__global__ void add_value(float* x, float a, int n) {
  const int i = int(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) x[i] += a;
}

// A stream that is destroyed with the scope (a failed test must not leave one capturing).
struct ScopedStream {
  cudaStream_t s = nullptr;
  ScopedStream() { DUO_CUDA_CHECK(cudaStreamCreate(&s)); }
  ~ScopedStream() {
    cudaStreamCaptureStatus st;
    cudaStreamIsCapturing(s, &st);
    if (st != cudaStreamCaptureStatusNone) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      cudaGraphDestroy(g);
      cudaGetLastError();
    }
    cudaStreamDestroy(s);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(cuda_emu)

// Recorded work does not run at capture; each launch of the graph runs all of it, in order, with the recorded
// arguments (a copy and a set included), and the stream runs new work as it comes once the capture has ended.
BOOST_AUTO_TEST_CASE(a_graph_runs_what_was_captured_at_each_launch) {
  using duo::testing::DeviceVec;
  ScopedStream st;
  DeviceVec<float> x(std::vector<float>{1, 2, 3, 4}), y(4, 0.0f);
  DUO_CUDA_CHECK(cudaStreamBeginCapture(st.s, cudaStreamCaptureModeThreadLocal));
  DUO_LAUNCH(add_value, 1, 32, 0, st.s)(x, 10.0f, 4);
  DUO_CUDA_CHECK(cudaMemcpyAsync(static_cast<float*>(y), static_cast<float*>(x), 4 * sizeof(float),
                                 cudaMemcpyDeviceToDevice, st.s));
  DUO_CUDA_CHECK(cudaMemsetAsync(static_cast<float*>(x), 0, sizeof(float), st.s));
  cudaGraph_t graph = nullptr;
  DUO_CUDA_CHECK(cudaStreamEndCapture(st.s, &graph));
  BOOST_TEST(x.host() == (std::vector<float>{1, 2, 3, 4}), "captured work ran at capture");
  BOOST_TEST(y.host() == (std::vector<float>(4, 0.0f)));
  cudaGraphExec_t exec = nullptr;
  DUO_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  DUO_CUDA_CHECK(cudaGraphDestroy(graph));
  DUO_CUDA_CHECK(cudaGraphLaunch(exec, st.s));
  BOOST_TEST(x.host() == (std::vector<float>{0, 12, 13, 14}));
  BOOST_TEST(y.host() == (std::vector<float>{11, 12, 13, 14}));
  DUO_CUDA_CHECK(cudaGraphLaunch(exec, st.s));
  BOOST_TEST(x.host() == (std::vector<float>{0, 22, 23, 24}));
  BOOST_TEST(y.host() == (std::vector<float>{10, 22, 23, 24}));
  DUO_LAUNCH(add_value, 1, 32, 0, st.s)(x, 1.0f, 4);
  BOOST_TEST(x.host() == (std::vector<float>{1, 23, 24, 25}), "the stream after its capture");
  DUO_CUDA_CHECK(cudaGraphExecDestroy(exec));
}

// While a thread captures, a wait, an allocation or a synchronous copy is refused and invalidates the capture,
// which then ends without a graph; the stream works as before afterwards.
BOOST_AUTO_TEST_CASE(unsafe_calls_while_capturing_break_the_capture) {
  using duo::testing::DeviceVec;
  DeviceVec<float> x(4, 1.0f);
  std::vector<float> host(4);
  const std::vector<std::pair<const char*, std::function<cudaError_t(cudaStream_t)>>> unsafe = {
      {"cudaStreamSynchronize", [](cudaStream_t s) { return cudaStreamSynchronize(s); }},
      {"cudaDeviceSynchronize", [](cudaStream_t) { return cudaDeviceSynchronize(); }},
      {"cudaMalloc",
       [](cudaStream_t) {
         void* p = nullptr;
         return cudaMalloc(&p, 64);
       }},
      {"cudaMemcpy",
       [&](cudaStream_t) {
         return cudaMemcpy(host.data(), static_cast<float*>(x), 4 * sizeof(float), cudaMemcpyDeviceToHost);
       }},
      {"cudaMemcpyAsync from pageable memory",
       [&](cudaStream_t s) {
         return cudaMemcpyAsync(static_cast<float*>(x), host.data(), 4 * sizeof(float), cudaMemcpyHostToDevice, s);
       }},
  };
  for (const auto& [what, call] : unsafe) {
    ScopedStream st;
    DUO_CUDA_CHECK(cudaStreamBeginCapture(st.s, cudaStreamCaptureModeThreadLocal));
    DUO_LAUNCH(add_value, 1, 32, 0, st.s)(x, 1.0f, 4);
    BOOST_TEST(call(st.s) == cudaErrorStreamCaptureUnsupported, what);
    cudaStreamCaptureStatus status;
    DUO_CUDA_CHECK(cudaStreamIsCapturing(st.s, &status));
    BOOST_TEST(status == cudaStreamCaptureStatusInvalidated, what);
    cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&host);
    BOOST_TEST(cudaStreamEndCapture(st.s, &graph) == cudaErrorStreamCaptureInvalidated, what);
    BOOST_TEST(graph == nullptr, what);
    cudaGetLastError();
    BOOST_TEST(x.host() == (std::vector<float>(4, 1.0f)), what << ": the broken capture's work ran");
  }
}

// A captured copy from page-locked memory reads the host bytes at each launch, not at capture; the null stream
// cannot take work while the thread captures another stream.
BOOST_AUTO_TEST_CASE(captured_copies_read_pinned_memory_at_launch) {
  using duo::testing::DeviceVec;
  ScopedStream st;
  DeviceVec<float> x(4, 0.0f);
  float* pinned = nullptr;
  DUO_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&pinned), 4 * sizeof(float)));
  for (int i = 0; i < 4; ++i) pinned[i] = float(i);
  DUO_CUDA_CHECK(cudaStreamBeginCapture(st.s, cudaStreamCaptureModeThreadLocal));
  DUO_CUDA_CHECK(cudaMemcpyAsync(static_cast<float*>(x), pinned, 4 * sizeof(float), cudaMemcpyHostToDevice, st.s));
  DUO_LAUNCH(add_value, 1, 32, 0, nullptr)(x, 1.0f, 4);
  BOOST_TEST(cudaGetLastError() == cudaErrorStreamCaptureImplicit);
  cudaGraph_t graph = nullptr;
  BOOST_TEST(cudaStreamEndCapture(st.s, &graph) == cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();

  DUO_CUDA_CHECK(cudaStreamBeginCapture(st.s, cudaStreamCaptureModeThreadLocal));
  DUO_CUDA_CHECK(cudaMemcpyAsync(static_cast<float*>(x), pinned, 4 * sizeof(float), cudaMemcpyHostToDevice, st.s));
  DUO_CUDA_CHECK(cudaStreamEndCapture(st.s, &graph));
  cudaGraphExec_t exec = nullptr;
  DUO_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  DUO_CUDA_CHECK(cudaGraphDestroy(graph));
  for (int i = 0; i < 4; ++i) pinned[i] = float(10 + i);
  DUO_CUDA_CHECK(cudaGraphLaunch(exec, st.s));
  BOOST_TEST(x.host() == (std::vector<float>{10, 11, 12, 13}));
  DUO_CUDA_CHECK(cudaGraphExecDestroy(exec));
  DUO_CUDA_CHECK(cudaFreeHost(pinned));
}

BOOST_AUTO_TEST_SUITE_END()
