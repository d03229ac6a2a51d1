// The books of the upload staging ring (backend/staging_ring.h) against a simulated device: fences are numbers, a
// fence passes when the simulated stream reaches it (in issue order), and a wait makes the stream reach it. The
// verdict: no reservation ever overlaps the bytes of a copy that has not finished, whatever the sizes and however
// far the device lags; and the host waits at most about four times a lap of the ring.
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <vector>

#include "backend/staging_ring.h"
#include "core/philox.h"
#include "error_util.h"

using namespace duo;

namespace {

struct SimulatedStream {
  uint64_t issued = 0;    // fences 1..issued exist
  uint64_t finished = 0;  // fences 1..finished have passed
  std::map<uint64_t, std::pair<size_t, size_t>> in_flight;  // fence -> bytes its copy reads
  size_t waits = 0;
  void wait(StagingRing::Fence f) {
    const uint64_t id = reinterpret_cast<uintptr_t>(f);
    BOOST_REQUIRE(id >= 1 && id <= issued);
    ++waits;
    finish_through(id);
  }
  void finish_through(uint64_t id) {
    for (; finished < id; ++finished) in_flight.erase(finished + 1);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(staging_ring)

BOOST_AUTO_TEST_CASE(no_upload_overwrites_bytes_still_being_copied) {
  for (const int lag : {0, 3, 40, 100000}) {  // how many copies the device may be behind
    BOOST_TEST_CONTEXT("lag " << lag) {
      SimulatedStream dev;
      StagingRing ring(1 << 16, [&](StagingRing::Fence f) { dev.wait(f); });
      Philox rng{uint64_t(7 + lag), 0};
      size_t bytes = 0;
      for (uint64_t k = 0; k < 5000; ++k) {
        const size_t n = 1 + rng.bits(k) % (rng.bits(k + 99999) % 4 == 0 ? ring.capacity() / 4 : 700);
        BOOST_REQUIRE(ring.takes(n));
        const size_t at = ring.reserve(n);
        BOOST_REQUIRE(at % StagingRing::kAlign == 0);
        BOOST_REQUIRE(at + n <= ring.capacity());
        for (const auto& [fence, range] : dev.in_flight)
          BOOST_REQUIRE_MESSAGE(at + n <= range.first || range.second <= at,
                                "upload " << k << " at [" << at << ", " << at + n << ") overlaps the copy of fence "
                                          << fence << " at [" << range.first << ", " << range.second << ")");
        const uint64_t id = ++dev.issued;
        dev.in_flight[id] = {at, at + n};
        ring.issued(reinterpret_cast<StagingRing::Fence>(uintptr_t(id)));
        if (dev.issued > (uint64_t)lag) dev.finish_through(dev.issued - lag);  // the device makes progress
        bytes += (n + 63) / 64 * 64;
      }
      const double laps = double(bytes) / ring.capacity();
      BOOST_TEST_MESSAGE("lag " << lag << ": " << dev.waits << " waits over " << laps << " laps");
      BOOST_TEST(dev.waits <= 5 * (laps + 1), dev.waits << " waits over " << laps << " laps");
      BOOST_TEST(ring.waits() == dev.waits);
      ring.drain();
      BOOST_TEST(ring.pending() == 0u);
      BOOST_TEST(dev.in_flight.empty());
    }
  }
}

BOOST_AUTO_TEST_CASE(fences_come_back_for_reuse_and_misuse_is_refused) {
  int waits = 0;
  StagingRing ring(4096, [&](StagingRing::Fence) { ++waits; });
  BOOST_TEST(ring.capacity() == 4096u);
  BOOST_TEST(!ring.takes(0));
  BOOST_TEST(ring.takes(1024));
  BOOST_TEST(!ring.takes(1025));
  BOOST_TEST(testing::error_of([&] { ring.reserve(2000); }).find("quarter of the ring") != std::string::npos);
  BOOST_TEST(testing::error_of([&] { ring.issued(nullptr); }).find("no reservation") != std::string::npos);
  int fences[8];
  for (int k = 0; k < 8; ++k) {  // two laps of 1024-byte uploads: the second waits
    BOOST_TEST(ring.reserve(1000) == size_t(k % 4) * 1024);
    if (k == 0) BOOST_TEST(testing::error_of([&] { ring.reserve(10); }).find("not issued") != std::string::npos);
    ring.issued(&fences[k]);
  }
  BOOST_TEST(waits == 4);  // each upload of the second lap meets a pending one of the first, a quarter of the ring
  BOOST_TEST(ring.pending() == 4u);
  int reused = 0;
  while (ring.reusable_fence()) ++reused;
  BOOST_TEST(reused == 4);
  const std::vector<StagingRing::Fence> all = ring.take_fences();
  BOOST_TEST(all.size() == 4u);
  BOOST_TEST(ring.pending() == 0u);
  BOOST_TEST(testing::error_of([] { StagingRing tiny(100, [](StagingRing::Fence) {}); }).find("capacity") !=
             std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
