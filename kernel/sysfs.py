"""The files the kernel publishes in /sys (its sysfs is mounted there by kernel/fs/rootfs.py)."""
from faultlab.kernel.mm.hugetlb_sysfs import hugetlb_sysfs_init
from faultlab.kernel.mm.thp_sysfs import thp_sysfs_init


def register_sysfs(k):
    """Publish the kernel objects' attributes in the guest's /sys."""
    hugetlb_sysfs_init(k)
    thp_sysfs_init(k)
