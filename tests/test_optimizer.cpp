// Learning-rate schedules, clipping and the EMA decay against hand-computed values (docs/training.md §2–§5).
#include <boost/test/unit_test.hpp>
#include <cmath>
#include "core/error.h"
#include "train/optimizer.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(optimizer)

BOOST_AUTO_TEST_CASE(constant_with_warmup) {
  OptimConfig c;  // lr 3e-4, warm-up 2500
  BOOST_TEST(learning_rate(c, 0) == 0.0);
  BOOST_TEST(learning_rate(c, 1) == 3e-4 / 2500, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(learning_rate(c, 1250) == 1.5e-4, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(learning_rate(c, 2500) == 3e-4);
  BOOST_TEST(learning_rate(c, 900000) == 3e-4);
  c.warmup_steps = 0;
  BOOST_TEST(learning_rate(c, 0) == 3e-4);
}

BOOST_AUTO_TEST_CASE(cosine_with_warmup) {
  OptimConfig c;
  c.schedule = "cosine_decay_warmup";
  c.max_steps = 1000;  // warm-up 100 steps from 1e-6
  BOOST_TEST(learning_rate(c, 0) == 1e-6, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(learning_rate(c, 50) == 1e-6 + 0.5 * (3e-4 - 1e-6), boost::test_tools::tolerance(1e-12));
  // at k = 500: min + ½(base − min)(1 + cos(π/2)) = midpoint
  BOOST_TEST(learning_rate(c, 500) == 1e-6 + 0.5 * (3e-4 - 1e-6), boost::test_tools::tolerance(1e-12));
  BOOST_TEST(learning_rate(c, 1000) == 1e-6, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(learning_rate(c, 5000) == 1e-6, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(clipping) {
  BOOST_TEST(clip_coefficient(0.5, 1.0) == 1.0);
  BOOST_TEST(clip_coefficient(4.0, 1.0) == 1.0 / (4.0 + 1e-6));
  BOOST_TEST(clip_coefficient(4.0, 0.0) == 1.0);  // disabled
}

BOOST_AUTO_TEST_CASE(ema_warmup) {
  BOOST_TEST(ema_decay(0.9999, 1) == 2.0 / 11.0);
  BOOST_TEST(ema_decay(0.9999, 90) == 91.0 / 100.0);
  BOOST_TEST(ema_decay(0.9999, 1000000) == 0.9999);
  BOOST_TEST(ema_decay(0.999, 50000) == 0.999);
}

BOOST_AUTO_TEST_CASE(validation) {
  OptimConfig c;
  c.schedule = "linear";
  BOOST_CHECK_THROW(c.validate(), Error);
  c = OptimConfig{};
  c.beta2 = 1.0;
  BOOST_CHECK_THROW(c.validate(), Error);
  c = OptimConfig{};
  BOOST_CHECK_NO_THROW(c.validate());
}

BOOST_AUTO_TEST_SUITE_END()
