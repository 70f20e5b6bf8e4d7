#include <gtest/gtest.h>

#include "common/log.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  perfwatch::log::route_libbpf();
  return RUN_ALL_TESTS();
}
