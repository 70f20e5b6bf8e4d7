#pragma once
// Content-derived 64-bit ids of frames and stacks. They are the rows' primary keys in every
// database written so far, so the hash must never change.
#include <cstdint>
#include <span>

#include "common/profile.h"

namespace perfwatch::storage {

// Hash of (kind, module, name).
std::int64_t frame_id(const profile::Frame& frame);
// Hash of the frame id sequence, root first.
std::int64_t stack_id(std::span<const std::int64_t> frame_ids);

}  // namespace perfwatch::storage
