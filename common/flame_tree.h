#pragma once
// A profile as a call tree: the JSON shape d3-flame-graph and the dashboard read
// ({"name","kind","module","value","children":[...]}), also printed by `perfwatch flame --format json`.
#include <nlohmann/json.hpp>

#include "common/profile.h"

namespace perfwatch::profile {

// value is inclusive (the node's samples plus its children's); children sorted by name. Nodes whose
// value is below min_value are left out (their samples stay in their parent's value): a frame of
// 0.01% of the total is narrower than a pixel, and a long range has tens of thousands of them.
nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name = "all", std::uint64_t min_value = 0);

// The differential tree of two profiles of the same code, frames matched by (kind, name, module).
// Widths are the comparison's: value is its inclusive count; base is the base's inclusive count;
// delta = value - base * (comparison total / base total), so each side is normalized to its own total
// and a frame whose share did not change has delta 0 (growth > 0, shrink < 0). Frames that exist only in
// the base have value 0 and a negative delta.
// min_value prunes as in to_flame_tree, by the larger of value and the normalized base.
nlohmann::json to_diff_tree(const Profile& base, const Profile& comparison, const std::string& root_name = "all",
                            std::uint64_t min_value = 0);

// The same trees as JSON text, written directly (the dashboard's large responses).
std::string to_flame_tree_text(const Profile& profile, const std::string& root_name, std::uint64_t min_value);
std::string to_diff_tree_text(const Profile& base, const Profile& comparison, const std::string& root_name,
                              std::uint64_t min_value);

}  // namespace perfwatch::profile
