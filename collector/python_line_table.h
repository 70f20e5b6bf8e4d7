#pragma once
// The source line of an instruction, from a code object's line table, as CPython's own
// PyCode_Addr2Line computes it. Pure: the table's bytes are read from the process beforehand.
#include <cstdint>
#include <optional>
#include <span>

#include "collector/python_layout.h"

namespace perfwatch::collector {

// lasti: the instruction's index in code units (2 bytes); negative before the first instruction,
// which CPython attributes to firstlineno. nullopt when the table gives the instruction no line
// (or is malformed, or ends before it).
std::optional<int> python_line(LineTableFormat format, std::span<const std::uint8_t> table, int firstlineno, int lasti);

}  // namespace perfwatch::collector
