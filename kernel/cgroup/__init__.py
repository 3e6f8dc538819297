"""Control groups (kernel/cgroup): the cgroup v2 hierarchy and filesystem, and the hugetlb controller."""
