// The ops benchmark: every case of the op-test harness (tests/ops/) at a larger size, timed on one backend, with
// the work each case does (the op_cost of every op it runs, backend/op_kinds.h) turned into achieved FLOP/s and
// bytes/s, and on a GPU the fraction of its dense bf16 peak. The same cases, the same inputs as the tests.
//   build/bench-ops [--device cpu] [--scale 16] [--repeat 5] [--filter linear]       (CPU, built by make)
//   build/cuda/bench-ops --device cuda --scale 64                                      (GPU, built by make cuda)
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>
#include "backend/select.h"
#include "core/timer.h"
#include "io/cli.h"
#include "../tests/ops/op_harness.h"
#include "../tests/ops/op_runner.h"

namespace {

// Sums the cost of every op the backend runs while it is set as the observer.
struct CostSum final : duo::OpObserver {
  duo::OpCost total;
  void after(const duo::OpCall& c) override {
    const duo::OpCost k = duo::op_cost(c);
    total.flops += k.flops;
    total.bytes += k.bytes;
  }
};

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("bench-ops", [&] {
    namespace po = duo::po;
    po::options_description desc("bench-ops options");
    desc.add_options()("help,h", "show this help")
        ("device", po::value<std::string>()->default_value("cpu"), "cpu | cuda | auto")
        ("scale", po::value<int64_t>()->default_value(16), "multiplies each case's leading size (rows, length)")
        ("repeat", po::value<int>()->default_value(5), "timed calls per case (the median is reported)")
        ("filter", po::value<std::string>()->default_value(""), "only cases whose parameters contain this text");
    po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: bench-ops [--device cpu|cuda] [--scale N]")) return 0;
    const int64_t scale = vm["scale"].as<int64_t>();
    const int repeat = vm["repeat"].as<int>();
    DUO_CHECK(scale >= 1 && repeat >= 1, "--scale/--repeat", "must be at least 1", "");
    const std::string filter = vm["filter"].as<std::string>();
    auto ops = duo::make_backend(vm["device"].as<std::string>());
    const double peak = ops->peak_flops();
    std::printf("backend %s, scale %lld, median of %d calls%s\n", ops->name(), (long long)scale, repeat,
                peak > 0 ? duo::str(", dense bf16 peak ", peak / 1e12, " TFLOP/s").c_str() : "");
    std::printf("%-64s %11s %11s %10s%s\n", "case", "ms", "GFLOP/s", "GB/s", peak > 0 ? "   % peak" : "");
    for (const duo::test::ops::OpCase& c : duo::test::ops::all_cases(scale)) {
      if (!filter.empty() && c.params.find(filter) == std::string::npos) continue;
      duo::test::ops::CaseBuffers bufs(c, *ops, duo::DType::F32);
      CostSum cost;
      ops->set_observer(&cost);
      c.invoke(*ops, bufs.tensors());  // warm-up, and the work of one call
      ops->set_observer(nullptr);
      std::vector<double> t;
      for (int r = 0; r < repeat; ++r) {
        ops->sync();
        const duo::Timer timer;
        c.invoke(*ops, bufs.tensors());
        ops->sync();
        t.push_back(timer.seconds());
      }
      std::sort(t.begin(), t.end());
      const double s = t[t.size() / 2];
      std::printf("%-64s %11.4f %11.2f %10.2f", c.params.c_str(), s * 1e3, cost.total.flops / s / 1e9,
                  cost.total.bytes / s / 1e9);
      if (peak > 0) std::printf(" %8.2f", 100.0 * cost.total.flops / s / peak);
      std::printf("\n");
    }
    return 0;
  });
}
