// The probe families' states: names, texts, and why an operation is not measured.
#include "common/probe_state.h"

#include <gtest/gtest.h>

#include "common/profile.h"

namespace perfwatch::profile {
namespace {

TEST(ProbeStateTest, NamesRoundTrip) {
  for (ProbeFamily f : all_probe_families) {
    ProbeFamily parsed{};
    ASSERT_TRUE(parse_probe_family(to_string(f), parsed)) << to_string(f);
    EXPECT_EQ(parsed, f);
  }
  for (ProbeStatus s : all_probe_statuses) {
    ProbeStatus parsed{};
    ASSERT_TRUE(parse_probe_status(to_string(s), parsed)) << to_string(s);
    EXPECT_EQ(parsed, s);
  }
  ProbeFamily f{};
  EXPECT_FALSE(parse_probe_family("gpu", f));
}

TEST(ProbeStateTest, EveryFamilyHasAStateOffAtFirst) {
  ProbeStates states;
  ASSERT_EQ(states.list().size(), all_probe_families.size());
  for (std::size_t i = 0; i < all_probe_families.size(); ++i) {
    EXPECT_EQ(states.list()[i].family, all_probe_families[i]);
    EXPECT_EQ(states.list()[i].text(), "off");
  }
  states.set(ProbeFamily::llc, ProbeStatus::unsupported, "hardware cache events unavailable");
  EXPECT_EQ(states[ProbeFamily::llc].text(), "unsupported: hardware cache events unavailable");
}

TEST(ProbeStateTest, AnOperationIsNotMeasuredWhenItsFamilyMeasuresNothing) {
  ProbeStates states;
  states.set(ProbeFamily::latency_python, ProbeStatus::failed, "the kernel rejected python_entry: too large");
  states.set(ProbeFamily::latency_uprobe, ProbeStatus::degraded, "uprobes; 1 could not attach");
  states.set(ProbeFamily::statsd, ProbeStatus::running, "UDP 127.0.0.1:8125");
  EXPECT_EQ(not_measured(OperationSource::python, states.list()),
            "not measured: latency_python failed: the kernel rejected python_entry: too large");
  EXPECT_EQ(not_measured(OperationSource::uprobe, states.list()), std::nullopt) << "degraded still measures";
  EXPECT_EQ(not_measured(OperationSource::statsd, states.list()), std::nullopt);
  EXPECT_EQ(not_measured(OperationSource::syscall, states.list()), "not measured: latency_syscall off");
  EXPECT_EQ(not_measured(OperationSource::python, {}), std::nullopt) << "nothing known, nothing said";
}

}  // namespace
}  // namespace perfwatch::profile
