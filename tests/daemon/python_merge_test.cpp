#include "daemon/python_merge.h"

#include <gtest/gtest.h>

namespace perfwatch::daemon {
namespace {

enum Traits : unsigned { none = 0, fp = 1, interp = 2, eval = 4 };

NativeFrame native(const std::string& name, unsigned traits) {
  return {{profile::FrameKind::native, name, traits & interp ? "/usr/bin/python3.11" : "/usr/lib/ext.so"},
          (traits & fp) != 0, (traits & interp) != 0, (traits & eval) != 0};
}

PythonFrame python(const std::string& name, bool entry = false) {
  return {{profile::FrameKind::python, name, "app.py:1"}, entry};
}

std::string merged(const PythonSampleStack& stack) {
  std::string out;
  for (const profile::Frame& f : merge_python_stack(stack)) out += (out.empty() ? "" : ";") + f.name;
  return out;
}

// Python frames of `<module> -> main -> handler`, all in one eval-loop call (3.11+), leaf first.
std::vector<PythonFrame> one_call() { return {python("handler"), python("main"), python("<module>", true)}; }

TEST(PythonMerge, WithoutFramePointersTheEvalLoopLeafAndTheJunkAfterItGo) {
  // Debian's python3.11: the leaf is right, the rest was read through a clobbered %rbp.
  PythonSampleStack s{{native("_PyEval_EvalFrameDefault", interp | eval), native("PyObject_Free", interp),
                       native("[unknown]+0x10", none), native("dict_dealloc", interp)},
                      one_call()};
  EXPECT_EQ(merged(s), "<module>;main;handler");
}

TEST(PythonMerge, ALibraryLeafCalledFromPythonStaysBeneathThePythonFrames) {
  PythonSampleStack s{{native("sha256_block", none), native("junk", interp)}, one_call()};
  EXPECT_EQ(merged(s), "<module>;main;handler;sha256_block");
}

TEST(PythonMerge, AnExtensionWithFramePointersKeepsItsChainUpToTheInterpreter) {
  PythonSampleStack s{{native("ext_inner", fp), native("ext_outer", fp), native("cfunction_call", interp),
                       native("junk_after_the_interpreter", none)},
                      one_call()};
  EXPECT_EQ(merged(s), "<module>;main;handler;ext_outer;ext_inner");
}

TEST(PythonMerge, AReliableNativeStackIsInterleavedEvalLoopByEvalLoop) {
  // An embedding program built with frame pointers, an interpreter built with them, and a C
  // extension that calls back into Python: every native frame is right.
  PythonSampleStack s{{native("ext_leaf", fp), native("_PyEval_EvalFrameDefault", fp | interp | eval),
                       native("ext_call_back", fp), native("cfunction_call", fp | interp),
                       native("_PyEval_EvalFrameDefault", fp | interp | eval), native("PyRun_SimpleString", fp | interp),
                       native("run_script", fp), native("main", fp), native("__libc_start_main", none)},
                      {python("callback", true), python("outer"), python("<module>", true)}};
  EXPECT_EQ(merged(s), "__libc_start_main;main;run_script;<module>;outer;ext_call_back;callback;ext_leaf");
}

TEST(PythonMerge, EvalLoopsThatDoNotMatchThePythonCallsAreNotInterleaved) {
  // Two eval-loop frames but one Python call: the native stack cannot be trusted to interleave.
  PythonSampleStack s{{native("_PyEval_EvalFrameDefault", fp | interp | eval),
                       native("_PyEval_EvalFrameDefault", fp | interp | eval), native("main", fp)},
                      one_call()};
  EXPECT_EQ(merged(s), "<module>;main;handler");
  // A root Python frame that does not begin an eval-loop call: no segments to place.
  PythonSampleStack t{{native("_PyEval_EvalFrameDefault", fp | interp | eval), native("main", fp)},
                      {python("handler"), python("<module>")}};
  EXPECT_EQ(merged(t), "<module>;handler");
}

TEST(PythonMerge, ATruncatedStackIsMarkedAtItsRoot) {
  PythonSampleStack s{{native("_PyEval_EvalFrameDefault", fp | interp | eval), native("main", fp)},
                      {python("recurse"), python("recurse", true)},
                      /*truncated=*/true};
  EXPECT_EQ(merged(s), "[truncated python stack];recurse;recurse");
  auto frames = merge_python_stack(s);
  EXPECT_EQ(frames.front().kind, profile::FrameKind::python);
}

TEST(PythonMerge, WithoutPythonFramesOnlyTheReliableNativeFramesRemain) {
  PythonSampleStack s{{native("PyObject_Malloc", interp), native("junk", none), native("more_junk", none)}, {}};
  EXPECT_EQ(merged(s), "PyObject_Malloc");
  PythonSampleStack with_fp{{native("helper", fp), native("worker", fp), native("start_thread", none), native("x", none)},
                            {}};
  EXPECT_EQ(merged(with_fp), "start_thread;worker;helper");
  PythonSampleStack lost{{native("_PyEval_EvalFrameDefault", interp | eval), native("junk", none)}, {}, false, true};
  EXPECT_EQ(merged(lost), "[python stack lost];_PyEval_EvalFrameDefault");
  EXPECT_EQ(merged({}), "");
}

}  // namespace
}  // namespace perfwatch::daemon
