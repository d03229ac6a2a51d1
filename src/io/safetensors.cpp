#include "io/safetensors.h"
#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <nlohmann/json.hpp>
#include "core/error.h"
#include "core/regular_file.h"
#include "io/atomic_file.h"

namespace duo {

using json = nlohmann::json;

// Tensor bytes are used in place, and safetensors data is little-endian.
static_assert(std::endian::native == std::endian::little, "duo.cu assumes a little-endian host");

namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the safetensors library's own limit (100 MB)
const char* kHintRewrite = "the file is damaged or not a safetensors file; re-create or re-download it";

uint64_t read_u64_le(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string tensor_where(const std::string& name) { return "tensor '" + name + "'"; }

// One header entry, checked on its own (dtype, shape, offsets, size); cross-tensor checks come later.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size) {
  auto bad = [&](const std::string& what) { fail(path, tensor_where(name) + ": " + what, kHintRewrite); };
  if (name.empty()) fail(path, "a tensor has an empty name", kHintRewrite);
  if (!v.is_object()) bad("header entry is not a JSON object");
  Entry e{name, DType::F32, {}, 0, 0};
  if (!v.contains("dtype") || !v["dtype"].is_string()) bad("missing or non-string \"dtype\"");
  const std::string dt = v["dtype"].get<std::string>();
  if (!dtype_from_name(dt, &e.dtype))
    fail(path, tensor_where(name) + ": unknown dtype \"" + dt + "\"",
         "duo.cu reads F64, F32, BF16, F16, I64, I32, U32, U16, U8; convert the file to one of these");
  if (!v.contains("shape") || !v["shape"].is_array()) bad("missing or non-array \"shape\"");
  uint64_t numel = 1;
  for (const json& d : v["shape"]) {
    if (!d.is_number_unsigned()) bad("\"shape\" must hold non-negative integers, got " + v["shape"].dump());
    uint64_t n = d.get<uint64_t>();
    e.shape.push_back((int64_t)n);
    // Saturate instead of overflowing: anything above the file size cannot match the offsets anyway.
    numel = (n != 0 && numel > (uint64_t(1) << 62) / n) ? (uint64_t(1) << 62) : numel * n;
  }
  const json& off = v.contains("data_offsets") ? v["data_offsets"] : json();
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    bad("\"data_offsets\" must be [begin, end] with non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end) bad(str("data_offsets [", e.begin, ", ", e.end, "] end before they begin"));
  if (e.end > data_size)
    fail(path, str(tensor_where(name), ": data_offsets [", e.begin, ", ", e.end, "] reach past the end of the ",
                   data_size, "-byte data area"),
         "the file is truncated or its header is wrong; re-create or re-download it");
  const uint64_t want = numel * dtype_size(e.dtype);
  if (numel >= (uint64_t(1) << 62) || want != e.end - e.begin)
    fail(path, str(tensor_where(name), ": shape ", shape_str(e.shape), " x ", dt, " needs ", want,
                   " bytes but data_offsets span ", e.end - e.begin),
         kHintRewrite);
  return e;
}

// Every byte of the data area belongs to exactly one tensor, as the safetensors library requires.
void check_layout(const std::string& path, std::vector<Entry>& entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < pos)
      fail(path, str(tensor_where(e.name), " [", e.begin, ", ", e.end, ") overlaps ", tensor_where(prev->name),
                     " [", prev->begin, ", ", prev->end, ")"),
           kHintRewrite);
    if (e.begin > pos)
      fail(path, str("bytes [", pos, ", ", e.begin, ") of the data area belong to no tensor (before ",
                     tensor_where(e.name), ")"),
           kHintRewrite);
    pos = e.end;
    prev = &e;
  }
  if (pos != data_size)
    fail(path, str("the data area has ", data_size - pos, " trailing bytes after the last tensor"), kHintRewrite);
}

}  // namespace

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string StTensor::shape_str() const { return duo::shape_str(shape); }

Tensor StTensor::view() const {
  if (shape.size() > (size_t)Tensor::kMaxDims)
    fail(tensor_where(name), str("has ", shape.size(), " dimensions; at most ", Tensor::kMaxDims, " are supported"),
         "reshape the tensor before saving it");
  Tensor t;
  t.data = const_cast<void*>(data);  // Tensor is a mutable view; file tensors are read-only by convention
  t.dtype = dtype;
  t.ndim = (int)shape.size();
  for (int i = 0; i < t.ndim; ++i) t.shape[i] = shape[i];
  t.set_contiguous_strides();
  return t;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

SafeTensorsFile SafeTensorsFile::parse(const std::string& path, const std::string& bytes) {
  if (bytes.size() < 8)
    fail(path, str("truncated: ", bytes.size(), " bytes, but a safetensors file starts with an 8-byte header length"),
         kHintRewrite);
  const uint64_t n = read_u64_le(reinterpret_cast<const unsigned char*>(bytes.data()));
  if (n > kMaxHeader || n > bytes.size() - 8)
    fail(path, str("header length ", n, " reaches past the end of the ", bytes.size(), "-byte file"),
         "the file is truncated or not a safetensors file; re-create or re-download it");
  const uint64_t data_size = bytes.size() - 8 - n;
  auto data = std::make_shared<std::vector<uint64_t>>((data_size + 7) / 8);
  if (data_size) std::memcpy(data->data(), bytes.data() + 8 + n, data_size);
  SafeTensorsFile f;
  f.path_ = path;
  f.data_ = data;
  f.index_header(bytes.substr(8, n), data_size);
  return f;
}

SafeTensorsFile SafeTensorsFile::open(const std::string& path) {
  check_regular_file(path, "the safetensors file", "pass a .safetensors file (or a Hugging Face model folder)");
  std::FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) fail(path, str("cannot open: ", std::strerror(errno)), "check the path and the file permissions");
  struct Closer { std::FILE* f; ~Closer() { std::fclose(f); } } closer{fp};
  auto read_exact = [&](void* dst, uint64_t bytes, const char* what) {
    if (bytes && std::fread(dst, 1, bytes, fp) != bytes)
      fail(path, str("read error while reading the ", what, ": ", std::strerror(errno)), kHintRewrite);
  };
  if (std::fseek(fp, 0, SEEK_END) != 0) fail(path, "cannot seek (not a regular file?)", "pass a .safetensors file");
  const long size_l = std::ftell(fp);
  if (size_l < 0) fail(path, "cannot determine the file size (not a regular file?)", "pass a .safetensors file");
  const uint64_t size = (uint64_t)size_l;
  std::rewind(fp);
  if (size < 8)
    fail(path, str("truncated: ", size, " bytes, but a safetensors file starts with an 8-byte header length"),
         kHintRewrite);
  unsigned char len[8];
  read_exact(len, 8, "header length");
  const uint64_t n = read_u64_le(len);
  if (n > kMaxHeader || n > size - 8)
    fail(path, str("header length ", n, " reaches past the end of the ", size, "-byte file"),
         "the file is truncated or not a safetensors file; re-create or re-download it");
  std::string header(n, '\0');
  read_exact(header.data(), n, "header");
  const uint64_t data_size = size - 8 - n;
  // Read straight into 8-byte aligned memory: tensors are then usable in place whatever the header length.
  auto data = std::make_shared<std::vector<uint64_t>>((data_size + 7) / 8);
  read_exact(data->data(), data_size, "tensor data");
  SafeTensorsFile f;
  f.path_ = path;
  f.data_ = data;
  f.index_header(header, data_size);
  return f;
}

void SafeTensorsFile::index_header(const std::string& header, uint64_t data_size) {
  const std::string& path = path_;
  // nlohmann-json keeps the last of duplicate keys silently; the parser callback sees every top-level key.
  std::set<std::string> seen;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string k = parsed.get<std::string>();
      if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json h;
  try {
    h = json::parse(header, on_event);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double
    fail(path, str("the header is not valid JSON (", e.what(), ")"), kHintRewrite);
  }
  if (!h.is_object()) fail(path, "the header is not a JSON object", kHintRewrite);
  if (!duplicate.empty())
    fail(path, "the header names " + tensor_where(duplicate) + " more than once", kHintRewrite);

  std::vector<Entry> entries;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(path, "__metadata__ is not a JSON object", kHintRewrite);
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string())
          fail(path, "__metadata__ key '" + m.key() + "' is not a string (safetensors metadata is string -> string)",
               kHintRewrite);
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), it.value(), data_size));
  }
  check_layout(path, entries, data_size);  // sorts by offset

  const char* base = reinterpret_cast<const char*>(data_->data());
  for (const Entry& e : entries) {
    StTensor t;
    t.name = e.name;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.data = base + e.begin;
    t.nbytes = e.end - e.begin;
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
}

const StTensor& SafeTensorsFile::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    fail(path_, tensor_where(name) + " is missing",
         "the file was written for another model or algorithm; `duo-inspect` lists what it contains");
  return tensors_[it->second];
}

const StTensor& SafeTensorsFile::get(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const {
  const StTensor& t = get(name);
  if (t.dtype != dtype)
    fail(path_, str(tensor_where(name), " has dtype ", dtype_name(t.dtype), ", expected ", dtype_name(dtype)),
         "the file was written by another tool or version; re-create it");
  if (t.shape != shape)
    fail(path_, str(tensor_where(name), " has shape ", t.shape_str(), ", expected ", shape_str(shape)),
         "the file belongs to a model of another size; check the model configuration");
  return t;
}

const std::string& SafeTensorsFile::meta(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end())
    fail(path_, "__metadata__ has no key '" + key + "'",
         "the file was not written by duo.cu (or by an older version); re-create it");
  return it->second;
}

NamedTensor named(const std::string& name, const Tensor& t) {
  DUO_ASSERT(t.device == Device::CPU && t.is_contiguous());
  NamedTensor n;
  n.name = name;
  n.dtype = t.dtype;
  n.shape.assign(t.shape, t.shape + t.ndim);
  n.data = t.data;
  return n;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps the tensors in the caller's order, which is also their order in the data area.
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__")
      fail(path, "cannot write a tensor named '" + t.name + "'", "this is a bug in the caller; name the tensor");
    if (h.contains(t.name))
      fail(path, tensor_where(t.name) + " is given twice", "this is a bug in the caller; names must be unique");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      DUO_ASSERT(d >= 0);
      numel *= (uint64_t)d;
    }
    const uint64_t bytes = numel * dtype_size(t.dtype);
    DUO_ASSERT(t.data != nullptr || bytes == 0);
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data area starts 8-byte aligned
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (unsigned char)((uint64_t)text.size() >> (8 * i));

  AtomicFile f(path);
  f.write(len, 8);
  f.write(text.data(), text.size());
  for (const NamedTensor& t : tensors) {
    uint64_t numel = 1;
    for (int64_t d : t.shape) numel *= (uint64_t)d;
    f.write(t.data, numel * dtype_size(t.dtype));
  }
  f.commit();
}

}  // namespace duo
