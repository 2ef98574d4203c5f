#include "hearth/onnx/tensor_proto.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <optional>

#include <google/protobuf/io/coded_stream.h>

#include "hearth/core/checked_math.h"
#include "hearth/core/mapped_file.h"
#include "onnx.pb.h"

namespace hearth::onnx {
namespace fs = std::filesystem;
namespace {

Result<Tensor> load_external(const ::onnx::TensorProto& tp, DType dt, Shape shape, size_t nbytes,
                             const std::string& name, const std::string& external_data_dir) {
  if (external_data_dir.empty()) {
    return make_error(ErrorCode::kPermissionDenied,
                      "{}: external data is refused when the model is not loaded from a file", name);
  }
  std::string location;
  uint64_t offset = 0;
  std::optional<uint64_t> length;
  for (const auto& kv : tp.external_data()) {
    auto parse_u64 = [&](const std::string& s) -> std::optional<uint64_t> {
      if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
      return std::stoull(s);
    };
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset" || kv.key() == "length") {
      auto v = parse_u64(kv.value());
      if (!v)
        return make_error(ErrorCode::kInvalidArgument, "{}: external data {} '{}' is not a number", name, kv.key(),
                          kv.value());
      (kv.key() == "offset" ? offset : length.emplace()) = *v;
    }
  }
  const fs::path rel(location);
  if (location.empty() || rel.is_absolute() || location.find('\0') != std::string::npos ||
      std::any_of(rel.begin(), rel.end(), [](const fs::path& c) { return c == ".."; })) {
    return make_error(ErrorCode::kPermissionDenied,
                      "{}: external data location '{}' must be a relative path inside the model's directory", name,
                      location);
  }
  std::error_code ec;
  const fs::path dir = fs::canonical(external_data_dir, ec);
  if (ec)
    return make_error(ErrorCode::kNotFound, "{}: model directory '{}': {}", name, external_data_dir, ec.message());
  const fs::path file = fs::canonical(dir / rel, ec);
  if (ec) return make_error(ErrorCode::kNotFound, "{}: external data file '{}': {}", name, location, ec.message());
  auto [mismatch, end] = std::mismatch(dir.begin(), dir.end(), file.begin(), file.end());
  if (mismatch != dir.end()) {
    return make_error(ErrorCode::kPermissionDenied,
                      "{}: external data file '{}' resolves outside the model's directory", name, location);
  }
  if (length && *length != nbytes) {
    return make_error(ErrorCode::kInvalidArgument, "{}: external data length {} but shape {} of {} needs {} bytes",
                      name, *length, shape_string(shape), dtype_name(dt), nbytes);
  }
  auto mf = MappedFile::open(file.string());
  if (!mf.ok()) return mf.status().with_context(name);
  const auto bytes = mf->bytes();
  auto end_off = checked_add<uint64_t>(offset, nbytes);
  if (!end_off || *end_off > bytes.size()) {
    return make_error(ErrorCode::kInvalidArgument, "{}: external data [{}, +{}) is past the end of '{}' ({} bytes)",
                      name, offset, nbytes, location, bytes.size());
  }
  return Tensor::from_bytes(dt, std::move(shape), bytes.subspan(offset, nbytes));
}

}  // namespace

Result<Tensor> tensor_from_proto(const ::onnx::TensorProto& tp, std::string_view what,
                                 const std::string& external_data_dir) {
  const std::string name = tp.name().empty() ? std::string(what) : fmt::format("{} '{}'", what, tp.name());
  const DType dt = dtype_from_onnx(tp.data_type());
  if (dt == DType::kUndefined) {
    return make_error(ErrorCode::kUnimplemented, "{}: element type {} is not supported", name, tp.data_type());
  }
  if (tp.has_segment()) return make_error(ErrorCode::kUnimplemented, "{}: segmented tensors are not supported", name);
  Shape shape(tp.dims().begin(), tp.dims().end());
  auto n = checked_numel(shape);
  if (!n.ok()) return n.status().with_context(name);
  const int64_t count = *n;
  const size_t es = dtype_size(dt);
  const size_t nbytes = static_cast<size_t>(count) * es;

  if (tp.data_location() == ::onnx::TensorProto::EXTERNAL)
    return load_external(tp, dt, std::move(shape), nbytes, name, external_data_dir);

  auto need = [&](int64_t have, std::string_view field) -> Status {
    if (have != count) {
      return make_error(ErrorCode::kInvalidArgument, "{}: shape {} needs {} elements but {} holds {}", name,
                        shape_string(shape), count, field, have);
    }
    return ok_status();
  };
  if (tp.has_raw_data()) {
    if (tp.raw_data().size() != nbytes) {
      return make_error(ErrorCode::kInvalidArgument, "{}: shape {} of {} needs {} bytes but raw_data holds {}", name,
                        shape_string(shape), dtype_name(dt), nbytes, tp.raw_data().size());
    }
    return Tensor::from_bytes(dt, std::move(shape),
                              std::as_bytes(std::span<const char>(tp.raw_data().data(), tp.raw_data().size())));
  }
  HEARTH_ASSIGN_OR_RETURN(Tensor t, Tensor::make(dt, shape));
  switch (dt) {
    case DType::kFloat:
      HEARTH_TRY(need(tp.float_data_size(), "float_data"));
      if (count) std::memcpy(t.raw(), tp.float_data().data(), nbytes);
      break;
    case DType::kDouble:
      HEARTH_TRY(need(tp.double_data_size(), "double_data"));
      if (count) std::memcpy(t.raw(), tp.double_data().data(), nbytes);
      break;
    case DType::kInt64:
      HEARTH_TRY(need(tp.int64_data_size(), "int64_data"));
      if (count) std::memcpy(t.raw(), tp.int64_data().data(), nbytes);
      break;
    case DType::kUint32:
    case DType::kUint64:
      HEARTH_TRY(need(tp.uint64_data_size(), "uint64_data"));
      for (int64_t i = 0; i < count; ++i) {
        if (dt == DType::kUint32)
          t.data<uint32_t>()[i] = static_cast<uint32_t>(tp.uint64_data(static_cast<int>(i)));
        else
          t.data<uint64_t>()[i] = tp.uint64_data(static_cast<int>(i));
      }
      break;
    default: {  // int32, int16, int8, uint16, uint8, bool, float16, bfloat16: in int32_data
      HEARTH_TRY(need(tp.int32_data_size(), "int32_data"));
      for (int64_t i = 0; i < count; ++i) {
        const int32_t v = tp.int32_data(static_cast<int>(i));
        switch (es) {
          case 1: t.data<uint8_t>()[i] = static_cast<uint8_t>(dt == DType::kBool ? (v != 0) : v); break;
          case 2: t.data<uint16_t>()[i] = static_cast<uint16_t>(v); break;
          default: t.data<int32_t>()[i] = v; break;
        }
      }
    }
  }
  return t;
}

Result<Tensor> parse_tensor_proto(std::span<const std::byte> bytes, std::string* name) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return make_error(ErrorCode::kOutOfRange, "the tensor is {} bytes; protobuf messages are limited to 2 GiB",
                      bytes.size());
  }
  ::onnx::TensorProto tp;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(INT_MAX);
  if (!tp.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    return make_error(ErrorCode::kInvalidArgument, "not a valid ONNX TensorProto (protobuf parse failed)");
  }
  if (name) *name = tp.name();
  return tensor_from_proto(tp, "tensor", "");
}

Result<Tensor> load_tensor_proto_file(const std::string& path, std::string* name) {
  auto mf = MappedFile::open(path);
  if (!mf.ok()) return mf.status();
  auto t = parse_tensor_proto(mf->bytes(), name);
  if (!t.ok()) return t.status().with_context(path);
  return t;
}

}  // namespace hearth::onnx
