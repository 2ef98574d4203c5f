// Random write→read round-trips: metadata of every type, tensors of several types and shapes,
// random alignment. Every value and every tensor byte must come back, padding must be zeros,
// and the file/streaming/in-memory outputs must be identical.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "hearth/core/atomic_file.h"
#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "shared_data.h"

namespace hearth::gguf {
namespace {

using Check = std::function<void(const GgufFile&)>;

std::string random_bytes_string(std::mt19937_64& rng, size_t max_len) {
  std::string s(rng() % (max_len + 1), '\0');
  for (auto& c : s) c = static_cast<char>(rng() & 0xff);  // any byte, NUL and high bytes included
  return s;
}

template <typename T>
T random_bits(std::mt19937_64& rng) {
  uint64_t r = rng();
  T v;
  std::memcpy(&v, &r, sizeof(T));  // every bit pattern, NaNs and infinities included
  return v;
}

template <typename T>
bool same_bits(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
Check scalar_check(std::string key, ValueType type, T v) {
  return [key, type, v](const GgufFile& f) {
    const KeyValue* kv = f.find(key);
    ASSERT_NE(kv, nullptr) << key;
    EXPECT_EQ(kv->type, type) << key;
    ASSERT_TRUE(std::holds_alternative<T>(kv->value)) << key;
    EXPECT_TRUE(same_bits(std::get<T>(kv->value), v)) << key;
  };
}

Check raw_array_check(std::string key, ValueType elem, std::vector<std::byte> raw, uint64_t count) {
  return [=](const GgufFile& f) {
    auto a = f.get_array(key, elem);
    ASSERT_TRUE(a.ok()) << a.status().to_string();
    EXPECT_EQ((*a)->count, count);
    ASSERT_EQ((*a)->raw.size(), raw.size());
    EXPECT_TRUE(std::equal(raw.begin(), raw.end(), (*a)->raw.begin())) << key;
  };
}

// Adds one random key of a random type to `w`, returning the check for the parsed file.
Check add_random_kv(std::mt19937_64& rng, GgufWriter& w, const std::string& key) {
  switch (rng() % 17) {
    case 0: {
      auto v = random_bits<uint8_t>(rng);
      w.set_u8(key, v);
      return scalar_check(key, ValueType::UINT8, v);
    }
    case 1: {
      auto v = random_bits<int8_t>(rng);
      w.set_i8(key, v);
      return scalar_check(key, ValueType::INT8, v);
    }
    case 2: {
      auto v = random_bits<uint16_t>(rng);
      w.set_u16(key, v);
      return scalar_check(key, ValueType::UINT16, v);
    }
    case 3: {
      auto v = random_bits<int16_t>(rng);
      w.set_i16(key, v);
      return scalar_check(key, ValueType::INT16, v);
    }
    case 4: {
      auto v = random_bits<uint32_t>(rng);
      w.set_u32(key, v);
      return scalar_check(key, ValueType::UINT32, v);
    }
    case 5: {
      auto v = random_bits<int32_t>(rng);
      w.set_i32(key, v);
      return scalar_check(key, ValueType::INT32, v);
    }
    case 6: {
      auto v = random_bits<uint64_t>(rng);
      w.set_u64(key, v);
      return scalar_check(key, ValueType::UINT64, v);
    }
    case 7: {
      auto v = random_bits<int64_t>(rng);
      w.set_i64(key, v);
      return scalar_check(key, ValueType::INT64, v);
    }
    case 8: {
      auto v = random_bits<float>(rng);
      w.set_f32(key, v);
      return scalar_check(key, ValueType::FLOAT32, v);
    }
    case 9: {
      auto v = random_bits<double>(rng);
      w.set_f64(key, v);
      return scalar_check(key, ValueType::FLOAT64, v);
    }
    case 10: {
      bool v = rng() & 1;
      w.set_bool(key, v);
      return scalar_check(key, ValueType::BOOL, v);
    }
    case 11: {
      std::string v = random_bytes_string(rng, 40);
      w.set_string(key, v);
      return [key, v](const GgufFile& f) {
        auto s = f.get_string(key);
        ASSERT_TRUE(s.ok()) << s.status().to_string();
        EXPECT_EQ(*s, v);
      };
    }
    case 12: {
      std::vector<std::string> v(rng() % 20);
      for (auto& s : v) s = random_bytes_string(rng, 30);
      w.set_array_strings(key, v);
      return [key, v](const GgufFile& f) {
        auto a = f.get_array(key, ValueType::STRING);
        ASSERT_TRUE(a.ok()) << a.status().to_string();
        ASSERT_EQ((*a)->count, v.size());
        ASSERT_EQ((*a)->strings.size(), v.size());
        for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ((*a)->strings[i], v[i]);
      };
    }
    case 13: {
      std::vector<float> v(rng() % 50);
      for (auto& x : v) x = random_bits<float>(rng);
      w.set_array_f32(key, v);
      return [key, v](const GgufFile& f) {
        auto a = f.get_array(key, ValueType::FLOAT32);
        ASSERT_TRUE(a.ok()) << a.status().to_string();
        ASSERT_EQ((*a)->count, v.size());
        for (size_t i = 0; i < v.size(); ++i) EXPECT_TRUE(same_bits(array_element<float>(**a, i), v[i]));
      };
    }
    case 14: {
      std::vector<int32_t> v(rng() % 50);
      for (auto& x : v) x = random_bits<int32_t>(rng);
      w.set_array_i32(key, v);
      return [key, v](const GgufFile& f) {
        auto a = f.get_array(key, ValueType::INT32);
        ASSERT_TRUE(a.ok()) << a.status().to_string();
        ASSERT_EQ((*a)->count, v.size());
        for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(array_element<int32_t>(**a, i), v[i]);
      };
    }
    case 15: {
      std::vector<uint32_t> v(rng() % 50);
      for (auto& x : v) x = random_bits<uint32_t>(rng);
      w.set_array_u32(key, v);
      std::vector<std::byte> raw(v.size() * 4);
      if (!v.empty()) std::memcpy(raw.data(), v.data(), raw.size());
      return raw_array_check(key, ValueType::UINT32, raw, v.size());
    }
    default: {
      // Any numeric element type, as raw bytes (bools must be 0 or 1).
      static constexpr ValueType kNumeric[] = {
          ValueType::UINT8,   ValueType::INT8, ValueType::UINT16, ValueType::INT16, ValueType::UINT32, ValueType::INT32,
          ValueType::FLOAT32, ValueType::BOOL, ValueType::UINT64, ValueType::INT64, ValueType::FLOAT64};
      ValueType elem = kNumeric[rng() % std::size(kNumeric)];
      uint64_t count = rng() % 40;
      std::vector<std::byte> raw(count * value_type_size(elem));
      for (auto& b : raw) b = static_cast<std::byte>(elem == ValueType::BOOL ? (rng() & 1) : (rng() & 0xff));
      w.set_array_raw(key, elem, raw);
      return raw_array_check(key, elem, raw, count);
    }
  }
}

struct RandomFile {
  GgufWriter writer;
  std::vector<Check> checks;
  std::vector<std::vector<std::byte>> tensor_data;  // kept alive for the writer
  uint32_t alignment = kDefaultAlignment;
};

void build_random(std::mt19937_64& rng, RandomFile& rf) {
  static constexpr uint32_t kAlignments[] = {1, 2, 8, 32, 32, 64, 256, 4096};
  rf.alignment = kAlignments[rng() % std::size(kAlignments)];
  rf.writer.set_alignment(rf.alignment);
  int n_kv = static_cast<int>(rng() % 24);
  for (int i = 0; i < n_kv; ++i) {
    std::string key = "test.k" + std::to_string(i) + "." + random_bytes_string(rng, 5);
    rf.checks.push_back(add_random_kv(rng, rf.writer, key));
  }
  static constexpr TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0,
                                          TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K, TensorType::I32};
  int n_tensors = static_cast<int>(rng() % 7);
  rf.tensor_data.resize(n_tensors);
  for (int i = 0; i < n_tensors; ++i) {
    TensorType type = kTypes[rng() % std::size(kTypes)];
    TensorTypeTraits tr = traits_of(type);
    std::vector<uint64_t> ne(1 + rng() % 4);
    ne[0] = tr.block_size * (1 + rng() % 3);
    for (size_t d = 1; d < ne.size(); ++d) ne[d] = 1 + rng() % 3;
    uint64_t n_bytes = ne[0] / tr.block_size * tr.type_size;
    for (size_t d = 1; d < ne.size(); ++d) n_bytes *= ne[d];
    auto& data = rf.tensor_data[i];
    data.resize(n_bytes);
    for (auto& b : data) b = static_cast<std::byte>(rng() & 0xff);
    std::string name = "blk." + std::to_string(i) + ".weight";
    ASSERT_TRUE(rf.writer.add_tensor(name, type, ne, data).ok());
    rf.checks.push_back([name, type, ne, n_bytes, &data, align = rf.alignment](const GgufFile& f) {
      const TensorInfo* t = f.find_tensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->type, type);
      ASSERT_EQ(t->n_dims, ne.size());
      uint64_t n_elements = 1;
      for (size_t d = 0; d < 4; ++d) {
        uint64_t want = d < ne.size() ? ne[d] : 1;
        EXPECT_EQ(t->ne[d], want) << name << " dim " << d;
        n_elements *= want;
      }
      EXPECT_EQ(t->n_elements, n_elements);
      EXPECT_EQ(t->n_bytes, n_bytes);
      EXPECT_EQ(t->offset % align, 0u);
      ASSERT_EQ(t->data.size(), data.size());
      EXPECT_TRUE(std::equal(data.begin(), data.end(), t->data.begin())) << name << " bytes differ";
    });
  }
}

TEST(GgufRoundTrip, RandomFiles) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    RandomFile rf;
    build_random(rng, rf);
    auto bytes = rf.writer.to_bytes();
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    auto size = rf.writer.file_size();
    ASSERT_TRUE(size.ok());
    EXPECT_EQ(*size, bytes->size());
    auto parsed = parse_gguf(*bytes, "random.gguf");
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    const GgufFile& f = *parsed;
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.alignment(), rf.alignment);
    EXPECT_EQ(f.data_offset() % rf.alignment, 0u);
    // general.alignment is written exactly when the alignment is not the default.
    EXPECT_EQ(f.find("general.alignment") != nullptr, rf.alignment != kDefaultAlignment);
    EXPECT_EQ(f.tensors().size(), rf.tensor_data.size());
    for (const auto& check : rf.checks) check(f);
    // Every byte of the data section that no tensor covers is zero padding.
    // (A file without tensors has no data section: it ends with the metadata, unpadded.)
    if (f.tensors().empty()) {
      EXPECT_LE(bytes->size(), f.data_offset());
    }
    std::vector<bool> covered(f.tensors().empty() ? 0 : bytes->size() - f.data_offset(), false);
    for (const auto& t : f.tensors()) std::fill_n(covered.begin() + t.offset, t.n_bytes, true);
    for (size_t i = 0; i < covered.size(); ++i) {
      if (!covered[i]) {
        ASSERT_EQ((*bytes)[f.data_offset() + i], std::byte{0}) << "padding at " << i;
      }
    }
    // Copying every kv and tensor into a new writer reproduces the file byte for byte.
    GgufWriter copy;
    for (const auto& kv : f.metadata()) copy.copy_kv(kv);
    for (const auto& t : f.tensors()) {
      ASSERT_TRUE(
          copy.add_tensor(std::string(t.name), t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data).ok());
    }
    auto again = copy.to_bytes();
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(*again == *bytes) << "copy_kv/add_tensor did not reproduce the file";
  }
}

TEST(GgufRoundTrip, WriteAndStreamingMatchToBytes) {
  auto dir = hearth::testing::make_temp_dir("gguf-roundtrip");
  for (uint64_t seed = 1000; seed < 1020; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937_64 rng(seed);
    RandomFile rf;
    build_random(rng, rf);
    auto bytes = rf.writer.to_bytes();
    ASSERT_TRUE(bytes.ok());

    const std::string path = (dir / "a.gguf").string();
    ASSERT_TRUE(rf.writer.write(path).ok());
    auto text = read_file(path);
    ASSERT_TRUE(text.ok());
    ASSERT_EQ(text->size(), bytes->size());
    EXPECT_EQ(std::memcmp(text->data(), bytes->data(), bytes->size()), 0);
    auto opened = GgufModelFile::open(path);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    for (const auto& check : rf.checks) check((*opened)->file());

    // The same file with every tensor declared by size and streamed in order.
    GgufWriter streamed;
    const GgufFile& f = (*opened)->file();
    for (const auto& kv : f.metadata()) streamed.copy_kv(kv);
    for (const auto& t : f.tensors()) {
      ASSERT_TRUE(
          streamed.add_tensor_info(std::string(t.name), t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims)).ok());
    }
    size_t next = 0;
    const std::string spath = (dir / "s.gguf").string();
    Status st = streamed.write_streaming(spath, [&](size_t i) -> Result<std::span<const std::byte>> {
      EXPECT_EQ(i, next++) << "the source must be called in order";
      return std::span<const std::byte>(rf.tensor_data[i]);
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(next, rf.tensor_data.size());
    auto stext = read_file(spath);
    ASSERT_TRUE(stext.ok());
    EXPECT_TRUE(*stext == *text) << "streaming output differs";
  }
  std::filesystem::remove_all(dir);
}

TEST(GgufRoundTrip, NestedArraysAreValidatedAndCopied) {
  // An array of 2 arrays: [u8 x 3] and [array of 1 [i16 x 2]] (depth 3 <= 4). Serialized by hand:
  // elem ARRAY(9), count 2, { elem UINT8(0), count 3, 1 2 3 }, { elem ARRAY, count 1, { INT16(3), 2, ... } }.
  std::vector<std::byte> inner;
  auto put = [&](auto v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    inner.insert(inner.end(), p, p + sizeof(v));
  };
  put(uint32_t{0}), put(uint64_t{3}), put(uint8_t{1}), put(uint8_t{2}), put(uint8_t{3});
  put(uint32_t{9}), put(uint64_t{1}), put(uint32_t{3}), put(uint64_t{2}), put(int16_t{-5}), put(int16_t{7});

  std::vector<std::byte> file;
  auto fput = [&](auto v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    file.insert(file.end(), p, p + sizeof(v));
  };
  for (char c : std::string("GGUF")) file.push_back(static_cast<std::byte>(c));
  fput(uint32_t{3}), fput(uint64_t{0}), fput(uint64_t{1});
  fput(uint64_t{6});
  for (char c : std::string("a.nest")) file.push_back(static_cast<std::byte>(c));
  fput(uint32_t{9}), fput(uint32_t{9}), fput(uint64_t{2});
  file.insert(file.end(), inner.begin(), inner.end());

  auto parsed = parse_gguf(file, "nested.gguf");
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  auto a = parsed->get_array("a.nest", ValueType::ARRAY);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->count, 2u);
  ASSERT_EQ((*a)->raw.size(), inner.size());
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), (*a)->raw.begin()));

  GgufWriter w;
  w.copy_kv(parsed->metadata()[0]);
  auto out = w.to_bytes();
  ASSERT_TRUE(out.ok());
  // The writer pads the (tensor-less) header to 32 bytes; the parsed content is the same.
  auto reparsed = parse_gguf(*out, "copy.gguf");
  ASSERT_TRUE(reparsed.ok()) << reparsed.status().to_string();
  auto b = reparsed->get_array("a.nest", ValueType::ARRAY);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), (*b)->raw.begin(), (*b)->raw.end()));
}

}  // namespace
}  // namespace hearth::gguf
