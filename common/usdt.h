#pragma once
// "BINARY:PROVIDER:NAME", how the configuration names a USDT probe: BINARY is an absolute path or a
// file name matched against what each process mapped (its executable or a library).
#include <optional>
#include <string>
#include <string_view>

namespace perfwatch {

struct UsdtProbe {
  std::string binary;
  std::string provider;
  std::string name;
  std::string text() const { return binary + ":" + provider + ":" + name; }
};

// nullopt when a part is missing. The binary may hold ':' (a path); provider and name cannot.
inline std::optional<UsdtProbe> parse_usdt_probe(std::string_view spec) {
  const std::size_t second = spec.rfind(':');
  if (second == std::string_view::npos || second == 0) return std::nullopt;
  const std::size_t first = spec.rfind(':', second - 1);
  if (first == std::string_view::npos) return std::nullopt;
  UsdtProbe probe{std::string(spec.substr(0, first)), std::string(spec.substr(first + 1, second - first - 1)),
                  std::string(spec.substr(second + 1))};
  if (probe.binary.empty() || probe.provider.empty() || probe.name.empty()) return std::nullopt;
  return probe;
}

}  // namespace perfwatch
