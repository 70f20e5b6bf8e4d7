#include "flame_tree.h"

#include <algorithm>
#include <map>
#include <memory>

namespace perfwatch::profile {
namespace {

struct Node {
  std::uint32_t frame = 0;
  std::uint64_t value = 0;
  std::map<std::uint32_t, std::unique_ptr<Node>> children;  // by frame id
};

nlohmann::json to_json(const Node& node, const Profile& profile, const std::string* root_name) {
  nlohmann::json out;
  if (root_name) {
    out["name"] = *root_name;
    out["kind"] = "root";
    out["module"] = "";
  } else {
    const Frame& f = profile.frames[node.frame];
    out["name"] = f.name;
    out["kind"] = to_string(f.kind);
    out["module"] = f.module;
  }
  out["value"] = node.value;
  std::vector<const Node*> kids;
  for (const auto& [id, child] : node.children) kids.push_back(child.get());
  std::sort(kids.begin(), kids.end(), [&](const Node* a, const Node* b) {
    return profile.frames[a->frame].name < profile.frames[b->frame].name;
  });
  nlohmann::json children = nlohmann::json::array();
  for (const Node* k : kids) children.push_back(to_json(*k, profile, nullptr));
  out["children"] = std::move(children);
  return out;
}

}  // namespace

nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name) {
  Node root;
  for (const Stack& s : profile.stacks) {
    Node* node = &root;
    node->value += s.count;
    for (std::uint32_t id : s.frame_ids) {
      auto& child = node->children[id];
      if (!child) {
        child = std::make_unique<Node>();
        child->frame = id;
      }
      node = child.get();
      node->value += s.count;
    }
  }
  return to_json(root, profile, &root_name);
}

}  // namespace perfwatch::profile
