#include "hearth/perception/image.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

#include <jpeglib.h>
#include <png.h>

#include "hearth/core/atomic_file.h"
#include "hearth/core/checked_math.h"
#include "hearth/core/mapped_file.h"

namespace hearth::perception {
namespace {

Status check_dims(const std::string& path, int64_t w, int64_t h) {
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide || w * h > kMaxImagePixels) {
    return make_error(ErrorCode::kOutOfRange, "{}: image of {}x{} pixels is outside the limits (sides 1..{}, at most {} pixels)", path, w, h,
                      kMaxImageSide, kMaxImagePixels);
  }
  return ok_status();
}

Result<Image> decode_png(const std::string& path, std::span<const std::byte> bytes) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&im, bytes.data(), bytes.size())) {
    return make_error(ErrorCode::kInvalidArgument, "{}: not a readable PNG ({})", path, im.message);
  }
  struct Guard {
    png_image* p;
    ~Guard() { png_image_free(p); }
  } guard{&im};
  HEARTH_TRY(check_dims(path, im.width, im.height));
  im.format = PNG_FORMAT_RGB;
  Image out;
  out.width = static_cast<int>(im.width);
  out.height = static_cast<int>(im.height);
  out.rgb.resize(static_cast<size_t>(out.width) * static_cast<size_t>(out.height) * 3);
  // A background for transparent pixels: white, as a document page would be.
  png_color bg{255, 255, 255};
  if (!png_image_finish_read(&im, &bg, out.rgb.data(), 0, nullptr)) {
    return make_error(ErrorCode::kInvalidArgument, "{}: PNG decoding failed ({})", path, im.message);
  }
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_fail(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

// Decodes into `out`; returns false with `err` set on failure. Kept free of C++ objects with
// destructors between setjmp and longjmp.
bool decode_jpeg_raw(std::span<const std::byte> bytes, Image& out, std::string& err) {
  jpeg_decompress_struct cinfo;
  JpegError jerr;
  cinfo.err = jpeg_std_error(&jerr.mgr);
  jerr.mgr.error_exit = jpeg_fail;
  jerr.message[0] = '\0';
  if (setjmp(jerr.jump)) {
    jpeg_destroy_decompress(&cinfo);
    err = jerr.message;
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  const int64_t w = cinfo.image_width, h = cinfo.image_height;
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide || w * h > kMaxImagePixels) {
    jpeg_destroy_decompress(&cinfo);
    err = "dims";
    return false;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.width = static_cast<int>(cinfo.output_width);
  out.height = static_cast<int>(cinfo.output_height);
  out.rgb.resize(static_cast<size_t>(out.width) * static_cast<size_t>(out.height) * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    unsigned char* row = out.rgb.data() + static_cast<size_t>(cinfo.output_scanline) * static_cast<size_t>(out.width) * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

}  // namespace

Result<Image> load_image(const std::string& path) {
  auto mf = MappedFile::open(path);
  if (!mf.ok()) return mf.status();
  return decode_image(mf->bytes(), path);
}

Result<Image> decode_image(std::span<const std::byte> bytes, const std::string& path) {
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return decode_png(path, bytes);
  if (bytes.size() >= 3 && std::to_integer<int>(bytes[0]) == 0xff && std::to_integer<int>(bytes[1]) == 0xd8 &&
      std::to_integer<int>(bytes[2]) == 0xff) {
    Image img;
    std::string err;
    if (!decode_jpeg_raw(bytes, img, err)) {
      if (err == "dims") return make_error(ErrorCode::kOutOfRange, "{}: JPEG dimensions are outside the limits", path);
      return make_error(ErrorCode::kInvalidArgument, "{}: JPEG decoding failed ({})", path, err);
    }
    return img;
  }
  return make_error(ErrorCode::kInvalidArgument, "{}: not a PNG or JPEG file", path);
}

Status save_png(const Image& img, const std::string& path) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(img.width);
  im.height = static_cast<png_uint_32>(img.height);
  im.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(im, size, 0, img.rgb.data(), 0, nullptr)) {
    return make_error(ErrorCode::kInternal, "PNG encoding failed: {}", im.message);
  }
  std::string buf(size, '\0');
  if (!png_image_write_to_memory(&im, buf.data(), &size, 0, img.rgb.data(), 0, nullptr)) {
    return make_error(ErrorCode::kInternal, "PNG encoding failed: {}", im.message);
  }
  buf.resize(size);
  return write_file_atomic(path, buf);
}

Image resize_bilinear(const Image& src, int w, int h) {
  Image out;
  out.width = w;
  out.height = h;
  out.rgb.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  const float sx = static_cast<float>(src.width) / static_cast<float>(w);
  const float sy = static_cast<float>(src.height) / static_cast<float>(h);
  for (int y = 0; y < h; ++y) {
    float fy = (static_cast<float>(y) + 0.5f) * sy - 0.5f;
    fy = std::max(0.0f, fy);
    const int y0 = std::min(static_cast<int>(fy), src.height - 1);
    const int y1 = std::min(y0 + 1, src.height - 1);
    const float wy = fy - static_cast<float>(y0);
    for (int x = 0; x < w; ++x) {
      float fx = (static_cast<float>(x) + 0.5f) * sx - 0.5f;
      fx = std::max(0.0f, fx);
      const int x0 = std::min(static_cast<int>(fx), src.width - 1);
      const int x1 = std::min(x0 + 1, src.width - 1);
      const float wx = fx - static_cast<float>(x0);
      for (int c = 0; c < 3; ++c) {
        const float a = src.pixel(x0, y0)[c] * (1 - wx) + src.pixel(x1, y0)[c] * wx;
        const float b = src.pixel(x0, y1)[c] * (1 - wx) + src.pixel(x1, y1)[c] * wx;
        const float v = a * (1 - wy) + b * wy;
        out.rgb[(static_cast<size_t>(y) * static_cast<size_t>(w) + static_cast<size_t>(x)) * 3 + static_cast<size_t>(c)] =
            static_cast<uint8_t>(std::clamp(v + 0.5f, 0.0f, 255.0f));
      }
    }
  }
  return out;
}

Image crop(const Image& src, int x0, int y0, int w, int h) {
  const int xa = std::clamp(x0, 0, src.width), ya = std::clamp(y0, 0, src.height);
  const int xb = std::clamp(x0 + w, 0, src.width), yb = std::clamp(y0 + h, 0, src.height);
  Image out;
  out.width = std::max(0, xb - xa);
  out.height = std::max(0, yb - ya);
  out.rgb.resize(static_cast<size_t>(out.width) * static_cast<size_t>(out.height) * 3);
  for (int y = 0; y < out.height; ++y) {
    std::memcpy(&out.rgb[static_cast<size_t>(y) * static_cast<size_t>(out.width) * 3], src.pixel(xa, ya + y), static_cast<size_t>(out.width) * 3);
  }
  return out;
}

}  // namespace hearth::perception
