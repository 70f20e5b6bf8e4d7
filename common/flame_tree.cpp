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

// Writes the tree as JSON text directly: a long range has tens of thousands of nodes, and building a
// json object per node costs several times more than the text. Frame strings are escaped once.
struct Emit {
  const std::vector<Frame>& frames;
  bool diff = false;
  double base_scale = 0;  // comparison total / base total
  std::uint64_t min_value = 0;
  std::vector<std::string> escaped;  // per frame: "name":..,"kind":..,"module":..

  Emit(const std::vector<Frame>& f, bool d, double scale, std::uint64_t min) : frames(f), diff(d), base_scale(scale), min_value(min) {
    escaped.reserve(frames.size());
    for (const Frame& frame : frames) escaped.push_back(fields(frame.name, std::string(to_string(frame.kind)), frame.module));
  }

  static std::string quoted(const std::string& text) {
    return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  static std::string fields(const std::string& name, const std::string& kind, const std::string& module) {
    return "\"name\":" + quoted(name) + ",\"kind\":" + quoted(kind) + ",\"module\":" + quoted(module);
  }

  bool kept(const Node& n) const {
    return std::max(static_cast<double>(n.value[0]), static_cast<double>(n.value[1]) * base_scale) >=
           static_cast<double>(min_value);
  }

  void write(const Node& node, const std::string* root_name, std::string& out) const {
    out += '{';
    out += root_name ? fields(*root_name, "root", "") : escaped[node.frame];
    out += ",\"value\":" + std::to_string(node.value[0]);
    if (diff) {
      out += ",\"base\":" + std::to_string(node.value[1]);
      out += ",\"delta\":" + nlohmann::json(static_cast<double>(node.value[0]) - static_cast<double>(node.value[1]) * base_scale).dump();
    }
    std::vector<const Node*> kids;
    for (const auto& [id, child] : node.children)
      if (kept(*child)) kids.push_back(child.get());
    std::sort(kids.begin(), kids.end(),
              [&](const Node* a, const Node* b) { return frames[a->frame].name < frames[b->frame].name; });
    out += ",\"children\":[";
    for (std::size_t i = 0; i < kids.size(); ++i) {
      if (i) out += ',';
      write(*kids[i], nullptr, out);
    }
    out += "]}";
  }

  std::string operator()(const Node& root, const std::string& root_name) const {
    std::string out;
    write(root, &root_name, out);
    return out;
  }
};

}  // namespace

std::string to_flame_tree_text(const Profile& profile, const std::string& root_name, std::uint64_t min_value) {
  Node root;
  add_stacks(root, profile, 0, nullptr);
  return Emit(profile.frames, false, 0, min_value)(root, root_name);
}

nlohmann::json to_flame_tree(const Profile& profile, const std::string& root_name, std::uint64_t min_value) {
  return nlohmann::json::parse(to_flame_tree_text(profile, root_name, min_value));
}

std::string to_diff_tree_text(const Profile& base, const Profile& comparison, const std::string& root_name,
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
  return Emit(frames, true, scale, min_value)(root, root_name);
}

nlohmann::json to_diff_tree(const Profile& base, const Profile& comparison, const std::string& root_name,
                            std::uint64_t min_value) {
  return nlohmann::json::parse(to_diff_tree_text(base, comparison, root_name, min_value));
}

}  // namespace perfwatch::profile
