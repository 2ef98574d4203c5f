// Parses every real GGUF file in ../shared and checks facts stated in shared/README.md and
// shared/reference/README.md (model shapes, tensor types, vocab sizes).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hearth/gguf/gguf.h"
#include "hearth/gguf/gguf_writer.h"
#include "shared_data.h"

namespace hearth::gguf {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> gguf_files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".gguf") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<GgufModelFile> open_or_fail(const fs::path& p) {
  auto r = GgufModelFile::open(p.string());
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(GgufShared, EveryFileParsesAndCopiesByteForByte) {
  HEARTH_REQUIRE_SHARED(shared);
  std::vector<fs::path> files;
  for (const char* sub : {"models", "models/synth", "tokenizer-vectors"}) {
    auto v = gguf_files_in(shared / sub);
    files.insert(files.end(), v.begin(), v.end());
  }
  // README: 5 stories files, the synth models (F32/Q8_0/Q4_K_M per architecture, plus IQ4_NL
  // and IQ4_XS llama files), and the vocab files; shared/ grows, so only a floor is fixed here.
  EXPECT_GE(files.size(), 5u + 12u + 6u);
  for (const auto& p : files) {
    SCOPED_TRACE(p.string());
    auto m = open_or_fail(p);
    ASSERT_NE(m, nullptr);
    const GgufFile& f = m->file();
    EXPECT_TRUE(f.version() == 2 || f.version() == 3);
    EXPECT_TRUE(f.get_string("general.architecture").ok());
    // The reference writer lays files out exactly as GgufWriter does (kvs, infos, padded data),
    // so re-serializing what was parsed reproduces the file.
    GgufWriter w;
    for (const auto& kv : f.metadata()) w.copy_kv(kv);
    for (const auto& t : f.tensors()) {
      ASSERT_TRUE(w.add_tensor(std::string(t.name), t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data).ok());
    }
    auto bytes = w.to_bytes();
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    if (f.version() == 3) {
      ASSERT_EQ(bytes->size(), m->mapping().size());
      EXPECT_EQ(std::memcmp(bytes->data(), m->mapping().bytes().data(), bytes->size()), 0);
    }
  }
}

TEST(GgufShared, Stories260KFacts) {
  HEARTH_REQUIRE_SHARED(shared);
  for (const char* name :
       {"stories260K-f32", "stories260K-F16", "stories260K-Q8_0", "stories260K-Q4_0", "stories260K-Q4_K_M"}) {
    SCOPED_TRACE(name);
    auto m = open_or_fail(shared / "models" / (std::string(name) + ".gguf"));
    ASSERT_NE(m, nullptr);
    const GgufFile& f = m->file();
    EXPECT_EQ(*f.get_string("general.architecture"), "llama");
    EXPECT_EQ(*f.get_uint("llama.embedding_length"), 64u);
    EXPECT_EQ(*f.get_uint("llama.block_count"), 5u);
    EXPECT_EQ(*f.get_uint("llama.attention.head_count"), 8u);
    EXPECT_EQ(*f.get_uint("llama.attention.head_count_kv"), 4u);
    EXPECT_EQ(*f.get_uint("llama.feed_forward_length"), 172u);
    EXPECT_EQ(*f.get_uint("llama.context_length"), 128u);  // README: the file says 128
    auto tokens = f.get_array("tokenizer.ggml.tokens", ValueType::STRING);
    ASSERT_TRUE(tokens.ok()) << tokens.status().to_string();
    EXPECT_EQ((*tokens)->count, 512u);
    EXPECT_EQ((*tokens)->strings.size(), 512u);
    // llama: token_embd, output_norm, output + 9 tensors per layer (attn_norm, q, k, v, output,
    // ffn_norm, gate, down, up) = 3 + 5 * 9.
    EXPECT_EQ(f.tensors().size(), 48u);
    const TensorInfo* down = f.find_tensor("blk.0.ffn_down.weight");
    ASSERT_NE(down, nullptr);
    EXPECT_EQ(down->n_dims, 2u);
    EXPECT_EQ(down->ne[0], 172u);  // rows of ffn_down are n_ff long
    EXPECT_EQ(down->ne[1], 64u);
    const TensorInfo* q = f.find_tensor("blk.4.attn_q.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->ne[0], 64u);
    EXPECT_EQ(q->ne[1], 64u);
    const TensorInfo* k = f.find_tensor("blk.4.attn_k.weight");
    ASSERT_NE(k, nullptr);
    EXPECT_EQ(k->ne[1], 32u);  // n_head_kv 4 * head_dim 8
    const TensorInfo* emb = f.find_tensor("token_embd.weight");
    ASSERT_NE(emb, nullptr);
    EXPECT_EQ(emb->ne[0], 64u);
    EXPECT_EQ(emb->ne[1], 512u);
    for (const auto& t : f.tensors()) {
      EXPECT_EQ((f.data_offset() + t.offset) % f.alignment(), 0u);
      EXPECT_EQ(t.data.data(), m->mapping().bytes().data() + f.data_offset() + t.offset);  // zero-copy view
    }
  }
}

TEST(GgufShared, Stories260KTensorTypes) {
  HEARTH_REQUIRE_SHARED(shared);
  struct Want {
    const char* file;
    TensorType attn_q;
    TensorType ffn_down;
  };
  // README: ffn_down stays F16 in Q8_0 and Q4_0 because 172 is not a multiple of 32.
  for (const Want& w : {Want{"stories260K-f32", TensorType::F32, TensorType::F32},
                        Want{"stories260K-F16", TensorType::F16, TensorType::F16},
                        Want{"stories260K-Q8_0", TensorType::Q8_0, TensorType::F16},
                        Want{"stories260K-Q4_0", TensorType::Q4_0, TensorType::F16}}) {
    SCOPED_TRACE(w.file);
    auto m = open_or_fail(shared / "models" / (std::string(w.file) + ".gguf"));
    ASSERT_NE(m, nullptr);
    for (int layer = 0; layer < 5; ++layer) {
      std::string blk = "blk." + std::to_string(layer) + ".";
      EXPECT_EQ(m->file().find_tensor(blk + "attn_q.weight")->type, w.attn_q);
      EXPECT_EQ(m->file().find_tensor(blk + "ffn_down.weight")->type, w.ffn_down);
      EXPECT_EQ(m->file().find_tensor(blk + "attn_norm.weight")->type, TensorType::F32);
    }
  }
  // README: the Q4_K_M recipe on this model yields only Q5_0 / Q8_0 / F16 (and F32 norms) tensors.
  auto m = open_or_fail(shared / "models" / "stories260K-Q4_K_M.gguf");
  ASSERT_NE(m, nullptr);
  for (const auto& t : m->file().tensors()) {
    EXPECT_TRUE(t.type == TensorType::Q5_0 || t.type == TensorType::Q8_0 || t.type == TensorType::F16 ||
                t.type == TensorType::F32)
        << t.name << " is " << type_name(t.type);
  }
}

TEST(GgufShared, SynthModelFacts) {
  HEARTH_REQUIRE_SHARED(shared);
  struct Arch {
    const char* stem;
    const char* arch;
    uint64_t layers;
    bool has_output;
  };
  // reference/README.md: n_embd 256, n_ff 512, n_head 8, n_head_kv 2, ctx 512, 2 layers (MoE 1);
  // qwen2 ties its output to the embedding (no output.weight).
  for (const Arch& a : {Arch{"synth-llama", "llama", 2, true}, Arch{"synth-llama-moe", "llama", 1, true},
                        Arch{"synth-stablelm", "stablelm", 2, true}, Arch{"synth-qwen2", "qwen2", 2, false}}) {
    for (const char* quant : {"f32", "Q8_0", "Q4_K_M"}) {
      std::string file = std::string(a.stem) + "-" + quant;
      SCOPED_TRACE(file);
      auto m = open_or_fail(shared / "models" / "synth" / (file + ".gguf"));
      ASSERT_NE(m, nullptr);
      const GgufFile& f = m->file();
      std::string p = a.arch;
      EXPECT_EQ(*f.get_string("general.architecture"), a.arch);
      EXPECT_EQ(*f.get_uint(p + ".embedding_length"), 256u);
      EXPECT_EQ(*f.get_uint(p + ".feed_forward_length"), 512u);
      EXPECT_EQ(*f.get_uint(p + ".attention.head_count"), 8u);
      EXPECT_EQ(*f.get_uint(p + ".attention.head_count_kv"), 2u);
      EXPECT_EQ(*f.get_uint(p + ".context_length"), 512u);
      EXPECT_EQ(*f.get_uint(p + ".block_count"), a.layers);
      EXPECT_EQ((*f.get_array("tokenizer.ggml.tokens", ValueType::STRING))->count, 512u);
      EXPECT_EQ(f.find_tensor("output.weight") != nullptr, a.has_output);
      const TensorInfo* emb = f.find_tensor("token_embd.weight");
      ASSERT_NE(emb, nullptr);
      EXPECT_EQ(emb->ne[0], 256u);
      EXPECT_EQ(emb->ne[1], 512u);
      if (std::string(quant) == "Q8_0") {
        EXPECT_EQ(f.find_tensor("blk.0.attn_output.weight")->type, TensorType::Q8_0);
        EXPECT_EQ(f.find_tensor("output_norm.weight")->type, TensorType::F32);
      }
      if (std::string(quant) == "Q4_K_M") {
        // output is Q6_K; for qwen2 the tied token_embd is Q6_K.
        const TensorInfo* out = f.find_tensor(a.has_output ? "output.weight" : "token_embd.weight");
        ASSERT_NE(out, nullptr);
        EXPECT_EQ(out->type, TensorType::Q6_K);
      }
    }
  }
  // Mixtral-style MoE: 4 experts, 2 used per token; expert tensors are 3-D.
  auto moe = open_or_fail(shared / "models" / "synth" / "synth-llama-moe-f32.gguf");
  ASSERT_NE(moe, nullptr);
  EXPECT_EQ(*moe->file().get_uint("llama.expert_count"), 4u);
  EXPECT_EQ(*moe->file().get_uint("llama.expert_used_count"), 2u);
  const TensorInfo* gate = moe->file().find_tensor("blk.0.ffn_gate_exps.weight");
  ASSERT_NE(gate, nullptr);
  EXPECT_EQ(gate->n_dims, 3u);
  EXPECT_EQ(gate->ne[0], 256u);  // [n_embd, n_ff, n_expert]
  EXPECT_EQ(gate->ne[1], 512u);
  EXPECT_EQ(gate->ne[2], 4u);
  auto stablelm = open_or_fail(shared / "models" / "synth" / "synth-stablelm-f32.gguf");
  ASSERT_NE(stablelm, nullptr);
  EXPECT_EQ(*stablelm->file().get_uint("stablelm.rope.dimension_count"), 8u);
}

TEST(GgufShared, VocabOnlyFiles) {
  HEARTH_REQUIRE_SHARED(shared);
  struct Vocab {
    const char* name;
    const char* model;  // tokenizer.ggml.model as the ecosystem names the tokenizer families
  };
  for (const Vocab& v : {Vocab{"llama-spm", "llama"}, Vocab{"gpt-2", "gpt2"}, Vocab{"deepseek-llm", "gpt2"},
                         Vocab{"falcon", "gpt2"}, Vocab{"starcoder", "gpt2"}, Vocab{"bert-bge", "bert"}}) {
    SCOPED_TRACE(v.name);
    auto m = open_or_fail(shared / "tokenizer-vectors" / ("ggml-vocab-" + std::string(v.name) + ".gguf"));
    ASSERT_NE(m, nullptr);
    const GgufFile& f = m->file();
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_EQ(*f.get_string("tokenizer.ggml.model"), v.model);
    auto tokens = f.get_array("tokenizer.ggml.tokens", ValueType::STRING);
    ASSERT_TRUE(tokens.ok()) << tokens.status().to_string();
    EXPECT_GT((*tokens)->count, 1000u);
    EXPECT_EQ((*tokens)->strings.size(), (*tokens)->count);
  }
}

}  // namespace
}  // namespace hearth::gguf
