// Each algorithm end to end through a tiny float64 DiT: the gradient it backpropagates (loss head + model)
// equals central finite differences of its own loss, with the noise streams fixed; losses are finite and,
// where the objective is a bound, non-negative.
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <unistd.h>
#include "algo/algorithm.h"
#include "algo/diffusion_transform.h"
#include "algo/integral_table.h"
#include "backend/cpu/cpu_ops.h"
#include "train/model_state.h"

using namespace duo;

namespace {

struct Tiny {
  ModelConfig cfg;
  CpuOps ops;
  std::unique_ptr<ModelState> state;
  std::unique_ptr<DiT> model;
  std::vector<int32_t> ids;
  std::vector<float> mask;
  static constexpr int64_t B = 3, L = 6;

  explicit Tiny(bool causal, bool soft_input = false, int bag_k = 0) {
    cfg.vocab_size = 11; cfg.hidden = 8; cfg.n_blocks = 1; cfg.n_heads = 2; cfg.cond_dim = 4; cfg.freq_dim = 8;
    cfg.length = L; cfg.dropout = 0.0f; cfg.causal = causal;
    state = std::make_unique<ModelState>(cfg, ops, true, DType::F64);
    DiTOptions o;
    o.max_batch = B;
    o.dtype = DType::F64;
    o.soft_input = soft_input;
    o.bag_k = bag_k;
    model = std::make_unique<DiT>(cfg, ops, o);
    model->bind(state->params(), state->grads());
    // Random non-zero weights everywhere (a from-scratch init zeroes adaLN and the head).
    double* p = static_cast<double*>(state->params());
    Philox r{5, 1};
    for (int64_t i = 0; i < state->table().total(); ++i) p[i] = 0.6 * (2 * r.uniform_double(i) - 1);
    Philox d{9, 2};
    for (int64_t i = 0; i < B * L; ++i) ids.push_back((int32_t)(d.bits(i) % 10));  // id 10 = mask, unused in data
    mask.assign(B * L, 1.0f);
    mask[B * L - 1] = 0.0f;  // one padded position
  }

  MicroBatch batch() const {
    MicroBatch mb;
    mb.ids = ids.data(); mb.mask = mask.data(); mb.B = B; mb.L = L;
    mb.t = {0.15, 0.55, 0.9};
    mb.noise = Philox{77, 3};
    mb.dropout = Philox{1, 0};
    return mb;
  }
};

// An integral table for the tiny vocabulary, written once per test run.
std::string tiny_integral_table() {
  static const std::string path = "/tmp/duo_test_integral_" + std::to_string(getpid()) + ".bin";
  static bool written = false;
  if (!written) {
    IntegralTable::compute(DiffusionTransform(11), -6.0, 2.0, 801).write(path);
    written = true;
  }
  return path;
}

AlgoSettings settings(const std::string& name, const std::string& mode = "simple") {
  AlgoSettings s;
  s.name = name;
  s.mask_id = 10;
  if (name == "d3pm") s.T = 1000;
  if (name == "duo") {
    s.curriculum_mode = mode;
    s.top_k = 3;
    s.integral_path = tiny_integral_table();
    s.curriculum.tau_log10_start = s.curriculum.tau_log10_end = -0.5;  // a soft input, so gradients flow through it
  }
  return s;
}

// chunk_rows: the fused vocabulary head's chunks (0: the backend's default, one chunk at this size).
void check_gradient(const std::string& name, const std::string& mode = "simple", int64_t chunk_rows = 0) {
  Tiny m(name == "ar", name == "duo" && mode == "simple", name == "duo" && mode == "efficient" ? 3 : 0);
  m.ops.set_vocab_chunk_rows(chunk_rows);
  auto algo = make_algorithm(settings(name, mode), *m.model, m.ops);
  MicroBatch mb = m.batch();
  const bool train = name == "duo";  // the curriculum is active only in training (dropout is 0 here)
  m.state->zero_grads();
  LossSums s = algo->run(mb, train, true, 1.0);
  BOOST_TEST_INFO(name);
  BOOST_TEST(std::isfinite(s.loss));
  // one padded position (the last token); AR predicts positions 1..L-1 only
  BOOST_TEST(s.weight == (double)((name == "ar" ? Tiny::B * (Tiny::L - 1) : Tiny::B * Tiny::L) - 1));
  if (name != "sedd") BOOST_TEST(s.loss >= 0.0);  // SEDD's score entropy is shifted, but also >= 0 in theory
  double* p = static_cast<double*>(m.state->params());
  const double* g = static_cast<const double*>(m.state->grads());
  // A handful of parameters spread over the buffer (embedding, attention, MLP, adaLN, head).
  double num = 0, den = 0;
  const int64_t total = m.state->table().total();
  for (int64_t k = 0; k < 40; ++k) {
    const int64_t i = (k * 7919) % total;
    const double keep = p[i], h = 1e-6;
    p[i] = keep + h;
    const double up = algo->run(mb, train, false, 1.0).loss;
    p[i] = keep - h;
    const double down = algo->run(mb, train, false, 1.0).loss;
    p[i] = keep;
    const double fd = (up - down) / (2 * h);
    num += (fd - g[i]) * (fd - g[i]);
    den += fd * fd;
  }
  BOOST_TEST_INFO(name << ": relative gradient error " << std::sqrt(num / den));
  BOOST_TEST(den > 0);
  BOOST_TEST(std::sqrt(num / den) < 1e-6);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(algorithms)

BOOST_AUTO_TEST_CASE(ar_gradient) { check_gradient("ar"); }
BOOST_AUTO_TEST_CASE(mdlm_gradient) { check_gradient("mdlm"); }
BOOST_AUTO_TEST_CASE(sedd_gradient) { check_gradient("sedd"); }
BOOST_AUTO_TEST_CASE(d3pm_gradient) { check_gradient("d3pm"); }
BOOST_AUTO_TEST_CASE(duo_base_gradient) { check_gradient("duo_base"); }
BOOST_AUTO_TEST_CASE(duo_curriculum_gradient) { check_gradient("duo", "simple"); }
BOOST_AUTO_TEST_CASE(duo_efficient_curriculum_gradient) { check_gradient("duo", "efficient"); }
// The vocabulary head in chunks of 4 rows (5 chunks of the 18 positions, the last one short).
BOOST_AUTO_TEST_CASE(gradients_with_the_head_in_chunks) {
  check_gradient("ar", "simple", 4);
  check_gradient("duo", "simple", 4);
}

// Past curriculum.end (and in evaluation) `duo` is exactly DUO base: same loss for the same streams.
BOOST_AUTO_TEST_CASE(duo_after_the_curriculum_is_duo_base) {
  Tiny m(false, true);
  AlgoSettings s = settings("duo");
  s.curriculum.end = 10;
  auto duo = make_algorithm(s, *m.model, m.ops);
  auto base = make_algorithm(settings("duo_base"), *m.model, m.ops);
  MicroBatch mb = m.batch();
  mb.step = 11;
  const double a = duo->run(mb, true, false, 1.0).loss;
  BOOST_TEST(a == base->run(mb, true, false, 1.0).loss);
  mb.step = 10;  // still the curriculum (the reference's step == end quirk)
  BOOST_TEST(duo->run(mb, true, false, 1.0).loss != a);
  mb.step = 0;
  BOOST_TEST(duo->run(mb, false, false, 1.0).loss == a);  // evaluation never uses the curriculum
}

BOOST_AUTO_TEST_CASE(same_streams_same_loss) {
  Tiny m(false);
  auto algo = make_algorithm(settings("duo_base"), *m.model, m.ops);
  MicroBatch mb = m.batch();
  const double a = algo->run(mb, false, false, 1.0).loss, b = algo->run(mb, false, false, 1.0).loss;
  BOOST_TEST(a == b);
  mb.noise = Philox{78, 3};
  BOOST_TEST(algo->run(mb, false, false, 1.0).loss != a);
}

BOOST_AUTO_TEST_CASE(bad_settings) {
  Tiny m(false);
  AlgoSettings s = settings("mdlm");
  s.mask_id = 11;
  BOOST_CHECK_THROW(make_algorithm(s, *m.model, m.ops), Error);
  BOOST_CHECK_THROW(make_algorithm(settings("flow"), *m.model, m.ops), Error);
  auto ar = make_algorithm(settings("ar"), *m.model, m.ops);  // AR on a non-causal model
  BOOST_CHECK_THROW(ar->run(m.batch(), false, false, 1.0), Error);
  m.ids[0] = 11;  // outside the vocabulary
  auto duo = make_algorithm(settings("duo_base"), *m.model, m.ops);
  BOOST_CHECK_THROW(duo->run(m.batch(), false, false, 1.0), Error);
}

BOOST_AUTO_TEST_SUITE_END()
