#include "daemon/python_merge.h"

#include <algorithm>

namespace perfwatch::daemon {
namespace {

// How many native frames, from the leaf, a frame-pointer unwind got right.
std::size_t reliable_count(const std::vector<NativeFrame>& native) {
  std::size_t n = native.empty() ? 0 : 1;
  while (n < native.size() && native[n - 1].frame_pointers) ++n;
  return n;
}

// The Python frames root first, split into eval-loop calls; empty when they do not split cleanly
// (the root-most frame must begin a call).
std::vector<std::vector<profile::Frame>> python_segments(const std::vector<PythonFrame>& python) {
  std::vector<std::vector<profile::Frame>> segments;
  for (auto it = python.rbegin(); it != python.rend(); ++it) {
    if (it->entry)
      segments.emplace_back();
    else if (segments.empty())
      return {};
    segments.back().push_back(it->frame);
  }
  return segments;
}

// Every native frame reliable and one eval-loop frame per segment: the frames interleaved.
bool interleave(const PythonSampleStack& stack, std::vector<profile::Frame>& out) {
  if (stack.truncated || stack.lost || stack.python.empty() || reliable_count(stack.native) != stack.native.size())
    return false;
  auto segments = python_segments(stack.python);
  auto evals = std::count_if(stack.native.begin(), stack.native.end(), [](const NativeFrame& f) { return f.eval_loop; });
  if (segments.empty() || static_cast<std::size_t>(evals) != segments.size()) return false;
  auto segment = segments.begin();
  for (auto it = stack.native.rbegin(); it != stack.native.rend(); ++it) {
    if (it->eval_loop) {
      out.insert(out.end(), segment->begin(), segment->end());
      ++segment;
    } else if (!it->interpreter) {
      out.push_back(it->frame);
    }
  }
  return true;
}

}  // namespace

std::vector<profile::Frame> merge_python_stack(const PythonSampleStack& stack) {
  std::vector<profile::Frame> out;
  if (interleave(stack, out)) return out;

  if (stack.lost) out.push_back(kLostPythonFrame);
  if (stack.truncated) out.push_back(kTruncatedPythonFrame);
  for (auto it = stack.python.rbegin(); it != stack.python.rend(); ++it) out.push_back(it->frame);

  std::size_t reliable = reliable_count(stack.native);
  // Beneath Python frames, only the code they called: up to the interpreter's first frame.
  std::size_t kept = 0;
  if (stack.python.empty())
    kept = reliable;
  else
    while (kept < reliable && !stack.native[kept].interpreter) ++kept;
  for (std::size_t i = kept; i-- > 0;) out.push_back(stack.native[i].frame);
  return out;
}

}  // namespace perfwatch::daemon
