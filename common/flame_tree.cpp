#include "flame_tree.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>

namespace perfwatch::profile {
namespace {

// Counts per side: index 0 is the profile itself (or the comparison), 1 the diff's base.
struct Node {
  std::uint32_t frame = 0;
  std::uint64_t value[2] = {0, 0};
  std::map<std::uint32_t, std::unique_ptr<Node>> children;  // by frame id
};

// frame_map: the profile's frame ids in the tree's frame table; null when they are the same.
void add_stacks(Node& root, const Profile& profile, int side, const std::vector<std::uint32_t>* frame_map) {
  for (const Stack& s : profile.stacks) {
    Node* node = &root;
    node->value[side] += s.count;
    for (std::uint32_t id : s.frame_ids) {
      const std::uint32_t frame = frame_map ? (*frame_map)[id] : id;
      auto& child = node->children[frame];
      if (!child) {
        child = std::make_unique<Node>();
        child->frame = frame;
      }
      node = child.get();
      node->value[side] += s.count;
    }
  }
}

struct Emit {
  const std::vector<Frame>& frames;
  bool diff = false;
  double base_scale = 0;  // comparison total / base total
  std::uint64_t min_value = 0;

  bool kept(const Node& n) const {
    return std::max(static_cast<double>(n.value[0]), static_cast<double>(n.value[1]) * base_scale) >=
           static_cast<double>(min_value);
  }

  nlohmann::json operator()(const Node& node, const std::string* root_name) const {
    nlohmann::json out;
    if (root_name) {
      out["name"] = *root_name;
      out["kind"] = "root";
      out["module"] = "";
    } else {
      const Frame& f = frames[node.frame];
      out["name"] = f.name;
      out["kind"] = to_string(f.kind);
      out["module"] = f.module;
    }
    out["value"] = node.value[0];
    if (diff) {
      out["base"] = node.value[1];
      out["delta"] = static_cast<double>(node.value[0]) - static_cast<double>(node.value[1]) * base_scale;
    }
    std::vector<const Node*> kids;
    for (const auto& [id, child] : node.children)
      if (kept(*child)) kids.push_back(child.get());
    std::sort(kids.begin(), kids.end(),
              [&](const Node* a, const Node* b) { return frames[a->frame].name < frames[b->frame].name; });
    nlohmann::json children = nlohmann::json::array();
    for (const Node* k : kids) children.push_back((*this)(*k, nullptr));
    out["children"] = std::move(children);
    return out;
  }
};

}  // namespace

nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name, std::uint64_t min_value) {
  Node root;
  add_stacks(root, profile, 0, nullptr);
  return Emit{profile.frames, false, 0, min_value}(root, &root_name);
}

nlohmann::json to_diff_tree(const Profile& base, const Profile& comparison, const std::string& root_name,
                            std::uint64_t min_value) {
  // One frame table for both sides, so the same function is one node.
  std::vector<Frame> frames;
  std::map<std::tuple<FrameKind, std::string, std::string>, std::uint32_t> index;
  auto map_frames = [&](const Profile& p) {
    std::vector<std::uint32_t> out;
    for (const Frame& f : p.frames) {
      auto [it, fresh] = index.emplace(std::make_tuple(f.kind, f.name, f.module), static_cast<std::uint32_t>(frames.size()));
      if (fresh) frames.push_back(f);
      out.push_back(it->second);
    }
    return out;
  };
  const std::vector<std::uint32_t> comparison_map = map_frames(comparison);
  const std::vector<std::uint32_t> base_map = map_frames(base);
  Node root;
  add_stacks(root, comparison, 0, &comparison_map);
  add_stacks(root, base, 1, &base_map);
  const double scale = root.value[1] == 0 ? 0.0 : static_cast<double>(root.value[0]) / static_cast<double>(root.value[1]);
  return Emit{frames, true, scale, min_value}(root, &root_name);
}

}  // namespace perfwatch::profile
