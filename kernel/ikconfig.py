"""/proc/config.gz (kernel/configs.c, CONFIG_IKCONFIG_PROC): the configuration of the kernel faultlab
emulates, gzip-compressed, with the options that describe what it models: 4-level page tables on
x86-64 (CONFIG_PGTABLE_LEVELS=4, no CONFIG_X86_5LEVEL: the page walk faultlab's CPU does), hugetlbfs
and the hugetlb cgroup controller, System V IPC, userfaultfd, io_uring. Scripts read it the way the mm
selftests' va_high_addr_switch.sh does (gzip -dcfq /proc/config.gz | grep PGTABLE_LEVELS)."""
import gzip

KERNEL_CONFIG = '''#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.12.0 Kernel Configuration
#
CONFIG_64BIT=y
CONFIG_X86_64=y
CONFIG_MMU=y
CONFIG_PGTABLE_LEVELS=4
# CONFIG_X86_5LEVEL is not set
CONFIG_IKCONFIG=y
CONFIG_IKCONFIG_PROC=y
CONFIG_SYSVIPC=y
CONFIG_CGROUPS=y
CONFIG_CGROUP_HUGETLB=y
# CONFIG_MEMCG is not set
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_HUGETLBFS=y
CONFIG_HUGETLB_PAGE=y
CONFIG_MEMFD_CREATE=y
CONFIG_USERFAULTFD=y
CONFIG_IO_URING=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_EVENTFD=y
'''


def kernel_config_data():
    """The compressed configuration (mtime 0: the same bytes at every run)."""
    return gzip.compress(KERNEL_CONFIG.encode(), mtime=0)


def register_ikconfig(k):
    """ikconfig_init: /proc/config.gz, world-readable."""
    data = kernel_config_data()
    k.vfs.register_synth('/proc/config.gz', lambda: data, None, 0o444)
