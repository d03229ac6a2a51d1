// Recorded op sequences on the CUDA backend (Ops::record / replay: CUDA graphs by stream capture), through the
// emulator in `make test` and on the GPU in `make test-cuda`: a replay runs the recorded ops again with their
// arguments; a sampler whose network forwards are replayed draws the same ids as one that launches every kernel; a
// recording is declined once a buffer it uses may have moved; a bad id inside a replay is still reported by its op;
// a host copy inside a recording is an error that leaves the backend as it was.
#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "error_util.h"
#include "jobs/sample_job.h"
#include "tiny_corpus.h"
#include "train/trainer.h"

using namespace duo;
using namespace duo::test;

BOOST_AUTO_TEST_SUITE(DUO_CUDA_SUITE)

// A replay runs the recorded ops again (here a linear layer, whose bf16 operands go through the scratch), until
// the scratch is reallocated or memory released: then the recording is stale and replay declines it.
BOOST_AUTO_TEST_CASE(a_replay_reruns_the_ops_until_a_buffer_may_have_moved) {
  CudaOps ops;
  DeviceBuffers buf(ops);
  Tensor x = buf.up(std::vector<float>(4 * 8, 0.5f), {4, 8}), W = buf.up(std::vector<float>(6 * 8, 0.25f), {6, 8});
  Tensor out = buf.zeros(DType::F32, {4, 6}), none;
  ops.linear(out, x, W, none);  // unrecorded first: it sizes the scratch
  ops.fill(out, 0.0);
  std::unique_ptr<Ops::Recording> g = ops.record([&] { ops.linear(out, x, W, none); });
  BOOST_REQUIRE(g != nullptr);
  BOOST_TEST(buf.down<float>(out) == std::vector<float>(24, 1.0f), "the recording's first run");
  ops.fill(out, 0.0);
  BOOST_TEST(ops.replay(*g));
  BOOST_TEST(buf.down<float>(out) == std::vector<float>(24, 1.0f), "a replay");
  BOOST_TEST(ops.graph_launches() == 2);

  Tensor big_x = buf.up(std::vector<float>(256 * 64, 1.0f), {256, 64});
  Tensor big_W = buf.up(std::vector<float>(128 * 64, 1.0f), {128, 64});
  Tensor big_out = buf.zeros(DType::F32, {256, 128});
  ops.linear(big_out, big_x, big_W, none);  // grows the scratch
  BOOST_TEST(!ops.replay(*g), "replayed a recording whose scratch was reallocated");
  g = ops.record([&] { ops.linear(out, x, W, none); });
  BOOST_REQUIRE(g != nullptr);
  BOOST_TEST(ops.replay(*g));
  ops.release(ops.alloc(64));
  BOOST_TEST(!ops.replay(*g), "replayed a recording after memory was released");
  BOOST_TEST(ops.graph_launches() == 4);

  ops.use_graphs(false);
  BOOST_TEST(ops.record([&] { ops.linear(out, x, W, none); }) == nullptr);
}

// The id checks inside a recording are booked again at each replay: a bad id the replayed kernel finds is reported
// at the next synchronisation, naming the op, as without recording.
BOOST_AUTO_TEST_CASE(a_bad_id_in_a_replay_is_reported_by_its_op) {
  CudaOps ops;
  DeviceBuffers buf(ops);
  const int64_t N = 16, V = 5, D = 4;
  std::vector<int32_t> ids(N);
  for (int64_t i = 0; i < N; ++i) ids[(size_t)i] = int32_t(i % V);
  Tensor gids = buf.up(ids, {N}), table = buf.up(std::vector<float>(V * D, 1.0f), {V, D});
  Tensor out = buf.zeros(DType::F32, {N, D});
  ops.embed_ids(out, gids, table);
  ops.sync();
  std::unique_ptr<Ops::Recording> g = ops.record([&] { ops.embed_ids(out, gids, table); });
  BOOST_REQUIRE(g != nullptr);
  BOOST_CHECK_NO_THROW(ops.sync());
  ids[9] = int32_t(V);
  ops.from_host(gids, ids.data());
  BOOST_REQUIRE(ops.replay(*g));
  BOOST_CHECK_EXCEPTION(ops.sync(), Error, [&](const Error& e) {
    const std::string m = e.what();
    return m.find("embed_ids") != std::string::npos &&
           m.find("token id " + std::to_string(V) + " at position 9") != std::string::npos;
  });
  ids[9] = 0;
  ops.from_host(gids, ids.data());
  BOOST_REQUIRE(ops.replay(*g));
  BOOST_CHECK_NO_THROW(ops.sync());
}

// Inside a recording nothing may copy to the host (nor wait, allocate or release): the call fails naming itself, the
// recorded ops never run, and the backend goes on as before.
BOOST_AUTO_TEST_CASE(a_host_copy_inside_a_recording_is_an_error) {
  CudaOps ops;
  DeviceBuffers buf(ops);
  Tensor t = buf.up(std::vector<float>{1, 2, 3}, {3});
  std::vector<float> host(3);
  const std::string m = testing::error_of([&] {
    ops.record([&] {
      ops.fill(t, 5.0);
      ops.to_host(host.data(), t);
    });
  });
  BOOST_TEST(m.find("to_host") != std::string::npos, m);
  BOOST_TEST(m.find("recorded op sequence") != std::string::npos, m);
  BOOST_TEST(buf.down<float>(t) == (std::vector<float>{1, 2, 3}), "the failed recording's fill ran");
  BOOST_TEST(testing::error_of([&] { ops.record([&] { ops.release(ops.alloc(16)); }); }).find("alloc") !=
             std::string::npos);
  std::unique_ptr<Ops::Recording> g = ops.record([&] { ops.fill(t, 7.0); });
  BOOST_REQUIRE(g != nullptr);
  BOOST_TEST(buf.down<float>(t) == std::vector<float>(3, 7.0f));
}

// A CUDA call inside the sequence that breaks the capture without an op noticing (here a raw wait whose error is
// dropped) leaves nothing half-run: the sequence runs again unrecorded, and graphs stay off for the run.
BOOST_AUTO_TEST_CASE(a_broken_capture_runs_the_ops_unrecorded_and_turns_graphs_off) {
  CudaOps ops;
  DeviceBuffers buf(ops);
  Tensor t = buf.up(std::vector<float>{1, 2, 3}, {3});
  int runs = 0;
  std::unique_ptr<Ops::Recording> g = ops.record([&] {
    ++runs;
    ops.fill(t, 6.0);
    cudaStreamSynchronize(static_cast<cudaStream_t>(ops.stream()));  // refused while capturing: the capture breaks
    cudaGetLastError();
  });
  BOOST_TEST(g == nullptr);
  BOOST_TEST(runs == 2, "the sequence ran " << runs << " times: recorded once, then unrecorded");
  BOOST_TEST(buf.down<float>(t) == std::vector<float>(3, 6.0f));
  BOOST_TEST(ops.record([&] { ops.fill(t, 8.0); }) == nullptr, "graphs are still on");
  BOOST_TEST(buf.down<float>(t) == std::vector<float>(3, 8.0f));
  BOOST_TEST(ops.graph_launches() == 0);
}

// Sampling from a trained checkpoint with the network's forwards recorded and replayed (the runner records the
// second forward of each batch's shapes) draws the same ids, bit for bit, as with every kernel launched.
BOOST_AUTO_TEST_CASE(sampling_with_replayed_forwards_draws_the_same_ids) {
  testing::TinyCorpus c({200, 3}, {30, 4});
  TrainConfig t = testing::tiny_train_config(c, "duo_base", "graphs", 2, 64);
  t.batch_size = 4; t.global_batch_size = 4; t.eval_batch_size = 4;
  CudaOps trainer_ops;
  Trainer(t, trainer_ops).run();
  SampleOptions o;
  o.checkpoint_path = t.resume_path;
  o.vocab_dir = c.vocab_dir();
  o.steps = 6;
  o.num_samples = 3;
  o.batch_size = 2;
  o.seed = 11;
  const SampleJob job(o);
  CudaOps launched, replayed;
  launched.use_graphs(false);
  const SampleResult a = job.run(launched, nullptr, nullptr), b = job.run(replayed, nullptr, nullptr);
  BOOST_TEST(a.ids == b.ids);
  BOOST_TEST(a.entropy == b.entropy);
  BOOST_TEST(launched.graph_launches() == 0);
  BOOST_TEST_MESSAGE("graph launches in " << o.num_samples << " samples of " << o.steps << " steps: "
                                          << replayed.graph_launches());
  BOOST_TEST(replayed.graph_launches() >= 2 * (o.steps - 2), "the forwards were not replayed");
}

BOOST_AUTO_TEST_SUITE_END()
