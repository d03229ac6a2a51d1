// The Boost.Test module of duo.cu: every tests/*.cpp file adds its suites to this one binary.
#define BOOST_TEST_MODULE duo
#include <boost/test/unit_test.hpp>
