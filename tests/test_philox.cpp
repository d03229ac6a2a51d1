// Philox4x32-10: the Random123 known-answer vectors (which cuRAND's generator reproduces), and the
// uniform / normal conversions' ranges.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include "core/philox.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(philox)

BOOST_AUTO_TEST_CASE(known_answers) {
  // Random123 kat_vectors: philox4x32 10 rounds.
  PhiloxBlock a = philox4x32_10(0, 0, 0, 0, 0, 0);
  BOOST_TEST(a.v[0] == 0x6627e8d5u); BOOST_TEST(a.v[1] == 0xe169c58du);
  BOOST_TEST(a.v[2] == 0xbc57ac4cu); BOOST_TEST(a.v[3] == 0x9b00dbd8u);
  PhiloxBlock b = philox4x32_10(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  BOOST_TEST(b.v[0] == 0x408f276du); BOOST_TEST(b.v[1] == 0x41c83b0eu);
  BOOST_TEST(b.v[2] == 0xa20bc7c6u); BOOST_TEST(b.v[3] == 0x6d5451fdu);
  PhiloxBlock c = philox4x32_10(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  BOOST_TEST(c.v[0] == 0xd16cfe09u); BOOST_TEST(c.v[1] == 0x94fdccebu);
  BOOST_TEST(c.v[2] == 0x5001e420u); BOOST_TEST(c.v[3] == 0x24126ea1u);
}

BOOST_AUTO_TEST_CASE(stream_layout) {
  Philox r{1234, 7};
  PhiloxBlock blk = r.block(5);
  for (int k = 0; k < 4; ++k) BOOST_TEST(r.bits(20 + k) == blk.v[k]);
  Philox other{1234, 8};
  BOOST_TEST(other.bits(20) != r.bits(20));
}

BOOST_AUTO_TEST_CASE(uniform_and_normal_ranges) {
  Philox r{42, 0};
  double sum = 0, sum2 = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    float u = r.uniform(i);
    BOOST_REQUIRE(u > 0.0f);
    BOOST_REQUIRE(u <= 1.0f);
    double d = r.uniform_double(i);
    BOOST_REQUIRE(d > 0.0);
    BOOST_REQUIRE(d < 1.0);
    float z = r.normal(i);
    sum += z; sum2 += (double)z * z;
  }
  BOOST_TEST(std::fabs(sum / n) < 0.03);
  BOOST_TEST(std::fabs(sum2 / n - 1.0) < 0.05);
  BOOST_TEST(Philox::to_uniform(0) > 0.0f);
  BOOST_TEST(Philox::to_uniform(0xffffffffu) == 1.0f);
}

BOOST_AUTO_TEST_SUITE_END()
