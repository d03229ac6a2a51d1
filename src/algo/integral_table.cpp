#include "algo/integral_table.h"
#include <zlib.h>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <utility>
#include "algo/diffusion_transform.h"
#include "core/error.h"
#include "core/regular_file.h"

namespace duo {

static_assert(std::endian::native == std::endian::little, "the table format is little-endian; add byte swapping");

namespace {

// Header field offsets (see integral_table.h).
constexpr size_t kOffVersion = 8, kOffHeaderBytes = 12, kOffVocab = 16, kOffGammaMin = 24, kOffGammaMax = 32,
                 kOffNumPoints = 40, kOffChecksum = 48, kOffReserved = 52;
// A table larger than this is certainly a corrupt header (2^26 points = 1 GiB of payload).
constexpr int64_t kMaxPoints = int64_t{1} << 26;

template <class T>
T load(const unsigned char* bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes + offset, sizeof v);
  return v;
}
template <class T>
void store(unsigned char* bytes, size_t offset, T v) {
  std::memcpy(bytes + offset, &v, sizeof v);
}

// Shortest text that reads back as the same double ("−6", "0.0025"), for commands users copy.
std::string shortest(double x) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// CRC-32 of the header's first 48 bytes and then the payload, so a flipped bit anywhere but in the checksum
// field itself (and the reserved bytes, checked to be zero) is caught.
uint32_t table_checksum(const unsigned char* header, const unsigned char* payload, size_t payload_bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, header, kOffChecksum);
  // zlib takes uInt lengths: feed the payload in chunks that fit.
  for (size_t done = 0; done < payload_bytes;) {
    const size_t n = std::min<size_t>(payload_bytes - done, size_t{1} << 30);
    crc = crc32(crc, payload + done, static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

void check_grid(const std::string& where, int64_t vocab, double gamma_min, double gamma_max, int64_t n,
                const std::string& hint) {
  DUO_CHECK(vocab >= 2, where, str("field 'vocab_size' = ", vocab, ": must be at least 2"), hint);
  DUO_CHECK(std::isfinite(gamma_min), where, str("field 'gamma_min' = ", gamma_min, " is not finite"), hint);
  DUO_CHECK(std::isfinite(gamma_max), where, str("field 'gamma_max' = ", gamma_max, " is not finite"), hint);
  DUO_CHECK(gamma_min < gamma_max, where,
            str("fields 'gamma_min' = ", gamma_min, " and 'gamma_max' = ", gamma_max, ": need gamma_min < gamma_max"),
            hint);
  DUO_CHECK(n >= 2 && n <= kMaxPoints, where,
            str("field 'num_points' = ", n, ": must be between 2 and ", kMaxPoints), hint);
}

}  // namespace

IntegralTable::IntegralTable(int64_t vocab_size, double gamma_min, double gamma_max, std::vector<double> alpha,
                             std::vector<double> dalpha_dgamma)
    : vocab_(vocab_size), gamma_min_(gamma_min), gamma_max_(gamma_max), alpha_(std::move(alpha)),
      dalpha_(std::move(dalpha_dgamma)) {
  const std::string hint = "check the arguments of the table (duo-integral validates its options the same way)";
  check_grid("integral table", vocab_, gamma_min_, gamma_max_, static_cast<int64_t>(alpha_.size()), hint);
  DUO_CHECK(dalpha_.size() == alpha_.size(), "integral table",
            str("field 'dalpha_dgamma' has ", dalpha_.size(), " values but 'alpha' has ", alpha_.size()), hint);
}

IntegralTable IntegralTable::compute(const DiffusionTransform& transform, double gamma_min, double gamma_max,
                                     int64_t num_points) {
  check_grid("duo-integral options", transform.vocab_size(), gamma_min, gamma_max, num_points,
             "pass --gamma_min < --gamma_max and --num_points ≥ 2");
  // μ = e^{−γ/2} must be a positive double at both ends (it is monotone in γ, so then everywhere between).
  for (const auto& [option, gamma] : {std::pair{"--gamma_min", gamma_min}, std::pair{"--gamma_max", gamma_max}}) {
    const double mu = std::exp(-0.5 * gamma);
    DUO_CHECK(mu > 0 && std::isfinite(mu), option,
              str("γ = ", gamma, " puts μ = e^{−γ/2} = ", mu, " outside the double range"),
              "keep γ within [−1400, 1400]; α(γ) is 0 or 1 to double precision far inside that");
  }
  std::vector<double> alpha(num_points), dalpha(num_points);
  const double h = (gamma_max - gamma_min) / static_cast<double>(num_points - 1);
  // An exception must not leave an OpenMP region (that is std::terminate): the first one is kept and rethrown.
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t k = 0; k < num_points; ++k) {
    try {
      const double gamma = k == num_points - 1 ? gamma_max : gamma_min + h * static_cast<double>(k);
      const TransformPoint p = transform.at_gamma(gamma);
      alpha[k] = p.alpha;
      dalpha[k] = p.dalpha_dgamma;
    } catch (...) {
#pragma omp critical(duo_integral_table_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
  return IntegralTable(transform.vocab_size(), gamma_min, gamma_max, std::move(alpha), std::move(dalpha));
}

double IntegralTable::gamma_at(int64_t k) const {
  // The last point is γ_max exactly, not γ_min + (N−1)·h with its rounding.
  return k == num_points() - 1 ? gamma_max_ : gamma_min_ + spacing() * static_cast<double>(k);
}

std::string IntegralTable::regenerate_command(int64_t vocab_size, double gamma_min, double gamma_max,
                                              int64_t num_points, const std::string& path) {
  return str("build/duo-integral --vocab_size ", vocab_size > 0 ? std::to_string(vocab_size) : "<V>",
             " --gamma_min=", shortest(gamma_min), " --gamma_max=", shortest(gamma_max), " --num_points ",
             num_points, " --output ", path);
}

void IntegralTable::write(const std::string& path) const {
  const int64_t n = num_points();
  std::vector<unsigned char> bytes(kHeaderBytes + 16 * static_cast<size_t>(n), 0);
  unsigned char* header = bytes.data();
  unsigned char* payload = bytes.data() + kHeaderBytes;
  std::memcpy(header, kMagic, 8);
  store<uint32_t>(header, kOffVersion, kVersion);
  store<uint32_t>(header, kOffHeaderBytes, kHeaderBytes);
  store<int64_t>(header, kOffVocab, vocab_);
  store<double>(header, kOffGammaMin, gamma_min_);
  store<double>(header, kOffGammaMax, gamma_max_);
  store<int64_t>(header, kOffNumPoints, n);
  std::memcpy(payload, alpha_.data(), 8 * static_cast<size_t>(n));
  std::memcpy(payload + 8 * n, dalpha_.data(), 8 * static_cast<size_t>(n));
  store<uint32_t>(header, kOffChecksum, table_checksum(header, payload, bytes.size() - kHeaderBytes));

  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    DUO_CHECK(f.good(), tmp, "cannot create the file", "check that the directory exists and is writable");
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    DUO_CHECK(f.good(), tmp, "write failed", "check the free disk space");
  }
  DUO_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, str("cannot rename ", tmp, " to it"),
            "check the permissions of the directory");
}

IntegralTable IntegralTable::read(const std::string& path, int64_t regenerate_vocab) {
  // Until the header is known, the HINT names the default grid.
  const std::string default_command =
      regenerate_command(regenerate_vocab, kDefaultGammaMin, kDefaultGammaMax, kDefaultNumPoints, path);
  std::string hint = "regenerate it: " + default_command;
  check_regular_file(path, "the integral table", "create it: " + default_command);
  std::ifstream f(path, std::ios::binary);
  DUO_CHECK(f.good(), path, "cannot open the integral table", "create it: " + default_command);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  DUO_CHECK(!f.bad(), path, "read error", hint);

  DUO_CHECK(bytes.size() >= kHeaderBytes, path,
            str("truncated header: the file has ", bytes.size(), " bytes, the header alone needs ", kHeaderBytes),
            hint);
  const unsigned char* header = bytes.data();
  DUO_CHECK(std::memcmp(header, kMagic, 8) == 0, path,
            str("field 'magic' is not \"", kMagic, "\": not an integral table written by duo-integral"), hint);
  const auto version = load<uint32_t>(header, kOffVersion);
  DUO_CHECK(version == kVersion, path, str("field 'version' = ", version, ", this build reads version ", kVersion),
            hint);
  const auto header_bytes = load<uint32_t>(header, kOffHeaderBytes);
  DUO_CHECK(header_bytes == kHeaderBytes, path,
            str("field 'header_size' = ", header_bytes, ", expected ", kHeaderBytes), hint);

  const auto vocab = load<int64_t>(header, kOffVocab);
  const auto gamma_min = load<double>(header, kOffGammaMin);
  const auto gamma_max = load<double>(header, kOffGammaMax);
  const auto n = load<int64_t>(header, kOffNumPoints);
  check_grid(path, vocab, gamma_min, gamma_max, n, hint);
  // The header is sane: from here on the HINT rebuilds exactly this table.
  hint = "regenerate it: " + regenerate_command(regenerate_vocab > 0 ? regenerate_vocab : vocab, gamma_min,
                                                gamma_max, n, path);
  for (size_t i = kOffReserved; i < kHeaderBytes; ++i)
    DUO_CHECK(header[i] == 0, path, str("field 'reserved' (byte ", i, ") is not zero"), hint);

  const size_t payload_bytes = 16 * static_cast<size_t>(n);
  DUO_CHECK(bytes.size() - kHeaderBytes >= payload_bytes, path,
            str("truncated: ", n, " grid points need ", payload_bytes, " payload bytes, the file has ",
                bytes.size() - kHeaderBytes),
            hint);
  DUO_CHECK(bytes.size() - kHeaderBytes == payload_bytes, path,
            str(bytes.size() - kHeaderBytes - payload_bytes, " unexpected bytes after the ", n, " grid points"),
            hint);
  const unsigned char* payload = bytes.data() + kHeaderBytes;
  const auto stored = load<uint32_t>(header, kOffChecksum);
  const uint32_t computed = table_checksum(header, payload, payload_bytes);
  DUO_CHECK(stored == computed, path,
            str("field 'checksum' = ", hex32(stored), " but the contents give ", hex32(computed),
                ": the file is corrupt"),
            hint);

  std::vector<double> alpha(n), dalpha(n);
  std::memcpy(alpha.data(), payload, 8 * static_cast<size_t>(n));
  std::memcpy(dalpha.data(), payload + 8 * n, 8 * static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) {
    DUO_CHECK(std::isfinite(alpha[k]) && std::isfinite(dalpha[k]), path,
              str("fields 'alpha[", k, "]' = ", alpha[k], ", 'dalpha_dgamma[", k, "]' = ", dalpha[k],
                  ": not finite"),
              hint);
  }
  return IntegralTable(vocab, gamma_min, gamma_max, std::move(alpha), std::move(dalpha));
}

}  // namespace duo
