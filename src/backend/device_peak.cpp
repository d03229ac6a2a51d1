#include "backend/device_peak.h"

#include <set>
#include <sstream>
#include <utility>

namespace duo {

DevicePeak bf16_peak_flops(const std::string& name, int cc_major, int cc_minor, int sm_count, double clock_hz) {
  // Data-sheet dense bf16 peaks; an entry matches when each of its words is a word of the device name
  // ("NVIDIA A100-SXM4-80GB": NVIDIA, A100, SXM4, 80GB), most specific entries first ("H100 PCIe" before "H100").
  static const std::pair<const char*, double> kTable[] = {
      {"H100 PCIe", 756e12}, {"H100 NVL", 835e12}, {"GH200", 989.4e12}, {"H200", 989.4e12}, {"H100", 989.4e12},
      {"H800", 989.4e12},    {"B200", 2250e12},    {"A100", 312e12},    {"A800", 312e12},   {"L40S", 362.05e12},
      {"L4", 121e12},        {"A10G", 70e12},      {"A10", 125e12},     {"A40", 149.7e12},  {"A30", 165e12},
  };
  auto words_of = [](std::string text) {
    for (char& ch : text)
      if (ch == '-' || ch == '_') ch = ' ';
    std::istringstream in(text);
    std::set<std::string> words;
    for (std::string w; in >> w;) words.insert(w);
    return words;
  };
  const std::set<std::string> device = words_of(name);
  for (const auto& [part, flops] : kTable) {
    bool all = true;
    for (const std::string& w : words_of(part)) all = all && device.count(w) > 0;
    if (all) return {flops, true};
  }
  // FLOP per SM per clock of the tensor cores (bf16 in, fp32 accumulate), by architecture.
  int per_sm = 0;
  if (cc_major == 8 && cc_minor == 0) per_sm = 2048;       // Ampere GA100
  else if (cc_major == 8) per_sm = 1024;                   // Ampere GA10x, Ada (data-centre rate)
  else if (cc_major == 9) per_sm = 4096;                   // Hopper
  else if (cc_major >= 10) per_sm = 8192;                  // Blackwell
  if (per_sm == 0 || sm_count <= 0 || clock_hz <= 0) return {};
  return {double(per_sm) * sm_count * clock_hz, false};
}

}  // namespace duo
