// GGUF reader and reference dequantisers against files written by llama.cpp's gguf-py
// (tests/data/make_gguf_fixtures.py): every computable ggml type dequantises bit for bit as
// gguf.quants.dequantize does, metadata of every value type reads back exactly, and every class of
// corrupt file (written here, into a temp dir) is one InputError naming the field, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <set>

#include "gguf_layout.h"
#include "moa/core/error.h"
#include "moa/core/file_io.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/quant.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(MOA_TEST_DATA) / "gguf";

// ---- dequantisation --------------------------------------------------------------------------

// Bitwise comparison; on mismatch names the first differing index and the max abs error.
::testing::AssertionResult bit_equal(const std::vector<float>& got, const float* want, size_t n) {
  size_t first = n;
  double max_err = 0;
  for (size_t k = 0; k < n; ++k) {
    if (std::memcmp(&got[k], &want[k], 4) != 0) {
      if (first == n) first = k;
      max_err = std::max(max_err, std::fabs(double(got[k]) - double(want[k])));
    }
  }
  if (first == n) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "first mismatch at " << first << ": " << got[first]
                                       << " vs " << want[first] << ", max abs error " << max_err;
}

TEST(GgufDequant, EveryTypeMatchesGgufPyBitForBit) {
  GgufFile types(kDir / "types.gguf");
  GgufFile expected(kDir / "expected.gguf");
  std::set<std::string> seen;
  for (const GgufTensor& t : types.tensors()) {
    SCOPED_TRACE(t.name + " (" + t.type_name() + ")");
    ASSERT_TRUE(ggml_type_traits(t.type_id).computable);
    const GgufTensor* e = expected.find_tensor(t.name);
    ASSERT_NE(e, nullptr);
    ASSERT_EQ(e->type(), GgmlType::kF32);
    ASSERT_EQ(e->ne, t.ne);
    ASSERT_EQ(t.ne.size(), 2u);
    const int64_t cols = t.cols(), row_bytes = ggml_row_bytes(t.type(), cols);
    ASSERT_EQ(uint64_t(row_bytes * t.rows()), t.nbytes);
    std::vector<float> want(size_t(e->numel()));
    std::memcpy(want.data(), e->data, e->nbytes);  // the mapping need not be 4-byte aligned
    for (int64_t r = 0; r < t.rows(); ++r) {
      std::vector<float> row(static_cast<size_t>(cols));
      dequantize_row_ref(t.type(), t.data + r * row_bytes, cols, row.data());
      EXPECT_TRUE(bit_equal(row, want.data() + r * cols, size_t(cols))) << "row " << r;
    }
    seen.insert(t.type_name());
  }
  // The fixture covers every type we claim to compute with.
  std::set<std::string> all;
  for (uint32_t id = 0; id < 64; ++id) {
    if (ggml_type_traits(id).computable) all.insert(ggml_type_name(id));
  }
  EXPECT_EQ(seen, all);
  EXPECT_EQ(all.size(), 11u);
}

TEST(GgufDequant, MatmulRefIsXWTransposed) {
  GgufFile types(kDir / "types.gguf");
  GgufFile expected(kDir / "expected.gguf");
  const uint64_t seed = std::random_device{}();
  std::printf("MatmulRefIsXWTransposed: seed %llu\n", (unsigned long long)seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  for (const GgufTensor& t : types.tensors()) {
    SCOPED_TRACE(t.name);
    const GgufTensor* e = expected.find_tensor(t.name);
    const int64_t R = t.rows(), C = t.cols(), T = 3;
    std::vector<float> w(size_t(R * C)), x(size_t(T * C)), b(static_cast<size_t>(R)),
        y(size_t(T * R)), want(y.size());
    std::memcpy(w.data(), e->data, e->nbytes);
    for (auto& v : x) v = nd(rng);
    for (auto& v : b) v = nd(rng);
    matmul_ref(x.data(), t.type(), t.data, R, C, b.data(), T, y.data());
    for (int64_t i = 0; i < T; ++i) {
      for (int64_t r = 0; r < R; ++r) {
        double s = b[size_t(r)];
        for (int64_t c = 0; c < C; ++c) s += double(x[size_t(i * C + c)]) * w[size_t(r * C + c)];
        want[size_t(i * R + r)] = float(s);
      }
    }
    EXPECT_TRUE(test::all_close(y, want, 1e-6, 1e-6));
  }
}

TEST(GgufDequant, TypeTable) {
  EXPECT_EQ(ggml_type_name(GgmlType::kQ4_K), "Q4_K");
  EXPECT_EQ(ggml_type_name(10), "Q2_K");
  EXPECT_EQ(ggml_type_name(99), "type 99");
  EXPECT_FALSE(ggml_type_traits(10).computable);
  EXPECT_EQ(ggml_type_traits(10).bytes, 84);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ6_K, 512), 420);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kBF16, 7), 14);
  EXPECT_EQ(ggml_computable_types(),
            "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16");
}

// ---- metadata --------------------------------------------------------------------------------

TEST(GgufMetadata, EveryValueTypeReadsBackExactly) {
  GgufFile g(kDir / "metadata.gguf");
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 64u);
  auto scalar = [&](const std::string& key, GgufType type) {
    const GgufValue* v = g.find(key);
    EXPECT_NE(v, nullptr) << key;
    if (!v) return GgufValue{};
    EXPECT_EQ(v->type, type) << key;
    return *v;
  };
  EXPECT_EQ(scalar("meta.u8", GgufType::kU8).u, 200u);
  EXPECT_EQ(scalar("meta.i8", GgufType::kI8).i, -100);
  EXPECT_EQ(scalar("meta.u16", GgufType::kU16).u, 60000u);
  EXPECT_EQ(scalar("meta.i16", GgufType::kI16).i, -30000);
  EXPECT_EQ(scalar("meta.u32", GgufType::kU32).u, 4000000000u);
  EXPECT_EQ(scalar("meta.i32", GgufType::kI32).i, -2000000000);
  EXPECT_EQ(scalar("meta.f32", GgufType::kF32).f, double(3.14159f));
  EXPECT_EQ(scalar("meta.bool", GgufType::kBool).u, 1u);
  EXPECT_EQ(scalar("meta.string", GgufType::kString).str,
            "h\xc3\xa9llo w\xc3\xb6rld \xf0\x9f\x98\x80");
  EXPECT_EQ(scalar("meta.u64", GgufType::kU64).u, (uint64_t(1) << 63) + 5);
  EXPECT_EQ(scalar("meta.i64", GgufType::kI64).i, -(int64_t(1) << 62) - 3);
  EXPECT_EQ(scalar("meta.f64", GgufType::kF64).f, 2.718281828459045);
  EXPECT_EQ(g.get_string("general.architecture"), "test");
  EXPECT_EQ(g.get_int("meta.u32"), 4000000000);
  EXPECT_EQ(g.get_int("missing.key", 7), 7);

  auto array = [&](const std::string& key, GgufType elem, uint64_t n) {
    const GgufValue& a = g.get_array(key, elem);
    EXPECT_EQ(a.count, n) << key;
    return a;
  };
  auto u = [](const GgufValue& a, uint64_t k) { return a.at(k).u; };
  auto i = [](const GgufValue& a, uint64_t k) { return a.at(k).i; };
  auto f = [](const GgufValue& a, uint64_t k) { return a.at(k).f; };
  GgufValue a = array("arr.u8", GgufType::kU8, 3);
  EXPECT_EQ(u(a, 0), 0u);
  EXPECT_EQ(u(a, 1), 1u);
  EXPECT_EQ(u(a, 2), 255u);
  a = array("arr.i8", GgufType::kI8, 3);
  EXPECT_EQ(i(a, 0), -128);
  EXPECT_EQ(i(a, 2), 127);
  a = array("arr.u16", GgufType::kU16, 2);
  EXPECT_EQ(u(a, 1), 65535u);
  a = array("arr.i16", GgufType::kI16, 2);
  EXPECT_EQ(i(a, 0), -32768);
  EXPECT_EQ(i(a, 1), 32767);
  a = array("arr.u32", GgufType::kU32, 2);
  EXPECT_EQ(u(a, 1), 4294967295u);
  a = array("arr.i32", GgufType::kI32, 2);
  EXPECT_EQ(i(a, 0), -2147483648LL);
  a = array("arr.f32", GgufType::kF32, 3);
  EXPECT_EQ(f(a, 0), 0.5);
  EXPECT_EQ(f(a, 1), -1.25);
  EXPECT_EQ(f(a, 2), double(1e-30f));
  a = array("arr.bool", GgufType::kBool, 3);
  EXPECT_EQ(u(a, 0), 1u);
  EXPECT_EQ(u(a, 1), 0u);
  a = array("arr.u64", GgufType::kU64, 2);
  EXPECT_EQ(u(a, 1), ~uint64_t(0));
  a = array("arr.i64", GgufType::kI64, 2);
  EXPECT_EQ(i(a, 0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(i(a, 1), std::numeric_limits<int64_t>::max());
  a = array("arr.f64", GgufType::kF64, 2);
  EXPECT_EQ(f(a, 0), 1e300);
  a = array("arr.string", GgufType::kString, 3);
  EXPECT_EQ(a.at(0).str, "");
  EXPECT_EQ(a.at(2).str,
            "\xc3\xbc"
            "ber");
  array("arr.empty", GgufType::kI32, 0);
  a = array("arr.nested", GgufType::kArray, 3);
  EXPECT_EQ(a.at(0).count, 2u);
  EXPECT_EQ(a.at(0).at(1).i, 2);
  EXPECT_EQ(a.at(1).at(0).i, 3);
  EXPECT_EQ(a.at(2).count, 0u);

  // Wrong-type access names the key and both types.
  try {
    g.get_string("meta.u8");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'meta.u8' is UINT8, expected STRING"), std::string::npos)
        << e.what();
  }
}

TEST(GgufMetadata, TensorsRespectTheAlignment) {
  GgufFile g(kDir / "metadata.gguf");
  ASSERT_EQ(g.tensors().size(), 2u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  const GgufTensor* a = g.find_tensor("a");
  const GgufTensor* b = g.find_tensor("b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->ne, (std::vector<int64_t>{3}));
  EXPECT_EQ(b->ne, (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(b->shape(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(b->offset % 64, 0u);
  EXPECT_EQ(uint64_t(b->data - g.mapping()->data()) % 64, 0u);
  float v[10];
  std::memcpy(v, b->data, 40);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(v[k], float(k));
  std::memcpy(v, a->data, 12);
  EXPECT_EQ(v[2], 3.0f);
}

// ---- corrupt files ---------------------------------------------------------------------------

std::string slurp(const fs::path& p) { return read_text(p); }
// Expects GgufFile(path) to throw one InputError naming the file and every needle.
void expect_error(const fs::path& path, const std::vector<std::string>& needles) {
  try {
    GgufFile g(path);
    ADD_FAILURE() << "no error for " << path;
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    for (auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

class GgufCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::temp_dir("gguf_corrupt");
    meta_ = slurp(kDir / "metadata.gguf");
    types_ = slurp(kDir / "types.gguf");
    lm_ = test::walk_gguf(meta_);
    lt_ = test::walk_gguf(types_);
  }
  // Writes bytes to a fresh file and expects the error.
  void expect(const std::string& bytes, const std::vector<std::string>& needles) {
    const fs::path p = dir_ / ("bad" + std::to_string(n_++) + ".gguf");
    write_text_atomic(p, bytes);
    expect_error(p, needles);
  }
  fs::path dir_;
  std::string meta_, types_;
  test::GgufLayout lm_, lt_;
  int n_ = 0;
};

TEST_F(GgufCorrupt, MagicAndVersion) {
  expect(test::with(meta_, 0, uint32_t(0x04034b50)), {"not a GGUF file", "magic"});
  expect(test::with(meta_, 4, uint32_t(1)), {"version 1", "expected 2 or 3"});
  expect(test::with(meta_, 4, uint32_t(4)), {"version 4", "expected 2 or 3"});
  expect(test::with(meta_, 4, uint32_t(0x03000000)), {"big-endian"});
  expect("", {"truncated", "magic"});
  // Version 2 has the same little-endian layout as 3 and loads.
  const fs::path v2 = dir_ / "v2.gguf";
  write_text_atomic(v2, test::with(meta_, 4, uint32_t(2)));
  EXPECT_EQ(GgufFile(v2).version(), 2u);
}

// Every proper prefix of the file that cuts into the header or into tensor data fails cleanly.
TEST_F(GgufCorrupt, EveryTruncationIsAnInputError) {
  for (const std::string* file : {&meta_, &types_}) {
    const fs::path whole = dir_ / "whole.gguf";
    write_text_atomic(whole, *file);
    GgufFile g(whole);
    uint64_t end = g.data_offset();
    for (auto& t : g.tensors()) end = std::max(end, g.data_offset() + t.offset + t.nbytes);
    // metadata.gguf: every prefix; types.gguf (27 KB): every 5th in the header, 97th in the data.
    const size_t step = file == &meta_ ? 1 : 5;
    for (size_t n = 0; n < end; n += n < g.data_offset() ? step : 97) {
      const fs::path p = dir_ / "cut.gguf";
      write_text_atomic(p, file->substr(0, n));
      try {
        GgufFile cut(p);
        ADD_FAILURE() << "no error for a prefix of " << n << " of " << end << " bytes";
      } catch (const InputError& e) {
        const std::string msg = e.what();
        EXPECT_TRUE(msg.find("truncated") != std::string::npos ||
                    msg.find("outside the data section") != std::string::npos ||
                    msg.find("left in the file") != std::string::npos)
            << n << ": " << msg;
      }
    }
  }
}

TEST_F(GgufCorrupt, AbsurdCountsAndLengths) {
  expect(test::with(meta_, lm_.n_kv, uint64_t(1) << 62), {"metadata count", "cannot fit"});
  expect(test::with(meta_, lm_.n_tensors, uint64_t(1) << 40), {"tensor count", "cannot fit"});
  expect(test::with(meta_, lm_.key_len.at("meta.string"), ~uint64_t(0)), {"string length"});
  expect(test::with(meta_, lm_.value.at("meta.string"), uint64_t(1) << 50),
         {"'meta.string'", "string length", "exceeds"});
  // An array's count (after its u32 element type).
  expect(test::with(meta_, lm_.value.at("arr.u64") + 4, uint64_t(1) << 60),
         {"'arr.u64'", "array of", "UINT64", "cannot fit"});
  expect(test::with(meta_, lm_.value.at("arr.string") + 4, uint64_t(1) << 61),
         {"'arr.string'", "cannot fit"});
  expect(test::with(meta_, lm_.tensor.at("b").name_len, uint64_t(1) << 33),
         {"tensor #1 name", "string length"});
}

TEST_F(GgufCorrupt, BadValues) {
  expect(test::with(meta_, lm_.value_type.at("meta.u8"), uint32_t(13)),
         {"'meta.u8'", "unknown value type 13"});
  expect(test::with(meta_, lm_.value.at("arr.u8"), uint32_t(77)),
         {"'arr.u8'", "unknown array element type 77"});
  expect(test::with(meta_, lm_.value.at("meta.bool"), uint8_t(2)), {"'meta.bool'", "BOOL value 2"});
  expect(test::with(meta_, lm_.value.at("arr.bool") + 12 + 1, uint8_t(5)),
         {"'arr.bool'", "element 1"});
  expect(test::with(meta_, lm_.value.at("general.alignment"), uint32_t(48)),
         {"general.alignment", "48", "power of two"});
  expect(test::with(meta_, lm_.value.at("general.alignment"), uint32_t(0)),
         {"general.alignment", "power of two"});
  // The key "meta.i8" renamed to "meta.u8" (same length): a duplicate.
  std::string dup = meta_;
  const size_t at = lm_.key_len.at("meta.i8") + 8;
  dup.replace(at, 7, "meta.u8");
  expect(dup, {"'meta.u8' appears twice"});
}

TEST_F(GgufCorrupt, BadTensorInfos) {
  const auto& b = lm_.tensor.at("b");
  expect(test::with(meta_, b.n_dims, uint32_t(5)), {"tensor 'b'", "n_dims is 5"});
  expect(test::with(meta_, b.n_dims, uint32_t(0)), {"tensor 'b'", "n_dims is 0"});
  expect(test::with(meta_, b.type, uint32_t(99)), {"tensor 'b'", "unknown ggml type id 99"});
  expect(test::with(meta_, b.type, uint32_t(4)), {"tensor 'b'", "unknown ggml type id 4"});
  expect(test::with(test::with(meta_, b.ne, uint64_t(1) << 40), b.ne + 8, uint64_t(1) << 40),
         {"tensor 'b'", "overflows"});
  expect(test::with(meta_, b.ne, ~uint64_t(0)), {"tensor 'b'", "not a valid dimension"});
  // Q4_0 needs rows of whole 32-value blocks; "b" has rows of 5.
  expect(test::with(meta_, b.type, uint32_t(2)),
         {"tensor 'b'", "not a multiple of Q4_0's block of 32"});
  // A duplicated tensor name: rename "b" to "a".
  std::string dup = meta_;
  dup[b.name_len + 8] = 'a';
  expect(dup, {"tensor 'a' appears twice"});
}

TEST_F(GgufCorrupt, LyingOffsets) {
  const auto& b = lm_.tensor.at("b");
  uint64_t off;
  std::memcpy(&off, meta_.data() + b.offset, 8);
  expect(test::with(meta_, b.offset, off + 4), {"tensor 'b'", "misaligned", "64"});
  expect(test::with(meta_, b.offset, off + 64 * 1000), {"tensor 'b'", "outside the data section"});
  expect(test::with(meta_, b.offset, ~uint64_t(63)), {"tensor 'b'", "outside the data section"});
  expect(test::with(meta_, b.offset, uint64_t(0)), {"tensor 'b'", "overlaps tensor 'a'"});
  // A shape that claims more rows than the data holds.
  expect(test::with(meta_, b.ne + 8, uint64_t(1000)), {"tensor 'b'", "outside the data section"});
  // In types.gguf: the Q6_K tensor's rows claimed 4x longer run into the next tensor.
  const auto& q = lt_.tensor.at("Q6_K");
  expect(test::with(types_, q.ne, uint64_t(512 * 4)), {"overlaps tensor 'Q6_K'"});
}

// Random single-byte and single-word corruption anywhere in the header: an InputError or a file
// that still parses, never a crash (run under ASan in CI).
TEST_F(GgufCorrupt, RandomCorruptionNeverCrashes) {
  const uint64_t seed = std::random_device{}();
  std::printf("RandomCorruptionNeverCrashes: seed %llu\n", (unsigned long long)seed);
  std::mt19937_64 rng(seed);
  GgufFile g(kDir / "metadata.gguf");
  const size_t header = size_t(g.data_offset());
  int errors = 0;
  for (int k = 0; k < 600; ++k) {
    std::string b = meta_;
    const size_t at = size_t(rng() % (header - 8));
    if (k % 2) {
      b[at] = char(rng());
    } else {
      const uint64_t v = rng() >> (rng() % 64);
      std::memcpy(b.data() + at, &v, 8);
    }
    const fs::path p = dir_ / "rand.gguf";
    write_text_atomic(p, b);
    try {
      GgufFile r(p);
    } catch (const InputError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 30);
}

}  // namespace
}  // namespace moa
