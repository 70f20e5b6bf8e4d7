#include "storage/ids.h"

#include <string_view>

namespace perfwatch::storage {
namespace {

// FNV-1a 64 over length-prefixed fields (so ("ab","c") and ("a","bc") differ), finished with the
// splitmix64 mixer so that similar inputs spread over all 64 bits.
class Hasher {
 public:
  void bytes(const void* data, std::size_t size) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) {
      h_ ^= p[i];
      h_ *= 0x100000001b3ull;
    }
  }
  void u64(std::uint64_t v) {
    unsigned char le[8];
    for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(v >> (8 * i));
    bytes(le, sizeof le);
  }
  void field(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
  std::int64_t finish() const {
    std::uint64_t z = h_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return static_cast<std::int64_t>(z ^ (z >> 31));
  }

 private:
  std::uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace

std::int64_t frame_id(const profile::Frame& frame) {
  Hasher h;
  h.u64(static_cast<std::uint64_t>(frame.kind));
  h.field(frame.module);
  h.field(frame.name);
  return h.finish();
}

std::int64_t stack_id(std::span<const std::int64_t> frame_ids) {
  Hasher h;
  h.u64(frame_ids.size());
  for (std::int64_t id : frame_ids) h.u64(static_cast<std::uint64_t>(id));
  return h.finish();
}

}  // namespace perfwatch::storage
