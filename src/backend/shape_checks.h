// Argument checks shared by the backends (CPU, CUDA): each names the backend's op ("CpuOps::linear") in its
// error, so a wrong shape or dtype is reported where it was passed, never read as garbage.
#pragma once
#include <cstdint>
#include <string>
#include "core/error.h"
#include "core/tensor.h"

namespace duo::checks {

inline void dtype(const std::string& where, const char* name, const Tensor& t, DType want) {
  DUO_CHECK(t.dtype == want, where, str(name, " has dtype ", dtype_name(t.dtype), ", expected ", dtype_name(want)), "");
}

inline void present(const std::string& where, const char* name, const Tensor& t) {
  DUO_CHECK(!t.empty(), where, str(name, " is empty (null data) but is required"), "");
}

// A contiguous tensor read as a matrix [rows, cols]: last dim = cols, all leading dims fold into rows.
inline void matrix(const std::string& where, const char* name, const Tensor& t, int64_t rows, int64_t cols) {
  present(where, name, t);
  DUO_CHECK(t.is_contiguous(), where, str(name, " ", t.shape_str(), " must be contiguous"), "");
  DUO_CHECK(t.ndim >= 1 && t.dim(-1) == cols && t.numel() == rows * cols, where,
            str(name, " has shape ", t.shape_str(), ", expected ", rows, " rows of ", cols), "");
}

// A contiguous tensor of n elements, whatever its shape (a bias [O], LayerNorm statistics [B*L], ...).
inline void numel(const std::string& where, const char* name, const Tensor& t, int64_t n) {
  present(where, name, t);
  DUO_CHECK(t.is_contiguous() && t.numel() == n, where,
            str(name, " has shape ", t.shape_str(), ", expected ", n, " contiguous elements"), "");
}

// A [B, D] view whose rows may be strided (a column block of the adaLN output): stride[1] must be 1.
inline void row_view(const std::string& where, const char* name, const Tensor& t, int64_t B, int64_t D) {
  DUO_CHECK(t.ndim == 2 && t.shape[0] == B && t.shape[1] == D, where,
            str(name, " has shape ", t.shape_str(), ", expected (", B, ", ", D, ")"), "");
  DUO_CHECK(t.stride[1] == 1 || D == 1, where, str(name, " must have unit column stride"),
            "pass a column block made with Tensor::cols()");
}

// Rows of a tensor read as [rows, last dim].
inline int64_t rows_of(const Tensor& t) { return t.ndim == 0 || t.dim(-1) == 0 ? 0 : t.numel() / t.dim(-1); }

}  // namespace duo::checks
