#pragma once
// Text from the system (paths, command lines, symbol names, Python strings) is any bytes; what stores or
// shows it (PostgreSQL text, JSON, RE2 in UTF-8 mode) needs valid UTF-8 without NUL.
#include <string>
#include <string_view>

namespace perfwatch::utf8 {

// The length of the valid UTF-8 sequence text starts with (1 to 4); 0 when it starts with none, or is
// empty, or starts with NUL.
std::size_t sequence_length(std::string_view text);
// Whether text is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without NUL.
bool valid(std::string_view text);
// text with each byte that is not part of valid UTF-8, and each NUL, replaced by U+FFFD.
std::string sanitize(std::string_view text);

}  // namespace perfwatch::utf8
