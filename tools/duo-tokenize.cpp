// duo-tokenize: corpus files -> token shards (src/data/tokenize_job.h does the work).
//   duo-tokenize --tokenizer gpt2 --vocab data/vendor/gpt2 --input owt.jsonl.gz --output data/owt --valid_last_docs 100000
#include <cstdio>
#include <fstream>
#include <iostream>
#include "core/error.h"
#include "io/cli.h"
#include "jobs/tokenize_job.h"

int main(int argc, char** argv) {
  return duo::run_main("duo-tokenize", [&] {
    namespace po = duo::po;
    duo::TokenizeOptions o;
    std::string invalid = "error";
    po::options_description desc("duo-tokenize options");
    desc.add_options()
        ("help,h", "show this help")
        ("config", po::value<std::string>(), "ini file with any of these options")
        ("tokenizer", po::value(&o.tokenizer)->required(), "gpt2 | bert-base-uncased | char")
        ("vocab", po::value(&o.vocab_dir)->required(),
         "folder with the tokenizer files (gpt2: encoder.json + vocab.bpe; bert: vocab.txt; char: vocab_chars.txt, "
         "built from the input when absent)")
        ("input", po::value(&o.inputs)->multitoken(), "text or JSON-lines files, optionally .gz")
        ("output", po::value(&o.output_dir)->required(), "output folder for the shards")
        ("format", po::value(&o.input.format)->default_value("auto"), "auto | text | jsonl")
        ("field", po::value(&o.input.field)->default_value("text"), "JSON lines: the field holding the text")
        ("split", po::value(&o.input.split)->default_value("line"),
         "documents: line (one per line) | blank (separated by blank lines) | none (one per file)")
        ("keep_empty", po::bool_switch(&o.input.keep_empty), "keep empty documents (default: skip them)")
        ("keep_newline", po::bool_switch(&o.input.keep_newline), "split=line: keep each line's newline")
        ("strip", po::bool_switch(&o.input.strip), "strip whitespace around every document")
        ("squeeze_newlines", po::bool_switch(&o.input.squeeze_newlines), "runs of 3+ newlines become two")
        ("input_list", po::value<std::string>(), "a file naming one input file per line (for corpora of many files)")
        ("invalid_utf8", po::value(&invalid)->default_value("error"), "error | replace (with U+FFFD)")
        ("detokenizer", po::value(&o.detokenizer)->default_value("none"),
         "none | lm1b | wikitext | ptb | lambada | wikitext+lm1b, applied to each document first")
        ("prefix", po::value(&o.prefix)->default_value("train"), "shard name prefix: <prefix>_000000.bin")
        ("shard_tokens", po::value(&o.shard_tokens)->default_value(100'000'000), "tokens per shard (about)")
        ("valid_last_docs", po::value(&o.valid_last_docs)->default_value(0),
         "the last N documents go to valid_*.bin")
        ("valid_fraction", po::value(&o.valid_fraction)->default_value(0.0),
         "or the last fraction of the documents go to valid_*.bin")
        ("threads", po::value(&o.threads)->default_value(0), "worker threads (0 = all cores)")
        ("quiet", "no progress lines");
    po::variables_map vm;
    if (!duo::parse_command_line(argc, argv, desc, vm,
                                 "usage: duo-tokenize --tokenizer gpt2|bert-base-uncased|char --vocab DIR "
                                 "--input FILE... --output DIR [options]"))
      return 0;
    if (vm.count("input_list")) {
      const std::string list = vm["input_list"].as<std::string>();
      std::ifstream f(list);
      if (!f) duo::fail(list, "cannot open the --input_list file", "check the path");
      for (std::string line; std::getline(f, line);)
        if (!line.empty()) o.inputs.push_back(line);
    }
    DUO_CHECK(!o.inputs.empty(), "--input", "no input files", "pass --input FILE... or --input_list LIST");
    DUO_CHECK(invalid == "error" || invalid == "replace", "--invalid_utf8", "must be error or replace", "");
    o.input.replace_invalid_utf8 = invalid == "replace";
    o.progress = !vm.count("quiet");
    const duo::TokenizeReport r = duo::tokenize_to_shards(o);
    std::printf("tokenizer %s, vocabulary %lld\n", o.tokenizer.c_str(), (long long)r.vocab_size);
    std::printf("%s: %lld documents, %lld tokens\n", o.prefix.c_str(), (long long)r.docs[0], (long long)r.tokens[0]);
    if (r.docs[1]) std::printf("valid: %lld documents, %lld tokens\n", (long long)r.docs[1], (long long)r.tokens[1]);
    for (const auto& s : r.shards) std::printf("wrote %s\n", s.c_str());
    std::printf("%.1f MB in %.2f s (%.1f MB/s)\n", r.bytes / 1e6, r.seconds, r.bytes / 1e6 / std::max(r.seconds, 1e-9));
    return 0;
  });
}
