#include "common/utf8.h"

#include <cstdint>

namespace perfwatch::utf8 {
namespace {

// The length of the valid sequence at text[i], 0 when the byte there starts none (or is NUL).
std::size_t sequence_at(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  const std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (c == 0 || len == 0 || i + len > text.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2) return 0;
  if (len == 1) return 1;
  // Overlong encodings, surrogates and code points past U+10FFFF are invalid, as PostgreSQL says.
  std::uint32_t cp = c & (0xFF >> (len + 1));
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
  static constexpr std::uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= min_cp[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF) ? len : 0;
}

}  // namespace

std::size_t sequence_length(std::string_view text) { return text.empty() ? 0 : sequence_at(text, 0); }

bool valid(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = sequence_at(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string sanitize(std::string_view text) {
  static constexpr std::string_view replacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (const std::size_t len = sequence_at(text, i)) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out.append(replacement);
      ++i;
    }
  }
  return out;
}

}  // namespace perfwatch::utf8
