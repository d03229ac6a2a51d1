// safetensors files (https://github.com/huggingface/safetensors, the format of our checkpoints and of the
// Hugging Face weights): an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"key": "value", ...}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// then the tensor bytes (little-endian, row-major), offsets relative to the start of that data area.
//
// The reader validates everything before handing out a single pointer, and every problem is one duo::Error
// naming the file and the tensor or field. The writer replaces files atomically (io/atomic_file.h).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "core/tensor.h"

namespace duo {

// One tensor of an opened file. `data` points into the file's memory (valid while the file object lives) and
// is aligned to 8 bytes whenever its data offset is a multiple of 8 (always so for files we write).
struct StTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_str() const;  // "(2, 32, 67)"
  // A CPU Tensor view of the bytes (at most Tensor::kMaxDims dimensions; throws otherwise).
  Tensor view() const;
};

class SafeTensorsFile {
 public:
  // Reads and validates the whole file. Throws duo::Error (naming the file, with a HINT) for: a file shorter
  // than 8 bytes, a header length past the end, invalid JSON, a header that is not an object, bad
  // __metadata__ (values must be strings), unknown dtype names, malformed shapes or offsets, shape x dtype
  // size != the offsets' span, offsets past the end of the data, overlapping tensors, gaps or trailing bytes
  // in the data area, empty or duplicate names.
  static SafeTensorsFile open(const std::string& path);
  // The same checks on bytes already in memory; `path` is only used in messages.
  static SafeTensorsFile parse(const std::string& path, const std::string& bytes);

  const std::string& path() const { return path_; }
  // In the order of their data offsets (= file order).
  const std::vector<StTensor>& tensors() const { return tensors_; }
  bool has(const std::string& name) const { return index_.count(name) != 0; }
  // Throws duo::Error naming the file and the tensor when it is absent.
  const StTensor& get(const std::string& name) const;
  // Like get(), and also checks the dtype and the shape (errors show both shapes).
  const StTensor& get(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Throws duo::Error naming the file and the key when it is absent.
  const std::string& meta(const std::string& key) const;

 private:
  // Parses and validates the JSON header against a data area of `data_size` bytes (already in data_).
  void index_header(const std::string& header, uint64_t data_size);

  std::string path_;
  std::shared_ptr<const std::vector<uint64_t>> data_;  // the data area, 8-byte aligned; shared by copies
  std::vector<StTensor> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: `data` holds numel(shape) * dtype_size(dtype) bytes, row-major, little-endian.
struct NamedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};
// From a contiguous CPU Tensor.
NamedTensor named(const std::string& name, const Tensor& t);

// Writes the tensors in the given order with `metadata` as __metadata__ (omitted when empty), atomically.
// Throws duo::Error for empty or duplicate names, the reserved name "__metadata__", null data, and I/O errors.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace duo
