#!/usr/bin/env python3
"""Prints "SUITE.TEST: where and what" for each failed test of a gtest XML report (--gtest_output=xml)."""
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    failure = case.find("failure")
    if failure is None:
        continue
    lines = [line.strip() for line in failure.get("message", "").splitlines() if line.strip()]
    print(f"{case.get('classname')}.{case.get('name')}: {' '.join(lines[:3])[:240]}")
