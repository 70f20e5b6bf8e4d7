#pragma once
// Kernel symbols from /proc/kallsyms, parsed into one sorted, compact table. kallsyms gives no
// sizes: a symbol reaches to the next one.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace perfwatch::collector {

struct KernelSymbol {
  std::string_view name;
  std::string_view module;  // "" for the kernel image itself
};

class KernelSymbols {
 public:
  // How far past the highest symbol an address is still taken to belong to it; beyond, it may be in
  // a module loaded since the table was read.
  static constexpr std::uint64_t kLastSymbolReach = 64 * 1024;

  // Keeps code symbols (types t, T, w, W); malformed lines are skipped.
  static KernelSymbols parse(std::string_view text);
  static Result<KernelSymbols> load(const std::string& path);

  // nullopt outside the table's range, or when addresses are hidden.
  std::optional<KernelSymbol> find(std::uint64_t addr) const;
  // Whether addr lies within [lowest symbol, highest symbol + kLastSymbolReach).
  bool covers(std::uint64_t addr) const;
  // kptr_restrict hid every address from this reader (they all read as zero).
  bool addresses_hidden() const { return hidden_; }
  std::size_t size() const { return entries_.size(); }
  std::size_t memory_bytes() const;

 private:
  struct Entry {
    std::uint64_t addr;
    std::uint32_t name;    // offset into names_
    std::uint32_t module;  // index into modules_; 0 is the kernel image
  };
  std::vector<Entry> entries_;
  std::string names_;
  std::vector<std::string> modules_;
  bool hidden_ = false;
};

}  // namespace perfwatch::collector
