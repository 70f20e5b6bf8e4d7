// The configuration parser: any text is a configuration or a list of problems, each naming file:line:column.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"
#include "tests/fuzz/check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto config = perfwatch::config::parse(text, "fuzz.yaml");
  FUZZ_CHECK(config || config.error().message.starts_with("fuzz.yaml"));
  return 0;
}
