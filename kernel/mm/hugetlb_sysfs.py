"""The hugetlb pool's knobs (mm/hugetlb.c): /sys/kernel/mm/hugepages/hugepages-2048kB/* and the
node0 copy under /sys/devices/system/node (hugetlb_sysfs_init, hugetlb_register_node), and
/proc/sys/vm/nr_hugepages, nr_hugepages_mempolicy and nr_overcommit_hugepages (hugetlb_table).
One NUMA node, so the per-node and mempolicy variants act on the whole pool. As Linux on a CPU
with pdpe1gb (this host's), the 1 GiB hstate is registered too, with an empty pool
(hugetlb.GiganticHState), after the default 2 MiB one, and has demote and demote_size (an
hstate with a smaller one to demote to, hugetlb_sysfs_add_hstate). /proc/sys/vm and /proc/meminfo
show the default hstate only."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.sysctl import ULONG_MAX, proc_doulongvec_minmax

HSTATE_ATTRS = ('nr_hugepages', 'nr_hugepages_mempolicy', 'free_hugepages', 'resv_hugepages',
                'surplus_hugepages', 'nr_overcommit_hugepages')
NODE_ATTRS = ('nr_hugepages', 'free_hugepages', 'surplus_hugepages')
DEMOTE_ATTRS = ('demote', 'demote_size')
MEMPARSE_SUFFIXES = b'KMGTPE'


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


def memparse(data):
    """memparse: a number (C base prefixes) with an optional K, M, G, T, P or E suffix; the rest of
    the text is ignored (demote_size accepts "2048kB" as it shows it)."""
    s = bytes(data).split(b'\0', 1)[0].strip()
    digits = len(s) - len(s.lstrip(b'0123456789abcdefxABCDEFX'))
    head, rest = s[:digits], s[digits:]
    try:
        v = int(head, 0) if head else 0
    except ValueError:
        v = 0
    if rest[:1].upper() and rest[:1].upper() in MEMPARSE_SUFFIXES:
        v <<= 10 * (MEMPARSE_SUFFIXES.index(rest[:1].upper()) + 1)
    return v


def nr_hugepages_store(h, data):
    """nr_hugepages_store_common: resize the persistent pool."""
    h.set_max_huge_pages(kstrtoul(data))


def nr_overcommit_hugepages_store(h, data):
    """nr_overcommit_hugepages_store: how many surplus pages may exist (EINVAL for a gigantic hstate,
    which has none)."""
    if h.gigantic:
        raise FsError(errno.EINVAL)
    h.nr_overcommit_huge_pages = kstrtoul(data)


def demote_store(h, data):
    """demote_store: demote that many free pages to the smaller size."""
    h.demote(kstrtoul(data))


def demote_size_store(h, data):
    """demote_size_store: the size free pages are demoted to."""
    h.set_demote_size(memparse(data))


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
    if name == 'demote':
        return None, lambda d: demote_store(h, d)             # write-only (HSTATE_ATTR_WO)
    if name == 'demote_size':
        return (lambda: '%dkB\n' % (h.demote_size >> 10)), lambda d: demote_size_store(h, d)
    show = {'nr_hugepages': lambda: h.nr_huge_pages,
            'nr_hugepages_mempolicy': lambda: h.nr_huge_pages,
            'free_hugepages': lambda: h.free_huge_pages,
            'resv_hugepages': lambda: h.resv_huge_pages,
            'surplus_hugepages': lambda: h.surplus_huge_pages,
            'nr_overcommit_hugepages': lambda: h.nr_overcommit_huge_pages}[name]
    store = {'nr_hugepages': nr_hugepages_store, 'nr_hugepages_mempolicy': nr_hugepages_store,
             'nr_overcommit_hugepages': nr_overcommit_hugepages_store}.get(name)
    return (lambda: '%d\n' % show()), (None if store is None else lambda d: store(h, d))


def _attr_mode(show, store):
    """The file mode of an attribute: 0644 read-write, 0444 read-only, 0200 write-only."""
    if show is None:
        return 0o200
    return 0o644 if store else 0o444


def hugetlb_sysfs_add_hstate(k, h):
    """hugetlb_sysfs_add_hstate and hugetlb_register_node: the hstate's directory in
    /sys/kernel/mm/hugepages and node0's, with Linux's modes."""
    extra = DEMOTE_ATTRS if h.gigantic else ()
    for base, names in (('/sys/kernel/mm/hugepages/', HSTATE_ATTRS + extra),
                        ('/sys/devices/system/node/node0/hugepages/', NODE_ATTRS + extra)):
        for name in names:
            show, store = _hstate_attr(h, name)
            k.vfs.register_synth(base + h.name + '/' + name, show, store, _attr_mode(show, store))


def hugetlb_sysfs_init(k):
    """hugetlb_sysfs_init: a directory for each hstate, the default 2 MiB one first."""
    h = k.mmsvc.hstate
    if h is None:
        return
    hugetlb_sysfs_add_hstate(k, h)
    hugetlb_sysfs_add_hstate(k, h.gigantic_hstate)


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
