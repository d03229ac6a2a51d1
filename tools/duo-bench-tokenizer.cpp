// duo-bench-tokenizer: tokenizer throughput on one text file, in memory (no shard writing), for
// bench/tokenizer_bench.sh. The text is cut at line boundaries into documents of about --doc_mb MB; the
// documents are encoded one after another (--threads 1) or in parallel (OpenMP, one EncodeCache per thread).
// Prints MB/s (best of --repeat runs) and the token count, so a comparison can check that the ids agree in number.
#include <omp.h>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include "core/error.h"
#include "core/timer.h"
#include "data/tokenizer.h"
#include "io/cli.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-bench-tokenizer", [&] {
    namespace po = duo::po;
    std::string name, vocab, input;
    double doc_mb = 1.0;
    int threads = 1, repeat = 3;
    po::options_description desc("duo-bench-tokenizer options");
    desc.add_options()("help,h", "show this help")
        ("tokenizer", po::value(&name)->default_value("gpt2"), "gpt2 | bert-base-uncased | char")
        ("vocab", po::value(&vocab)->required(), "tokenizer folder")
        ("input", po::value(&input)->required(), "text file")
        ("doc_mb", po::value(&doc_mb)->default_value(1.0), "document size in MB (cut at line ends)")
        ("threads", po::value(&threads)->default_value(1), "threads (0 = all cores)")
        ("repeat", po::value(&repeat)->default_value(3), "runs; the best is reported");
    po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm, "usage: duo-bench-tokenizer --vocab DIR --input FILE")) return 0;
    std::ifstream f(input, std::ios::binary);
    if (!f) duo::fail(input, "cannot open", "check the path");
    const std::string text((std::istreambuf_iterator<char>(f)), {});
    std::vector<std::string_view> docs;
    const size_t target = std::max<size_t>(1, (size_t)(doc_mb * 1e6));
    for (size_t at = 0; at < text.size();) {
      size_t end = std::min(text.size(), at + target);
      const size_t nl = text.find('\n', end);
      end = nl == std::string::npos ? text.size() : nl + 1;
      docs.push_back(std::string_view(text).substr(at, end - at));
      at = end;
    }
    const auto tok = duo::load_tokenizer(name, vocab);
    if (threads <= 0) threads = omp_get_max_threads();
    std::vector<std::unique_ptr<duo::EncodeCache>> caches(threads);
    double best = 1e30;
    int64_t n_tokens = 0;
    for (int r = 0; r < repeat; ++r) {
      for (auto& c : caches) c = tok->make_cache();  // cold caches every run, as a fresh process would have
      std::vector<std::vector<uint32_t>> out(docs.size());
      duo::Timer t;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
      for (size_t i = 0; i < docs.size(); ++i) tok->encode(docs[i], out[i], caches[omp_get_thread_num()].get());
      best = std::min(best, t.seconds());
      n_tokens = 0;
      for (const auto& o : out) n_tokens += (int64_t)o.size();
    }
    std::printf("duo.cu %s threads=%d: %.2f MB/s  (%.1f MB, %zu documents, %lld tokens, best of %d: %.3f s)\n",
                name.c_str(), threads, (double)text.size() / 1e6 / best, (double)text.size() / 1e6, docs.size(),
                (long long)n_tokens, repeat, best);
    return 0;
  });
}
