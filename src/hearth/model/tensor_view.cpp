#include "hearth/model/tensor_view.h"

#include <vector>

#include "hearth/kernels/quant.h"

namespace hearth::model {

TensorView TensorView::matrix(int64_t i2) const {
  TensorView v = *this;
  v.ne[2] = 1;
  v.ne[3] = 1;
  v.data = data + static_cast<size_t>(i2) * nb2;
  if (packed != nullptr) v.packed = packed + static_cast<size_t>(i2) * packed_nb2;
  return v;
}

std::string shape_string(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  return s + "]";
}

Result<TensorView> WeightBinder::optional(const std::string& name, std::initializer_list<int64_t> shape,
                                          WeightKind kind) {
  if (!has(name)) return TensorView{};
  return require(name, shape, kind);
}

Result<TensorView> WeightBinder::require(const std::string& name, std::initializer_list<int64_t> shape,
                                         WeightKind kind) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) {
    return make_error(ErrorCode::kInvalidArgument, "{}: tensor '{}' is missing (the architecture needs it)",
                      file_.name(), name);
  }
  std::vector<int64_t> want(shape);
  int64_t got[4];
  for (int i = 0; i < 4; ++i) got[i] = static_cast<int64_t>(t->ne[i]);
  bool match = true;
  for (size_t i = 0; i < 4; ++i) {
    int64_t w = i < want.size() ? want[i] : 1;
    if (got[i] != w) match = false;
  }
  if (!match) {
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: tensor '{}' has shape {} but the model's hyper-parameters need {}", file_.name(), name,
                      shape_string(got, static_cast<int>(t->n_dims == 0 ? 1 : t->n_dims)),
                      shape_string(want.data(), static_cast<int>(want.size())));
  }
  bool type_ok = false;
  switch (kind) {
    case WeightKind::kVector: type_ok = t->type == TensorType::F32; break;
    case WeightKind::kEmbedding: type_ok = kernels::can_dequantize(t->type); break;
    case WeightKind::kMatrix:
      type_ok = kernels::can_dequantize(t->type) && t->type != TensorType::Q8_1 && t->type != TensorType::Q8_K;
      break;
  }
  if (!type_ok) {
    return make_error(ErrorCode::kUnimplemented, "{}: tensor '{}' has type {}, which hearth cannot use for this weight",
                      file_.name(), name, type_name(t->type));
  }
  used_.insert(name);
  TensorView v;
  v.type = t->type;
  for (int i = 0; i < 4; ++i) v.ne[i] = got[i];
  v.data = t->data.data();
  v.nb1 = static_cast<size_t>(*row_bytes(t->type, t->ne[0]));
  v.nb2 = v.nb1 * static_cast<size_t>(got[1]);
  return v;
}

std::set<std::string> WeightBinder::unused() const {
  std::set<std::string> out;
  for (const auto& t : file_.tensors()) {
    if (used_.find(t.name) == used_.end()) out.insert(std::string(t.name));
  }
  return out;
}

}  // namespace hearth::model
