// CudaOps' recorded op sequences (Ops::record, Ops::replay): CUDA graphs made by stream capture. While the stream
// captures, every launch, async copy and cuBLASLt call on it is recorded instead of run; the graph then runs as one
// launch. A recording holds raw device pointers and the scalar arguments of its kernels, so it is replayed only
// while nothing it may use has moved (epoch_, the weight copies' version) and while the id-check slots it writes are
// the next free ones (its checks are booked again at each replay, so that a bad id is reported as from the op).
#include "cuda_ops.h"

#include <iostream>
#include <string>

#include "backend/weight_copies.h"

#include "cuda_common.cuh"

namespace duo {
using namespace cuda;

struct CudaOps::Graph final : Ops::Recording {
  cudaGraphExec_t exec = nullptr;
  uint64_t epoch = 0, copies_version = 0;
  size_t first_check = 0;       // id_checks_.size() when it was recorded: its checks use the slots from there
  std::vector<IdCheck> checks;  // the id checks it makes, booked again at each launch
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  ~Graph() override {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

void CudaOps::refuse_while_recording(const char* op) const {
  if (!recording_) return;
  fail(str("CudaOps::", op), "called inside a recorded op sequence (Ops::record), where nothing may wait for the GPU, "
                             "copy to or from the host, allocate, release or grow the scratch",
       "move the call out of the recorded sequence; run the sequence once unrecorded before recording it, so that "
       "the scratch and the weight copies it needs exist");
}

// Where this CUDA setup cannot capture or run a graph (a debugger or profiler that does not support them, a call the
// capture refused that no op checked): the run goes on launching every kernel, and says so once.
void CudaOps::graphs_unavailable(const std::string& why) {
  graphs_on_ = false;
  std::cerr << "warning: CUDA graphs are off for the rest of this run (" << why
            << "); every kernel is launched instead (DUO_CUDA_GRAPHS=0 does the same without this warning)\n";
}

std::unique_ptr<Ops::Recording> CudaOps::record(const std::function<void()>& fn) {
  if (!graphs_on_ || observed()) {  // an observer must see every op, which a replay would hide
    fn();
    return nullptr;
  }
  DUO_CHECK(!recording_, "CudaOps::record", "a recording inside a recording", "record the outer sequence only");
  cudaStream_t s = as_stream(stream_);
  const size_t first_check = id_checks_.size();
  if (const cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal); e != cudaSuccess) {
    cudaGetLastError();
    graphs_unavailable(str("cudaStreamBeginCapture: ", cudaGetErrorString(e)));
    fn();
    return nullptr;
  }
  recording_ = true;
  cudaGraph_t graph = nullptr;
  try {
    fn();
  } catch (...) {  // end the capture, drop what it recorded (none of it ran), pass the error on
    recording_ = false;
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();
    id_checks_.resize(first_check);
    throw;
  }
  recording_ = false;
  auto g = std::make_unique<Graph>();
  const cudaError_t ended = cudaStreamEndCapture(s, &graph);
  const cudaError_t made = ended == cudaSuccess ? cudaGraphInstantiate(&g->exec, graph, 0) : ended;
  if (graph) cudaGraphDestroy(graph);
  if (made != cudaSuccess) {  // a call inside fn broke the capture, or the graph cannot run: none of fn's work ran
    cudaGetLastError();
    id_checks_.resize(first_check);
    graphs_unavailable(str(ended != cudaSuccess ? "cudaStreamEndCapture: " : "cudaGraphInstantiate: ",
                           cudaGetErrorString(made)));
    fn();
    return nullptr;
  }
  g->epoch = epoch_;
  g->copies_version = copies_->version();
  g->first_check = first_check;
  g->checks.assign(id_checks_.begin() + std::ptrdiff_t(first_check), id_checks_.end());
  DUO_CU("record", cudaGraphLaunch(g->exec, s));  // nothing ran while it was recorded: it runs now
  ++graph_launches_;
  return g;
}

bool CudaOps::replay(Recording& r) {
  auto* g = dynamic_cast<Graph*>(&r);
  DUO_CHECK(g != nullptr, "CudaOps::replay", "the recording was not made by a CUDA backend", "");
  DUO_CHECK(!recording_, "CudaOps::replay", "a replay inside a recording", "record the outer sequence only");
  if (!graphs_on_ || observed() || g->epoch != epoch_ || g->copies_version != copies_->version() ||
      id_checks_.size() != g->first_check)
    return false;
  id_checks_.insert(id_checks_.end(), g->checks.begin(), g->checks.end());
  DUO_CU("replay", cudaGraphLaunch(g->exec, as_stream(stream_)));
  ++graph_launches_;
  return true;
}

}  // namespace duo
