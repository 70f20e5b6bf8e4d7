#pragma once
// A profile as a call tree: the JSON shape d3-flame-graph and the dashboard read
// ({"name","kind","module","value","children":[...]}), also printed by `perfwatch flame --format json`.
#include <nlohmann/json.hpp>

#include "common/profile.h"

namespace perfwatch::profile {

// value is inclusive (the node's samples plus its children's); children sorted by name.
nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name = "all");

}  // namespace perfwatch::profile
