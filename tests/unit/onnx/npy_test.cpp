// .npy reading and writing: round trips of every dtype, headers written by hand as NumPy's
// format.py documents them (v1, v2, v3, quoting and spacing variants), and a catalogue of bad
// files, each expected to fail with a specific error.
#include "hearth/onnx/npy.h"

#include "hearth/core/atomic_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace hearth::onnx {
namespace {

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

// A .npy file with `header` (padding added as NumPy does) in format `major`.0, then `data`.
std::vector<std::byte> npy_file(std::string header, std::string_view data, int major = 1) {
  const size_t prelude = major == 1 ? 10 : 12;
  const size_t unpadded = prelude + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string f = "\x93NUMPY";
  f += static_cast<char>(major);
  f += '\0';
  const size_t n = header.size();
  f += static_cast<char>(n & 0xff);
  f += static_cast<char>((n >> 8) & 0xff);
  if (major != 1) {
    f += static_cast<char>((n >> 16) & 0xff);
    f += static_cast<char>((n >> 24) & 0xff);
  }
  f += header;
  f.append(data);
  return bytes_of(f);
}

template <typename T>
std::string raw(std::initializer_list<T> v) {
  return std::string(reinterpret_cast<const char*>(std::data(v)), v.size() * sizeof(T));
}

TEST(Npy, WritesNumpysV1LayoutForAFloatMatrix) {
  const float v[] = {1.0f, -2.5f, 3.0f, 0.0f, 1e-3f, 7.0f};
  auto t = Tensor::from_values<float>({2, 3}, v);
  ASSERT_TRUE(t.ok());
  auto b = encode_npy(*t);
  ASSERT_TRUE(b.ok()) << b.status().message();
  // NumPy writes exactly this header for a (2, 3) '<f4' array, padded with spaces to a multiple
  // of 64 bytes: np.save of a small array puts its data at offset 128 (header length 118).
  const std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string expect_header = dict + std::string(118 - dict.size() - 1, ' ') + "\n";
  ASSERT_EQ(b->size(), 128u + sizeof v);
  const std::string s(reinterpret_cast<const char*>(b->data()), b->size());
  EXPECT_EQ(s.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(s[6], 1);
  EXPECT_EQ(s[7], 0);
  EXPECT_EQ(static_cast<unsigned char>(s[8]) | (static_cast<unsigned char>(s[9]) << 8), 118);
  EXPECT_EQ(s.substr(10, 118), expect_header);
  EXPECT_EQ(std::memcmp(b->data() + 128, v, sizeof v), 0);
}

TEST(Npy, WritesOneAndZeroDimShapesAsPythonTuples) {
  auto one = Tensor::make(DType::kInt64, {5});
  auto zero = Tensor::make(DType::kUint8, {});
  ASSERT_TRUE(one.ok() && zero.ok());
  auto b1 = encode_npy(*one);
  auto b0 = encode_npy(*zero);
  ASSERT_TRUE(b1.ok() && b0.ok());
  const std::string s1(reinterpret_cast<const char*>(b1->data()), 128);
  const std::string s0(reinterpret_cast<const char*>(b0->data()), 128);
  EXPECT_NE(s1.find("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }"), std::string::npos) << s1;
  EXPECT_NE(s0.find("{'descr': '|u1', 'fortran_order': False, 'shape': (), }"), std::string::npos) << s0;
  EXPECT_EQ(b0->size(), 129u);
}

template <typename T>
void round_trip(DType dt, std::vector<T> values, Shape shape) {
  std::vector<std::byte> in(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(in.data(), values.data(), in.size());
  auto t = Tensor::from_bytes(dt, shape, in);
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto b = encode_npy(*t);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ((b->size() - in.size()) % 64, 0u);
  auto back = parse_npy(*b);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->dtype(), dt) << dtype_name(dt);
  EXPECT_EQ(back->shape(), shape);
  ASSERT_EQ(back->nbytes(), in.size());
  if (!in.empty()) {
    EXPECT_EQ(std::memcmp(back->raw(), in.data(), in.size()), 0) << dtype_name(dt);
  }
}

TEST(Npy, RoundTripsEveryDtype) {
  round_trip<float>(DType::kFloat, {1.5f, -0.0f, 3e38f, -1e-38f, 2, 3}, {3, 2});
  round_trip<double>(DType::kDouble, {1.0 / 3, -2e300}, {2});
  round_trip<uint16_t>(DType::kFloat16, {0x3c00, 0xc000, 0x7bff}, {1, 3});
  round_trip<int64_t>(DType::kInt64, {INT64_MIN, -1, INT64_MAX}, {3});
  round_trip<int32_t>(DType::kInt32, {INT32_MIN, 7}, {2, 1});
  round_trip<int16_t>(DType::kInt16, {-300, 300}, {2});
  round_trip<int8_t>(DType::kInt8, {-128, 127, 0}, {3});
  round_trip<uint8_t>(DType::kUint8, {0, 255}, {1, 1, 2});
  round_trip<uint16_t>(DType::kUint16, {65535}, {1});
  round_trip<uint32_t>(DType::kUint32, {4000000000u}, {});
  round_trip<uint64_t>(DType::kUint64, {UINT64_MAX, 0}, {2});
  round_trip<uint8_t>(DType::kBool, {1, 0, 1}, {3});
  round_trip<float>(DType::kFloat, {}, {0, 4});
}

TEST(Npy, ReadsHandWrittenHeaders) {
  struct Case {
    const char* header;
    int major;
    DType dtype;
    Shape shape;
  };
  const Case cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 1, DType::kFloat, {2, 2}},
      // Keys in another order, double quotes, no spaces, no trailing comma.
      {"{\"shape\":(4,),\"fortran_order\":False,\"descr\":\"<i4\"}", 1, DType::kInt32, {4}},
      // Python 2 era long suffix and a trailing comma inside a 2-tuple.
      {"{'descr': '<i2', 'fortran_order': False, 'shape': (4L, 2L,), }", 1, DType::kInt16, {4, 2}},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }", 2, DType::kDouble, {2, 1}},
      {"{'descr': '<u2', 'fortran_order': False, 'shape': (8,), }", 3, DType::kUint16, {8}},
      {"{'descr': '|i1', 'fortran_order': False, 'shape': (16,), }", 1, DType::kInt8, {16}},
      {"{'descr': '|b1', 'fortran_order': False, 'shape': (1, 16), }", 1, DType::kBool, {1, 16}},
  };
  const std::string data(16, '\x01');
  for (const auto& c : cases) {
    auto t = parse_npy(npy_file(c.header, data, c.major));
    ASSERT_TRUE(t.ok()) << c.header << ": " << t.status().message();
    EXPECT_EQ(t->dtype(), c.dtype) << c.header;
    EXPECT_EQ(t->shape(), c.shape) << c.header;
  }
  // The values land in order, little-endian.
  auto t = parse_npy(npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", raw<int32_t>({-7, 0, 1 << 20})));
  ASSERT_TRUE(t.ok());
  auto v = t->values<int32_t>();
  EXPECT_EQ(v[0], -7);
  EXPECT_EQ(v[1], 0);
  EXPECT_EQ(v[2], 1 << 20);
}

struct BadCase {
  const char* what;
  std::vector<std::byte> file;
  ErrorCode code;
  const char* message;  // a fragment the error must contain
};

TEST(Npy, RefusesBadFilesWithClearErrors) {
  const std::string f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const std::string two_floats = raw<float>({1, 2});
  std::vector<std::byte> good = npy_file(f4, two_floats);
  std::vector<std::byte> truncated_data(good.begin(), good.end() - 1);
  std::vector<std::byte> truncated_header(good.begin(), good.begin() + 30);
  std::vector<std::byte> wrong_magic = good;
  wrong_magic[1] = std::byte{'n'};
  std::vector<std::byte> v4 = good;
  v4[6] = std::byte{4};
  std::vector<std::byte> long_header = good;  // header length claims more than the file holds
  long_header[9] = std::byte{0x40};
  std::vector<std::byte> v2_huge = npy_file(f4, two_floats, 2);
  v2_huge[11] = std::byte{0x7f};  // header length 0x7f0000xx
  std::vector<std::byte> nul_header = good;
  nul_header[20] = std::byte{0};
  std::vector<std::byte> bad_bool = npy_file("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", "\x01\x02");
  std::string rank17 = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 17; ++i) rank17 += "1, ";
  rank17 += "), }";

  const BadCase cases[] = {
      {"empty", {}, ErrorCode::kInvalidArgument, "too short"},
      {"truncated data", truncated_data, ErrorCode::kInvalidArgument, "truncated: shape [2] of <f4 needs 8 data bytes, 7 present"},
      {"truncated header", truncated_header, ErrorCode::kInvalidArgument, "truncated: header of 118 bytes, 20 left"},
      {"wrong magic", wrong_magic, ErrorCode::kInvalidArgument, "wrong magic"},
      {"version 4", v4, ErrorCode::kUnimplemented, "version 4.0 is not supported"},
      {"header length past the end", long_header, ErrorCode::kInvalidArgument, "truncated: header of"},
      {"huge v2 header length", v2_huge, ErrorCode::kInvalidArgument, "exceeds the limit"},
      {"NUL in header", nul_header, ErrorCode::kInvalidArgument, "not printable ASCII"},
      {"trailing bytes", npy_file(f4, two_floats + "xx"), ErrorCode::kInvalidArgument, "2 bytes after the data"},
      {"huge shape", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", two_floats),
       ErrorCode::kOutOfRange, "more than"},
      {"large shape, small file", npy_file("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 8), }", two_floats),
       ErrorCode::kInvalidArgument, "needs 6400000000 data bytes, 8 present"},
      {"dim overflows int64", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", ""),
       ErrorCode::kInvalidArgument, "does not fit in 64 bits"},
      {"negative dim", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", two_floats),
       ErrorCode::kInvalidArgument, "negative dimension"},
      {"rank 17", npy_file(rank17, raw<float>({1})), ErrorCode::kOutOfRange, "more than 16 dimensions"},
      {"big-endian", npy_file("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", two_floats),
       ErrorCode::kUnimplemented, "big-endian dtype '>f4'"},
      {"fortran order", npy_file("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", two_floats),
       ErrorCode::kUnimplemented, "fortran_order is True"},
      {"complex", npy_file("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", two_floats),
       ErrorCode::kUnimplemented, "dtype '<c8' is not supported"},
      {"structured", npy_file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", two_floats),
       ErrorCode::kInvalidArgument, "structured dtypes"},
      {"unknown key", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1, }", two_floats),
       ErrorCode::kInvalidArgument, "unknown key 'x'"},
      {"repeated key", npy_file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", two_floats),
       ErrorCode::kInvalidArgument, "repeats 'descr'"},
      {"missing shape", npy_file("{'descr': '<f4', 'fortran_order': False, }", two_floats), ErrorCode::kInvalidArgument,
       "lacks 'shape'"},
      {"shape not a tuple", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", two_floats),
       ErrorCode::kInvalidArgument, "'shape' is not a tuple"},
      {"(2) is not a tuple", npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", two_floats),
       ErrorCode::kInvalidArgument, "one-element tuple"},
      {"fortran_order not a bool", npy_file("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", two_floats),
       ErrorCode::kInvalidArgument, "neither True nor False"},
      {"text after the dict", npy_file(f4 + " x", two_floats), ErrorCode::kInvalidArgument, "text after the dict"},
      {"not a dict", npy_file("('<f4', False, (2,))", two_floats), ErrorCode::kInvalidArgument, "not a dict"},
      {"bool of 2", bad_bool, ErrorCode::kInvalidArgument, "bool element 1 is 2"},
  };
  for (const auto& c : cases) {
    auto t = parse_npy(c.file);
    ASSERT_FALSE(t.ok()) << c.what;
    EXPECT_EQ(t.status().code(), c.code) << c.what << ": " << t.status().message();
    EXPECT_NE(t.status().message().find(c.message), std::string::npos) << c.what << ": " << t.status().message();
    EXPECT_EQ(t.status().message().rfind("npy: ", 0), 0u) << c.what << ": " << t.status().message();
  }
}

TEST(Npy, RefusesToWriteBfloat16) {
  auto t = Tensor::make(DType::kBFloat16, {2});
  ASSERT_TRUE(t.ok());
  auto b = encode_npy(*t);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("bfloat16 tensor cannot be written"), std::string::npos) << b.status().message();
}

TEST(Npy, FilesRoundTripAndErrorsNameThePath) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hearth_npy_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "x.npy").string();
  const int64_t v[] = {3, -4, 5, 6};
  auto t = Tensor::from_values<int64_t>({2, 2}, v);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(write_npy_file(path, *t).ok());
  auto back = read_npy_file(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->shape(), (Shape{2, 2}));
  EXPECT_EQ(back->values<int64_t>()[3], 6);

  const std::string bad = (dir / "bad.npy").string();
  auto garbage = bytes_of("not numpy at all");
  ASSERT_TRUE(write_file_atomic(bad, std::span<const std::byte>(garbage)).ok());
  auto r = read_npy_file(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(bad + ": npy: wrong magic"), std::string::npos) << r.status().message();
  auto missing = read_npy_file((dir / "missing.npy").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.npy"), std::string::npos) << missing.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace hearth::onnx
