#include "op_runner.h"
#include <cmath>
#include <cstring>
#include "core/error.h"
#include "core/philox.h"

namespace duo::test::ops {

namespace {

constexpr int64_t kGuard = 64;          // guard elements on each side of every tensor
constexpr double kSentinel = -7777.25;  // their value (exact in float and double; -7777 as an int)

DType dtype_of_buf(const Buf& b, const Ops& ops, DType floats) {
  return b.kind == Kind::I32 ? DType::I32 : b.kind == Kind::F64 ? DType::F64
                                          : b.kind == Kind::Act ? ops.activation_dtype(floats)
                                                                : floats;
}

// bf16 on the host: round to nearest even (finite values only: the cases and the sentinel), and back.
uint16_t to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
float from_bf16_bits(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Initial values of a buffer, in double. Float buffers hold values rounded to float, so that every backend, the
// float64 reference included, starts from the very same numbers.
std::vector<double> initial_values(const Buf& b, uint64_t seed) {
  const int64_t n = count(b.shape);
  std::vector<double> v((size_t)n, 0.0);
  const Philox rng{seed, 17};
  for (int64_t i = 0; i < n; ++i) {
    const double u = rng.uniform_double(i);
    switch (b.gen.type) {
      case Gen::Uniform: case Gen::Positive: v[i] = b.gen.lo + (b.gen.hi - b.gen.lo) * u; break;
      case Gen::Ids: v[i] = std::floor(u * (double)b.gen.n_ids); break;
      case Gen::Zeros: v[i] = 0; break;
    }
    if (b.kind == Kind::Float) v[i] = (double)(float)v[i];
    if (b.kind == Kind::Act) v[i] = (double)from_bf16_bits(to_bf16_bits((float)v[i]));
  }
  return v;
}

}  // namespace

// One allocation: kGuard elements, the tensor, kGuard elements.
struct CaseBuffers::Alloc {
  Ops& ops;
  DType dt;
  int64_t n;
  void* base;

  Alloc(Ops& o, DType d, int64_t count) : ops(o), dt(d), n(count), base(o.alloc((size_t)total() * dtype_size(d))) {}
  ~Alloc() { ops.release(base); }
  int64_t total() const { return n + 2 * kGuard; }
  Tensor whole() const { return Tensor(base, dt, {total()}, ops.device()); }

  void upload(const std::vector<double>& v) {
    Tensor w = whole();
    if (dt == DType::F64) return ops.from_host(w, v.data());
    if (dt == DType::F32) {
      const std::vector<float> f(v.begin(), v.end());
      return ops.from_host(w, f.data());
    }
    if (dt == DType::BF16) {
      std::vector<uint16_t> h(v.size());
      for (size_t k = 0; k < v.size(); ++k) h[k] = to_bf16_bits((float)v[k]);
      return ops.from_host(w, h.data());
    }
    std::vector<int32_t> ids(v.size());
    for (size_t k = 0; k < v.size(); ++k) ids[k] = (int32_t)v[k];
    ops.from_host(w, ids.data());
  }
  std::vector<double> download() const {
    std::vector<double> v((size_t)total());
    if (dt == DType::F64) {
      ops.to_host(v.data(), whole());
    } else if (dt == DType::F32) {
      std::vector<float> f(v.size());
      ops.to_host(f.data(), whole());
      std::copy(f.begin(), f.end(), v.begin());
    } else if (dt == DType::BF16) {
      std::vector<uint16_t> h(v.size());
      ops.to_host(h.data(), whole());
      for (size_t k = 0; k < v.size(); ++k) v[k] = from_bf16_bits(h[k]);
    } else {
      std::vector<int32_t> ids(v.size());
      ops.to_host(ids.data(), whole());
      std::copy(ids.begin(), ids.end(), v.begin());
    }
    return v;
  }
};

CaseBuffers::CaseBuffers(const OpCase& c, Ops& ops, DType floats) : case_(c), ops_(ops) {
  for (size_t i = 0; i < c.bufs.size(); ++i) {
    const Buf& b = c.bufs[i];
    auto a = std::make_unique<Alloc>(ops, dtype_of_buf(b, ops, floats), count(b.shape));
    std::vector<double> all((size_t)a->total(), kSentinel);
    const std::vector<double> init = initial_values(b, 1000 + i);
    std::copy(init.begin(), init.end(), all.begin() + kGuard);
    a->upload(all);
    Tensor t(static_cast<char*>(a->base) + kGuard * dtype_size(a->dt), a->dt, {1}, ops.device());
    t.ndim = (int)b.shape.size();
    for (int d = 0; d < t.ndim; ++d) t.shape[d] = b.shape[(size_t)d];
    t.set_contiguous_strides();
    tensors_.push_back(t);
    allocs_.push_back(std::move(a));
  }
}

CaseBuffers::~CaseBuffers() = default;

std::vector<std::vector<double>> CaseBuffers::outputs(const char* backend) {
  std::vector<std::vector<double>> out;
  for (size_t i = 0; i < allocs_.size(); ++i) {
    const Alloc& a = *allocs_[i];
    const std::vector<double> all = a.download();
    const double sentinel = a.dt == DType::I32    ? (double)(int32_t)kSentinel
                            : a.dt == DType::BF16 ? (double)from_bf16_bits(to_bf16_bits((float)kSentinel))
                                                  : kSentinel;
    for (int64_t g = 0; g < kGuard; ++g)
      if (all[(size_t)g] != sentinel || all[(size_t)(kGuard + a.n + g)] != sentinel)
        fail(case_.params, str(backend, ": the op wrote outside ", case_.bufs[i].name), "a kernel overran its tensor");
    if (case_.bufs[i].role != Role::In && case_.bufs[i].role != Role::Scratch) out.emplace_back(all.begin() + kGuard, all.begin() + kGuard + a.n);
  }
  return out;
}

std::vector<std::vector<double>> run_case(const OpCase& c, Ops& ops, DType floats, const char* backend) {
  CaseBuffers bufs(c, ops, floats);
  const std::vector<double> scalars = c.invoke(ops, bufs.tensors());
  ops.sync();
  std::vector<std::vector<double>> out = bufs.outputs(backend);
  if (!scalars.empty()) out.push_back(scalars);
  return out;
}

}  // namespace duo::test::ops
