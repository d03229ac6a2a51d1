// The MFU of duo-train's progress line on a GPU: model FLOPs per training token and device peaks.
#include <boost/test/unit_test.hpp>

#include "backend/cpu/cpu_ops.h"
#include "backend/device_peak.h"
#include "model/flops.h"

using namespace duo;

BOOST_AUTO_TEST_SUITE(flops)

// The small model by hand: 12 blocks × (4·768² + 2·768·3072) + 768·50258 = 123,532,800 matmul weights; 6 FLOPs
// each, plus 12·12·1024·768 for attention.
BOOST_AUTO_TEST_CASE(training_flops_per_token_of_the_presets) {
  BOOST_TEST(training_flops_per_token(model_preset("small")) == 854443008.0);
  ModelConfig c = model_preset("small");
  c.length = 2048;  // only the attention term grows with L
  BOOST_TEST(training_flops_per_token(c) == 854443008.0 + 113246208.0);
}

BOOST_AUTO_TEST_CASE(device_peaks) {
  BOOST_TEST(bf16_peak_flops("NVIDIA H100 80GB HBM3", 9, 0, 132, 1.98e9).flops == 989.4e12);
  BOOST_TEST(bf16_peak_flops("NVIDIA H100 PCIe", 9, 0, 114, 1.755e9).flops == 756e12);
  BOOST_TEST(bf16_peak_flops("NVIDIA H200", 9, 0, 132, 1.98e9).flops == 989.4e12);
  BOOST_TEST(bf16_peak_flops("NVIDIA A100-SXM4-80GB", 8, 0, 108, 1.41e9).flops == 312e12);
  BOOST_TEST(bf16_peak_flops("NVIDIA A10", 8, 6, 72, 1.695e9).flops == 125e12);  // whole words: A10 is not A100
  BOOST_TEST(!bf16_peak_flops("NVIDIA L40", 8, 9, 142, 2.49e9).from_table);     // nor L40 the L4
  // unknown names: FLOP per SM per clock of the architecture (A100's 312 TFLOP/s is 2048 × 108 × 1.41 GHz)
  const DevicePeak ga100 = bf16_peak_flops("some GA100", 8, 0, 108, 1.41e9);
  BOOST_TEST(!ga100.from_table);
  BOOST_TEST(std::abs(ga100.flops - 312e12) < 1e12);
  BOOST_TEST(bf16_peak_flops("NVIDIA GeForce RTX 4090", 8, 9, 128, 2.52e9).flops == 1024.0 * 128 * 2.52e9);
  BOOST_TEST(bf16_peak_flops("Tesla T4", 7, 5, 40, 1.59e9).flops == 0.0);  // no bf16 tensor cores: no MFU
  BOOST_TEST(CpuOps().peak_flops() == 0.0);  // the CPU quotes none
}

BOOST_AUTO_TEST_SUITE_END()
