// duo-plot: turns a training metrics file (JSON lines, one object per log or validation event) into an SVG
// chart people can look at: one line per metric against "step".
//   duo-plot runs/metrics.jsonl -o loss.svg [--keys train/loss,val/nll] [--log_y] [--title T]
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include "core/error.h"
#include "io/cli.h"

namespace {

struct Series { std::string key; std::vector<std::pair<double, double>> pts; };

std::vector<Series> read_series(const std::string& path, const std::vector<std::string>& keys) {
  std::ifstream f(path);
  if (!f) duo::fail(path, "cannot open the metrics file", "pass the metrics.jsonl written by duo-train");
  std::vector<Series> out;
  for (const std::string& k : keys) out.push_back({k, {}});
  std::string line;
  int64_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      duo::fail(duo::str(path, ":", lineno), "not a JSON object", "each line of a metrics file is one JSON object");
    if (!j.contains("step") || !j["step"].is_number()) continue;
    const double step = j["step"].get<double>();
    for (Series& s : out)
      if (j.contains(s.key) && j[s.key].is_number()) {
        double v = j[s.key].get<double>();
        if (std::isfinite(v)) s.pts.push_back({step, v});
      }
  }
  return out;
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

void write_svg(const std::string& path, const std::vector<Series>& series, bool log_y, const std::string& title) {
  const double W = 800, H = 480, left = 70, right = 170, top = 40, bottom = 50;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const Series& s : series)
    for (auto [x, y] : s.pts) {
      if (log_y && y <= 0) continue;
      double yy = log_y ? std::log10(y) : y;
      x0 = std::min(x0, x); x1 = std::max(x1, x); y0 = std::min(y0, yy); y1 = std::max(y1, yy);
    }
  if (x0 > x1) duo::fail(path, "no data points for the requested keys", "check --keys against the metrics file");
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) { y0 -= 0.5; y1 += 0.5; }
  auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto Y = [&](double y) { return top + (1 - ((log_y ? std::log10(y) : y) - y0) / (y1 - y0)) * (H - top - bottom); };
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' font-size='12'>\n"
      << "<rect width='100%' height='100%' fill='white'/>\n"
      << "<text x='" << W / 2 << "' y='22' text-anchor='middle' font-size='15'>" << title << "</text>\n";
  for (int i = 0; i <= 5; ++i) {  // grid and tick labels
    double fx = x0 + (x1 - x0) * i / 5, fy = y0 + (y1 - y0) * i / 5;
    double yv = log_y ? std::pow(10.0, fy) : fy;
    svg << "<line x1='" << X(fx) << "' y1='" << top << "' x2='" << X(fx) << "' y2='" << H - bottom << "' stroke='#eee'/>\n"
        << "<text x='" << X(fx) << "' y='" << H - bottom + 16 << "' text-anchor='middle'>" << fmt(fx) << "</text>\n"
        << "<line x1='" << left << "' y1='" << Y(yv) << "' x2='" << W - right << "' y2='" << Y(yv) << "' stroke='#eee'/>\n"
        << "<text x='" << left - 6 << "' y='" << Y(yv) + 4 << "' text-anchor='end'>" << fmt(yv) << "</text>\n";
  }
  svg << "<rect x='" << left << "' y='" << top << "' width='" << W - left - right << "' height='" << H - top - bottom
      << "' fill='none' stroke='#333'/>\n"
      << "<text x='" << (left + W - right) / 2 << "' y='" << H - 12 << "' text-anchor='middle'>step</text>\n";
  for (size_t i = 0; i < series.size(); ++i) {
    const Series& s = series[i];
    const char* col = colors[i % 6];
    svg << "<polyline fill='none' stroke='" << col << "' stroke-width='1.5' points='";
    for (auto [x, y] : s.pts)
      if (!log_y || y > 0) svg << X(x) << "," << Y(y) << " ";
    svg << "'/>\n";
    if (s.pts.size() < 50)  // sparse series (validation): mark the points
      for (auto [x, y] : s.pts)
        if (!log_y || y > 0) svg << "<circle cx='" << X(x) << "' cy='" << Y(y) << "' r='3' fill='" << col << "'/>\n";
    double ly = top + 20 + 20 * i;
    svg << "<line x1='" << W - right + 12 << "' y1='" << ly << "' x2='" << W - right + 36 << "' y2='" << ly
        << "' stroke='" << col << "' stroke-width='2'/>\n"
        << "<text x='" << W - right + 42 << "' y='" << ly + 4 << "'>" << s.key << "</text>\n";
  }
  svg << "</svg>\n";
  std::ofstream out(path);
  if (!out || !(out << svg.str())) duo::fail(path, "cannot write the SVG file", "check the output directory");
}

}  // namespace

int main(int argc, char** argv) {
  return duo::run_main("duo-plot", [&] {
    duo::po::options_description desc("duo-plot options");
    desc.add_options()("help,h", "show this help")
        ("metrics", duo::po::value<std::string>()->required(), "metrics file (JSON lines) written by duo-train")
        ("output,o", duo::po::value<std::string>()->default_value("loss.svg"), "SVG file to write")
        ("keys", duo::po::value<std::string>()->default_value("train/loss,val/nll"), "comma-separated metric keys")
        ("log_y", duo::po::bool_switch(), "logarithmic y axis")
        ("title", duo::po::value<std::string>()->default_value("duo.cu training"), "chart title");
    duo::po::positional_options_description pos;
    pos.add("metrics", 1);
    duo::po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: duo-plot METRICS.jsonl [-o out.svg] [--keys a,b]", &pos))
      return 0;
    std::vector<std::string> keys;
    std::stringstream ks(vm["keys"].as<std::string>());
    for (std::string k; std::getline(ks, k, ',');)
      if (!k.empty()) keys.push_back(k);
    auto series = read_series(vm["metrics"].as<std::string>(), keys);
    write_svg(vm["output"].as<std::string>(), series, vm["log_y"].as<bool>(), vm["title"].as<std::string>());
    std::cout << "wrote " << vm["output"].as<std::string>() << "\n";
    return 0;
  });
}
