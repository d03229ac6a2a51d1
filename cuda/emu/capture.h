// Stream capture under the emulator (CUDA graphs): the runtime.h calls cudaStreamBeginCapture … cudaGraphLaunch
// are built on this. A stream that captures records its work — kernel launches, async copies and sets, the emulated
// cuBLASLt — instead of running it; a graph launch runs the records in stream order, with the arguments they were
// recorded with. The rules that make a capture fail on a GPU are kept here too, so that a sequence that records
// under the emulator records on a GPU:
//  * while a host thread captures (modes Global and ThreadLocal: the calling thread's captures), it may not make a
//    "potentially unsafe" call: wait for the device or a stream, allocate or free memory, copy or set synchronously;
//    the call fails (cudaErrorStreamCaptureUnsupported) and the capture is invalidated;
//  * an async copy between a capturing stream and pageable host memory cannot be recorded (only memory from
//    cudaMallocHost can: a graph copies from the host address at each launch);
//  * work on the legacy default stream (a null cudaStream_t) while the thread captures would join the capture
//    implicitly (cudaErrorStreamCaptureImplicit).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace duo::emu {

using Work = std::function<void()>;

// What a stream captured, or a graph holds: the work in stream order.
struct Recording {
  std::vector<Work> work;
};

// A stream: null capture when it runs its work as it comes.
struct Stream {
  std::unique_ptr<Recording> capture;
  bool invalidated = false;  // an unsafe call was made while it captured: ending the capture fails
};

// The streams the calling host thread is capturing (most recent last).
std::vector<Stream*>& thread_captures();
inline bool thread_captures_any() { return !thread_captures().empty(); }
// An unsafe call while this thread captures: every capture of the thread is invalidated.
void invalidate_thread_captures();

// How enqueue() dealt with a piece of stream work.
enum class Enqueued { Ran, Recorded, Implicit };
// Runs work now, or appends it to s's capture; Implicit (nothing run or recorded, the thread's captures invalidated)
// for the null stream while this thread captures.
Enqueued enqueue(Stream* s, Work work);

// Page-locked host memory (cudaMallocHost): the host memory a captured copy may use.
void pin(const void* p, size_t bytes);
void unpin(const void* p);
bool pinned(const void* p, size_t bytes);  // [p, p + bytes) inside one pinned allocation

}  // namespace duo::emu
