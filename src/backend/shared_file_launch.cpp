#include "backend/shared_file_launch.h"
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>
#include "core/error.h"

namespace duo {

namespace {

constexpr const char* kVariable = "DUO_INIT_FILE";
constexpr const char* kMagic = "duo.cu launch";

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// A whole decimal number in [lo, hi] from the environment variable `name`.
long env_number(const char* name, long lo, long hi) {
  const char* v = env(name);
  DUO_CHECK(v != nullptr, kVariable, str("is set, and ", name, " is not"),
            "a shared-file launch takes its ranks from the variables srun sets for each task of a step (SLURM_PROCID, "
            "SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_JOB_ID, SLURM_STEP_ID): start every rank with srun, or unset "
            "DUO_INIT_FILE and launch with mpirun");
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  DUO_CHECK(errno == 0 && end != v && *end == 0 && n >= lo && n <= hi, name,
            str("'", v, "' is not a whole number in [", lo, ", ", hi, "]"), "check the launcher's environment");
  return n;
}

std::string hex(const void* data, size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// What a reader found at the path.
struct Found {
  bool present = false;  // a complete file (rank 0 renames it into place whole)
  std::string key, payload;
};

Found read_launch_file(const std::string& path) {
  Found f;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return f;  // not there (yet)
  DUO_CHECK(S_ISREG(st.st_mode), path, "is not a regular file (" + std::string(kVariable) + " names it)",
            "point DUO_INIT_FILE at a path of its own on a filesystem every node shares (rank 0 creates the file)");
  std::ifstream in(path);
  if (!in) return f;
  std::string magic, key_word, data_word;
  std::getline(in, magic);
  in >> key_word >> f.key >> data_word >> f.payload;
  DUO_CHECK(magic == kMagic && key_word == "key" && data_word == "data" && in, path,
            "is not a duo.cu launch file (" + std::string(kVariable) + " names it)",
            "point DUO_INIT_FILE at a path of its own on a filesystem every node shares (rank 0 creates the file)");
  f.present = true;
  return f;
}

}  // namespace

std::optional<SharedFileLaunch> shared_file_launch_from_env() {
  const char* file = env(kVariable);
  if (!file) return std::nullopt;
  SharedFileLaunch l;
  l.file = file;
  // The step's own variables, which only srun sets: a batch script's SLURM_NTASKS counts ranks that were never
  // started there, and rank 0 would wait for them.
  l.size = (int)env_number("SLURM_STEP_NUM_TASKS", 1, 1 << 20);
  l.rank = (int)env_number("SLURM_PROCID", 0, l.size - 1);
  l.local_rank = (int)env_number("SLURM_LOCALID", 0, 1 << 16);
  l.key = str(env_number("SLURM_JOB_ID", 0, 1L << 62), ".", env_number("SLURM_STEP_ID", 0, 1L << 62));
  if (env("DUO_INIT_TIMEOUT")) l.timeout_s = (double)env_number("DUO_INIT_TIMEOUT", 1, 1L << 30);
  return l;
}

void publish_launch_data(const SharedFileLaunch& l, const void* data, size_t bytes) {
  const std::string temp = l.file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << kMagic << "\nkey " << l.key << "\ndata " << hex(data, bytes) << "\n";
    out.flush();
    DUO_CHECK(static_cast<bool>(out), l.file, str("cannot write ", temp, ": ", std::strerror(errno)),
              "DUO_INIT_FILE must name a file in an existing, writable directory on a filesystem every node shares");
  }
  if (std::rename(temp.c_str(), l.file.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(temp.c_str());
    fail(l.file, "cannot move " + temp + " into place: " + why,
         "DUO_INIT_FILE must name a file in a writable directory (not an existing directory)");
  }
}

void wait_for_launch_data(const SharedFileLaunch& l, void* data, size_t bytes) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::duration<double>(l.timeout_s);
  std::string other_key;  // a file another run left, seen while waiting
  for (auto pause = std::chrono::milliseconds(10);; pause = std::min(pause * 2, std::chrono::milliseconds(500))) {
    const Found f = read_launch_file(l.file);
    if (f.present && f.key == l.key) {
      DUO_CHECK(f.payload.size() == 2 * bytes, l.file,
                str("holds ", f.payload.size() / 2, " bytes of launch data, not the ", bytes, " this rank expects"),
                "start every rank with the same build of duo.cu");
      auto* out = static_cast<unsigned char*>(data);
      for (size_t i = 0; i < bytes; ++i) {
        const int hi = hex_digit(f.payload[2 * i]), lo = hex_digit(f.payload[2 * i + 1]);
        DUO_CHECK(hi >= 0 && lo >= 0, l.file, "its launch data is not hexadecimal", "remove the file and relaunch");
        out[i] = (unsigned char)(hi * 16 + lo);
      }
      return;
    }
    if (f.present) other_key = f.key;
    if (Clock::now() >= deadline) {
      if (!other_key.empty())
        fail(l.file,
             str("rank ", l.rank, " of ", l.size, " waited ", l.timeout_s, " s for rank 0's launch data of run ", l.key,
                 " and found only a file of run ", other_key),
             "rank 0 of this run did not start or failed (see its error); a file an old run left is replaced when "
             "rank 0 starts, and never read by mistake");
      fail(l.file, str("rank ", l.rank, " of ", l.size, " waited ", l.timeout_s, " s for rank 0's launch data"),
           "rank 0 did not start or failed (see its error), or DUO_INIT_FILE is not on a filesystem every node "
           "shares; DUO_INIT_TIMEOUT sets the wait in seconds");
    }
    std::this_thread::sleep_for(pause);
  }
}

void withdraw_launch_data(const SharedFileLaunch& l) { std::remove(l.file.c_str()); }

}  // namespace duo
