// Atomic file replacement: data goes to `<path>.tmp.<pid>`, is flushed and fsynced, then renamed over
// <path>, and the directory is fsynced so the rename itself survives a crash. Readers see either the old
// file or the complete new one, never a half-written file; a failed or abandoned write leaves the old file
// untouched and removes its temporary file.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>

namespace duo {

class AtomicFile {
 public:
  // Creates the temporary file next to `path` (same directory, so the rename cannot cross file systems).
  explicit AtomicFile(std::string path);
  // Without commit(): closes and deletes the temporary file (the target is not touched).
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  // fflush + fsync, rename over the target, fsync the directory. Throws duo::Error on any failure (and then
  // the temporary file is removed by the destructor).
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }

 private:
  std::string path_, temp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

// Convenience: replaces `path` atomically with `bytes`.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace duo
