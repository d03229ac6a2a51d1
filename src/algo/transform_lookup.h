// What training calls per sequence: α and its derivative from an integral table, for the model's vocabulary.
//
//   duo::TransformLookup T = duo::TransformLookup::open("integral/gpt2.bin", /*model_vocab=*/50258);
//   duo::ScheduleValue s = T.at_time(t, gamma_min, gamma_max);   // α_t and α'_t for γ(t) = γmin + t(γmax−γmin)
//
// Two modes:
//  * hermite (default): cubic Hermite interpolation between grid points using the stored dα/dγ, and the exact
//    derivative of that interpolant. Error ~1e-13 in α on the shipped grids (integral/README.md), i.e. as good
//    as evaluating T directly.
//  * nearest: the reference's lookup, for matching its numbers (docs/transform.md §4.4): γ in float32, index
//    round-half-even((N−1)(γ−γmin)/(γmax−γmin)) computed in float32, α = (V·P[k] − 1)/(V − 1), and
//    α'_t = (γmax−γmin)·1000·(α(γ + 0.001) − α(γ)), a forward difference of two nearest-neighbour lookups.
// In both modes γ outside the table's grid is clipped to it, as the reference does; the first clip prints one
// warning to stderr and every clip is counted (clipped_count()).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include "algo/integral_table.h"

namespace duo {

enum class TableLookup { hermite, nearest };

// "hermite" | "nearest"; throws duo::Error listing both otherwise.
TableLookup parse_table_lookup(const std::string& name);

// Nearest mode needs a grid at least five times finer than the reference's difference step 0.001.
inline constexpr double kNearestMaxSpacing = 2e-4;

struct TransformLookupOptions {
  TableLookup mode = TableLookup::hermite;
  // Accept a table integrated for another V and convert it the reference's way: P from the table's V, then
  // α = (V_model·P − 1)/(V_model − 1). Needed only to reproduce the reference, whose gpt2 cache was built for
  // V = 50257 while its model has V = 50258 (docs/transform.md §5). Off: a mismatch is an error.
  bool allow_vocab_mismatch = false;
};

struct GammaValue {
  double alpha = 0;          // α = T(γ)
  double dalpha_dgamma = 0;  // dα/dγ (nearest mode: the reference's forward difference with h = 0.001)
};

struct ScheduleValue {
  double alpha = 0;      // α_t
  double dalpha_dt = 0;  // α'_t = (γmax − γmin)·dα/dγ (≤ 0)
};

class TransformLookup {
 public:
  // source names the table in messages (its path). Throws on a vocabulary mismatch unless allowed.
  TransformLookup(IntegralTable table, int64_t model_vocab, TransformLookupOptions options = {},
                  std::string source = "integral table");
  // Reads and validates path (IntegralTable::read), then checks the vocabulary.
  static TransformLookup open(const std::string& path, int64_t model_vocab, TransformLookupOptions options = {});
  // The table of a training run: the file at `path` when one is given; when `path` is empty, the table computed
  // now for model_vocab on duo-integral's default grid (the same values duo-integral would write; about 0.1 s
  // for V = 50258), so that any vocabulary, a corpus's own char vocabulary included, works without a file.
  static TransformLookup open_or_compute(const std::string& path, int64_t model_vocab,
                                         TransformLookupOptions options = {});

  GammaValue at_gamma(double gamma) const;
  // The curriculum map γ(t) = γmin + t(γmax − γmin) (docs/curriculum.md §4; distillation uses [−4, −1]).
  ScheduleValue at_time(double t, double gamma_min, double gamma_max) const;

  // How many lookups fell outside the grid and were clipped (thread-safe; lookups may run in parallel).
  int64_t clipped_count() const { return clip_->count.load(std::memory_order_relaxed); }
  const IntegralTable& table() const { return table_; }
  int64_t model_vocab() const { return model_vocab_; }
  TableLookup mode() const { return options_.mode; }

 private:
  struct ClipReport {
    std::atomic<int64_t> count{0};
    std::atomic<bool> warned{false};
  };

  double clip(double gamma) const;
  void report_clip(double gamma) const;
  std::string command_path() const;
  GammaValue hermite(double gamma) const;
  double nearest_alpha(float gamma) const;

  IntegralTable table_;
  int64_t model_vocab_;
  TransformLookupOptions options_;
  std::string source_;
  // α_model = scale·α_table + offset: the same P read with another V (1 and 0 when the vocabularies agree).
  double scale_, offset_;
  std::unique_ptr<ClipReport> clip_;  // behind a pointer so the lookup stays movable
};

}  // namespace duo
