// Process-wide settings of the CPU backend that must be in place before OpenMP or OpenBLAS start, applied by an
// ELF pre-initialiser that runs before any shared library's constructor (docs/cpu_performance.md §2):
//  - OpenMP threads wait passively (OMP_WAIT_POLICY=passive) unless the environment already sets
//    OMP_WAIT_POLICY or GOMP_SPINCOUNT: busy-waiting threads collapse when other processes share the cores.
//    libgomp reads the variable only from the environment the process started with, so the pre-initialiser
//    executes the program again at once with it added (before any library initialises); the variable is
//    removed again before main(), so child processes see the environment as the user gave it;
//  - flush-to-zero and denormals-are-zero in the floating-point control register of the main thread, which
//    every thread created later (the OpenMP workers) inherits, unless DUO_DENORMALS=keep: subnormal floats
//    appear in softmax tails late in training and cost each op touching them many cycles (§3).
#pragma once
#include <string>

namespace duo::cpu {

struct ProcessSetup {
  std::string wait_policy;  // "passive (set by duo.cu)", or what the environment chose
  bool flush_denormals = false;
};

// What the pre-initialiser applied (read-only; the settings themselves are process state, not ours to change).
const ProcessSetup& process_setup();

// Whether the calling thread's control register flushes subnormals (FTZ and DAZ both set).
bool thread_flushes_denormals();

// Uses `threads` OpenMP threads (and as many OpenBLAS threads) from now on; 0 leaves the default (one per core
// this process may run on). Throws duo::Error naming `option` for a negative count.
void set_threads(int threads, const char* option = "--threads");

// Threads the next parallel region will use.
int max_threads();

}  // namespace duo::cpu
