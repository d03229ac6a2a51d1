// duo-integral: tabulates the Diffusion Transformation operator α = T(γ) and dα/dγ for one vocabulary size
// (the reference's `utils.py --vocab_size=N`), reports its accuracy, writes integral/<name>.bin.
//   duo-integral --vocab_size 50258 --name gpt2                     the default grid [−6, 6], 4801 points
//   duo-integral --table integral/gpt2.bin --print -3.55 -2 -1.85   table vs direct quadrature at those γ
#include <omp.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "algo/transform_lookup.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/cli.h"

namespace {

using duo::po::value;

struct MaxError {
  double alpha = 0, dalpha = 0;
  // NaN-sticky: a NaN anywhere shows up in the report instead of being skipped by std::max.
  void add(double da, double dd) {
    if (!(std::abs(da) <= alpha)) alpha = std::abs(da);
    if (!(std::abs(dd) <= dalpha)) dalpha = std::abs(dd);
  }
};

// The quadrature against a rule with half the panel width and a higher order, at every stride-th grid point.
MaxError quadrature_self_check(const duo::DiffusionTransform& transform, const duo::IntegralTable& table,
                               int64_t stride) {
  const duo::DiffusionTransform finer(transform.vocab_size(),
                                      {transform.rule().panel_width / 2, transform.rule().order + 10});
  std::vector<MaxError> per_point(table.num_points());
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t k = 0; k < table.num_points(); k += stride) {
    const duo::TransformPoint p = finer.at_gamma(table.gamma_at(k));
    per_point[k].add(p.alpha - table.alpha()[k], p.dalpha_dgamma - table.dalpha_dgamma()[k]);
  }
  MaxError worst;
  for (const MaxError& e : per_point) worst.add(e.alpha, e.dalpha);
  return worst;
}

// Cubic Hermite interpolation against direct quadrature inside every stride-th interval, at the fractions where
// the interpolation error of α (s = ½) and of dα/dγ (s = ½ ± 1/√12) peaks.
MaxError interpolation_check(const duo::DiffusionTransform& transform, const duo::TransformLookup& lookup,
                             int64_t stride) {
  const duo::IntegralTable& table = lookup.table();
  const double fractions[] = {0.5, 0.5 - 1 / std::sqrt(12.0), 0.5 + 1 / std::sqrt(12.0)};
  std::vector<MaxError> per_interval(table.num_points() - 1);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t k = 0; k < table.num_points() - 1; k += stride) {
    for (double s : fractions) {
      const double gamma = table.gamma_at(k) + s * table.spacing();
      const duo::TransformPoint exact = transform.at_gamma(gamma);
      const duo::GammaValue interpolated = lookup.at_gamma(gamma);
      per_interval[k].add(interpolated.alpha - exact.alpha, interpolated.dalpha_dgamma - exact.dalpha_dgamma);
    }
  }
  MaxError worst;
  for (const MaxError& e : per_interval) worst.add(e.alpha, e.dalpha);
  return worst;
}

int generate(int64_t vocab, double gamma_min, double gamma_max, int64_t num_points, const std::string& output) {
  const duo::DiffusionTransform transform(vocab);
  std::printf("duo-integral: V = %lld, γ in [%g, %g], %lld points (spacing %g), %d threads\n",
              static_cast<long long>(vocab), gamma_min, gamma_max, static_cast<long long>(num_points),
              (gamma_max - gamma_min) / static_cast<double>(num_points - 1), omp_get_max_threads());
  duo::Timer timer;
  duo::IntegralTable table = duo::IntegralTable::compute(transform, gamma_min, gamma_max, num_points);
  const double seconds = timer.seconds();
  std::printf("table computed in %.3f s (%.1f µs per point and thread)\n", seconds,
              seconds * 1e6 * omp_get_max_threads() / static_cast<double>(num_points));

  timer.reset();
  const int64_t stride = std::max<int64_t>(1, num_points / 500);
  const MaxError self = quadrature_self_check(transform, table, stride);
  std::printf("quadrature self-check (vs. half the panel width and +10 nodes, every %lld-th point): "
              "max |Δα| = %.2e, max |Δ dα/dγ| = %.2e\n",
              static_cast<long long>(stride), self.alpha, self.dalpha);
  const duo::TransformLookup lookup(table, vocab, {}, output);
  // Every interval of the usual few-thousand-point tables; a sample of ~6000 of a larger one.
  const int64_t interval_stride = std::max<int64_t>(1, (num_points - 1) / 6000);
  const MaxError interp = interpolation_check(transform, lookup, interval_stride);
  std::printf("cubic Hermite interpolation vs. direct quadrature at %lld off-grid points: "
              "max |Δα| = %.2e, max |Δ dα/dγ| = %.2e (checks took %.3f s)\n",
              static_cast<long long>(3 * ((num_points - 2) / interval_stride + 1)), interp.alpha, interp.dalpha,
              timer.seconds());

  // A table its own checks call inaccurate is not written: training would silently use wrong α(γ). The bound is
  // far above what any sensible grid gives (1e-12 on the default one, integral/README.md) and far below what
  // would matter to a loss.
  const double tolerance = 1e-6;
  const bool accurate = self.alpha <= tolerance && self.dalpha <= tolerance && interp.alpha <= tolerance &&
                        interp.dalpha <= tolerance;  // false for NaN too
  DUO_CHECK(accurate, output,
            duo::str("not written: the table misses its accuracy bound of ", tolerance, " (max |Δα| = ",
                     std::max(self.alpha, interp.alpha), ", max |Δ dα/dγ| = ", std::max(self.dalpha, interp.dalpha), ")"),
            duo::str("the grid spacing ", (gamma_max - gamma_min) / static_cast<double>(num_points - 1),
                     " is too coarse for this γ range: raise --num_points or narrow --gamma_min/--gamma_max "
                     "(the default [-6, 6] with 6001 points is accurate to 1e-12)"));
  const std::filesystem::path parent = std::filesystem::path(output).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  table.write(output);
  std::printf("wrote %s (%lld bytes)\n", output.c_str(),
              static_cast<long long>(duo::IntegralTable::kHeaderBytes + 16 * num_points));
  return 0;
}

int print_values(const std::string& path, int64_t vocab, duo::TransformLookupOptions options,
                 const std::vector<double>& gammas) {
  duo::IntegralTable table = duo::IntegralTable::read(path, vocab);
  if (vocab == 0) vocab = table.vocab_size();
  const duo::TransformLookup lookup(std::move(table), vocab, options, path);
  const duo::TableLookup mode = options.mode;
  const duo::DiffusionTransform transform(vocab);
  std::printf("%s: V = %lld, γ in [%g, %g], %lld points, %s lookup\n", path.c_str(), static_cast<long long>(vocab),
              lookup.table().gamma_min(), lookup.table().gamma_max(),
              static_cast<long long>(lookup.table().num_points()),
              mode == duo::TableLookup::hermite ? "cubic Hermite" : "nearest-point (reference)");
  std::printf("%12s %22s %22s %10s %22s %22s %10s\n", "gamma", "alpha (table)", "alpha (quadrature)", "diff",
              "dalpha/dgamma (table)", "dalpha/dgamma (quad)", "diff");
  for (double gamma : gammas) {
    const duo::GammaValue t = lookup.at_gamma(gamma);
    const duo::TransformPoint q = transform.at_gamma(gamma);
    std::printf("%12.6f %22.15e %22.15e %10.2e %22.15e %22.15e %10.2e\n", gamma, t.alpha, q.alpha, t.alpha - q.alpha,
                t.dalpha_dgamma, q.dalpha_dgamma, t.dalpha_dgamma - q.dalpha_dgamma);
  }
  if (lookup.clipped_count() > 0)
    std::printf("(%lld lookups were outside the grid and clipped)\n", static_cast<long long>(lookup.clipped_count()));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-integral", [&] {
    duo::po::options_description desc("duo-integral options");
    desc.add_options()
        ("help", "show this help")
        ("vocab_size", value<int64_t>(), "the model's vocabulary size V (GPT-2 + [PAD]: 50258; bert-base-uncased: 30522)")
        ("gamma_min", value<double>()->default_value(duo::kDefaultGammaMin), "first grid point")
        ("gamma_max", value<double>()->default_value(duo::kDefaultGammaMax), "last grid point")
        ("num_points", value<int64_t>()->default_value(duo::kDefaultNumPoints), "number of grid points")
        ("name", value<std::string>(), "table name: writes integral/<name>.bin (default v<V>)")
        ("output", value<std::string>(), "output path (overrides --name)")
        ("print", value<std::vector<double>>()->multitoken(),
         "γ values: print α and dα/dγ from the table (--table) next to direct quadrature, write nothing")
        ("table", value<std::string>(), "table read by --print (default: the --output / --name path)")
        ("lookup", value<std::string>()->default_value("hermite"), "--print lookup: hermite | nearest (reference)")
        ("allow_vocab_mismatch", duo::po::bool_switch(),
         "--print: read a table made for another V as the model's V = --vocab_size (the reference's gpt2 cache)");
    const std::string usage =
        "usage: duo-integral --vocab_size V [--name NAME | --output PATH] [--gamma_min G0 --gamma_max G1 "
        "--num_points N]\n"
        "       duo-integral --table PATH --print GAMMA... [--lookup hermite|nearest] [--vocab_size V "
        "--allow_vocab_mismatch]";
    // No short options, so negative numbers (--gamma_min -6, --print -3.5 -2) read as values.
    duo::po::variables_map vm;
    duo::po::store(duo::po::command_line_parser(argc, argv)
                       .options(desc)
                       .style(duo::po::command_line_style::unix_style ^ duo::po::command_line_style::allow_short)
                       .run(),
                   vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << desc << "\n";
      return 0;
    }
    duo::po::notify(vm);

    const int64_t vocab = vm.count("vocab_size") ? vm["vocab_size"].as<int64_t>() : 0;
    DUO_CHECK(vm.count("vocab_size") == 0 || vocab >= 2, "--vocab_size", duo::str("got ", vocab, ", need at least 2"),
              "pass the model's vocabulary size (len(tokenizer))");
    std::string output;
    if (vm.count("output")) output = vm["output"].as<std::string>();
    else if (vm.count("name")) output = "integral/" + vm["name"].as<std::string>() + ".bin";
    else if (vocab > 0) output = duo::str("integral/v", vocab, ".bin");

    if (vm.count("print")) {
      const std::string path = vm.count("table") ? vm["table"].as<std::string>() : output;
      DUO_CHECK(!path.empty(), "--print", "no table given", "pass --table integral/<name>.bin");
      const duo::TransformLookupOptions options{duo::parse_table_lookup(vm["lookup"].as<std::string>()),
                                                vm["allow_vocab_mismatch"].as<bool>()};
      return print_values(path, vocab, options, vm["print"].as<std::vector<double>>());
    }
    DUO_CHECK(vocab > 0, "--vocab_size", "missing", "e.g. build/duo-integral --vocab_size 50258 --name gpt2");
    return generate(vocab, vm["gamma_min"].as<double>(), vm["gamma_max"].as<double>(),
                    vm["num_points"].as<int64_t>(), output);
  });
}
