"""The hugetlb pool's knobs (mm/hugetlb.c): /sys/kernel/mm/hugepages/hugepages-2048kB/* and the
node0 copy under /sys/devices/system/node (hugetlb_sysfs_init, hugetlb_register_node), and
/proc/sys/vm/nr_hugepages, nr_hugepages_mempolicy and nr_overcommit_hugepages (hugetlb_table).
One NUMA node, so the per-node and mempolicy variants act on the whole pool. The x86-64 CPU the
emulator models has no 1 GiB pages (no pdpe1gb), so 2 MiB is the only hstate Linux would register."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.sysctl import ULONG_MAX, proc_doulongvec_minmax

HSTATE_ATTRS = ('nr_hugepages', 'nr_hugepages_mempolicy', 'free_hugepages', 'resv_hugepages',
                'surplus_hugepages', 'nr_overcommit_hugepages')
NODE_ATTRS = ('nr_hugepages', 'free_hugepages', 'surplus_hugepages')


def kstrtoul(data):
    """kstrtoul(buf, 10): an optional '+', decimal digits, at most one trailing newline; EINVAL
    otherwise, ERANGE past ULONG_MAX."""
    s = bytes(data).split(b'\0', 1)[0]
    if s.endswith(b'\n'):
        s = s[:-1]
    if s.startswith(b'+'):
        s = s[1:]
    if not s or not s.isdigit():
        raise FsError(errno.EINVAL)
    v = int(s)
    if v > ULONG_MAX:
        raise FsError(errno.ERANGE)
    return v


def nr_hugepages_store(h, data):
    """nr_hugepages_store_common: resize the persistent pool."""
    h.set_max_huge_pages(kstrtoul(data))


def nr_overcommit_hugepages_store(h, data):
    """nr_overcommit_hugepages_store: how many surplus pages may exist."""
    h.nr_overcommit_huge_pages = kstrtoul(data)


def hugetlb_sysctl_handler(h, data):
    """hugetlb_sysctl_handler: echo N > /proc/sys/vm/nr_hugepages (a blank write changes nothing)."""
    v = proc_doulongvec_minmax(data)
    if v is not None:
        h.set_max_huge_pages(v)


def hugetlb_overcommit_handler(h, data):
    """hugetlb_overcommit_handler: echo N > /proc/sys/vm/nr_overcommit_hugepages."""
    v = proc_doulongvec_minmax(data)
    if v is not None:
        h.nr_overcommit_huge_pages = v


def _hstate_attr(h, name):
    """(show, store) of one attribute of the hstate's kobject."""
    show = {'nr_hugepages': lambda: h.nr_huge_pages,
            'nr_hugepages_mempolicy': lambda: h.nr_huge_pages,
            'free_hugepages': lambda: h.free_huge_pages,
            'resv_hugepages': lambda: h.resv_huge_pages,
            'surplus_hugepages': lambda: h.surplus_huge_pages,
            'nr_overcommit_hugepages': lambda: h.nr_overcommit_huge_pages}[name]
    store = {'nr_hugepages': nr_hugepages_store, 'nr_hugepages_mempolicy': nr_hugepages_store,
             'nr_overcommit_hugepages': nr_overcommit_hugepages_store}.get(name)
    return (lambda: '%d\n' % show()), (None if store is None else lambda d: store(h, d))


def hugetlb_sysfs_init(k):
    """Publish the hstate's directory in /sys/kernel/mm/hugepages and node0's, with Linux's modes."""
    h = k.mmsvc.hstate
    if h is None:
        return
    for base, names in (('/sys/kernel/mm/hugepages/', HSTATE_ATTRS),
                        ('/sys/devices/system/node/node0/hugepages/', NODE_ATTRS)):
        for name in names:
            show, store = _hstate_attr(h, name)
            k.vfs.register_synth(base + h.name + '/' + name, show, store, 0o644 if store else 0o444)


def hugetlb_sysctl_init(k):
    """The hugetlb entries of /proc/sys/vm."""
    h = k.mmsvc.hstate
    if h is None:
        return
    reg = k.vfs.register_synth
    reg('/proc/sys/vm/nr_hugepages', lambda: '%d\n' % h.max_huge_pages, lambda d: hugetlb_sysctl_handler(h, d))
    reg('/proc/sys/vm/nr_hugepages_mempolicy', lambda: '%d\n' % h.max_huge_pages,
        lambda d: hugetlb_sysctl_handler(h, d))
    reg('/proc/sys/vm/nr_overcommit_hugepages', lambda: '%d\n' % h.nr_overcommit_huge_pages,
        lambda d: hugetlb_overcommit_handler(h, d))
