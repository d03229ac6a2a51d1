// The dense bf16 tensor-core peak of an NVIDIA GPU (FLOP/s, fp32 accumulation): the denominator of the MFU that
// duo-train prints on a GPU. Known data-centre parts by name (their data-sheet figures); otherwise an estimate
// from the compute capability, the SM count and the clock (FLOP per SM per clock of that architecture), which
// overstates parts whose tensor cores run fp32 accumulation at half rate (consumer GeForce cards).
#pragma once
#include <string>

namespace duo {

struct DevicePeak {
  double flops = 0;  // 0: unknown
  bool from_table = false;
};

DevicePeak bf16_peak_flops(const std::string& name, int cc_major, int cc_minor, int sm_count, double clock_hz);

}  // namespace duo
