// The Diffusion Transformation operator T: quadrature against the test vectors (docs/test_vectors.md §3,
// docs/test_vectors.md §4), an independent brute-force integration, the V = 2 closed form and finite differences; the table file
// (round trip, every validation error); the lookups (Hermite accuracy on the shipped gpt2 table, the reference's
// nearest-point numbers, clipping).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numbers>
#include <vector>
#include <unistd.h>
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "algo/transform_lookup.h"
#include "core/error.h"
#include "core/gaussian.h"

using namespace duo;
namespace tt = boost::test_tools;
namespace fs = std::filesystem;

namespace {

// P and dP/dμ by composite Simpson on the fixed interval [−40, 40] with 400 000 intervals: no window, no
// Gauss–Legendre, and the derivative in its other form ∫ (z−μ)·φ(z−μ)·Φ(z)^{V−1} dz.
struct BruteForce {
  double prob, dprob_dmu;
};
BruteForce brute_force(int64_t V, double mu) {
  const int n = 400000;
  const double a = -40, b = 40, h = (b - a) / n;
  double prob = 0, dprob = 0;
  for (int i = 0; i <= n; ++i) {
    const double z = a + h * i;
    const double w = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2);
    const double cdf_power = std::exp(static_cast<double>(V - 1) * log_normal_cdf(z));
    const double g = std::exp(-0.5 * (z - mu) * (z - mu)) / std::sqrt(2 * std::numbers::pi);
    prob += w * g * cdf_power;
    dprob += w * (z - mu) * g * cdf_power;
  }
  return {prob * h / 3, dprob * h / 3};
}

// A fresh scratch directory per test, removed at the end.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::temp_directory_path() / ("duo-integral-test-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::vector<unsigned char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Expects duo::Error whose message mentions every one of the given pieces.
void expect_error(const std::function<void()>& body, const std::vector<std::string>& pieces) {
  try {
    body();
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& piece : pieces)
      BOOST_TEST(message.find(piece) != std::string::npos, piece << " in: " << message);
    return;
  }
  BOOST_FAIL("no duo::Error thrown");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(integral)

BOOST_AUTO_TEST_CASE(log_normal_cdf_both_tails) {
  // Positive z: log Φ(z) ≈ −Φ(−z), which log(Φ) would round away.
  BOOST_TEST(log_normal_cdf(8.0) == -6.220960574271785e-16, tt::tolerance(1e-12));
  BOOST_TEST(log_normal_cdf(0.0) == -std::numbers::ln2, tt::tolerance(1e-15));
  // The asymptotic series below −20 against erfc (still representable down to −37).
  for (double z : {-20.0000001, -23.5, -30.0, -37.0}) {
    const double via_erfc = std::log(0.5 * std::erfc(-z / std::numbers::sqrt2));
    BOOST_TEST(log_normal_cdf(z) == via_erfc, tt::tolerance(1e-14));
  }
  // Where erfc underflows: log Φ(−40) = −800 − log 40 − ½log 2π + log(1 − 1/1600 + 3/1600² − …).
  BOOST_TEST(log_normal_cdf(-40.0) == -804.608442013754, tt::tolerance(1e-14));
  BOOST_TEST(std::isfinite(log_normal_cdf(-1e5)));
}

BOOST_AUTO_TEST_CASE(spec_vectors_v8_by_gaussian_signal) {
  // docs/test_vectors.md §3, first table: α̃, P, α, dα/dγ, dα/dα̃.
  struct Row { double a_tilde, prob, alpha, dalpha_dgamma, dalpha_da_tilde; };
  const Row rows[] = {
      {0.10, 0.143773402946, 0.021455317652, -1.123791477e-02, 2.270285813e-01},
      {0.30, 0.189704341072, 0.073947818368, -4.196083532e-02, 3.074053870e-01},
      {0.50, 0.256893719291, 0.150735679189, -9.129790298e-02, 4.869221492e-01},
      {0.70, 0.379031504187, 0.290321719071, -1.819684427e-01, 1.019431052e+00},
      {0.80, 0.497117550897, 0.425277201025, -2.582430404e-01, 1.793354447e+00},
      {0.90, 0.729303667001, 0.690632762287, -3.280715515e-01, 3.837094169e+00},
      {0.95, 0.922888650972, 0.911872743968, -2.073862166e-01, 4.477974988e+00},
      {0.99, 0.999997584590, 0.999997239531, -3.516850067e-05, 3.570224929e-03},
  };
  const DiffusionTransform T(8);
  for (const Row& r : rows) {
    const double a = r.a_tilde;
    const TransformPoint p = T.at_gamma(std::log((1 - a * a) / (a * a)));
    BOOST_TEST(std::abs(p.prob_clean - r.prob) <= 1e-10, "α̃ = " << a << " P = " << p.prob_clean);
    BOOST_TEST(std::abs(p.alpha - r.alpha) <= 1e-10, "α̃ = " << a << " α = " << p.alpha);
    BOOST_TEST(std::abs(p.dalpha_dgamma - r.dalpha_dgamma) <= 1e-10, "α̃ = " << a << " dα/dγ = " << p.dalpha_dgamma);
    // dγ/dα̃ = −2/(α̃(1 − α̃²)) for γ = log((1 − α̃²)/α̃²).
    const double dalpha_da = p.dalpha_dgamma * (-2 / (a * (1 - a * a)));
    BOOST_TEST(dalpha_da == r.dalpha_da_tilde, tt::tolerance(2e-9));
  }
}

BOOST_AUTO_TEST_CASE(spec_vectors_v8_by_gamma) {
  // docs/test_vectors.md §3, second table.
  struct Row { double gamma, prob, alpha, dalpha_dgamma; };
  const Row rows[] = {
      {-4, 0.999999393280, 0.999999306606, -9.771154253e-06}, {-3, 0.995268875223, 0.994593000255, -2.822131665e-02},
      {-2, 0.876259325697, 0.858582086510, -2.635840050e-01}, {-1, 0.602607965344, 0.545837674679, -3.072407184e-01},
      {0, 0.385480977732, 0.297692545980, -1.865367262e-01},  {1, 0.265032892974, 0.160037591970, -9.742687793e-02},
      {2, 0.202418375187, 0.088478143071, -5.102209752e-02},  {4, 0.150696856052, 0.029367835488, -1.561101319e-02},
  };
  const DiffusionTransform T(8);
  for (const Row& r : rows) {
    const TransformPoint p = T.at_gamma(r.gamma);
    BOOST_TEST(std::abs(p.prob_clean - r.prob) <= 1e-10, "γ = " << r.gamma);
    BOOST_TEST(std::abs(p.alpha - r.alpha) <= 1e-10, "γ = " << r.gamma);
    BOOST_TEST(std::abs(p.dalpha_dgamma - r.dalpha_dgamma) <= 1e-10, "γ = " << r.gamma);
  }
  const TransformPoint saturated = T.at_gamma(-6);
  BOOST_TEST(std::abs(saturated.alpha - 1.0) <= 1e-12);
  BOOST_TEST(std::abs(saturated.dalpha_dgamma) <= 1e-14);
}

BOOST_AUTO_TEST_CASE(spec_vectors_large_vocabularies) {
  // docs/test_vectors.md §4: P (V = 50257, the gpt2 cache), α (50257), α (50258), P (30523, the bert cache).
  struct Row { double gamma, p50257, a50257, a50258, p30523; };
  const Row rows[] = {
      {-4.00, 9.986941659790e-01, 9.986941399954e-01, 9.986941230419e-01, 9.990630460935e-01},
      {-3.55, 9.454752019122e-01, 9.454741169712e-01, 9.454736572300e-01, 9.561518781913e-01},
      {-3.50, 9.283488135473e-01, 9.283473878233e-01, 9.283468166093e-01, 9.417068462594e-01},
      {-3.00, 5.962608792633e-01, 5.962528456132e-01, 5.962511764009e-01, 6.378902405798e-01},
      {-2.50, 2.379804195792e-01, 2.379652568209e-01, 2.379638979467e-01, 2.737511678397e-01},
      {-2.00, 7.204839422433e-02, 7.202992973042e-02, 7.202931965033e-02, 8.883624559419e-02},
      {-1.85, 4.933655233299e-02, 4.931763591609e-02, 4.931718121536e-02, 6.199561453149e-02},
      {-1.75, 3.830107485035e-02, 3.828193884818e-02, 3.828156760918e-02, 4.871344651255e-02},
      {-1.00, 6.206083097850e-03, 6.186308465629e-03, 6.186229806919e-03, 8.522635152342e-03},
  };
  const DiffusionTransform gpt2_cache(50257), gpt2(50258), bert_cache(30523);
  for (const Row& r : rows) {
    BOOST_TEST_CONTEXT("γ = " << r.gamma) {
      BOOST_TEST(gpt2_cache.at_gamma(r.gamma).prob_clean == r.p50257, tt::tolerance(1e-12));
      BOOST_TEST(gpt2_cache.at_gamma(r.gamma).alpha == r.a50257, tt::tolerance(1e-12));
      BOOST_TEST(gpt2.at_gamma(r.gamma).alpha == r.a50258, tt::tolerance(1e-12));
      BOOST_TEST(bert_cache.at_gamma(r.gamma).prob_clean == r.p30523, tt::tolerance(1e-12));
    }
  }
}

BOOST_AUTO_TEST_CASE(brute_force_quadrature) {
  for (int64_t V : {2, 8, 1000, 50258}) {
    const DiffusionTransform T(V);
    for (double gamma : {-5.0, -3.3, -2.0, 0.7, 3.0}) {
      const TransformPoint p = T.at_gamma(gamma);
      const BruteForce ref = brute_force(V, p.mu);
      BOOST_TEST_CONTEXT("V = " << V << ", γ = " << gamma) {
        BOOST_TEST(std::abs(p.prob_clean - ref.prob) <= 1e-13);
        BOOST_TEST(std::abs(p.dprob_dmu - ref.dprob_dmu) <= 1e-13);
      }
    }
  }
}

BOOST_AUTO_TEST_CASE(closed_form_v2) {
  // V = 2: the clean N(μ,1) beats one N(0,1) with probability Φ(μ/√2).
  const DiffusionTransform T(2);
  for (double mu : {0.01, 0.3, 1.0, 2.5, 7.0}) {
    const TransformPoint p = T.at_mu(mu);
    BOOST_TEST(std::abs(p.prob_clean - normal_cdf(mu / std::numbers::sqrt2)) <= 1e-14, "μ = " << mu);
    BOOST_TEST(std::abs(p.dprob_dmu - normal_pdf(mu / std::numbers::sqrt2) / std::numbers::sqrt2) <= 1e-14);
  }
  // docs/test_vectors.md §2: α̃ = 0.7 gives P = 0.7558776303165, T = 0.5117552606331.
  const TransformPoint p = T.at_mu(0.7 / std::sqrt(1 - 0.49));
  BOOST_TEST(std::abs(p.prob_clean - 0.7558776303165) <= 1e-13);
  BOOST_TEST(std::abs(p.alpha - 0.5117552606331) <= 1e-13);
}

BOOST_AUTO_TEST_CASE(derivative_matches_finite_differences) {
  // Five-point central difference, step 1e-3: truncation ~h⁴·α⁽⁵⁾ and rounding ~1e-15/h, both ≪ 1e-9.
  const double h = 1e-3;
  for (int64_t V : {8, 30522, 50258}) {
    const DiffusionTransform T(V);
    for (double gamma : {-4.2, -3.0, -2.2, -1.0, 1.5}) {
      auto alpha = [&](double g) { return T.at_gamma(g).alpha; };
      const double fd = (8 * (alpha(gamma + h) - alpha(gamma - h)) - (alpha(gamma + 2 * h) - alpha(gamma - 2 * h))) /
                        (12 * h);
      BOOST_TEST(std::abs(T.at_gamma(gamma).dalpha_dgamma - fd) <= 1e-9, "V = " << V << ", γ = " << gamma);
    }
  }
}

BOOST_AUTO_TEST_CASE(table_round_trip) {
  ScratchDir dir;
  const IntegralTable made = IntegralTable::compute(DiffusionTransform(1000), -4, 2, 301);
  made.write(dir.file("v1000.bin"));
  BOOST_TEST(fs::file_size(dir.file("v1000.bin")) == 64u + 16u * 301u);
  const IntegralTable back = IntegralTable::read(dir.file("v1000.bin"));
  BOOST_TEST(back.vocab_size() == 1000);
  BOOST_TEST(back.gamma_min() == -4.0);
  BOOST_TEST(back.gamma_max() == 2.0);
  BOOST_TEST(back.num_points() == 301);
  BOOST_TEST(back.alpha() == made.alpha(), tt::per_element());
  BOOST_TEST(back.dalpha_dgamma() == made.dalpha_dgamma(), tt::per_element());
  BOOST_TEST(back.gamma_at(300) == 2.0);
  BOOST_TEST(back.alpha()[150] == DiffusionTransform(1000).at_gamma(back.gamma_at(150)).alpha);
}

// γ beyond the double range of μ = e^{−γ/2} is an error naming the option, raised before the OpenMP loop (an
// exception inside it is std::terminate).
BOOST_AUTO_TEST_CASE(grid_outside_the_double_range_is_an_error) {
  expect_error([] { IntegralTable::compute(DiffusionTransform(67), -6, 2000, 101); },
               {"--gamma_max", "γ = 2000", "outside the double range", "HINT"});
  expect_error([] { IntegralTable::compute(DiffusionTransform(67), -1500, 0, 101); }, {"--gamma_min", "γ = -1500"});
}

BOOST_AUTO_TEST_CASE(table_file_errors) {
  ScratchDir dir;
  const std::string good = dir.file("good.bin"), bad = dir.file("bad.bin");
  IntegralTable::compute(DiffusionTransform(64), -3, 1, 41).write(good);
  const std::vector<unsigned char> bytes = read_bytes(good);
  const std::string command = "build/duo-integral --vocab_size 64 --gamma_min=-3 --gamma_max=1 --num_points 41";
  auto corrupt = [&](size_t offset, unsigned char value) {
    std::vector<unsigned char> b = bytes;
    b[offset] = value;
    write_bytes(bad, b);
  };
  auto read_bad = [&] { IntegralTable::read(bad); };

  expect_error([&] { IntegralTable::read(dir.file("missing.bin"), 50258); },
               {"missing.bin", "cannot open", "build/duo-integral --vocab_size 50258"});
  corrupt(0, 'X');
  expect_error(read_bad, {"bad.bin", "field 'magic'", "HINT", "build/duo-integral --vocab_size <V>"});
  corrupt(8, 2);
  expect_error(read_bad, {"field 'version' = 2"});
  corrupt(12, 65);
  expect_error(read_bad, {"field 'header_size'"});
  corrupt(16, 1);  // V = 1
  expect_error(read_bad, {"field 'vocab_size' = 1"});
  corrupt(47, 0x7f);  // N ≈ 9e18
  expect_error(read_bad, {"field 'num_points'"});
  corrupt(60, 1);
  expect_error(read_bad, {"field 'reserved'", command});
  corrupt(100, bytes[100] ^ 1);  // one bit of α
  expect_error(read_bad, {"field 'checksum'", "corrupt", command});
  corrupt(17, bytes[17] ^ 1);  // V = 64 + 256: a sane header, caught by the checksum
  expect_error(read_bad, {"field 'checksum'"});
  write_bytes(bad, std::vector<unsigned char>(bytes.begin(), bytes.begin() + 40));
  expect_error(read_bad, {"truncated header"});
  write_bytes(bad, std::vector<unsigned char>(bytes.begin(), bytes.end() - 8));
  expect_error(read_bad, {"truncated", "41 grid points", command});
  std::vector<unsigned char> longer = bytes;
  longer.push_back(0);
  write_bytes(bad, longer);
  expect_error(read_bad, {"1 unexpected bytes"});
  // gamma fields: γ_min = NaN.
  std::vector<unsigned char> nan_min = bytes;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::memcpy(nan_min.data() + 24, &nan, 8);
  write_bytes(bad, nan_min);
  expect_error(read_bad, {"field 'gamma_min'"});
  // The intact file still reads.
  BOOST_TEST(IntegralTable::read(good).vocab_size() == 64);
}

BOOST_AUTO_TEST_CASE(vocabulary_mismatch) {
  ScratchDir dir;
  IntegralTable::compute(DiffusionTransform(50257), -4, -1, 31).write(dir.file("gpt2.bin"));
  expect_error([&] { TransformLookup::open(dir.file("gpt2.bin"), 50258); },
               {"gpt2.bin", "field 'vocab_size' = 50257", "50258",
                "build/duo-integral --vocab_size 50258 --gamma_min=-4 --gamma_max=-1 --num_points 31"});
  // Allowed explicitly (the reference's way): α = (V_model·P − 1)/(V_model − 1) with P from V = 50257.
  const TransformLookup lookup = TransformLookup::open(dir.file("gpt2.bin"), 50258, {TableLookup::hermite, true});
  const TransformPoint cache = DiffusionTransform(50257).at_gamma(-3.0);
  BOOST_TEST(lookup.at_gamma(-3.0).alpha == (50258 * cache.prob_clean - 1) / 50257, tt::tolerance(1e-12));
  // dα/dγ = V/(V−1)·dP/dγ with the model's V.
  BOOST_TEST(lookup.at_gamma(-3.0).dalpha_dgamma == 50258.0 / 50257 * (-cache.mu / 2) * cache.dprob_dmu,
             tt::tolerance(1e-12));
  expect_error([] { parse_table_lookup("linear"); }, {"'linear'", "hermite", "nearest"});
}

BOOST_AUTO_TEST_CASE(hermite_accuracy_on_shipped_gpt2_table) {
  // The committed table (tests run from the repository root).
  const TransformLookup lookup = TransformLookup::open("integral/gpt2.bin", 50258);
  BOOST_TEST(lookup.table().gamma_min() <= -5.0);
  BOOST_TEST(lookup.table().gamma_max() >= 2.0);
  const DiffusionTransform T(50258);
  double worst_alpha = 0, worst_dalpha = 0;
  for (int i = 0; i < 400; ++i) {
    // Off-grid points spread over [−5.9, 5.9] at irrational offsets from the grid.
    const double gamma = -5.9 + 11.8 * std::fmod(i * 0.6180339887498949, 1.0);
    const GammaValue v = lookup.at_gamma(gamma);
    const TransformPoint exact = T.at_gamma(gamma);
    worst_alpha = std::max(worst_alpha, std::abs(v.alpha - exact.alpha));
    worst_dalpha = std::max(worst_dalpha, std::abs(v.dalpha_dgamma - exact.dalpha_dgamma));
  }
  BOOST_TEST(worst_alpha <= 1e-12);
  BOOST_TEST(worst_dalpha <= 2e-9);
  // On a grid point the table value is returned exactly.
  BOOST_TEST(lookup.at_gamma(lookup.table().gamma_at(2500)).alpha == lookup.table().alpha()[2500]);
  // docs/test_vectors.md §4 training table, "exact" columns (V = 50258, γ ∈ [−3.55, −1.85]).
  struct Row { double t, alpha, dalpha_dt; };
  for (const Row& r : {Row{0.001, 0.944943945, -0.531523}, Row{0.25, 0.699018607, -1.356508},
                       Row{0.5, 0.360124464, -1.184530}, Row{0.75, 0.141779186, -0.576559},
                       Row{1.0, 0.049317181, -0.212358}}) {
    const ScheduleValue s = lookup.at_time(r.t, -3.55, -1.85);
    BOOST_TEST(std::abs(s.alpha - r.alpha) <= 6e-10, "t = " << r.t);
    BOOST_TEST(std::abs(s.dalpha_dt - r.dalpha_dt) <= 6e-7, "t = " << r.t);
  }
  BOOST_TEST(lookup.clipped_count() == 0);
}

BOOST_AUTO_TEST_CASE(default_table_is_computed_for_any_vocabulary) {
  // No file given: the table is integrated at start for the model's V on duo-integral's default grid. It equals
  // the committed char table (same grid, same quadrature; written by duo-integral on another machine, so a
  // libm that rounds differently may move the last bit: tolerance 1e-14).
  const TransformLookup computed = TransformLookup::open_or_compute("", 67);
  const TransformLookup shipped = TransformLookup::open_or_compute("integral/tinyshakespeare-char.bin", 67);
  BOOST_TEST(computed.table().num_points() == shipped.table().num_points());
  BOOST_TEST(computed.table().gamma_min() == shipped.table().gamma_min());
  BOOST_TEST(computed.table().gamma_max() == shipped.table().gamma_max());
  double worst = 0;
  for (int64_t k = 0; k < shipped.table().num_points(); ++k) {
    worst = std::max(worst, std::abs(computed.table().alpha()[k] - shipped.table().alpha()[k]));
    worst = std::max(worst, std::abs(computed.table().dalpha_dgamma()[k] - shipped.table().dalpha_dgamma()[k]));
  }
  BOOST_TEST(worst <= 1e-14);
  // Any other vocabulary, e.g. a 40-character corpus (42 ids with the two specials), needs no file either.
  BOOST_TEST(TransformLookup::open_or_compute("", 42).table().vocab_size() == 42);
  expect_error([] { TransformLookup::open_or_compute("", 1); }, {"below 2"});
}

BOOST_AUTO_TEST_CASE(nearest_mode_reproduces_reference) {
  // The reference's cache: P for V = 50257 on linspace(−5, −1, 100000); the model has V = 50258. Integrating all
  // 100 000 points would take seconds, so only the few indices the lookups can touch are filled (by quadrature);
  // every other entry is NaN, so a wrong index shows up as NaN rather than as a plausible number.
  const int64_t n = 100000;
  const double gmin = -5, gmax = -1, range = -1.85 - -3.55;
  const DiffusionTransform cache_transform(50257);
  std::vector<double> alpha(n, std::numeric_limits<double>::quiet_NaN()), dalpha(n, 0.0);
  auto fill_around = [&](double gamma) {
    const auto centre = static_cast<int64_t>(std::llround((n - 1) * (gamma - gmin) / (gmax - gmin)));
    for (int64_t k = centre - 3; k <= centre + 3; ++k)
      alpha[k] = cache_transform.at_gamma(gmin + (gmax - gmin) * static_cast<double>(k) / (n - 1)).alpha;
  };
  const double ts[] = {0.001, 0.25, 0.5, 0.75, 1.0};
  for (double t : ts) {
    fill_around(-3.55 + t * range);
    fill_around(-3.55 + t * range + 1e-3);
  }
  const TransformLookup lookup(IntegralTable(50257, gmin, gmax, alpha, dalpha), 50258, {TableLookup::nearest, true},
                               "reference gpt2 cache");
  // docs/test_vectors.md §4 training table, "repo" columns.
  const double repo_alpha[] = {0.944946123, 0.699005137, 0.360137942, 0.141784503, 0.049318698};
  const double repo_dalpha_dt[] = {-0.532580, -1.357017, -1.183881, -0.575974, -0.212099};
  for (int i = 0; i < 5; ++i) {
    const ScheduleValue s = lookup.at_time(ts[i], -3.55, -1.85);
    BOOST_TEST(std::abs(s.alpha - repo_alpha[i]) <= 6e-10, "t = " << ts[i] << ": α = " << s.alpha);
    BOOST_TEST(std::abs(s.dalpha_dt - repo_dalpha_dt[i]) <= 6e-7, "t = " << ts[i] << ": α' = " << s.dalpha_dt);
  }
  BOOST_TEST(lookup.clipped_count() == 0);
}

BOOST_AUTO_TEST_CASE(clipping_is_counted) {
  // A synthetic table α(γ) = −(γ + 1)/2 on [−3, −1] (linear, so Hermite reproduces it exactly), fine enough for
  // the nearest mode.
  const int64_t n = 20001;
  std::vector<double> alpha(n), dalpha(n, -0.5);
  for (int64_t k = 0; k < n; ++k) alpha[k] = 1.0 - static_cast<double>(k) / (n - 1);
  const IntegralTable table(100, -3, -1, alpha, dalpha);
  const TransformLookup hermite(table, 100);
  BOOST_TEST(hermite.at_gamma(-2.5).alpha == 0.75, tt::tolerance(1e-14));
  BOOST_TEST(hermite.at_gamma(-7.0).alpha == 1.0);
  BOOST_TEST(std::abs(hermite.at_gamma(0.5).alpha) <= 1e-15);
  BOOST_TEST(hermite.clipped_count() == 2);
  const TransformLookup nearest(table, 100, {TableLookup::nearest});
  BOOST_TEST(nearest.at_time(0.5, -3.0, -1.0).dalpha_dt == -1.0, tt::tolerance(1e-6));
  BOOST_TEST(nearest.clipped_count() == 0);
  // At γ_max the forward difference steps outside: clipped, and the reference's α'_t is then 0.
  const ScheduleValue end = nearest.at_time(1.0, -3.0, -1.0);
  BOOST_TEST(end.alpha == 0.0);
  BOOST_TEST(end.dalpha_dt == 0.0);
  BOOST_TEST(nearest.clipped_count() == 1);
  expect_error([&] { hermite.at_gamma(std::numeric_limits<double>::quiet_NaN()); }, {"γ must be finite"});
  // Nearest lookups on a coarse grid would return α' = 0: refused.
  const IntegralTable coarse = IntegralTable::compute(DiffusionTransform(100), -3, -1, 201);
  expect_error([&] { TransformLookup(coarse, 100, {TableLookup::nearest}); },
               {"nearest lookup needs a grid spacing", "--num_points 100000"});
}

BOOST_AUTO_TEST_CASE(bad_arguments) {
  expect_error([] { DiffusionTransform(1); }, {"vocabulary size 1"});
  expect_error([] { IntegralTable::compute(DiffusionTransform(8), 1, -1, 10); }, {"gamma_min"});
  expect_error([] { IntegralTable::compute(DiffusionTransform(8), -1, 1, 1); }, {"num_points"});
  expect_error([] { IntegralTable(8, -1, 1, {0.5, 0.4}, {0.1}); }, {"dalpha_dgamma"});
}

BOOST_AUTO_TEST_SUITE_END()
