// A table of the Diffusion Transformation operator for one vocabulary: α = T(γ) and dα/dγ sampled on a uniform
// γ grid, and its file format (integral/<name>.bin, written by build/duo-integral).
//
// File layout, all little-endian, 64-byte header then the payload:
//   offset  0  char[8]  magic "DUOINTGL"
//           8  uint32   version (1)
//          12  uint32   header size in bytes (64)
//          16  int64    vocabulary size V the values were integrated for (≥ 2)
//          24  float64  γ_min
//          32  float64  γ_max (> γ_min)
//          40  int64    number of grid points N (≥ 2); γ_k = γ_min + (γ_max − γ_min)·k/(N−1)
//          48  uint32   CRC-32 (zlib) of header bytes [0, 48) followed by the whole payload
//          52  byte[12] reserved, zero
//          64  float64[N]  α(γ_k)
//      64+8N  float64[N]  dα/dγ(γ_k)
// The file is exactly 64 + 16·N bytes. α is stored rather than P because P − 1/V cancels for large V.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace duo {

class DiffusionTransform;

class IntegralTable {
 public:
  static constexpr char kMagic[9] = "DUOINTGL";
  static constexpr uint32_t kVersion = 1;
  static constexpr uint32_t kHeaderBytes = 64;

  // From values already computed (α and dα/dγ at the N grid points). Validates sizes and the grid.
  IntegralTable(int64_t vocab_size, double gamma_min, double gamma_max, std::vector<double> alpha,
                std::vector<double> dalpha_dgamma);

  // Integrates T at every grid point (OpenMP over points).
  static IntegralTable compute(const DiffusionTransform& transform, double gamma_min, double gamma_max,
                               int64_t num_points);

  // Reads and validates a file: magic, version, header size, vocabulary, grid, exact length, checksum, finite
  // values. Every failure is a duo::Error naming the file and the field, with the duo-integral command that
  // regenerates it; regenerate_vocab is the V to put in that command when the header cannot be trusted
  // (0: take it from the header, or leave a placeholder).
  static IntegralTable read(const std::string& path, int64_t regenerate_vocab = 0);
  // Writes to path + ".tmp", then renames (a crash never leaves a half-written table under the real name).
  void write(const std::string& path) const;

  int64_t vocab_size() const { return vocab_; }
  double gamma_min() const { return gamma_min_; }
  double gamma_max() const { return gamma_max_; }
  int64_t num_points() const { return static_cast<int64_t>(alpha_.size()); }
  double spacing() const { return (gamma_max_ - gamma_min_) / static_cast<double>(num_points() - 1); }
  double gamma_at(int64_t k) const;
  const std::vector<double>& alpha() const { return alpha_; }
  const std::vector<double>& dalpha_dgamma() const { return dalpha_; }

  // The command that rebuilds this table (or one like it for another V) at path.
  static std::string regenerate_command(int64_t vocab_size, double gamma_min, double gamma_max, int64_t num_points,
                                        const std::string& path);

 private:
  int64_t vocab_;
  double gamma_min_, gamma_max_;
  std::vector<double> alpha_, dalpha_;
};

// The defaults of duo-integral: every γ range the reference uses (curriculum OWT [−3.55, −1.85], LM1B
// [−3.5, −1.75], distillation [−4, −1], the gpt2 cache's grid [−5, −1], the bert cache's [−4, 6]) lies inside
// [−6, 6]; spacing 0.002 keeps the cubic Hermite interpolation error below 1e-12 in α and 2e-9 in dα/dγ for
// V = 50258 (integral/README.md).
inline constexpr double kDefaultGammaMin = -6.0;
inline constexpr double kDefaultGammaMax = 6.0;
inline constexpr int64_t kDefaultNumPoints = 6001;

}  // namespace duo
