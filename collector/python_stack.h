#pragma once
// The Python part of one sample, as the walker (probes/pystack.bpf.h) recorded it; shared by the
// sampler, which reads it, and the window builder, which merges it (no libbpf needed here).
#include <vector>

#include "probes/pystack.h"

namespace perfwatch::collector {

struct RawPythonStack {
  bool lost = false;       // the thread runs Python, but its frames could not be recorded
  bool truncated = false;  // deeper than the depth limit: the root-most frames are missing
  std::vector<py_frame> frames;  // leaf first; empty when the sample has none
  std::vector<bool> entry;       // per frame: the first frame of a C-level call of the eval loop
};

}  // namespace perfwatch::collector
