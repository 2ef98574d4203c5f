// Images for the vision tasks: PNG (libpng) and JPEG (libjpeg-turbo) decoded to 8-bit RGB,
// with hostile-input limits (dimensions and pixel count checked before any allocation), and
// the resampling the models' preprocessing needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "hearth/core/status.h"

namespace hearth::perception {

struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height rows of width RGB triples

  const uint8_t* pixel(int x, int y) const { return &rgb[(static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3]; }
};

inline constexpr int64_t kMaxImagePixels = int64_t{64} << 20;  // 64 Mpx
inline constexpr int kMaxImageSide = 32768;

// Decodes a PNG or JPEG file (by its signature, not its name).
Result<Image> load_image(const std::string& path);
// The same from bytes in memory (an upload); `what` names them in errors.
Result<Image> decode_image(std::span<const std::byte> bytes, const std::string& what);
// PNG writer (for test artifacts and debugging), written atomically.
Status save_png(const Image& img, const std::string& path);

// Bilinear resize of the whole image to w x h (half-pixel centers, like cv2.resize INTER_LINEAR).
Image resize_bilinear(const Image& src, int w, int h);
// The sub-image [x0, x0 + w) x [y0, y0 + h), clamped to the image.
Image crop(const Image& src, int x0, int y0, int w, int h);

}  // namespace hearth::perception
