// Why a BPF load failed, from libbpf's warnings, as libbpf 1.x words them.
#include "collector/bpf_skeleton.h"

#include <gtest/gtest.h>

namespace perfwatch::collector {
namespace {

TEST(ExplainLoadFailureTest, TheVerifiersOwnMessageEndsARejectedProgramsLog) {
  const std::vector<std::string> warnings{
      "prog 'python_entry': BPF program load failed: Argument list too long",
      "prog 'python_entry': -- BEGIN PROG LOAD LOG --\n...\n1000: (85) call bpf_probe_read_user#112\n"
      "BPF program is too large. Processed 1000001 insn\n"
      "processed 1000001 insns (limit 1000000) max_states_per_insn 193 total_states 31227 peak_states 2118 mark_read 38\n"
      "-- END PROG LOAD LOG --",
      "prog 'python_entry': failed to load: -7",
      "failed to load object 'latency_bpf'"};
  const LoadFailure why = explain_load_failure(warnings);
  EXPECT_EQ(why.program, "python_entry");
  EXPECT_EQ(why.reason, "python_entry: Argument list too long: BPF program is too large. Processed 1000001 insn");
}

TEST(ExplainLoadFailureTest, ARelocationFailureNamesItsProgram) {
  const LoadFailure why = explain_load_failure(
      {"prog 'oncpu_sample': relo #3: insn #50 (LDX/ST/STX) unexpected mem size: got 8, exp 2",
       "prog 'oncpu_sample': relo #3: failed to patch insn #50: -22", "failed to perform CO-RE relocations: -22"});
  EXPECT_EQ(why.program, "oncpu_sample");
  EXPECT_EQ(why.reason, "oncpu_sample: relo #3: insn #50 (LDX/ST/STX) unexpected mem size: got 8, exp 2");
}

TEST(ExplainLoadFailureTest, AFailureOfNoProgramGivesTheFirstWarning) {
  const LoadFailure why = explain_load_failure({"map 'calls': failed to create: Operation not permitted(-1)",
                                                "failed to load object 'latency_bpf'"});
  EXPECT_EQ(why.program, "");
  EXPECT_EQ(why.reason, "map 'calls': failed to create: Operation not permitted(-1)");
  EXPECT_EQ(explain_load_failure({}).reason, "");
}

}  // namespace
}  // namespace perfwatch::collector
