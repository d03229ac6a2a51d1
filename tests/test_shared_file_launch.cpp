// srun without MPI (backend/shared_file_launch.h): the ranks read from slurm's environment, the exchange of NCCL's
// id through a shared file (published whole, a stale file of another run never read, clear errors on timeouts and
// bad files), and the refusal of such a launch on the CPU. The NCCL side needs a GPU (bench/gpu_check.sh runs a
// world of one through a shared file).
#include <boost/test/unit_test.hpp>
#include <sys/stat.h>
#include <array>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>
#include "backend/select.h"
#include "backend/shared_file_launch.h"
#include "core/error.h"
#include "error_util.h"
#include "io_test_util.h"

using namespace duo;

namespace {

using Vars = std::map<std::string, std::string>;

// The variables a shared-file launch reads.
constexpr const char* kLaunchVariables[] = {"DUO_INIT_FILE", "DUO_INIT_TIMEOUT", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS",
                                            "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_STEP_ID"};

// Sets the variables for the scope of one check and restores the previous environment after it.
class Env {
 public:
  explicit Env(const Vars& vars) {
    for (const char* name : kLaunchVariables) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      ::unsetenv(name);
    }
    for (const auto& [k, v] : vars) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~Env() {
    for (const char* name : kLaunchVariables) ::unsetenv(name);
    for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  Vars saved_;
};

std::map<std::string, std::string> srun(const std::string& file, int rank, int size) {
  return {{"DUO_INIT_FILE", file},         {"SLURM_PROCID", std::to_string(rank)},
          {"SLURM_STEP_NUM_TASKS", std::to_string(size)}, {"SLURM_LOCALID", std::to_string(rank % 4)},
          {"SLURM_JOB_ID", "4242"},         {"SLURM_STEP_ID", "0"}};
}

using testing::error_of;

SharedFileLaunch launch(const std::string& file, int rank, int size, const std::string& key, double timeout) {
  SharedFileLaunch l;
  l.rank = rank;
  l.size = size;
  l.file = file;
  l.key = key;
  l.timeout_s = timeout;
  return l;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(shared_file_launch)

BOOST_AUTO_TEST_CASE(ranks_come_from_slurm) {
  {
    Env e(Vars{});
    BOOST_TEST(!shared_file_launch_from_env().has_value());  // not asked for: MPI or one process as before
  }
  {
    Env e(srun("/shared/run.init", 5, 8));
    const auto l = shared_file_launch_from_env();
    BOOST_REQUIRE(l.has_value());
    BOOST_TEST(l->rank == 5);
    BOOST_TEST(l->size == 8);
    BOOST_TEST(l->local_rank == 1);
    BOOST_TEST(l->file == "/shared/run.init");
    BOOST_TEST(l->key == "4242.0");
  }
  {
    auto vars = srun("/shared/run.init", 1, 2);
    vars["DUO_INIT_TIMEOUT"] = "30";
    Env e(vars);
    BOOST_TEST(shared_file_launch_from_env()->timeout_s == 30.0);
  }
  {  // a batch script run directly (no srun step): SLURM_NTASKS counts ranks that were never started
    auto vars = srun("/shared/run.init", 0, 4);
    vars.erase("SLURM_STEP_NUM_TASKS");
    vars.erase("SLURM_STEP_ID");
    vars["SLURM_NTASKS"] = "4";
    Env e(vars);
    const std::string m = error_of([] { shared_file_launch_from_env(); });
    BOOST_TEST(m.find("DUO_INIT_FILE: is set, and SLURM_STEP_NUM_TASKS is not") != std::string::npos, m);
  }
  {  // set outside srun: the ranks would not know who they are
    Env e(Vars{{"DUO_INIT_FILE", "/shared/run.init"}});
    const std::string m = error_of([] { shared_file_launch_from_env(); });
    BOOST_TEST(m.find("DUO_INIT_FILE") != std::string::npos, m);
    BOOST_TEST(m.find("is not") != std::string::npos, m);
    BOOST_TEST(m.find("start every rank with srun") != std::string::npos, m);
  }
  for (const auto& [name, value] : std::map<std::string, std::string>{
           {"SLURM_PROCID", "8"}, {"SLURM_PROCID", "-1"}, {"SLURM_STEP_NUM_TASKS", "two"}, {"SLURM_LOCALID", "1x"}}) {
    auto vars = srun("/shared/run.init", 0, 8);
    vars[name] = value;
    Env e(vars);
    const std::string m = error_of([] { shared_file_launch_from_env(); });
    BOOST_TEST(m.find(name + ": '" + value + "' is not a whole number") != std::string::npos, m);
  }
}

// Rank 0 publishes after the others started waiting; they read its bytes; rank 0 then removes the file.
BOOST_AUTO_TEST_CASE(the_others_read_what_rank_0_publishes) {
  testing::TempDir dir;
  const std::string file = dir.file("run.init");
  std::array<unsigned char, 128> id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = (unsigned char)(i * 37 + 11);
  std::array<std::array<unsigned char, 128>, 3> got{};
  std::vector<std::thread> readers;
  for (int r = 1; r <= 3; ++r)
    readers.emplace_back([&, r] { wait_for_launch_data(launch(file, r, 4, "7.1", 30), got[r - 1].data(), 128); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  publish_launch_data(launch(file, 0, 4, "7.1", 30), id.data(), id.size());
  for (auto& t : readers) t.join();
  for (const auto& g : got) BOOST_TEST(g == id);
  BOOST_TEST(!std::filesystem::exists(file + ".tmp." + std::to_string(::getpid())));
  withdraw_launch_data(launch(file, 0, 4, "7.1", 30));
  BOOST_TEST(!std::filesystem::exists(file));
  withdraw_launch_data(launch(file, 0, 4, "7.1", 30));  // already gone: fine
}

// A file an earlier run left is never read as this run's: the rank waits for its own run's, and says what it saw
// when rank 0 never comes.
BOOST_AUTO_TEST_CASE(a_stale_file_of_another_run_is_not_read) {
  testing::TempDir dir;
  const std::string file = dir.file("run.init");
  const std::array<unsigned char, 4> old_id = {1, 2, 3, 4}, new_id = {9, 8, 7, 6};
  publish_launch_data(launch(file, 0, 2, "7.0", 30), old_id.data(), old_id.size());
  std::array<unsigned char, 4> got{};
  std::thread reader([&] { wait_for_launch_data(launch(file, 1, 2, "8.0", 30), got.data(), got.size()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  publish_launch_data(launch(file, 0, 2, "8.0", 30), new_id.data(), new_id.size());
  reader.join();
  BOOST_TEST(got == new_id);

  const std::string m = error_of([&] { wait_for_launch_data(launch(file, 1, 2, "9.0", 0.2), got.data(), 4); });
  BOOST_TEST(m.find(file) != std::string::npos, m);
  BOOST_TEST(m.find("rank 1 of 2 waited 0.2 s for rank 0's launch data of run 9.0 and found only a file of run 8.0") !=
                 std::string::npos, m);
  const std::string none = error_of([&] { wait_for_launch_data(launch(dir.file("absent"), 3, 4, "9.0", 0.1), got.data(), 4); });
  BOOST_TEST(none.find("rank 3 of 4 waited 0.1 s for rank 0's launch data") != std::string::npos, none);
  BOOST_TEST(none.find("DUO_INIT_TIMEOUT") != std::string::npos, none);
}

BOOST_AUTO_TEST_CASE(bad_files_are_named) {
  testing::TempDir dir;
  std::array<unsigned char, 8> got{};
  const std::string other = dir.file("other.txt");
  testing::write_bytes(other, "some notes\n");
  std::string m = error_of([&] { wait_for_launch_data(launch(other, 1, 2, "1.0", 5), got.data(), 8); });
  BOOST_TEST(m.find(other + ": is not a duo.cu launch file") != std::string::npos, m);
  m = error_of([&] { wait_for_launch_data(launch(dir.path().string(), 1, 2, "1.0", 5), got.data(), 8); });
  BOOST_TEST(m.find("is not a regular file") != std::string::npos, m);
  const std::string file = dir.file("run.init");
  publish_launch_data(launch(file, 0, 2, "1.0", 5), got.data(), 4);  // another build's id size
  m = error_of([&] { wait_for_launch_data(launch(file, 1, 2, "1.0", 5), got.data(), 8); });
  BOOST_TEST(m.find("holds 4 bytes of launch data, not the 8 this rank expects") != std::string::npos, m);
  m = error_of([&] { publish_launch_data(launch(dir.file("no/such/dir/run.init"), 0, 2, "1.0", 5), got.data(), 8); });
  BOOST_TEST(m.find("no/such/dir/run.init") != std::string::npos, m);
  BOOST_TEST(m.find("cannot write") != std::string::npos, m);
}

// NCCL carries GPU buffers: a CPU run launched this way is refused, naming the variable.
BOOST_AUTO_TEST_CASE(a_cpu_run_is_refused) {
  testing::TempDir dir;
  Env e(srun(dir.file("run.init"), 0, 2));
  const std::string m = error_of([] { Processes p = start_processes("cpu", 0); });
  BOOST_TEST(m.find("DUO_INIT_FILE") != std::string::npos, m);
  BOOST_TEST(m.find("this run is on the CPU") != std::string::npos, m);
  BOOST_TEST(m.find("mpirun or srun --mpi=pmix") != std::string::npos, m);
}

BOOST_AUTO_TEST_SUITE_END()
