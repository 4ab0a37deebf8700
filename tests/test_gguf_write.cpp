// The GGUF writer (read back by our GgufFile) and the reference quantisers: gguf-py's bytes for
// the types it quantises (tests/data/make_quant_fixtures.py), error bounds and exact round trips
// for the K-quants.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "moa/core/error.h"
#include "moa/core/half.h"
#include "moa/gguf/gguf.h"
#include "moa/gguf/gguf_writer.h"
#include "moa/gguf/quant.h"
#include "moa/gguf/quantize.h"
#include "test_util.h"

namespace moa {
namespace {

namespace fs = std::filesystem;
using V = GgufOwnedValue;

const fs::path kDir = fs::path(MOA_TEST_DATA) / "gguf";

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> out(size_t(ggml_row_bytes(t, int64_t(x.size()))));
  quantize_row_ref(t, x.data(), int64_t(x.size()), out.data());
  return out;
}

std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& b, int64_t n) {
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row_ref(t, b.data(), n, y.data());
  return y;
}

// Index of the first differing byte, or -1.
int64_t first_diff(const uint8_t* a, const uint8_t* b, size_t n) {
  for (size_t k = 0; k < n; ++k) {
    if (a[k] != b[k]) return int64_t(k);
  }
  return -1;
}

TEST(GgufWriter, RoundTripsEveryValueAndTensorType) {
  GgufWriter w;
  w.set("u8", V::u8(200));
  w.set("i8", V::i8(-100));
  w.set("u16", V::u16(60000));
  w.set("i16", V::i16(-30000));
  w.set("u32", V::u32(4000000000u));
  w.set("i32", V::i32(-2000000000));
  w.set("u64", V::u64(uint64_t(1) << 60));
  w.set("i64", V::i64(-(int64_t(1) << 60)));
  w.set("f32", V::f32(1.5f));
  w.set("f64", V::f64(0.1));
  w.set("bool", V::boolean(true));
  w.set("str", V::string("h\xc3\xa9llo"));
  w.set("arr.f32", V::f32_array({1.0f, -2.5f, 3.25f}));
  w.set("arr.i32", V::i32_array({-1, 2}));
  const uint16_t u16s[] = {1, 65535};
  w.set("arr.u16", V::scalar_array(GgufType::kU16, u16s, 2));
  const uint8_t bools[] = {1, 0, 1};
  w.set("arr.bool", V::scalar_array(GgufType::kBool, bools, 3));
  const double f64s[] = {1e300};
  w.set("arr.f64", V::scalar_array(GgufType::kF64, f64s, 1));
  w.set("arr.str", V::string_array({"a", "", "ccc"}));
  w.set("arr.empty", V::f32_array({}));
  w.set("arr.nested", V::array_of_arrays({V::i32_array({7}), V::string_array({"x"})}));
  w.set("u8", V::u8(201));  // replacing keeps the place
  const GgmlType types[] = {GgmlType::kF32,  GgmlType::kF16,  GgmlType::kBF16, GgmlType::kQ8_0,
                            GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1,
                            GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::map<std::string, std::vector<uint8_t>> bytes;
  for (GgmlType t : types) {
    std::vector<float> x(512);
    for (float& v : x) v = nd(rng);
    std::vector<uint8_t> b = quantize(t, std::vector<float>(x.begin(), x.begin() + 256));
    std::vector<uint8_t> b2 = quantize(t, std::vector<float>(x.begin() + 256, x.end()));
    b.insert(b.end(), b2.begin(), b2.end());
    const std::string name = "t." + ggml_type_name(t);
    bytes[name] = b;
    w.add_tensor(
        {name, t, {256, 2}, [b = bytes[name]](GgufSink& s) { s.write(b.data(), b.size()); }});
  }
  const fs::path f = test::temp_dir("gguf_writer") / "all.gguf";
  w.write(f);
  GgufFile g(f);
  EXPECT_EQ(g.version(), 3u);
  EXPECT_EQ(g.alignment(), 32u);
  EXPECT_EQ(g.metadata()[0].first, "general.alignment");
  EXPECT_EQ(g.metadata()[1].first, "u8");
  EXPECT_EQ(g.get_int("u8"), 201);
  EXPECT_EQ(g.get_int("i8"), -100);
  EXPECT_EQ(g.get_int("u16"), 60000);
  EXPECT_EQ(g.get_int("i16"), -30000);
  EXPECT_EQ(g.get_int("u32"), 4000000000ll);
  EXPECT_EQ(g.get_int("i32"), -2000000000);
  EXPECT_EQ(g.find("u64")->u, uint64_t(1) << 60);
  EXPECT_EQ(g.get_int("i64"), -(int64_t(1) << 60));
  EXPECT_EQ(g.find("f32")->type, GgufType::kF32);
  EXPECT_EQ(g.get_float("f32"), 1.5);
  EXPECT_EQ(g.get_float("f64"), 0.1);
  EXPECT_TRUE(g.get_bool("bool", false));
  EXPECT_EQ(g.get_string("str"), "h\xc3\xa9llo");
  const GgufValue& af = g.get_array("arr.f32", GgufType::kF32);
  ASSERT_EQ(af.count, 3u);
  EXPECT_EQ(af.at(1).f, -2.5);
  EXPECT_EQ(g.get_array("arr.i32", GgufType::kI32).at(0).i, -1);
  EXPECT_EQ(g.get_array("arr.u16", GgufType::kU16).at(1).u, 65535u);
  EXPECT_EQ(g.get_array("arr.bool", GgufType::kBool).at(1).u, 0u);
  EXPECT_EQ(g.get_array("arr.f64", GgufType::kF64).at(0).f, 1e300);
  EXPECT_EQ(g.get_array("arr.str", GgufType::kString).strs,
            (std::vector<std::string>{"a", "", "ccc"}));
  EXPECT_EQ(g.get_array("arr.empty", GgufType::kF32).count, 0u);
  const GgufValue& nested = g.get_array("arr.nested", GgufType::kArray);
  ASSERT_EQ(nested.count, 2u);
  EXPECT_EQ(nested.arr[0].at(0).i, 7);
  EXPECT_EQ(nested.arr[1].strs[0], "x");
  ASSERT_EQ(g.tensors().size(), std::size(types));
  for (const GgufTensor& t : g.tensors()) {
    EXPECT_EQ(t.ne, (std::vector<int64_t>{256, 2})) << t.name;
    EXPECT_EQ(t.offset % 32, 0u) << t.name;
    const auto& b = bytes[t.name];
    ASSERT_EQ(t.nbytes, b.size()) << t.name;
    EXPECT_EQ(first_diff(t.data, b.data(), b.size()), -1) << t.name;
  }
  // Copying every value of the file into a new writer writes the same metadata bytes.
  GgufWriter w2;
  for (const auto& [k, v] : g.metadata()) w2.set(k, V::copy_of(v));
  const fs::path f2 = f.parent_path() / "copy.gguf";
  w2.write(f2);
  GgufFile g2(f2);
  ASSERT_EQ(g2.metadata().size(), g.metadata().size());
  // f2 holds the header, the same metadata and at most 31 bytes of padding (no tensors).
  const std::string a = read_text(f), b = read_text(f2);
  ASSERT_GT(b.size(), 24u + 32u);
  EXPECT_TRUE(a.compare(24, b.size() - 24 - 32, b, 24, b.size() - 24 - 32) == 0);
}

TEST(GgufWriter, FailingProducerLeavesNoFile) {
  const fs::path dir = test::temp_dir("gguf_writer_fail");
  const fs::path f = dir / "bad.gguf";
  GgufWriter w;
  w.add_tensor({"short", GgmlType::kF32, {4}, [](GgufSink& s) {
                  const float x[3] = {};
                  s.write(x, sizeof(x));
                }});
  test::expect_input_error(f, [&] { w.write(f); }, {"short", "wrote 12 bytes, expected 16"});
  EXPECT_FALSE(fs::exists(f));
  for (const auto& e : fs::directory_iterator(dir)) ADD_FAILURE() << "left behind: " << e.path();
  GgufWriter w2;
  w2.add_tensor(
      {"throws", GgmlType::kF32, {4}, [](GgufSink&) { input_error("source.bin: broken"); }});
  EXPECT_THROW(w2.write(f), InputError);
  EXPECT_FALSE(fs::exists(f));
}

// gguf-py's quantisation of tests/data/gguf/quant_oracle.gguf's input, byte for byte.
TEST(Quantize, MatchesGgufPyBitForBit) {
  GgufFile g(kDir / "quant_oracle.gguf");
  const GgufTensor* in = g.find_tensor("input");
  ASSERT_NE(in, nullptr);
  const int64_t cols = in->cols();
  for (const GgufTensor& t : g.tensors()) {
    if (t.name == "input") continue;
    SCOPED_TRACE(t.name);
    ASSERT_EQ(t.ne, in->ne);
    const int64_t rb = ggml_row_bytes(t.type(), cols);
    for (int64_t r = 0; r < in->rows(); ++r) {
      std::vector<float> x(static_cast<size_t>(cols));
      std::memcpy(x.data(), in->data + r * cols * 4, size_t(cols) * 4);
      const std::vector<uint8_t> q = quantize(t.type(), x);
      const int64_t d = first_diff(q.data(), t.data + r * rb, size_t(rb));
      EXPECT_EQ(d, -1) << "row " << r << " byte " << d << ": ours " << int(q[size_t(d < 0 ? 0 : d)])
                       << ", gguf-py " << int(t.data[r * rb + (d < 0 ? 0 : d)]);
    }
  }
}

// Per value |x - dequantised| <= step / 2 (+ float rounding), step read back from the block.
double k_step(GgmlType t, const uint8_t* b, int64_t j) {
  auto half = [&](int off) {
    uint16_t h;
    std::memcpy(&h, b + off, 2);
    return double(f16_to_f32(h));
  };
  if (t == GgmlType::kQ6_K) return half(208) * double(int8_t(b[192 + j / 16]));
  const int i = int(j / 32);
  const uint8_t* s = b + 4;
  const int sc = i < 4 ? s[i] & 63 : (s[i + 4] & 15) | ((s[i - 4] >> 6) << 4);
  return half(0) * sc;
}

TEST(Quantize, KQuantsStayWithinHalfAStep) {
  MOA_RANDOM_SEED(seed);
  std::mt19937_64 rng(seed);
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    SCOPED_TRACE(ggml_type_name(t));
    for (int trial = 0; trial < 20; ++trial) {
      const double scale = std::pow(10.0, double(int(rng() % 7)) - 4);  // 1e-4 .. 1e2
      const double shift = trial % 3 == 0 ? 3 * scale : 0;
      std::normal_distribution<double> nd(shift, scale);
      std::vector<float> x(512);
      for (float& v : x) v = float(nd(rng));
      if (trial == 1) std::fill(x.begin(), x.begin() + 256, 0.0f);
      if (trial == 2) std::fill(x.begin() + 256, x.begin() + 288, float(scale));
      const std::vector<uint8_t> q = quantize(t, x);
      const std::vector<float> y = dequantize(t, q, 512);
      double amax = 0;
      for (float v : x) amax = std::max(amax, double(std::fabs(v)));
      const int64_t bb = ggml_type_traits(uint32_t(t)).bytes;
      for (int64_t j = 0; j < 512; ++j) {
        const double step = k_step(t, q.data() + (j / 256) * bb, j % 256);
        const double err = std::fabs(double(x[size_t(j)]) - double(y[size_t(j)]));
        ASSERT_LE(err, 0.5 * step * (1 + 1e-5) + 1e-6 * amax)
            << "trial " << trial << " value " << j << ": " << x[size_t(j)] << " -> " << y[size_t(j)]
            << " step " << step;
      }
      if (trial == 1) {
        for (int64_t j = 0; j < 256; ++j) ASSERT_EQ(y[size_t(j)], 0.0f) << j;
        if (t != GgmlType::kQ6_K) {  // Q6_K stores 0 as level 32
          for (int64_t k = 0; k < bb; ++k) ASSERT_EQ(q[size_t(k)], 0) << "byte " << k;
        }
      }
    }
  }
}

// Values a block of type t represents exactly, of the form the quantiser finds again:
// power-of-two d and dmin, a scale (and a min) at its maximum, every sub-block using its lowest and
// highest level.
std::vector<float> representable_values(GgmlType t, std::mt19937_64& rng) {
  std::vector<float> x(256);
  const float d = std::ldexp(1.0f, -int(rng() % 12)), dmin = std::ldexp(1.0f, -int(rng() % 12));
  if (t == GgmlType::kQ6_K) {
    for (int g = 0; g < 16; ++g) {
      const int sc = g == 3 ? 127 : 1 + int(rng() % 127);
      for (int l = 0; l < 16; ++l) {
        int q = int(rng() % 63) - 31;
        if (l == 5) q = (g % 2) ? 31 : -31;
        x[size_t(16 * g + l)] = (d * float(sc)) * float(q);
      }
    }
  } else {
    const int top = t == GgmlType::kQ4_K ? 15 : 31;
    for (int s = 0; s < 8; ++s) {
      const int sc = s == 1 ? 63 : 1 + int(rng() % 63), mn = s == 0 ? 63 : int(rng() % 64);
      for (int l = 0; l < 32; ++l) {
        int q = int(rng() % uint64_t(top + 1));
        if (l == 0) q = 0;
        if (l == 1) q = top;
        x[size_t(32 * s + l)] = (d * float(sc)) * float(q) - dmin * float(mn);
      }
    }
  }
  return x;
}

TEST(Quantize, KQuantsRoundTripRepresentableBlocksExactly) {
  MOA_RANDOM_SEED(seed);
  std::mt19937_64 rng(seed);
  for (GgmlType t : {GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K}) {
    SCOPED_TRACE(ggml_type_name(t));
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> x = representable_values(t, rng);
      const std::vector<uint8_t> b = quantize(t, x);
      const std::vector<float> y = dequantize(t, b, 256);
      for (size_t j = 0; j < 256; ++j) ASSERT_EQ(y[j], x[j]) << "trial " << trial << " value " << j;
      const std::vector<uint8_t> b2 = quantize(t, y);
      ASSERT_EQ(first_diff(b.data(), b2.data(), b.size()), -1) << "trial " << trial;
    }
  }
  // Legacy types: values on their grid come back exactly too.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(j % 16 - 8) * 0.25f;
  EXPECT_EQ(dequantize(GgmlType::kQ4_0, quantize(GgmlType::kQ4_0, x), 32), x);
  for (int j = 0; j < 32; ++j) x[size_t(j)] = float(8 * j - 127) / 16;  // d = 127/16 / 127
  EXPECT_EQ(dequantize(GgmlType::kQ8_0, quantize(GgmlType::kQ8_0, x), 32), x);
}

TEST(QuantizeDeathTest, RaggedRowsAreRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> out(4096);
  EXPECT_DEATH(quantize_row_ref(GgmlType::kQ4_K, x.data(), 300, out.data()),
               "not a whole number of Q4_K blocks of 256");
  EXPECT_DEATH(quantize_row_ref(GgmlType::kQ8_0, x.data(), 33, out.data()),
               "not a whole number of Q8_0 blocks of 32");
}

}  // namespace
}  // namespace moa
