#include "algo/corrupt.h"

#include "core/error.h"

namespace duo {

namespace {

// Shapes, dtypes, α range and the ids of x; returns (B, L).
std::pair<int64_t, int64_t> check_batch(const char* where, const Tensor& x, const Tensor& z,
                                        const std::vector<double>& alpha, int V) {
  DUO_CHECK(x.dtype == DType::I32 && z.dtype == DType::I32, where, "token tensors must be I32",
            "convert the ids to int32 before noising");
  DUO_CHECK(x.device == Device::CPU && z.device == Device::CPU, where, "this is the CPU implementation",
            "use the CUDA backend's noising op for device tensors");
  DUO_CHECK(x.ndim == 2 && z.ndim == 2 && x.shape[0] == z.shape[0] && x.shape[1] == z.shape[1] && x.is_contiguous() &&
                z.is_contiguous(),
            where, "x and z must be contiguous (B, L) tensors of the same shape", "pass views of the batch buffers");
  const int64_t B = x.shape[0], L = x.shape[1];
  DUO_CHECK((int64_t)alpha.size() == B, where, str("got ", alpha.size(), " values of alpha for ", B, " sequences"),
            "draw one time per sequence (TimeSampler) and map it through the schedule");
  DUO_CHECK(V > 0, where, str("vocabulary size ", V), "V is the model's output width");
  for (int64_t b = 0; b < B; ++b)
    DUO_CHECK(alpha[b] >= 0.0 && alpha[b] <= 1.0, where, str("alpha[", b, "] = ", alpha[b], " is outside [0, 1]"),
              "alpha comes from Schedule::alpha(t) with t in [0, 1]");
  const int32_t* xs = x.ptr<int32_t>();
  for (int64_t k = 0; k < B * L; ++k)
    DUO_CHECK(xs[k] >= 0 && xs[k] < V, where, str("token id ", xs[k], " at (", k / L, ", ", k % L, ") is outside [0, ", V, ")"),
              "the data's vocabulary must match the model's (check the tokenizer and model.vocab_size)");
  return {B, L};
}

}  // namespace

void corrupt_uniform(const Tensor& x, const Tensor& z, const std::vector<double>& alpha, int V, const Philox& rng,
                     int64_t token_offset) {
  auto [B, L] = check_batch("uniform-state noising", x, z, alpha, V);
  const int32_t* xs = x.ptr<int32_t>();
  int32_t* zs = z.ptr<int32_t>();
  for (int64_t k = 0; k < B * L; ++k) {
    PhiloxBlock w = rng.block((uint64_t)(token_offset + k));
    zs[k] = corrupt_uniform_token(xs[k], alpha[k / L], V, Philox::to_uniform_double(w.v[0], w.v[1]), w.v[2]);
  }
}

void corrupt_absorbing(const Tensor& x, const Tensor& z, const std::vector<double>& alpha, int V, int32_t mask_id,
                       const Philox& rng, int64_t token_offset) {
  auto [B, L] = check_batch("absorbing noising", x, z, alpha, V);
  DUO_CHECK(mask_id >= 0 && mask_id < V, "absorbing noising", str("mask id ", mask_id, " is outside [0, ", V, ")"),
            "GPT-2: mask id 50257 with V = 50258; BERT: 103 with V = 30522 (docs/data.md §2)");
  const int32_t* xs = x.ptr<int32_t>();
  int32_t* zs = z.ptr<int32_t>();
  for (int64_t k = 0; k < B * L; ++k) {
    PhiloxBlock w = rng.block((uint64_t)(token_offset + k));
    zs[k] = corrupt_absorbing_token(xs[k], alpha[k / L], mask_id, Philox::to_uniform_double(w.v[0], w.v[1]));
  }
}

}  // namespace duo
