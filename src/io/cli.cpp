#include "io/cli.h"
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include "core/error.h"
#include "core/regular_file.h"

namespace duo {

namespace {

// Boost's error_with_option_name::what() fills its template by replacing each `%key%` until none is left, so
// an option name or value that itself contains `%value%` or `%canonical_option%` (a typo, a fuzzed file)
// makes it loop forever. This reads the same template and substitutions (protected members, reached through
// a derived class's member pointers) and replaces each placeholder of the template once, left to right.
struct OptionErrorText : po::error_with_option_name {
  static std::string of(const po::error_with_option_name& e) {
    const auto& given = e.*(&OptionErrorText::m_substitutions);
    const auto& defaults = e.*(&OptionErrorText::m_substitution_defaults);
    std::map<std::string, std::string> token;  // "%key%" -> its text
    for (const auto& [key, value] : given) token["%" + key + "%"] = value;
    token["%canonical_option%"] = e.get_option_name();
    token["%prefix%"] = (e.*(&OptionErrorText::get_canonical_option_prefix))();
    for (const auto& [key, from_to] : defaults) {  // a missing or empty value: the template's default text
      const auto it = given.find(key);
      if (it == given.end() || it->second.empty()) token[from_to.first] = from_to.second;
    }
    std::string text = e.m_error_template;
    if (const auto* ambiguous = dynamic_cast<const po::ambiguous_option*>(&e)) {
      const std::set<std::string> alternatives(ambiguous->alternatives().begin(), ambiguous->alternatives().end());
      text += " and matches";
      for (const std::string& a : alternatives) text += (a == *alternatives.begin() ? " '" : ", '") + ("%prefix%" + a) + "'";
    }
    std::string out;
    for (size_t i = 0; i < text.size();) {
      bool replaced = false;
      if (text[i] == '%') {
        for (const auto& [from, to] : token) {
          if (!from.empty() && text.compare(i, from.size(), from) == 0) {
            out += to;
            i += from.size();
            replaced = true;
            break;
          }
        }
      }
      if (!replaced) out += text[i++];
    }
    return out;
  }
};

}  // namespace

std::string option_error_message(const po::error& e) {
  if (const auto* named = dynamic_cast<const po::error_with_option_name*>(&e)) return OptionErrorText::of(*named);
  return e.what();
}

int run_main(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  } catch (const po::error& e) {
    std::cerr << program << ": error: " << option_error_message(e) << "\n---> HINT: run " << program << " --help\n";
  } catch (const std::bad_alloc&) {
    std::cerr << program << ": error: out of memory\n---> HINT: use a smaller batch size or model\n";
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
  }
  return 1;
}

void add_model_options(po::options_description& desc) {
  desc.add_options()
      ("model", po::value<std::string>()->default_value("small"), "model preset: tiny, small, medium")
      ("model.hidden_size", po::value<int64_t>(), "hidden size d (overrides the preset)")
      ("model.n_blocks", po::value<int64_t>(), "number of transformer blocks")
      ("model.n_heads", po::value<int64_t>(), "attention heads")
      ("model.cond_dim", po::value<int64_t>(), "time-conditioning width (128 in every preset)")
      ("model.length", po::value<int64_t>(), "sequence length L (1024; 128 for LM1B)")
      ("model.dropout", po::value<float>(), "dropout on the residual branches (0.1)")
      ("vocab_size", po::value<int64_t>(), "model vocabulary K (default 50258 = GPT-2 + [PAD])")
      ("causal", po::bool_switch(), "causal AR variant: no sigma_map, no adaLN (algo.causal_attention)");
}

ModelConfig model_config_from(const po::variables_map& vm) {
  ModelConfig c = model_preset(vm["model"].as<std::string>());
  if (vm.count("model.hidden_size")) c.hidden = vm["model.hidden_size"].as<int64_t>();
  if (vm.count("model.n_blocks")) c.n_blocks = vm["model.n_blocks"].as<int64_t>();
  if (vm.count("model.n_heads")) c.n_heads = vm["model.n_heads"].as<int64_t>();
  if (vm.count("model.cond_dim")) c.cond_dim = vm["model.cond_dim"].as<int64_t>();
  if (vm.count("model.length")) c.length = vm["model.length"].as<int64_t>();
  if (vm.count("model.dropout")) c.dropout = vm["model.dropout"].as<float>();
  if (vm.count("vocab_size")) c.vocab_size = vm["vocab_size"].as<int64_t>();
  if (vm.count("causal") && vm["causal"].as<bool>()) c.causal = true;
  c.validate("model options");
  return c;
}

bool parse_command_line(int argc, char** argv, const po::options_description& desc, po::variables_map& vm,
                        const std::string& usage, const po::positional_options_description* positional) {
  po::command_line_parser parser(argc, argv);
  parser.options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << usage << "\n" << desc << "\n";
    return false;
  }
  if (desc.find_nothrow("config", false) && vm.count("config")) {
    const std::string path = vm["config"].as<std::string>();
    check_regular_file(path, "the --config file", "pass an ini-style file of `key = value` lines");
    std::ifstream f(path);
    if (!f) fail(path, "cannot open the --config file", "check the path");
    try {
      po::store(po::parse_config_file(f, desc), vm);  // the command line wins: values already stored stay
    } catch (const po::error& e) {
      fail(path, option_error_message(e), "config files are ini-style: `key = value`, with [section] for dotted prefixes");
    }
  }
  po::notify(vm);
  return true;
}

}  // namespace duo
