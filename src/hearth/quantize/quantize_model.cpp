// Model quantization: plan (recipe per tensor), convert (threaded), stream out (atomic).
#include "hearth/quantize/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "hearth/core/thread_pool.h"
#include "hearth/gguf/gguf_writer.h"
#include "hearth/kernels/quant.h"

namespace hearth::quantize {
namespace {

bool is_float_type(TensorType t) { return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16; }

// The ecosystem's tensor order: by layer (tensors outside the layers first), then by name.
int64_t layer_key(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  int64_t v = -1;
  std::from_chars(name.data() + 4, name.data() + name.size(), v);
  return v;
}

std::vector<const gguf::TensorInfo*> ordered_tensors(const gguf::GgufFile& in) {
  std::vector<const gguf::TensorInfo*> v;
  for (const auto& t : in.tensors()) v.push_back(&t);
  std::stable_sort(v.begin(), v.end(), [](const gguf::TensorInfo* a, const gguf::TensorInfo* b) {
    const int64_t la = layer_key(a->name), lb = layer_key(b->name);
    if (la != lb) return la < lb;
    return a->name < b->name;
  });
  return v;
}

double now_s() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

bool skip_key(std::string_view key) {
  // Split metadata describes the input's sharding, not the single output file.
  return key == "split.no" || key == "split.count" || key == "split.tensors.count";
}

// Converts the rows of one tensor into `out` (exactly plan.bytes_out bytes).
Status convert_tensor(const gguf::TensorInfo& t, const TensorPlan& plan, const std::vector<std::vector<float>>& imp,
                      ThreadPool& pool, std::vector<std::byte>& out) {
  const int64_t ne0 = static_cast<int64_t>(t.ne[0]);
  const int64_t ne1 = static_cast<int64_t>(t.ne[1]);
  const int64_t n_rows = static_cast<int64_t>(t.n_elements / t.ne[0]);
  const uint64_t in_row = *row_bytes(t.type, t.ne[0]);
  const uint64_t out_row = *row_bytes(plan.to, t.ne[0]);
  out.resize(plan.bytes_out);
  std::atomic<int64_t> bad_row{-1};
  // About 64K elements per work item: large enough to amortize, small enough to balance.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(ne0, 1));
  pool.parallel_for(n_rows, grain, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> buf;
    buf.resize(static_cast<size_t>(ne0));
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* src = t.data.data() + static_cast<uint64_t>(r) * in_row;
      if (t.type == TensorType::F32) {
        std::memcpy(buf.data(), src, static_cast<size_t>(ne0) * sizeof(float));
      } else {
        kernels::dequantize_row(t.type, src, buf.data(), ne0);
      }
      for (int64_t j = 0; j < ne0; ++j) {
        if (!std::isfinite(buf[static_cast<size_t>(j)])) {
          int64_t expected = -1;
          bad_row.compare_exchange_strong(expected, r);
          break;
        }
      }
      std::byte* dst = out.data() + static_cast<uint64_t>(r) * out_row;
      if (plan.to == TensorType::F32) {
        std::memcpy(dst, buf.data(), static_cast<size_t>(ne0) * sizeof(float));
        continue;
      }
      const int64_t mat = r / ne1;
      const float* w = imp.empty() ? nullptr : imp[static_cast<size_t>(mat)].data();
      kernels::quantize_row(plan.to, buf.data(), dst, ne0, w);
    }
  });
  if (bad_row.load() >= 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "tensor '{}': row {} holds a NaN or infinite weight; refusing to quantize it", plan.name,
                      bad_row.load());
  }
  return ok_status();
}

}  // namespace

Result<ModelFacts> model_facts(const gguf::GgufFile& file) {
  ModelFacts m;
  HEARTH_ASSIGN_OR_RETURN(std::string_view arch, file.get_string("general.architecture"));
  m.arch = std::string(arch);
  auto u = [&](const std::string& key) -> int64_t {
    auto v = file.get_uint(key);
    return v.ok() ? static_cast<int64_t>(*v) : 0;
  };
  m.n_layer = u(m.arch + ".block_count");
  m.n_head = u(m.arch + ".attention.head_count");
  m.n_head_kv = u(m.arch + ".attention.head_count_kv");
  if (m.n_head_kv == 0) m.n_head_kv = m.n_head;
  m.n_expert = u(m.arch + ".expert_count");
  m.has_output = file.find_tensor("output.weight") != nullptr;
  return m;
}

Result<std::vector<TensorPlan>> plan_quantization(const gguf::GgufFile& in, const QuantizeParams& params) {
  HEARTH_ASSIGN_OR_RETURN(ModelFacts facts, model_facts(in));
  Recipe recipe = params.recipe;
  recipe.has_imatrix = params.imatrix != nullptr;
  std::vector<TensorPlan> plans;
  for (const gguf::TensorInfo* t : ordered_tensors(in)) {
    TensorShape shape{t->name, t->n_dims, {t->ne[0], t->ne[1], t->ne[2], t->ne[3]}};
    HEARTH_ASSIGN_OR_RETURN(TypeChoice c, choose_type(recipe, shape, t->type, facts));
    TensorPlan p;
    p.name = std::string(t->name);
    p.ne.assign(t->ne, t->ne + t->n_dims);
    p.from = t->type;
    p.to = c.type;
    p.quantized = c.quantized;
    p.fallback = c.fallback;
    p.note = c.note;
    p.bytes_in = t->n_bytes;
    p.bytes_out = t->n_bytes;
    if (p.quantized) {
      const std::string where = in.name() + ": tensor '" + p.name + "'";
      if (!is_float_type(t->type) && !params.allow_requantize) {
        return make_error(ErrorCode::kFailedPrecondition,
                          "{} is already {}; requantizing loses quality (pass --allow-requantize to do it anyway)",
                          where, type_name(t->type));
      }
      if (t->type != TensorType::F32 && !kernels::can_dequantize(t->type)) {
        return make_error(ErrorCode::kUnimplemented, "{}: cannot convert from {}", where, type_name(t->type));
      }
      if (p.to != TensorType::F32 && !kernels::can_quantize(p.to)) {
        return make_error(ErrorCode::kUnimplemented, "{}: hearth cannot quantize to {}", where, type_name(p.to));
      }
      auto rb = row_bytes(p.to, t->ne[0]);
      if (!rb) {
        return make_error(ErrorCode::kInvalidArgument, "{}: row of {} is not a multiple of the block size of {}", where,
                          t->ne[0], type_name(p.to));
      }
      p.bytes_out = *rb * (t->n_elements / t->ne[0]);
      if (params.imatrix && !is_float_type(p.to)) {
        if (const ImatrixEntry* e = params.imatrix->find(p.name)) {
          const uint64_t n_mat = t->ne[2] * t->ne[3];
          if (static_cast<uint64_t>(e->n_cols) != t->ne[0] || static_cast<uint64_t>(e->n_mat) != n_mat) {
            if (p.name != "token_embd.weight") {
              return make_error(ErrorCode::kInvalidArgument,
                                "{}: the imatrix entry has {} columns x {} matrices, the tensor {} x {} (an imatrix of "
                                "another model?)",
                                where, e->n_cols, e->n_mat, t->ne[0], n_mat);
            }
          } else {
            p.used_imatrix = true;
          }
        }
      }
    }
    plans.push_back(std::move(p));
  }
  return plans;
}

Result<QuantizeReport> quantize_gguf(const gguf::GgufFile& in, const std::string& out_path,
                                     const QuantizeParams& params, const ProgressFn& progress) {
  const double t0 = now_s();
  HEARTH_ASSIGN_OR_RETURN(std::vector<TensorPlan> plans, plan_quantization(in, params));
  const std::vector<const gguf::TensorInfo*> order = ordered_tensors(in);

  gguf::GgufWriter w;
  for (const gguf::KeyValue& kv : in.metadata()) {
    if (!skip_key(kv.key)) w.copy_kv(kv);
  }
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", static_cast<uint32_t>(params.recipe.ftype));
  std::string note = "quantized by " + (params.tool_version.empty() ? std::string("hearth") : params.tool_version) +
                     " with recipe " + std::string(file_type_name(params.recipe.ftype));
  if (params.recipe.pure) note += " (pure)";
  if (params.imatrix) note += " and importance matrix " + params.imatrix_name;
  w.set_string("hearth.quantize.note", note);
  int n_imatrix_used = 0;
  for (const auto& p : plans) n_imatrix_used += p.used_imatrix ? 1 : 0;
  if (params.imatrix) {
    // The ecosystem's quantize tool records these.
    w.set_string("quantize.imatrix.file", params.imatrix_name);
    if (!params.imatrix->datasets.empty()) w.set_string("quantize.imatrix.dataset", params.imatrix->datasets.front());
    w.set_u32("quantize.imatrix.entries_count", static_cast<uint32_t>(params.imatrix->entries().size()));
    w.set_u32("quantize.imatrix.chunks_count", params.imatrix->chunk_count);
  }

  QuantizeReport report;
  for (size_t i = 0; i < plans.size(); ++i) {
    const TensorPlan& p = plans[i];
    if (p.quantized) {
      HEARTH_TRY(w.add_tensor_info(p.name, p.to, p.ne));
    } else {
      HEARTH_TRY(w.add_tensor(p.name, p.to, p.ne, order[i]->data));
    }
    report.bytes_in += p.bytes_in;
    report.bytes_out += p.bytes_out;
    report.n_fallback += p.fallback ? 1 : 0;
  }

  int n_threads = params.n_threads > 0 ? params.n_threads : static_cast<int>(std::thread::hardware_concurrency());
  ThreadPool pool(std::max(1, n_threads));
  std::vector<std::byte> buffer;
  uint64_t done_bytes = 0;
  size_t next_report = 0;  // tensors reported so far (copied tensors are reported as passed)
  auto report_up_to = [&](size_t end) {
    for (; next_report < end; ++next_report) {
      done_bytes += plans[next_report].bytes_in;
      if (progress) {
        progress({next_report + 1, plans.size(), plans[next_report].name, done_bytes, report.bytes_in, now_s() - t0});
      }
    }
  };
  gguf::GgufWriter::TensorSource source = [&](size_t i) -> Result<std::span<const std::byte>> {
    report_up_to(i);
    const TensorPlan& p = plans[i];
    std::vector<std::vector<float>> imp;
    if (p.used_imatrix) {
      const ImatrixEntry* e = params.imatrix->find(p.name);
      for (int64_t m = 0; m < e->n_mat; ++m) imp.push_back(params.imatrix->importance(*e, m));
    }
    HEARTH_TRY(convert_tensor(*order[i], p, imp, pool, buffer));
    return std::span<const std::byte>(buffer);
  };
  HEARTH_TRY(w.write_streaming(out_path, source));
  report_up_to(plans.size());
  report.tensors = std::move(plans);
  report.seconds = now_s() - t0;
  return report;
}

Status check_output_is_not_input(const std::string& in_path, const std::string& out_path, std::string_view input) {
  std::error_code ec;
  if (in_path == out_path ||
      (std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(in_path, out_path, ec))) {
    return make_error(ErrorCode::kInvalidArgument, "{}: the output is the {}; choose another output path", out_path,
                      input);
  }
  return ok_status();
}

Result<QuantizeReport> quantize_model(const std::string& in_path, const std::string& out_path,
                                      const QuantizeParams& params, const ProgressFn& progress) {
  HEARTH_TRY(check_output_is_not_input(in_path, out_path));
  HEARTH_ASSIGN_OR_RETURN(auto in, gguf::GgufModelFile::open(in_path));
  return quantize_gguf(in->file(), out_path, params, progress);
}

Result<SyntheticRecipe> synthetic_recipe(std::string_view file_type, const eval::SyntheticPreset& p) {
  const std::optional<FileType> ft = parse_file_type(file_type);
  if (!ft) {
    std::string names;
    for (FileType t : all_file_types()) names += (names.empty() ? "" : ", ") + std::string(file_type_name(t));
    return make_error(ErrorCode::kInvalidArgument, "unknown model type '{}' (use one of {})", file_type, names);
  }
  Recipe recipe;
  recipe.ftype = *ft;
  ModelFacts facts;
  facts.arch = std::string(p.arch);
  facts.n_layer = p.n_layer;
  facts.n_head = p.n_head;
  facts.n_head_kv = p.n_head_kv;
  facts.n_expert = p.n_expert;
  facts.has_output = !p.tied_output;
  SyntheticRecipe out;
  out.label = std::string(file_type_name(*ft));
  for (auto& ch : out.label) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  out.choose = [recipe, facts](std::string_view name, const std::vector<uint64_t>& ne) -> Result<TensorType> {
    TensorShape shape;
    shape.name = name;
    shape.n_dims = static_cast<uint32_t>(std::min<size_t>(ne.size(), 4));
    for (uint32_t i = 0; i < shape.n_dims; ++i) shape.ne[i] = ne[i];
    const bool f32 = ne.size() == 1 || name.find("ffn_gate_inp") != std::string_view::npos;
    HEARTH_ASSIGN_OR_RETURN(TypeChoice c, choose_type(recipe, shape, f32 ? TensorType::F32 : TensorType::F16, facts));
    return c.type;
  };
  return out;
}

}  // namespace hearth::quantize
