// safetensors reader/writer and the atomic file helper: bit-exact round trips, one error per kind of damage,
// and "a failed write never replaces the old file".
#include <boost/test/unit_test.hpp>
#include <sys/stat.h>
#include <cmath>
#include <cstring>
#include <filesystem>
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io_test_util.h"

using namespace duo;
using duo::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// A file made by hand: 8-byte length + header text + data bytes.
std::string raw_file(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = (char)((uint64_t)header.size() >> (8 * i));
  return out + header + data;
}

// The file must be rejected with a message naming the file and containing `expected`.
void expect_rejected(const std::string& bytes, const std::string& expected) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  duo::testing::write_bytes(path, bytes);
  try {
    SafeTensorsFile::open(path);
    BOOST_ERROR("accepted a bad file; expected an error containing: " << expected);
  } catch (const Error& e) {
    const std::string msg = e.what();
    BOOST_TEST_INFO("message: " << msg);
    BOOST_TEST(msg.find(expected) != std::string::npos);
    BOOST_TEST(msg.find(path) != std::string::npos);
    BOOST_TEST(!e.hint().empty());
  }
}

const std::string k8(8, '\x01');  // 8 bytes of data: two F32 values

}  // namespace

BOOST_AUTO_TEST_SUITE(safetensors)

BOOST_AUTO_TEST_CASE(round_trip_is_bit_exact) {
  TempDir dir;
  const std::string path = dir.file("rt.safetensors");
  // Values chosen to catch any conversion on the way: NaN with a payload, -0, a subnormal, extremes.
  uint32_t fbits[6] = {0x7fc12345u, 0x80000000u, 0x00000001u, 0x7f7fffffu, 0x3f800000u, 0xff800000u};
  double d[3] = {1.0 / 3.0, -1e300, 5e-324};
  int32_t ids[2][3] = {{0, -1, 2147483647}, {7, 8, 9}};
  uint16_t bf[4] = {0x3f80, 0xc000, 0x7f80, 0x0001};
  uint8_t bytes[5] = {0, 1, 2, 254, 255};
  int64_t step = 123456789012345;
  const std::vector<NamedTensor> in = {
      {"f32", DType::F32, {2, 3}, fbits}, {"f64", DType::F64, {3}, d},   {"ids", DType::I32, {2, 3}, ids},
      {"bf16", DType::BF16, {4}, bf},     {"u8", DType::U8, {5}, bytes}, {"scalar", DType::I64, {}, &step},
      {"empty", DType::F32, {0, 4}, nullptr}};
  const std::map<std::string, std::string> meta = {{"config", "{\"a\": 1}"}, {"note", "héllo\n\"quoted\""}};
  write_safetensors(path, in, meta);

  SafeTensorsFile f = SafeTensorsFile::open(path);
  BOOST_TEST(f.metadata() == meta);
  BOOST_REQUIRE(f.tensors().size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const StTensor& t = f.tensors()[i];  // file order = the order written
    BOOST_TEST(t.name == in[i].name);
    BOOST_TEST((t.dtype == in[i].dtype));
    BOOST_TEST(t.shape == in[i].shape);
    if (t.nbytes) BOOST_TEST(std::memcmp(t.data, in[i].data, t.nbytes) == 0);
  }
  // The header is padded, so the data area starts 8-byte aligned (tensors are usable in place).
  BOOST_TEST(reinterpret_cast<uintptr_t>(f.tensors()[0].data) % 8 == 0u);
  BOOST_TEST(f.get("ids").view().shape_str() == "(2, 3)");
  BOOST_TEST(f.get("scalar").view().numel() == 1);
  // named() takes a contiguous Tensor view as it is.
  std::vector<float> w = {1, 2, 3, 4, 5, 6};
  const NamedTensor nt = named("w", Tensor(w.data(), DType::F32, {3, 2}));
  BOOST_TEST(nt.shape == std::vector<int64_t>({3, 2}));
  BOOST_TEST((nt.dtype == DType::F32 && nt.data == w.data()));
  // Writing what was read gives the same bytes again.
  std::vector<NamedTensor> again;
  for (const StTensor& t : f.tensors()) again.push_back({t.name, t.dtype, t.shape, t.data});
  write_safetensors(dir.file("rt2.safetensors"), again, f.metadata());
  BOOST_TEST(duo::testing::read_bytes(path) == duo::testing::read_bytes(dir.file("rt2.safetensors")));
}

BOOST_AUTO_TEST_CASE(parse_accepts_an_unaligned_header) {
  // Other writers need not pad the header to 8 bytes: the data is still read correctly (and aligned).
  const float v[2] = {1.5f, -2.25f};
  std::string data(reinterpret_cast<const char*>(v), 8);
  SafeTensorsFile f = SafeTensorsFile::parse(
      "mem", raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data));
  BOOST_TEST(f.get("x").view().ptr<float>()[1] == -2.25f);
}

// A FIFO given as a checkpoint (e.g. --eval.checkpoint_path) is refused instead of blocking forever (issue 17).
BOOST_AUTO_TEST_CASE(a_fifo_is_refused_not_waited_on) {
  TempDir dir;
  BOOST_REQUIRE(::mkfifo(dir.file("pipe.safetensors").c_str(), 0600) == 0);
  try {
    duo::SafeTensorsFile::open(dir.file("pipe.safetensors"));
    BOOST_ERROR("opened a FIFO");
  } catch (const duo::Error& e) {
    const std::string msg = e.what();
    BOOST_TEST(msg.find("pipe.safetensors") != std::string::npos);
    BOOST_TEST(msg.find("is a FIFO (named pipe), not a regular file") != std::string::npos, msg);
  }
}

BOOST_AUTO_TEST_CASE(file_shorter_than_the_length_field) {
  expect_rejected(std::string("\x10\x00\x00", 3), "truncated: 3 bytes");
}

BOOST_AUTO_TEST_CASE(header_length_past_end_of_file) {
  std::string f = raw_file("{}", "");
  f[0] = 100;
  expect_rejected(f, "header length 100 reaches past the end");
}

BOOST_AUTO_TEST_CASE(truncated_data) {
  // A valid file cut short: the last tensor's offsets now reach past the data area.
  TempDir dir;
  float v[4] = {1, 2, 3, 4};
  write_safetensors(dir.file("ok.safetensors"), {{"a", DType::F32, {2}, v}, {"b", DType::F32, {2}, v + 2}});
  std::string bytes = duo::testing::read_bytes(dir.file("ok.safetensors"));
  expect_rejected(bytes.substr(0, bytes.size() - 3), "tensor 'b': data_offsets [8, 16] reach past the end");
}

BOOST_AUTO_TEST_CASE(bad_json) {
  expect_rejected(raw_file(R"({"x": {"dtype": "F32", )", ""), "not valid JSON");
  expect_rejected(raw_file("[1, 2]", ""), "not a JSON object");
  // Found by the fuzzer (tests/fuzz/safetensors.cpp): a number beyond double's range is the JSON library's
  // out_of_range, not a parse_error; it escaped as a bare library message without the file's name.
  expect_rejected(raw_file(R"({"x": 1e400})", ""), "not valid JSON");
}

BOOST_AUTO_TEST_CASE(unknown_dtype) {
  expect_rejected(raw_file(R"({"x":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", k8),
                  "tensor 'x': unknown dtype \"F8_E4M3\"");
}

BOOST_AUTO_TEST_CASE(malformed_entries) {
  expect_rejected(raw_file(R"({"x":{"shape":[2],"data_offsets":[0,8]}})", k8), "tensor 'x': missing or non-string \"dtype\"");
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", k8), "non-negative integers");
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", k8), "\"data_offsets\" must be");
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", k8), "end before they begin");
  expect_rejected(raw_file(R"({"":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", k8), "empty name");
  expect_rejected(raw_file(R"({"__metadata__":{"step":5}})", ""), "__metadata__ key 'step' is not a string");
}

BOOST_AUTO_TEST_CASE(shape_does_not_match_offsets) {
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", k8),
                  "tensor 'x': shape (3,) x F32 needs 12 bytes but data_offsets span 8");
  // A huge shape must not overflow into a "matching" size.
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", ""),
                  "but data_offsets span 0");
}

BOOST_AUTO_TEST_CASE(offsets_past_the_end) {
  expect_rejected(raw_file(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", k8),
                  "tensor 'x': data_offsets [0, 16] reach past the end of the 8-byte data area");
}

BOOST_AUTO_TEST_CASE(overlapping_tensors) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8),
                  "tensor 'b' [4, 8) overlaps tensor 'a' [0, 8)");
}

BOOST_AUTO_TEST_CASE(gaps_and_trailing_bytes) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8),
                  "bytes [0, 4) of the data area belong to no tensor");
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", k8), "4 trailing bytes");
}

BOOST_AUTO_TEST_CASE(duplicate_names) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", k8),
                  "names tensor 'a' more than once");
}

BOOST_AUTO_TEST_CASE(missing_file_and_lookups) {
  BOOST_CHECK_EXCEPTION(SafeTensorsFile::open("/nonexistent/x.safetensors"), Error,
                        [](const Error& e) { return std::string(e.what()).find("cannot open") != std::string::npos; });
  TempDir dir;
  float v[6] = {};
  write_safetensors(dir.file("a.safetensors"), {{"w", DType::F32, {2, 3}, v}}, {{"k", "v"}});
  SafeTensorsFile f = SafeTensorsFile::open(dir.file("a.safetensors"));
  BOOST_CHECK_EXCEPTION(f.get("nope"), Error,
                        [](const Error& e) { return std::string(e.what()).find("tensor 'nope' is missing") != std::string::npos; });
  BOOST_CHECK_EXCEPTION(f.get("w", DType::F32, {3, 2}), Error, [](const Error& e) {
    return std::string(e.what()).find("has shape (2, 3), expected (3, 2)") != std::string::npos;
  });
  BOOST_CHECK_EXCEPTION(f.get("w", DType::F64, {2, 3}), Error, [](const Error& e) {
    return std::string(e.what()).find("has dtype F32, expected F64") != std::string::npos;
  });
  BOOST_TEST(f.meta("k") == "v");
  BOOST_CHECK_THROW(f.meta("config"), Error);
}

BOOST_AUTO_TEST_CASE(writer_rejects_bad_names) {
  TempDir dir;
  float v = 1;
  BOOST_CHECK_THROW(write_safetensors(dir.file("x"), {{"a", DType::F32, {1}, &v}, {"a", DType::F32, {1}, &v}}), Error);
  BOOST_CHECK_THROW(write_safetensors(dir.file("x"), {{"__metadata__", DType::F32, {1}, &v}}), Error);
  BOOST_CHECK_THROW(write_safetensors(dir.file("x"), {{"", DType::F32, {1}, &v}}), Error);
  BOOST_TEST(!fs::exists(dir.file("x")));
  BOOST_TEST(fs::is_empty(dir.path()));  // and no temporary file left behind
}

BOOST_AUTO_TEST_CASE(abandoned_atomic_write_keeps_the_old_file) {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  duo::testing::write_bytes(path, "old contents");
  try {
    AtomicFile f(path);
    f.write("new, half written", 9);
    BOOST_TEST(fs::exists(f.temp_path()));
    throw std::runtime_error("simulated crash before commit");
  } catch (const std::runtime_error&) {
  }
  BOOST_TEST(duo::testing::read_bytes(path) == "old contents");
  BOOST_TEST(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);  // temp removed
}

BOOST_AUTO_TEST_CASE(failed_rename_keeps_the_target_and_removes_the_temp_file) {
  TempDir dir;
  const std::string target = dir.file("occupied");
  fs::create_directory(target);
  duo::testing::write_bytes(target + "/inside", "kept");
  float v = 1;
  BOOST_CHECK_EXCEPTION(write_safetensors(target, {{"a", DType::F32, {1}, &v}}), Error, [](const Error& e) {
    return std::string(e.what()).find("renaming") != std::string::npos && !e.hint().empty();
  });
  BOOST_TEST(duo::testing::read_bytes(target + "/inside") == "kept");
  BOOST_TEST(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

BOOST_AUTO_TEST_CASE(unwritable_directory_is_an_error_and_creates_nothing) {
  TempDir dir;
  const std::string path = dir.file("no/such/dir/x.safetensors");
  BOOST_CHECK_EXCEPTION(write_file_atomic(path, "data"), Error, [&](const Error& e) {
    return e.where() == path && std::string(e.what()).find("cannot create the temporary file") != std::string::npos;
  });
  BOOST_TEST(fs::is_empty(dir.path()));
}

BOOST_AUTO_TEST_CASE(committed_write_replaces_the_file) {
  TempDir dir;
  const std::string path = dir.file("f");
  duo::testing::write_bytes(path, "old");
  write_file_atomic(path, "new contents");
  BOOST_TEST(duo::testing::read_bytes(path) == "new contents");
  BOOST_TEST(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
