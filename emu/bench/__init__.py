"""The benchmarks behind `faultlab bench`: each prints ratios measured in one run and fails when a check fails."""
