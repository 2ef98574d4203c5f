// NumPy .npy files as hearth::onnx::Tensor: the input and output format of `hearth onnx run`
// and of the reference tests against onnxruntime. The format is NumPy's NEP 1
// (numpy/lib/format.py): "\x93NUMPY", a major/minor version, a little-endian header length
// (u16 in v1, u32 in v2 and v3), then an ASCII (v3: UTF-8) Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces to a
// multiple of 64 bytes and ending in '\n', then the raw elements.
//  - Reading accepts v1, v2 and v3 with the little-endian (or byte-sized) dtypes
//    <f4 <f8 <f2 <i8 <i4 <i2 |i1 |u1 <u2 <u4 <u8 |b1, in C order only. Files are hostile: the
//    header is parsed strictly (exactly the three keys, once each), the dims and the element
//    count are checked with overflow-safe arithmetic, and the data must fill the rest of the
//    file exactly.
//  - Writing produces v1, which NumPy and every .npy reader accept.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hearth/core/status.h"
#include "hearth/onnx/tensor.h"

namespace hearth::onnx {

// The .npy descr of a dtype ("<f4", "|u1", ...), or "" for one .npy cannot hold (bfloat16).
std::string_view npy_descr(DType t);

// Parses a whole .npy file held in memory (a pure function over bytes, so it can be fuzzed).
Result<Tensor> parse_npy(std::span<const std::byte> bytes);
// The .npy v1 bytes of a tensor.
Result<std::vector<std::byte>> encode_npy(const Tensor& t);

// File wrappers; errors are prefixed with the path. Writing is atomic (a temp file renamed).
Result<Tensor> read_npy_file(const std::string& path);
Status write_npy_file(const std::string& path, const Tensor& t);

}  // namespace hearth::onnx
