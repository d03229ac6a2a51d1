#include "io/atomic_file.h"
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include "core/error.h"

namespace duo {

namespace {

std::string errno_text() { return std::strerror(errno); }

// The directory holding `path` ("." for a bare file name), for the fsync that makes the rename durable.
std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  temp_ = str(path_, ".tmp.", (long)::getpid());
  f_ = std::fopen(temp_.c_str(), "wb");
  if (!f_)
    fail(path_, str("cannot create the temporary file ", temp_, ": ", errno_text()),
         "check that the directory exists, is writable and the disk is not full");
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  DUO_ASSERT(f_ && !committed_);
  if (bytes && std::fwrite(data, 1, bytes, f_) != bytes)
    fail(path_, str("write to ", temp_, " failed: ", errno_text()), "check the free disk space; the old file is kept");
}

void AtomicFile::commit() {
  DUO_ASSERT(f_ && !committed_);
  const char* hint = "check the free disk space and permissions; the old file is kept";
  if (std::fflush(f_) != 0) fail(path_, str("flushing ", temp_, " failed: ", errno_text()), hint);
  if (::fsync(::fileno(f_)) != 0) fail(path_, str("fsync of ", temp_, " failed: ", errno_text()), hint);
  int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) fail(path_, str("closing ", temp_, " failed: ", errno_text()), hint);
  if (std::rename(temp_.c_str(), path_.c_str()) != 0)
    fail(path_, str("renaming ", temp_, " over it failed: ", errno_text()),
         "the target may be a directory or on a read-only file system; the old file is kept");
  committed_ = true;
  // Durability of the rename: fsync the directory entry. The new file is already complete and in place, so
  // a failure here (some file systems refuse fsync on directories) is not an error worth losing work over.
  int dir = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace duo
