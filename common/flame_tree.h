#pragma once
// A profile as a call tree: the JSON shape d3-flame-graph and the dashboard read
// ({"name","kind","module","value","children":[...]}), also printed by `perfwatch flame --format json`.
#include <nlohmann/json.hpp>

#include "common/profile.h"

namespace perfwatch::profile {

// value is inclusive (the node's samples plus its children's); children sorted by name.
nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name = "all");

// The differential tree of two profiles of the same code, frames matched by (kind, name, module).
// Widths are the comparison's: value is its inclusive count; base is the base's inclusive count;
// delta = value - base * (comparison total / base total), so each side is normalized to its own total
// and a frame whose share did not change has delta 0 (growth > 0, shrink < 0). Frames that exist only in
// the base have value 0 and a negative delta.
nlohmann::json to_diff_tree(const Profile& base, const Profile& comparison, const std::string& root_name = "all");

}  // namespace perfwatch::profile
