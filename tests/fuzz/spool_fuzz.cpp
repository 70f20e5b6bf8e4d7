// The spool's window codec: any bytes decode to a window or an error (a spool file may be cut short or
// damaged), and every window decoded encodes and decodes again to the same window.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "storage/spool.h"
#include "tests/fuzz/check.h"

namespace {


}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> bytes(data, data + size);
  const auto window = perfwatch::storage::decode_window(bytes);
  if (!window) return 0;
  const std::vector<std::uint8_t> encoded = perfwatch::storage::encode_window(*window);
  const auto again = perfwatch::storage::decode_window(encoded);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->host == window->host && again->start == window->start && again->end == window->end);
  FUZZ_CHECK(again->targets.size() == window->targets.size());
  FUZZ_CHECK(again->profile.frames == window->profile.frames);
  FUZZ_CHECK(again->operations == window->operations && again->deploys == window->deploys);
  FUZZ_CHECK(again->caches == window->caches && again->cache == window->cache && again->latency == window->latency);
  FUZZ_CHECK(perfwatch::storage::encode_window(*again) == encoded);
  return 0;
}
