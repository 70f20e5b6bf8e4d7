#pragma once
// Merging a sample's CPython frames with its native user frames, so that a Python process's
// flame graph reads like py-spy's: Python functions by name, C code called from Python beneath
// the Python frame that called it, and no frames made up by a failed unwind. Pure logic.
//
// The native stack comes from a frame-pointer unwind. Its leaf frame is always right; each
// further frame is right only if every function between it and the leaf keeps a frame pointer.
// CPython is usually built without them (Debian's, pyenv's), so past the leaf the native stack of
// a Python process is mostly junk: the merge keeps only the reliable part of it.
//
//  - Every native frame reliable (an interpreter built with frame pointers), and as many eval-loop
//    frames as Python segments (runs of Python frames, each begun by an entry frame): each
//    eval-loop frame is replaced by its segment, the interpreter's other frames are dropped, and
//    native frames of other binaries (C extensions, the embedding program) stay where they are.
//  - Otherwise: the Python frames, root first, then the reliable native frames from the leaf up to
//    the first frame of the interpreter (C extension or library code called from Python).
//  - A stack deeper than the walker's limit starts with a "[truncated python stack]" frame; one
//    whose frames were lost starts with "[python stack lost]".
#include <vector>

#include "common/profile.h"

namespace perfwatch::daemon {

struct NativeFrame {
  profile::Frame frame;
  bool frame_pointers = false;  // its binary keeps frame pointers: the frame after it is reliable
  bool interpreter = false;     // in the binary running the interpreter (the one with _PyRuntime)
  bool eval_loop = false;       // the interpreter's eval loop (_PyEval_EvalFrameDefault)
};

struct PythonFrame {
  profile::Frame frame;
  bool entry = false;  // the first frame of an eval-loop call
};

struct PythonSampleStack {
  std::vector<NativeFrame> native;  // leaf first
  std::vector<PythonFrame> python;  // leaf first
  bool truncated = false;
  bool lost = false;
};

inline const profile::Frame kTruncatedPythonFrame{profile::FrameKind::python, "[truncated python stack]", ""};
inline const profile::Frame kLostPythonFrame{profile::FrameKind::python, "[python stack lost]", ""};

// The sample's user frames, root first.
std::vector<profile::Frame> merge_python_stack(const PythonSampleStack& stack);

}  // namespace perfwatch::daemon
