// The CPU backend's process setup (docs/cpu_performance.md): GEMM kernels that match what the CPU can do (or what
// the environment chose), subnormals flushed in every OpenMP thread, passive OpenMP waiting, --threads.
#include <boost/test/unit_test.hpp>
#include <omp.h>
#include <strings.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/process_setup.h"
#include "backend/select.h"
#include "core/error.h"

namespace duo {
namespace {

using cpu::SimdLevel;

BOOST_AUTO_TEST_SUITE(cpu_setup)

BOOST_AUTO_TEST_CASE(openblas_families_map_to_their_vector_level) {
  BOOST_TEST((cpu::openblas_family_level("Prescott") == SimdLevel::Sse));
  BOOST_TEST((cpu::openblas_family_level("Sandybridge") == SimdLevel::Avx));
  BOOST_TEST((cpu::openblas_family_level("HASWELL") == SimdLevel::Avx2));  // case as the user types it
  BOOST_TEST((cpu::openblas_family_level("zen") == SimdLevel::Avx2));
  BOOST_TEST((cpu::openblas_family_level("SkylakeX") == SimdLevel::Avx512));
  BOOST_TEST((cpu::openblas_family_level("Cooperlake") == SimdLevel::Avx512Bf16));
  BOOST_TEST((cpu::openblas_family_level("no such core") == SimdLevel::Sse));
  // Each level asks for a family of that level, so a switch can never land on a weaker one.
  for (SimdLevel l : {SimdLevel::Avx, SimdLevel::Avx2, SimdLevel::Avx512, SimdLevel::Avx512Bf16})
    for (bool amd : {false, true}) BOOST_TEST((cpu::openblas_family_level(cpu::openblas_family_for(l, amd)) == l));
  BOOST_TEST(cpu::openblas_family_for(SimdLevel::Sse, false).empty());
}

// The issue this guards: an OpenBLAS older than the CPU runs its SSE3 "Prescott" kernels on an AVX-512 machine.
BOOST_AUTO_TEST_CASE(gemm_kernels_match_the_cpu_or_the_environment) {
  const cpu::GemmKernels& k = cpu::gemm_kernels();
  BOOST_TEST_MESSAGE("GEMM: " << cpu::cpu_compute_summary());
  BOOST_TEST(!k.family.empty());
  if (const char* env = std::getenv("OPENBLAS_CORETYPE")) {
    BOOST_TEST(strcasecmp(k.family.c_str(), env) == 0, "OPENBLAS_CORETYPE=" << env << " but the kernels are " << k.family);
    BOOST_TEST(k.chosen_by.find("OPENBLAS_CORETYPE") != std::string::npos);
  } else {
    BOOST_TEST((cpu::openblas_family_level(k.family) >= k.cpu),
               k.family << " kernels on a CPU with " << cpu::simd_level_name(k.cpu) << " (" << k.chosen_by << ")");
  }
}

// Runs one test case of this binary in a child process with extra environment; returns its exit status and output.
int run_self(const std::string& env, const std::string& test_case, std::string& output) {
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string log = (std::filesystem::temp_directory_path() / ("duo_cpu_setup_" + std::to_string(getpid()))).string();
  const int status = std::system((env + " '" + self + "' --run_test=" + test_case + " > '" + log + "' 2>&1").c_str());
  std::ifstream in(log);
  output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  std::filesystem::remove(log);
  return status;
}

// The same binary with a family forced through the environment keeps it (as `make test-long` runs the suite).
BOOST_AUTO_TEST_CASE(an_environment_choice_is_kept) {
  if (std::getenv("OPENBLAS_CORETYPE")) return;  // already a run with a forced family
  std::string out;
  BOOST_TEST(run_self("OPENBLAS_CORETYPE=Prescott", "cpu_setup/gemm_kernels_match_the_cpu_or_the_environment", out) == 0,
             "the suite forced to Prescott kernels should report Prescott:\n" << out);
}

BOOST_AUTO_TEST_CASE(subnormals_are_flushed_in_every_thread) {
  const bool want = cpu::process_setup().flush_denormals;
  const char* env = std::getenv("DUO_DENORMALS");
  BOOST_TEST(want == !(env && std::string(env) == "keep"));
  int threads = 0, flushing = 0, zero_products = 0;
#pragma omp parallel reduction(+ : threads, flushing, zero_products) num_threads(4)
  {
    volatile float tiny = 1e-30f;  // 1e-30 * 1e-10 = 1e-40 is subnormal in float
    volatile float product = tiny * 1e-10f;
    threads += 1;
    flushing += cpu::thread_flushes_denormals();
    zero_products += product == 0.0f;
  }
  BOOST_TEST(threads == 4);
  BOOST_TEST(flushing == (want ? threads : 0));
  BOOST_TEST(zero_products == (want ? threads : 0));
}

// libgomp itself reports what it runs with (OMP_DISPLAY_ENV=verbose): passive waiting is a spin count of 0. The
// child starts without the variables, as a user's process does, so the restart of the pre-initialiser is tested.
BOOST_AUTO_TEST_CASE(openmp_waits_passively_unless_the_environment_says_otherwise) {
  const std::string& policy = cpu::process_setup().wait_policy;
  const bool user_set = std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT");
  BOOST_TEST(std::getenv("DUO_SET_OMP_WAIT_POLICY") == nullptr);  // removed before main()
  if (!user_set) BOOST_TEST(policy == "passive");
  const std::string clean = "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u DUO_SET_OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose";
  std::string out;
  BOOST_TEST(run_self(clean, "cpu_setup/threads_option", out) == 0, out);
  BOOST_TEST(out.find("GOMP_SPINCOUNT = '0'") != std::string::npos, "libgomp should not spin:\n" << out);
  BOOST_TEST(run_self(clean + " OMP_WAIT_POLICY=active", "cpu_setup/threads_option", out) == 0, out);
  BOOST_TEST(out.find("OMP_WAIT_POLICY = 'ACTIVE'") != std::string::npos, "a policy the user sets is kept:\n" << out);
  BOOST_TEST(out.find("GOMP_SPINCOUNT = '0'") == std::string::npos, out);
}

BOOST_AUTO_TEST_CASE(threads_option) {
  const int before = cpu::max_threads();
  BOOST_CHECK_THROW(cpu::set_threads(-1), Error);
  cpu::set_threads(1);
  BOOST_TEST(cpu::max_threads() == 1);
  cpu::set_threads(0);  // 0 changes nothing
  BOOST_TEST(cpu::max_threads() == 1);
  cpu::set_threads(before);
  BOOST_TEST(cpu::max_threads() == before);
}

// DUO_NCCL_ALWAYS (NCCL in a world of one, for bench/gpu_check.sh) is for CUDA runs: a CPU run that sets it is
// refused, as is a value other than 0 or 1; 0 or unset changes nothing.
BOOST_AUTO_TEST_CASE(nccl_always_is_for_gpu_runs) {
  auto message = [](const char* value) -> std::string {
    ::setenv("DUO_NCCL_ALWAYS", value, 1);
    std::string m = "started";
    try {
      Processes p = start_processes("cpu", 0);
      m = str("started, ", p.comm().name());
    } catch (const Error& e) {
      m = e.what();
    }
    ::unsetenv("DUO_NCCL_ALWAYS");
    return m;
  };
  BOOST_TEST(message("0") == "started, single");
  BOOST_TEST(message("1").find("NCCL carries GPU buffers, and this run is on the CPU") != std::string::npos);
  BOOST_TEST(message("yes").find("'yes' is neither 0 nor 1") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace duo
