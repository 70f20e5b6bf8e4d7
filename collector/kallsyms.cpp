#include "collector/kallsyms.h"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <unordered_map>

#include "collector/files.h"

namespace perfwatch::collector {
namespace {

struct Line {
  std::uint64_t addr = 0;
  char type = 0;
  std::string_view name;
  std::string_view module;
};

// "ADDR TYPE NAME" with an optional "\t[MODULE]".
std::optional<Line> parse_line(std::string_view text) {
  Line line;
  std::size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + space, line.addr, 16);
  if (ec != std::errc() || ptr != text.data() + space || space + 3 >= text.size() || text[space + 2] != ' ')
    return std::nullopt;
  line.type = text[space + 1];
  std::string_view rest = text.substr(space + 3);
  std::size_t tab = rest.find_first_of("\t ");
  line.name = rest.substr(0, tab);
  if (tab != std::string_view::npos) {
    std::string_view module = rest.substr(tab + 1);
    if (module.size() < 3 || module.front() != '[' || module.back() != ']') return std::nullopt;
    line.module = module.substr(1, module.size() - 2);
  }
  if (line.name.empty()) return std::nullopt;
  return line;
}

bool is_code(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }

}  // namespace

KernelSymbols KernelSymbols::parse(std::string_view text) {
  KernelSymbols table;
  table.modules_.emplace_back();
  std::unordered_map<std::string_view, std::uint32_t> module_index;
  struct Ranked {
    Entry entry;
    bool local;  // lower-case type
  };
  std::vector<Ranked> ranked;
  bool any_address = false;
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    std::optional<Line> line = parse_line(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line || !is_code(line->type)) continue;
    any_address |= line->addr != 0;
    std::uint32_t module = 0;
    if (!line->module.empty()) {
      auto [it, inserted] = module_index.try_emplace(line->module, static_cast<std::uint32_t>(table.modules_.size()));
      if (inserted) table.modules_.emplace_back(line->module);
      module = it->second;
    }
    ranked.push_back({{line->addr, static_cast<std::uint32_t>(table.names_.size()), module},
                      line->type == 't' || line->type == 'w'});
    table.names_.append(line->name);
    table.names_.push_back('\0');
  }
  if (!ranked.empty() && !any_address) {
    table.hidden_ = true;
    table.names_.clear();
    return table;
  }
  // Module symbols follow the kernel's in the file, unsorted. At one address keep a global name
  // over a local one, else the first in the file.
  std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return std::tie(a.entry.addr, a.local) < std::tie(b.entry.addr, b.local);
  });
  table.entries_.reserve(ranked.size());
  for (const Ranked& r : ranked)
    if (table.entries_.empty() || table.entries_.back().addr != r.entry.addr) table.entries_.push_back(r.entry);
  table.entries_.shrink_to_fit();
  table.names_.shrink_to_fit();
  return table;
}

Result<KernelSymbols> KernelSymbols::load(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse(*text);
}

bool KernelSymbols::covers(std::uint64_t addr) const {
  return !entries_.empty() && addr >= entries_.front().addr &&
         (addr <= entries_.back().addr || addr - entries_.back().addr < kLastSymbolReach);
}

std::optional<KernelSymbol> KernelSymbols::find(std::uint64_t addr) const {
  if (!covers(addr)) return std::nullopt;
  auto after = std::upper_bound(entries_.begin(), entries_.end(), addr,
                                [](std::uint64_t a, const Entry& e) { return a < e.addr; });
  const Entry& e = *std::prev(after);
  return KernelSymbol{names_.c_str() + e.name, modules_[e.module]};
}

std::size_t KernelSymbols::memory_bytes() const {
  std::size_t bytes = entries_.capacity() * sizeof(Entry) + names_.capacity();
  for (const std::string& m : modules_) bytes += sizeof m + m.capacity();
  return bytes;
}

}  // namespace perfwatch::collector
