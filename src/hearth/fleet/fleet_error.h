// fleet_error: make_error with fmt-style formatting for the fleet module.
#pragma once

#include <fmt/format.h>

#include <utility>

#include "hearth/core/status.h"

namespace hearth::fleet {

template <typename... Args>
Status fleet_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Status(code, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace hearth::fleet
