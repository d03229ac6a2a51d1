#include "io/weights.h"
#include <cmath>
#include <cstring>
#include "core/error.h"
#include "core/finite.h"

namespace duo {

float bf16_to_float(uint16_t bits) {
  // bfloat16 is the top half of a float32: shifting back is exact.
  const uint32_t u = (uint32_t)bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float f16_to_float(uint16_t bits) {
  const int sign = bits >> 15, exponent = (bits >> 10) & 0x1f, mantissa = bits & 0x3ff;
  float v;
  if (exponent == 0) v = std::ldexp((float)mantissa, -24);  // zero and subnormals: m * 2^-24
  else if (exponent == 31) v = mantissa ? NAN : INFINITY;
  else v = std::ldexp((float)(mantissa | 0x400), exponent - 25);  // (1024 + m) * 2^(e - 15 - 10)
  return sign ? -v : v;
}

namespace {

// Converts n elements of `src` (any float dtype, possibly unaligned) to float32. Element by element with
// memcpy, because a file's data offsets need not be aligned to the element size.
void convert_to_f32(const StTensor& src, float* dst, const std::string& path) {
  const char* p = static_cast<const char*>(src.data);
  const int64_t n = src.numel();
  switch (src.dtype) {
    case DType::F32:
      std::memcpy(dst, p, (size_t)n * 4);
      return;
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        dst[i] = (float)d;
      }
      return;
    case DType::BF16:
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        dst[i] = src.dtype == DType::BF16 ? bf16_to_float(b) : f16_to_float(b);
      }
      return;
    default:
      fail(path, str("tensor '", src.name, "' has dtype ", dtype_name(src.dtype),
                     ", which cannot be converted to float32 weights"),
           "model weights must be F32, BF16, F16 or F64; re-export the checkpoint");
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

}  // namespace

// A NaN or inf weight poisons every output it touches; found here it is named, found later it is only "the
// loss is not finite" (or, worse, hidden by a clamp). One pass over what was just copied.
void check_finite(const float* v, int64_t n, const std::string& name, const std::string& path) {
  const int64_t first = first_non_finite(v, n);
  if (first < 0) return;
  const int64_t bad = count_non_finite(v, n);
  fail(path, str("tensor '", name, "' holds ", bad, " non-finite value", bad > 1 ? "s" : "", " (the first, ", v[first],
                 ", at flat index ", first, ")"),
       "the file is damaged or was written by a run that diverged; use an earlier checkpoint "
       "(`duo-inspect --stats` counts the non-finite values of every tensor)");
}

void load_params(const SafeTensorsFile& file, const ParamTable& table, float* buffer, const std::string& prefix) {
  // First the names the table does not know, so a file of another model kind gets that message rather
  // than "missing tensor".
  const std::string backbone = prefix + "backbone.";
  for (const StTensor& t : file.tensors()) {
    if (!starts_with(t.name, backbone) || t.name == backbone + "rotary_emb.inv_freq") continue;
    if (!table.has(t.name.substr(prefix.size())))
      fail(file.path(), "tensor '" + t.name + "' is not a parameter of this model (" + table.config().describe() + ")",
           "the file holds another kind of model (causal vs non-causal, or another size); check --causal and "
           "the model options, or the config stored with the file");
  }
  for (const ParamInfo& p : table.params()) {
    const std::string name = prefix + p.name;
    if (!file.has(name))
      fail(file.path(), "tensor '" + name + "' is missing",
           "the file was written for another kind of model, or is incomplete; `duo-inspect` lists its tensors");
    const StTensor& t = file.get(name);
    if (t.shape != p.shape)
      fail(file.path(), str("tensor '", name, "' has shape ", t.shape_str(), ", the model expects ", shape_str(p.shape)),
           "the file belongs to a model of another size or vocabulary; check the model options");
    convert_to_f32(t, buffer + p.offset, file.path());
    check_finite(buffer + p.offset, t.numel(), name, file.path());
  }
}

void load_params(const std::string& path, const ParamTable& table, float* buffer, const std::string& prefix) {
  load_params(SafeTensorsFile::open(path), table, buffer, prefix);
}

std::vector<NamedTensor> param_tensors(const ParamTable& table, const float* buffer, const std::string& prefix) {
  std::vector<NamedTensor> out;
  out.reserve(table.params().size());
  for (const ParamInfo& p : table.params()) out.push_back({prefix + p.name, DType::F32, p.shape, buffer + p.offset});
  return out;
}

}  // namespace duo
