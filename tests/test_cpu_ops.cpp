// Forward values of the CPU backend against hand values and naive re-computations, float32-vs-float64
// agreement of every forward, the optimiser ops, and errors on bad dtypes and shapes.
#include <boost/test/unit_test.hpp>
#include <omp.h>
#include <cmath>
#include "backend/cpu/cpu_ops.h"
#include "core/error.h"
#include "cpu_test_util.h"

using namespace duo;
using namespace duo::test;

namespace {

constexpr int64_t B = 2, L = 5, D = 6, V = 7;
constexpr int64_t H = 2, HD = 6, DA = H * HD;  // attention: 2 heads of head_dim 6

// Naive softmax attention of one (batch, head), straight from the definition, for comparison.
// qkv: (B, L, 3*DA) in [q|k|v][head][dim] order. Returns out (B, L, DA) and lse (B, H, L).
void naive_attention(const std::vector<double>& qkv, bool causal, std::vector<double>& out, std::vector<double>& lse) {
  out.assign(B * L * DA, 0.0);
  lse.assign(B * H * L, 0.0);
  auto at = [&](int64_t b, int64_t l, int64_t part, int64_t h, int64_t d) {
    return qkv[((b * L + l) * 3 + part) * DA + h * HD + d];
  };
  enum { kQ, kK, kV };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < L; ++i) {
        std::vector<double> w(L, 0.0);
        double sum = 0;
        for (int64_t j = 0; j < L; ++j) {
          if (causal && j > i) continue;
          double s = 0;
          for (int64_t d = 0; d < HD; ++d) s += at(b, i, kQ, h, d) * at(b, j, kK, h, d);
          w[j] = std::exp(s / std::sqrt((double)HD));
          sum += w[j];
        }
        lse[(b * H + h) * L + i] = std::log(sum);
        for (int64_t j = 0; j < L; ++j)
          for (int64_t d = 0; d < HD; ++d) out[(b * L + i) * DA + h * HD + d] += w[j] / sum * at(b, j, kV, h, d);
      }
}

// Naive log-softmax of rows of width V.
std::vector<double> naive_log_softmax(const std::vector<double>& x, int64_t width) {
  std::vector<double> y(x.size());
  for (size_t r = 0; r < x.size() / width; ++r) {
    double sum = 0;
    for (int64_t j = 0; j < width; ++j) sum += std::exp(x[r * width + j]);
    for (int64_t j = 0; j < width; ++j) y[r * width + j] = std::log(std::exp(x[r * width + j]) / sum);
  }
  return y;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cpu_ops)

BOOST_AUTO_TEST_CASE(identity) {
  CpuOps ops;
  BOOST_TEST(std::string(ops.name()) == "cpu");
  BOOST_TEST((ops.device() == Device::CPU));
}

BOOST_AUTO_TEST_CASE(memory) {
  CpuOps ops;
  const int64_t n = 11;
  void* p = ops.alloc(n * sizeof(float));
  Tensor t(p, DType::F32, {n});
  std::vector<float> host(n, 1.0f);
  ops.to_host(host.data(), t);
  for (float x : host) BOOST_TEST(x == 0.0f);  // zero-filled
  ops.fill(t, 2.5);
  ops.to_host(host.data(), t);
  for (float x : host) BOOST_TEST(x == 2.5f);
  std::vector<float> src(n);
  for (int64_t i = 0; i < n; ++i) src[i] = (float)i;
  ops.from_host(t, src.data());
  std::vector<float> copied(n, -1.0f);
  Tensor c = tv(copied, {n});
  ops.copy(c, t);
  BOOST_TEST(copied == src, boost::test_tools::per_element());
  ops.release(p);
}

// out[b] = [cos(sigma f_0), cos(sigma f_1), sin(sigma f_0), sin(sigma f_1)] with F = 4: f_0 = 1, f_1 = 0.01.
BOOST_AUTO_TEST_CASE(timestep_embedding_values) {
  CpuOps ops;
  std::vector<double> sigma = {0.0, 2.0}, out(2 * 4);
  Tensor sigma_t = tv(sigma, {2}), out_t = tv(out, {2, 4});
  ops.timestep_embedding(out_t, sigma_t);
  const std::vector<double> expect = {1, 1, 0, 0, std::cos(2.0), std::cos(0.02), std::sin(2.0), std::sin(0.02)};
  BOOST_TEST(max_abs_diff(out, expect) <= 1e-15);
}

// LayerNorm (biased variance, eps 1e-5) then (xhat * w) * (1 + scale[b]) + shift[b], computed naively.
BOOST_AUTO_TEST_CASE(layernorm_modulate_against_naive) {
  CpuOps ops;
  const int64_t N = B * L;
  std::vector<double> x = random_vec(N * D, 36, -3.0, 3.0), w = random_vec(D, 37), ada = random_vec(B * 2 * D, 38);
  std::vector<double> y(N * D), mean(N), rstd(N);
  Tensor x_t = tv(x, {B, L, D}), w_t = tv(w, {D}), ada_t = tv(ada, {B, 2 * D}), y_t = tv(y, {B, L, D});
  Tensor mean_t = tv(mean, {N}), rstd_t = tv(rstd, {N});
  for (bool modulate : {true, false}) {
    BOOST_TEST_CONTEXT("modulate=" << modulate) {
      Tensor shift = modulate ? ada_t.cols(0, D) : Tensor(), scale = modulate ? ada_t.cols(D, D) : Tensor();
      ops.layernorm_modulate(y_t, mean_t, rstd_t, x_t, w_t, shift, scale);
      std::vector<double> expect(N * D);
      for (int64_t n = 0; n < N; ++n) {
        double mu = 0, var = 0;
        for (int64_t d = 0; d < D; ++d) mu += x[n * D + d] / D;
        for (int64_t d = 0; d < D; ++d) var += (x[n * D + d] - mu) * (x[n * D + d] - mu) / D;
        BOOST_TEST(std::abs(mean[n] - mu) <= 1e-15);
        BOOST_TEST(std::abs(rstd[n] - 1 / std::sqrt(var + 1e-5)) <= 1e-13);
        const int64_t b = n / L;
        for (int64_t d = 0; d < D; ++d) {
          const double sh = modulate ? ada[b * 2 * D + d] : 0.0, sc = modulate ? ada[b * 2 * D + D + d] : 0.0;
          expect[n * D + d] = (x[n * D + d] - mu) / std::sqrt(var + 1e-5) * w[d] * (1 + sc) + sh;
        }
      }
      BOOST_TEST(max_abs_diff(y, expect) <= 1e-13);
    }
  }
}

BOOST_AUTO_TEST_CASE(activation_values) {
  CpuOps ops;
  std::vector<double> x = {1.0, -1.0, 2.5, -2.0}, y(4);
  Tensor x_t = tv(x, {4}), y_t = tv(y, {4});
  ops.gelu(y_t, x_t);
  BOOST_TEST(std::abs(y[0] - 0.8411919906082768) <= 1e-15);
  BOOST_TEST(std::abs(y[1] - -0.15880800939172324) <= 1e-15);
  BOOST_TEST(std::abs(y[2] - 2.484915733910001) <= 1e-15);
  ops.silu(y_t, x_t);
  BOOST_TEST(std::abs(y[0] - 0.7310585786300049) <= 1e-15);
  BOOST_TEST(std::abs(y[3] - -0.2384058440442351) <= 1e-15);
}

// One head of head_dim 4 at positions 0 and 1: position 0 is the identity; at position 1 the pairs (0, 2)
// and (1, 3) turn by 1 and 10000^(-1/2) = 0.01 radians. v is copied.
BOOST_AUTO_TEST_CASE(rotary_values) {
  CpuOps ops;
  const int64_t hd = 4, W = 3 * hd;
  std::vector<double> x(2 * W), y(2 * W);
  for (int64_t i = 0; i < 2 * W; ++i) x[i] = (double)(i % W + 1);  // q = 1..4, k = 5..8, v = 9..12
  Tensor x_t = tv(x, {1, 2, W}), y_t = tv(y, {1, 2, W});
  ops.rotary(y_t, x_t, 1);
  for (int64_t i = 0; i < W; ++i) BOOST_TEST(y[i] == x[i]);
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  const std::vector<double> q = {y[W + 0], y[W + 1], y[W + 2], y[W + 3]};
  const std::vector<double> q_expect = {1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2};
  BOOST_TEST(max_abs_diff(q, q_expect) <= 1e-15);
  const std::vector<double> k = {y[W + 4], y[W + 5], y[W + 6], y[W + 7]};
  const std::vector<double> k_expect = {5 * c1 - 7 * s1, 6 * c2 - 8 * s2, 7 * c1 + 5 * s1, 8 * c2 + 6 * s2};
  BOOST_TEST(max_abs_diff(k, k_expect) <= 1e-15);
  for (int64_t i = 2 * hd; i < W; ++i) BOOST_TEST(y[W + i] == x[W + i]);
}

BOOST_AUTO_TEST_CASE(attention_against_brute_force) {
  CpuOps ops;
  std::vector<double> qkv = random_vec(B * L * 3 * DA, 31, -2.0, 2.0), out(B * L * DA), lse(B * H * L);
  Tensor qkv_t = tv(qkv, {B, L, 3 * DA}), out_t = tv(out, {B, L, DA}), lse_t = tv(lse, {B, H, L});
  for (bool causal : {false, true}) {
    BOOST_TEST_CONTEXT("causal=" << causal) {
      std::vector<double> out_ref, lse_ref;
      naive_attention(qkv, causal, out_ref, lse_ref);
      ops.attention(out_t, lse_t, qkv_t, H, causal);
      BOOST_TEST(max_abs_diff(out, out_ref) <= 1e-13);
      BOOST_TEST(max_abs_diff(lse, lse_ref) <= 1e-13);
    }
  }
  // Causal: the first token sees only itself, so its output is its own v.
  ops.attention(out_t, lse_t, qkv_t, H, true);
  for (int64_t d = 0; d < DA; ++d) BOOST_TEST(out[d] == qkv[2 * DA + d]);
}

BOOST_AUTO_TEST_CASE(log_softmax_and_cross_entropy) {
  CpuOps ops;
  const int64_t N = B * L;
  std::vector<double> x = random_vec(N * V, 32, -4.0, 4.0), y(N * V), losses(N), dx(N * V);
  Tensor x_t = tv(x, {N, V}), y_t = tv(y, {N, V}), losses_t = tv(losses, {N}), dx_t = tv(dx, {N, V});
  ops.log_softmax(y_t, x_t);
  const std::vector<double> ref = naive_log_softmax(x, V);
  BOOST_TEST(max_abs_diff(y, ref) <= 1e-14);

  std::vector<int32_t> targets(N);
  for (int64_t n = 0; n < N; ++n) targets[n] = (int32_t)((7 * n + 3) % V);
  Tensor targets_t = tv(targets, {N});
  ops.cross_entropy(losses_t, dx_t, x_t, targets_t, 1.0);
  for (int64_t n = 0; n < N; ++n) {
    BOOST_TEST(std::abs(losses[n] + ref[n * V + targets[n]]) <= 1e-14);
    double row_sum = 0;  // softmax - onehot sums to zero
    for (int64_t j = 0; j < V; ++j) row_sum += dx[n * V + j];
    BOOST_TEST(std::abs(row_sum) <= 1e-14);
  }

  // Huge logits stay finite (the maximum is subtracted first).
  std::vector<double> big = {1000.0, 999.0, -1000.0}, big_out(3);
  Tensor big_t = tv(big, {1, 3}), big_out_t = tv(big_out, {1, 3});
  ops.log_softmax(big_out_t, big_t);
  BOOST_TEST(std::abs(big_out[0] - -std::log1p(std::exp(-1.0))) <= 1e-12);
  BOOST_TEST(std::isfinite(big_out[2]));
}

// The fused vocabulary head is the output layer, the loss head and the output layer's backward, whatever the chunk
// rows: losses, dy, dW and dbias against the three ops on the whole batch (float64; only the order in which dW and
// dbias add the chunks differs).
BOOST_AUTO_TEST_CASE(linear_loss_head_is_linear_then_loss_head) {
  CpuOps ops;
  const int64_t N = 11, Dm = 5, Vh = 9;
  std::vector<double> y = random_vec(N * Dm, 41), W = random_vec(Vh * Dm, 42), bias = random_vec(Vh, 43);
  std::vector<int32_t> x(N), z(N);
  std::vector<double> alpha(N), dalpha(N, -1.0), weight(N);
  for (int64_t n = 0; n < N; ++n) {
    x[n] = int32_t((3 * n + 1) % Vh);
    z[n] = int32_t((5 * n + 2) % Vh);
    alpha[n] = 0.1 + 0.07 * double(n);
    weight[n] = 0.5 + 0.01 * double(n);
  }
  Tensor y_t = tv(y, {N, Dm}), W_t = tv(W, {Vh, Dm}), b_t = tv(bias, {Vh}), x_t = tv(x, {N}), z_t = tv(z, {N});
  Tensor a_t = tv(alpha, {N}), da_t = tv(dalpha, {N}), w_t = tv(weight, {N});
  LossHeadArgs a;
  a.kind = LossKind::DUO;
  // Reference: the three ops.
  std::vector<double> logits(N * Vh), dlogits(N * Vh), ref_loss(N), ref_dy(N * Dm), ref_dW(Vh * Dm, 0.25),
      ref_db(Vh, 0.5);
  Tensor l_t = tv(logits, {N, Vh}), dl_t = tv(dlogits, {N, Vh}), rl_t = tv(ref_loss, {N}), rdy_t = tv(ref_dy, {N, Dm});
  Tensor rdW_t = tv(ref_dW, {Vh, Dm}), rdb_t = tv(ref_db, {Vh});
  ops.linear(l_t, y_t, W_t, b_t);
  ops.loss_head(a, rl_t, dl_t, l_t, x_t, z_t, a_t, da_t, w_t);
  ops.linear_backward(rdy_t, rdW_t, rdb_t, dl_t, y_t, W_t, false);
  for (int64_t chunk : {int64_t(0), int64_t(1), int64_t(4), N}) {
    BOOST_TEST_CONTEXT("chunk rows " << chunk) {
      std::vector<double> loss(N), dy(N * Dm), dW(Vh * Dm, 0.25), db(Vh, 0.5), fwd_loss(N);
      Tensor loss_t = tv(loss, {N}), dy_t = tv(dy, {N, Dm}), dW_t = tv(dW, {Vh, Dm}), db_t = tv(db, {Vh});
      Tensor fl_t = tv(fwd_loss, {N}), none;
      ops.set_vocab_chunk_rows(chunk);
      ops.linear_loss_head(a, loss_t, dy_t, dW_t, db_t, y_t, W_t, b_t, x_t, z_t, a_t, da_t, w_t);
      ops.linear_loss_head(a, fl_t, none, none, none, y_t, W_t, b_t, x_t, z_t, a_t, da_t, w_t);
      ops.set_vocab_chunk_rows(0);
      BOOST_TEST(max_abs_diff(loss, ref_loss) <= 1e-14);
      BOOST_TEST(max_abs_diff(fwd_loss, ref_loss) <= 1e-14);
      BOOST_TEST(max_abs_diff(dy, ref_dy) <= 1e-14);
      BOOST_TEST(max_abs_diff(dW, ref_dW) <= 1e-13);
      BOOST_TEST(max_abs_diff(db, ref_db) <= 1e-13);
    }
  }
  // A bias gradient without a bias (or the reverse) is refused.
  std::vector<double> dy(N * Dm), dW(Vh * Dm), loss(N);
  Tensor dy_t = tv(dy, {N, Dm}), dW_t = tv(dW, {Vh, Dm}), loss_t = tv(loss, {N}), none;
  BOOST_CHECK_THROW(ops.linear_loss_head(a, loss_t, dy_t, dW_t, none, y_t, W_t, b_t, x_t, z_t, a_t, da_t, w_t), Error);
}

BOOST_AUTO_TEST_CASE(embeddings_against_naive) {
  CpuOps ops;
  const int64_t N = B * L, K = 3;
  std::vector<double> table = random_vec(V * D, 33), out(N * D);
  Tensor table_t = tv(table, {V, D}), out_t = tv(out, {B, L, D});

  std::vector<int32_t> ids(N);
  for (int64_t n = 0; n < N; ++n) ids[n] = (int32_t)((3 * n + 1) % V);
  Tensor ids_t = tv(ids, {B, L});
  ops.embed_ids(out_t, ids_t, table_t);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d) BOOST_TEST(out[n * D + d] == table[ids[n] * D + d]);

  // soft: out = softmax(logits) @ table
  std::vector<double> logits = random_vec(N * V, 34, -3.0, 3.0), probs(N * V);
  Tensor logits_t = tv(logits, {B, L, V}), probs_t = tv(probs, {B, L, V});
  ops.embed_soft(out_t, probs_t, logits_t, table_t);
  const std::vector<double> logp = naive_log_softmax(logits, V);
  std::vector<double> expect(N * D, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t v = 0; v < V; ++v) {
      BOOST_TEST(std::abs(probs[n * V + v] - std::exp(logp[n * V + v])) <= 1e-15);
      for (int64_t d = 0; d < D; ++d) expect[n * D + d] += std::exp(logp[n * V + v]) * table[v * D + d];
    }
  BOOST_TEST(max_abs_diff(out, expect) <= 1e-14);

  // bag: out[n] = sum_j w[n,j] table[ids[n,j]]
  std::vector<int32_t> bag_ids(N * K);
  for (int64_t i = 0; i < N * K; ++i) bag_ids[i] = (int32_t)((5 * i + 2) % V);
  std::vector<double> weights = random_vec(N * K, 35, 0.0, 1.0);
  Tensor bag_ids_t = tv(bag_ids, {B, L, K}), weights_t = tv(weights, {B, L, K});
  ops.embed_bag(out_t, bag_ids_t, weights_t, table_t);
  std::fill(expect.begin(), expect.end(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j)
      for (int64_t d = 0; d < D; ++d) expect[n * D + d] += weights[n * K + j] * table[bag_ids[n * K + j] * D + d];
  BOOST_TEST(max_abs_diff(out, expect) <= 1e-15);
}

// branch = 1, h = 0, no gate: h ends up 0 (dropped) or 1/(1-p) (kept), and element i is kept exactly when
// rng.uniform(i) > p.
BOOST_AUTO_TEST_CASE(dropout_statistics_and_reproducibility) {
  CpuOps ops;
  const int64_t b = 2, l = 256, d = 96, n = b * l * d;  // large enough to run on several threads
  const float p = 0.25f;
  const Philox rng{7, stream_id(3, 1)};
  std::vector<float> ones(n, 1.0f), h(n, 0.0f);
  Tensor ones_t = tv(ones, {b, l, d}), h_t = tv(h, {b, l, d}), no_gate;
  ops.gated_residual(h_t, ones_t, no_gate, p, rng);
  int64_t kept = 0;
  bool mask_matches = true, values_ok = true;
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = rng.uniform(i) > p;
    kept += keep;
    mask_matches &= keep == (h[i] != 0.0f);
    values_ok &= h[i] == 0.0f || std::abs(h[i] - 1.0f / (1.0f - p)) <= 1e-6f;
  }
  BOOST_TEST(mask_matches);
  BOOST_TEST(values_ok);
  const double keep_rate = (double)kept / (double)n;  // binomial: sd = sqrt(p(1-p)/n) ~ 0.0035
  BOOST_TEST(std::abs(keep_rate - (1.0 - p)) <= 0.015);

  std::vector<float> again(n, 0.0f);
  Tensor again_t = tv(again, {b, l, d});
  ops.gated_residual(again_t, ones_t, no_gate, p, rng);
  BOOST_TEST(max_abs_diff(to_double(h), to_double(again)) == 0.0);  // same stream, same mask

  std::vector<float> other(n, 0.0f);
  Tensor other_t = tv(other, {b, l, d});
  ops.gated_residual(other_t, ones_t, no_gate, p, Philox{7, stream_id(3, 2)});
  BOOST_TEST(max_abs_diff(to_double(h), to_double(other)) > 0.0);  // another stream, another mask
}

// Every forward in float32 and float64 from the same inputs.
BOOST_AUTO_TEST_CASE(float32_matches_float64) {
  CpuOps ops;
  const int64_t N = B * L, K = 3;
  const std::vector<double> x = random_vec(N * D, 41, -2.0, 2.0), W = random_vec(V * D, 42), bias = random_vec(V, 43);
  const std::vector<double> ada = random_vec(B * 6 * D, 44), w = random_vec(D, 45, 0.5, 1.5);
  const std::vector<double> qkv = random_vec(B * L * 3 * DA, 46, -2.0, 2.0), logits = random_vec(N * V, 47, -4.0, 4.0);
  const std::vector<double> sigma = {0.001, 3.7}, weights = random_vec(N * K, 48);
  std::vector<int32_t> ids(N * K);
  for (int64_t i = 0; i < N * K; ++i) ids[i] = (int32_t)((5 * i + 2) % V);

  compare_precisions("linear", [&]<class T>() {
    auto x_ = cast_vec<T>(x), W_ = cast_vec<T>(W), b_ = cast_vec<T>(bias);
    std::vector<T> y(N * V);
    Tensor y_t = tv(y, {N, V});
    ops.linear(y_t, tv(x_, {N, D}), tv(W_, {V, D}), tv(b_, {V}));
    return to_double(y);
  });
  for (const char* act : {"silu", "gelu"})
    compare_precisions(act, [&]<class T>() {
      auto x_ = cast_vec<T>(x);
      std::vector<T> y(N * D);
      Tensor y_t = tv(y, {N, D});
      std::string(act) == "silu" ? ops.silu(y_t, tv(x_, {N, D})) : ops.gelu(y_t, tv(x_, {N, D}));
      return to_double(y);
    });
  compare_precisions("layernorm_modulate", [&]<class T>() {
    auto x_ = cast_vec<T>(x), w_ = cast_vec<T>(w), ada_ = cast_vec<T>(ada);
    std::vector<T> y(N * D), mean(N), rstd(N);
    Tensor y_t = tv(y, {B, L, D}), mean_t = tv(mean, {N}), rstd_t = tv(rstd, {N}), ada_t = tv(ada_, {B, 6 * D});
    ops.layernorm_modulate(y_t, mean_t, rstd_t, tv(x_, {B, L, D}), tv(w_, {D}), ada_t.cols(0, D), ada_t.cols(D, D));
    return to_double(y);
  });
  compare_precisions("rotary + attention", [&]<class T>() {
    auto qkv_ = cast_vec<T>(qkv);
    std::vector<T> rot(qkv.size()), out(N * DA), lse(B * H * L);
    Tensor rot_t = tv(rot, {B, L, 3 * DA}), out_t = tv(out, {B, L, DA}), lse_t = tv(lse, {B, H, L});
    ops.rotary(rot_t, tv(qkv_, {B, L, 3 * DA}), H);
    ops.attention(out_t, lse_t, rot_t, H, true);
    std::vector<double> all = to_double(out), l = to_double(lse);
    all.insert(all.end(), l.begin(), l.end());
    return all;
  });
  compare_precisions("gated_residual", [&]<class T>() {
    auto h = cast_vec<T>(x), br = cast_vec<T>(random_vec(N * D, 49)), ada_ = cast_vec<T>(ada);
    Tensor h_t = tv(h, {B, L, D}), ada_t = tv(ada_, {B, 6 * D});
    ops.gated_residual(h_t, tv(br, {B, L, D}), ada_t.cols(2 * D, D), 0.1f, Philox{5, 6});
    return to_double(h);
  });
  compare_precisions("log_softmax, cross_entropy", [&]<class T>() {
    auto x_ = cast_vec<T>(logits);
    std::vector<T> y(N * V), losses(N), dx(N * V);
    std::vector<int32_t> targets(ids.begin(), ids.begin() + N);
    Tensor y_t = tv(y, {N, V}), losses_t = tv(losses, {N}), dx_t = tv(dx, {N, V});
    ops.log_softmax(y_t, tv(x_, {N, V}));
    ops.cross_entropy(losses_t, dx_t, tv(x_, {N, V}), tv(targets, {N}), 0.5);
    std::vector<double> all = to_double(y), l = to_double(losses), g = to_double(dx);
    all.insert(all.end(), l.begin(), l.end());
    all.insert(all.end(), g.begin(), g.end());
    return all;
  });
  compare_precisions("embed_ids, embed_soft, embed_bag", [&]<class T>() {
    auto table = cast_vec<T>(W), lg = cast_vec<T>(logits), wt = cast_vec<T>(weights);
    std::vector<T> a(N * D), s(N * D), g(N * D), probs(N * V);
    std::vector<int32_t> single(ids.begin(), ids.begin() + N);
    Tensor a_t = tv(a, {N, D}), s_t = tv(s, {N, D}), g_t = tv(g, {N, D}), probs_t = tv(probs, {N, V});
    Tensor table_t = tv(table, {V, D});
    ops.embed_ids(a_t, tv(single, {N}), table_t);
    ops.embed_soft(s_t, probs_t, tv(lg, {N, V}), table_t);
    ops.embed_bag(g_t, tv(ids, {N, K}), tv(wt, {N, K}), table_t);
    std::vector<double> all = to_double(a), s2 = to_double(s), g2 = to_double(g);
    all.insert(all.end(), s2.begin(), s2.end());
    all.insert(all.end(), g2.begin(), g2.end());
    return all;
  });
  compare_precisions("timestep_embedding", [&]<class T>() {
    auto sg = cast_vec<T>(sigma);
    std::vector<T> out(2 * 16);
    Tensor out_t = tv(out, {2, 16});
    ops.timestep_embedding(out_t, tv(sg, {2}));
    return to_double(out);
  });
}

// Two AdamW steps on two parameters with weight decay, against the PyTorch formulas evaluated by hand
// (m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t), p -= lr m_hat / (sqrt(v_hat) + eps), after p -= lr wd p).
BOOST_AUTO_TEST_CASE(adamw_two_steps) {
  CpuOps ops;
  std::vector<double> p = {1.0, -2.0}, g(2), m(2, 0.0), v(2, 0.0);
  Tensor p_t = tv(p, {2}), g_t = tv(g, {2}), m_t = tv(m, {2}), v_t = tv(v, {2});
  AdamWArgs a;
  a.lr = 0.1; a.beta1 = 0.9; a.beta2 = 0.999; a.eps = 1e-8; a.weight_decay = 0.01;

  g = {0.5, -1.0};
  a.step = 1;
  ops.adamw(p_t, g_t, m_t, v_t, a);
  BOOST_TEST(max_abs_diff(p, {0.899000002, -1.898000001}) <= 1e-12);
  BOOST_TEST(max_abs_diff(m, {0.05, -0.1}) <= 1e-15);
  BOOST_TEST(max_abs_diff(v, {0.00025, 0.001}) <= 1e-15);

  g = {-0.25, 3.0};
  a.step = 2;
  ops.adamw(p_t, g_t, m_t, v_t, a);
  BOOST_TEST(max_abs_diff(p, {0.8714672987058463, -1.945520984107744}) <= 1e-12);
  BOOST_TEST(max_abs_diff(m, {0.02, 0.21}) <= 1e-15);
  BOOST_TEST(max_abs_diff(v, {0.00031225, 0.009999}) <= 1e-15);
}

BOOST_AUTO_TEST_CASE(ema_scale_sum_squares) {
  CpuOps ops;
  std::vector<double> shadow = {1.0, 0.0}, params = {3.0, -1.0};
  Tensor shadow_t = tv(shadow, {2}), params_t = tv(params, {2});
  ops.ema_update(shadow_t, params_t, 0.9);  // shadow - 0.1 (shadow - params)
  BOOST_TEST(max_abs_diff(shadow, {1.2, -0.1}) <= 1e-15);

  ops.scale(params_t, -0.5);
  BOOST_TEST(max_abs_diff(params, {-1.5, 0.5}) <= 0.0);

  // sum of (i/1000)^2 over i < n = n(n-1)(2n-1)/6e6, over many fixed chunks and large enough to use threads
  const int64_t n = 100003;
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = (float)i / 1000.0f;
  Tensor x_t = tv(x, {n});
  const double exact = (double)n * (n - 1) * (2 * n - 1) / 6e6;
  const double two_threads = ops.sum_squares(x_t);
  BOOST_TEST(std::abs(two_threads - exact) / exact <= 1e-7);  // x[i] are float roundings of i/1000
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one_thread = ops.sum_squares(x_t);
  omp_set_num_threads(saved);
  BOOST_TEST(one_thread == two_threads);  // bitwise: the chunking does not depend on the thread count
}

BOOST_AUTO_TEST_CASE(bad_dtypes_and_shapes) {
  CpuOps ops;
  std::vector<int32_t> i6(6);
  std::vector<double> d6(6), d12(12), d7(7);
  std::vector<float> f6(6);
  Tensor none;
  // unsupported dtype
  Tensor ints = tv(i6, {2, 3});
  BOOST_CHECK_THROW(ops.gelu(ints, ints), duo::Error);
  Tensor bf16(d6.data(), DType::BF16, {2, 3});
  BOOST_CHECK_THROW(ops.silu(bf16, bf16), duo::Error);
  // mixed dtypes
  Tensor a = tv(d6, {2, 3}), f = tv(f6, {2, 3});
  BOOST_CHECK_THROW(ops.gelu(a, f), duo::Error);
  // linear: in has 3 features, W expects 4
  Tensor W = tv(d12, {3, 4}), y = tv(d6, {2, 3});
  BOOST_CHECK_THROW(ops.linear(y, a, W, none), duo::Error);
  // cross_entropy: target outside the vocabulary
  std::vector<int32_t> targets = {0, 3};
  Tensor losses = tv(d7, {7}).rows(0, 2), t_t = tv(targets, {2});
  BOOST_CHECK_THROW(ops.cross_entropy(losses, none, a, t_t, 1.0), duo::Error);
  // attention: 3D = 6 does not split into 4 heads
  Tensor qkv = tv(d6, {1, 1, 6}), out = tv(d12, {1, 6, 2});
  BOOST_CHECK_THROW(ops.attention(out, a, qkv, 4, false), duo::Error);
  // AdamW with step 0
  AdamWArgs args;
  args.step = 0;
  BOOST_CHECK_THROW(ops.adamw(a, a, a, a, args), duo::Error);
  // the message names the op and the dtype
  std::string message;
  try {
    ops.gelu(ints, ints);
  } catch (const duo::Error& e) {
    message = e.what();
  }
  BOOST_TEST(message.find("gelu") != std::string::npos);
  BOOST_TEST(message.find("I32") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
