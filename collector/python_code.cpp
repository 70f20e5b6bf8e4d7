#include "collector/python_code.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>

#include "collector/python_line_table.h"

namespace perfwatch::collector {
namespace {

constexpr std::uint64_t kMaxStringChars = 4096;
constexpr std::uint64_t kMaxLineTableBytes = 1 << 20;

template <typename T>
T field(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  T value{};
  if (offset + sizeof(T) <= bytes.size()) std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

void append_utf8(std::string& out, std::uint32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | ((c >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
  }
}

class Reader {
 public:
  Reader(ProcessMemory& memory, std::int32_t pid, const PythonObjectLayout& layout)
      : memory_(memory), pid_(pid), layout_(layout) {}

  std::optional<std::vector<std::uint8_t>> bytes(std::uint64_t addr, std::size_t size) {
    std::vector<std::uint8_t> out(size);
    if (addr == 0 || (size > 0 && !memory_.read(pid_, addr, out.data(), size))) return std::nullopt;
    return out;
  }

  // A str object: compact strings only (every identifier and file name is one), as UTF-8.
  std::optional<std::string> string(std::uint64_t addr) {
    auto header = bytes(addr, layout_.unicode_compact_data);
    if (!header) return std::nullopt;
    auto length = field<std::uint64_t>(*header, layout_.unicode_length);
    auto state = field<std::uint32_t>(*header, layout_.unicode_state);
    // state: interned:2, kind:3, compact:1, ascii:1 (the same bits in 3.10 to 3.13)
    unsigned kind = (state >> 2) & 7;
    bool compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
    if (!compact || length > kMaxStringChars || (kind != 1 && kind != 2 && kind != 4)) return std::nullopt;
    if (ascii && kind != 1) return std::nullopt;
    std::uint64_t data = addr + (ascii ? layout_.unicode_ascii_data : layout_.unicode_compact_data);
    auto chars = bytes(data, length * kind);
    if (!chars) return std::nullopt;
    std::string out;
    out.reserve(length);
    for (std::uint64_t i = 0; i < length; ++i) {
      std::uint32_t c = kind == 1   ? (*chars)[i]
                        : kind == 2 ? field<std::uint16_t>(*chars, i * 2)
                                    : field<std::uint32_t>(*chars, i * 4);
      if (c > 0x10ffff) return std::nullopt;
      append_utf8(out, c);
    }
    return out;
  }

  std::optional<std::vector<std::uint8_t>> bytes_object(std::uint64_t addr) {
    auto header = bytes(addr, layout_.bytes_data);
    if (!header) return std::nullopt;
    auto size = field<std::int64_t>(*header, layout_.bytes_size);
    if (size < 0 || static_cast<std::uint64_t>(size) > kMaxLineTableBytes) return std::nullopt;
    return bytes(addr + layout_.bytes_data, static_cast<std::size_t>(size));
  }

 private:
  ProcessMemory& memory_;
  std::int32_t pid_;
  const PythonObjectLayout& layout_;
};

}  // namespace

bool LiveProcessMemory::read(std::int32_t pid, std::uint64_t addr, void* out, std::size_t size) {
  iovec local{out, size};
  iovec remote{reinterpret_cast<void*>(addr), size};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(size);
}

std::variant<PythonCode, PythonCodeError> read_python_code(ProcessMemory& memory, std::int32_t pid,
                                                           const PythonInterpreter& interpreter, std::uint64_t code,
                                                           std::uint32_t tag) {
  const py_layout& w = interpreter.layout->walker;
  const PythonObjectLayout& o = interpreter.layout->objects;
  Reader reader(memory, pid, o);
  auto object = reader.bytes(code, o.code_size);
  if (!object) return PythonCodeError::unreadable;
  constexpr std::size_t kObjectType = 8;  // PyObject.ob_type, after ob_refcnt
  if (interpreter.code_type != 0 && field<std::uint64_t>(*object, kObjectType) != interpreter.code_type)
    return PythonCodeError::wrong_type;
  auto at = [&](std::uint16_t offset) { return std::size_t{w.code_tag_base} + offset; };
  auto firstlineno = field<std::uint32_t>(*object, at(w.code_firstlineno));
  auto filename = field<std::uint64_t>(*object, at(w.code_filename));
  auto name = field<std::uint64_t>(*object, at(w.code_name));
  auto linetable = field<std::uint64_t>(*object, at(w.code_linetable));
  if (py_code_tag(firstlineno, filename, name, linetable) != tag) return PythonCodeError::reused;

  PythonCode out;
  out.firstlineno = static_cast<int>(firstlineno);
  auto qualname = reader.string(o.code_qualname == PY_ABSENT ? name : field<std::uint64_t>(*object, o.code_qualname));
  auto file = reader.string(filename);
  auto table = reader.bytes_object(linetable);
  if (!qualname || !file || !table) return PythonCodeError::malformed;
  out.qualname = std::move(*qualname);
  out.filename = std::move(*file);
  out.linetable = std::move(*table);
  return out;
}

std::string python_location(const PythonCode& code, const PythonLayout& layout, std::int32_t lasti) {
  // An instruction without a line (cleanup code) is shown at the function's first line.
  int line = python_line(layout.objects.line_table, code.linetable, code.firstlineno, lasti).value_or(code.firstlineno);
  return code.filename + ":" + std::to_string(line);
}

PythonSymbolizer::PythonSymbolizer(ProcessMemory& memory, std::size_t max_bytes)
    : memory_(memory), max_bytes_(max_bytes) {}

void PythonSymbolizer::add_process(ProcessKey key, const PythonInterpreter& interpreter) {
  Process& process = processes_[key];
  process.interpreter = interpreter;
  process.retired = false;
}

const PythonInterpreter* PythonSymbolizer::interpreter(ProcessKey key) const {
  auto it = processes_.find(key);
  return it == processes_.end() ? nullptr : &it->second.interpreter;
}

void PythonSymbolizer::retire_process(ProcessKey key) {
  if (auto it = processes_.find(key); it != processes_.end()) it->second.retired = true;
}

void PythonSymbolizer::release_retired() {
  std::erase_if(processes_, [this](const auto& item) {
    if (!item.second.retired) return false;
    for (const auto& [key, entry] : item.second.code) {
      bytes_ -= entry.bytes;
      uses_.erase(entry.use);
    }
    return true;
  });
}

const PythonSymbolizer::Entry& PythonSymbolizer::lookup(ProcessKey key, Process& process, const py_frame& frame) {
  auto [it, inserted] = process.code.try_emplace({frame.code, frame.tag});
  Entry& entry = it->second;
  if (!inserted) {
    ++counters_.cache_hits;
    uses_.splice(uses_.begin(), uses_, entry.use);
    return entry;
  }
  ++counters_.reads;
  auto read = read_python_code(memory_, key.pid, process.interpreter, frame.code, frame.tag);
  if (auto* code = std::get_if<PythonCode>(&read)) {
    entry.code = std::make_shared<const PythonCode>(std::move(*code));
  } else if (std::get<PythonCodeError>(read) == PythonCodeError::reused) {
    ++counters_.reused;
  } else {
    ++counters_.unreadable;
  }
  // The map node, the order's node and the shared code's control block, roughly; then what was copied.
  constexpr std::size_t kEntryOverhead = 160;
  entry.bytes = kEntryOverhead + (entry.code ? sizeof(PythonCode) + entry.code->qualname.capacity() +
                                                   entry.code->filename.capacity() + entry.code->linetable.capacity()
                                             : 0);
  entry.use = uses_.insert(uses_.begin(), Use{key, it->first});
  bytes_ += entry.bytes;
  evict_beyond_bound();
  return entry;
}

// Least recently used first, whichever process it belongs to; never the entry just used (the first).
void PythonSymbolizer::evict_beyond_bound() {
  while (bytes_ > max_bytes_ && uses_.size() > 1) {
    const Use oldest = uses_.back();
    auto process = processes_.find(oldest.process);
    auto entry = process->second.code.find(oldest.code);
    bytes_ -= entry->second.bytes;
    process->second.code.erase(entry);
    uses_.pop_back();
    ++counters_.evictions;
  }
}

void PythonSymbolizer::prefetch(ProcessKey key, std::span<const py_frame> frames) {
  auto it = processes_.find(key);
  if (it == processes_.end()) return;
  for (const py_frame& f : frames) lookup(key, it->second, f);
}

std::vector<profile::Frame> PythonSymbolizer::symbolize(ProcessKey key, std::span<const py_frame> frames) {
  std::vector<profile::Frame> out;
  out.reserve(frames.size());
  auto it = processes_.find(key);
  for (const py_frame& f : frames) {
    const Entry* entry = it == processes_.end() ? nullptr : &lookup(key, it->second, f);
    if (entry && entry->code)
      out.push_back({profile::FrameKind::python, entry->code->qualname,
                     python_location(*entry->code, *it->second.interpreter.layout, f.lasti)});
    else
      out.push_back({profile::FrameKind::python, "[unknown python code]", ""});
  }
  return out;
}

PythonSymbolizerStats PythonSymbolizer::stats() const {
  PythonSymbolizerStats s = counters_;
  s.processes = processes_.size();
  s.code_objects = uses_.size();
  s.code_bytes = bytes_;
  return s;
}

}  // namespace perfwatch::collector
