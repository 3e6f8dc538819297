"""The hugetlb cgroup controller (mm/hugetlb_cgroup.c, mm/page_counter.c; Documentation/admin-guide/
cgroup-v2.rst "HugeTLB"): per cgroup and huge page size, a page counter of the huge pages its tasks
faulted in (hugetlb.<size>.current, limited by .max: a fault over it fails, SIGBUS) and one of the
pages they reserved (hugetlb.<size>.rsvd.current, limited by .rsvd.max: mmap over it fails, ENOMEM).

Counters are hierarchical (a charge counts in every ancestor and must fit every ancestor's max). A
page allocated for a fault carries its charge until it is freed (free_huge_folio); a page allocated
without a reservation (MAP_NORESERVE) is charged to rsvd as well and carries that too. A shared
mapping's reservation charge stays with the file's reserve map until truncation or eviction
(region_del), a private mapping's with its VMA until it is unmapped (hugetlb_vm_op_close).
The hooks in kernel/mm/hugetlb.py and kernel/fs/hugetlbfs.py call the functions here.
"""
import errno

from faultlab.kernel.fs.errors import FsError

PAGE_SIZE = 4096
PAGE_COUNTER_MAX = ((1 << 63) - 1) // PAGE_SIZE       # LONG_MAX / PAGE_SIZE
# the hstates in their registration order (hstate_index): 2 MiB, then 1 GiB (x86-64 with pdpe1gb)
HSTATE_2M, HSTATE_1G = 0, 1
HSTATE_PAGES = (512, 512 * 512)                       # pages_per_huge_page
HUGETLB_MAX = 0                                       # enum hugetlb_memory_event


def mem_fmt(hsize):
    """mem_fmt: the size in a file name (2MB, 1GB)."""
    if hsize >= 1 << 30:
        return '%dGB' % (hsize >> 30)
    if hsize >= 1 << 20:
        return '%dMB' % (hsize >> 20)
    return '%dKB' % (hsize >> 10)


class PageCounter:
    """struct page_counter: usage and max in 4 KiB pages, charged up the hierarchy."""

    def __init__(self, parent=None):
        self.usage = 0
        self.max = PAGE_COUNTER_MAX
        self.parent = parent
        self.failcnt = 0

    def try_charge(self, nr):
        """page_counter_try_charge: None on success, else the counter whose max refused it (nothing
        charged)."""
        c = self
        while c is not None:
            if c.usage + nr > c.max:
                c.failcnt += 1
                self.uncharge_until(nr, c)
                return c
            c.usage += nr
            c = c.parent
        return None

    def charge(self, nr):
        """page_counter_charge: charge without a limit."""
        c = self
        while c is not None:
            c.usage += nr
            c = c.parent

    def uncharge_until(self, nr, stop):
        """Undo a charge from self up to (not including) stop."""
        c = self
        while c is not stop:
            c.usage -= nr
            c = c.parent

    def uncharge(self, nr):
        """page_counter_uncharge."""
        self.uncharge_until(nr, None)

    def set_max(self, nr):
        """page_counter_set_max: EBUSY when the usage is already above the new max."""
        if self.usage > nr:
            raise FsError(errno.EBUSY)
        self.max = nr


class HugetlbCgroup:
    """struct hugetlb_cgroup: the controller's state in one cgroup (its css)."""

    def __init__(self, parent=None):
        self.parent = parent
        n = len(HSTATE_PAGES)
        self.hugepage = [PageCounter(parent.hugepage[i] if parent else None) for i in range(n)]
        self.rsvd_hugepage = [PageCounter(parent.rsvd_hugepage[i] if parent else None) for i in range(n)]
        self.events = [0] * n
        self.events_local = [0] * n
        self.online = True

    def is_root(self):
        return self.parent is None


def hugetlb_event(hcg, idx):
    """hugetlb_event: a charge hit hcg's max; events.local there, events up to the root's child."""
    hcg.events_local[idx] += 1
    while hcg is not None and not hcg.is_root():
        hcg.events[idx] += 1
        hcg = hcg.parent


class HugetlbCgroupState:
    """The controller's view of one hstate's pool: how to find the current task's css, and the
    charges each allocated huge page carries (folio->_hugetlb_cgroup and _hugetlb_cgroup_rsvd),
    by head page frame number."""

    def __init__(self, root_cgroup, current_task, idx=HSTATE_2M):
        self.root_cgroup = root_cgroup
        self.current_task = current_task
        self.idx = idx
        self.folios = {}

    def from_current(self):
        """hugetlb_cgroup_from_task(current): the css of the current task's cgroup (the nearest
        ancestor where the controller is enabled)."""
        t = self.current_task()
        cg = getattr(t.group, 'cgroup', None) if t is not None else None
        return (cg or self.root_cgroup).hugetlb_css()


def _state(h):
    return getattr(h, 'hugetlb_cgroup', None)


def hugetlb_cgroup_charge_cgroup(h, deferred_rsvd):
    """alloc_hugetlb_folio's charges for one page: rsvd first when no reservation covers it
    (deferred_reserve), then the fault counter; a handle for commit/cancel, None when over a max
    (the allocation then fails: SIGBUS for a fault, ENOSPC for fallocate), or () when the
    controller is not set up."""
    st = _state(h)
    if st is None:
        return ()
    idx, nr = st.idx, HSTATE_PAGES[st.idx]
    hcg = st.from_current()
    if deferred_rsvd and _try_charge(hcg, hcg.rsvd_hugepage[idx], nr, idx) is not None:
        return None
    if _try_charge(hcg, hcg.hugepage[idx], nr, idx) is not None:
        if deferred_rsvd:
            hcg.rsvd_hugepage[idx].uncharge(nr)
        return None
    return (hcg, hcg if deferred_rsvd else None)


def _try_charge(hcg, counter, nr, idx):
    """__hugetlb_cgroup_charge_cgroup: charge counter (hcg's fault or rsvd counter); when a max
    refuses it, the cgroup whose max it was counts a max event (for either counter, as natively:
    a refused reservation shows in hugetlb.<size>.events too). None, or the refusing counter."""
    limit = counter.try_charge(nr)
    if limit is not None:
        css = hcg
        while css is not None and limit not in (css.hugepage[idx], css.rsvd_hugepage[idx]):
            css = css.parent
        if css is not None:
            hugetlb_event(css, idx)
    return limit


def hugetlb_cgroup_commit_charge(h, head, charge):
    """hugetlb_cgroup_commit_charge(_rsvd): the page carries the charges taken for it."""
    st = _state(h)
    if st is not None and charge:
        st.folios[head.pfn] = charge


def hugetlb_cgroup_cancel_charge(h, charge):
    """hugetlb_cgroup_uncharge_cgroup(_rsvd): the pool had no page after all."""
    st = _state(h)
    if st is None or not charge:
        return
    nr = HSTATE_PAGES[st.idx]
    hcg, rsvd = charge
    hcg.hugepage[st.idx].uncharge(nr)
    if rsvd is not None:
        rsvd.rsvd_hugepage[st.idx].uncharge(nr)


def hugetlb_cgroup_uncharge_folio(h, head):
    """free_huge_folio's hugetlb_cgroup_uncharge_folio and _rsvd: the page's charges go."""
    st = _state(h)
    if st is None:
        return
    charge = st.folios.pop(head.pfn, None)
    if charge:
        hugetlb_cgroup_cancel_charge(h, charge)


def hugetlb_cgroup_charge_rsvd(h, npages):
    """hugetlb_reserve_pages' hugetlb_cgroup_charge_cgroup_rsvd for npages huge pages: the css
    charged, None when over rsvd.max (mmap fails with ENOMEM), or () without the controller."""
    st = _state(h)
    if st is None or npages == 0:
        return ()
    hcg = st.from_current()
    if _try_charge(hcg, hcg.rsvd_hugepage[st.idx], npages * HSTATE_PAGES[st.idx], st.idx) is not None:
        return None
    return hcg


def hugetlb_cgroup_uncharge_rsvd(h, hcg, npages=1):
    """Reservations of npages huge pages charged to hcg are released (region_del's
    uncharge_file_region, hugetlb_vm_op_close's hugetlb_cgroup_uncharge_counter)."""
    st = _state(h)
    if st is not None and hcg:
        hcg.rsvd_hugepage[st.idx].uncharge(npages * HSTATE_PAGES[st.idx])


def hugetlb_cgroup_css_offline(h, hcg):
    """hugetlb_cgroup_css_offline: the pages charged to a removed cgroup move their fault charge to
    its parent (hugetlb_cgroup_move_parent); reservation charges stay on it and still count above."""
    hcg.online = False
    st = _state(h)
    if st is None:
        return
    nr = HSTATE_PAGES[st.idx]
    for pfn, (fault, rsvd) in list(st.folios.items()):
        if fault is hcg:
            hcg.hugepage[st.idx].uncharge_until(nr, hcg.parent.hugepage[st.idx])
            st.folios[pfn] = (hcg.parent, rsvd)


# ---- the control files ---------------------------------------------------------------------------
def page_counter_memparse(text):
    """page_counter_memparse: 'max' or a byte count with an optional K/M/G/... suffix, in pages;
    EINVAL for anything else."""
    s = text.strip()
    if s == 'max':
        return PAGE_COUNTER_MAX
    i = 0
    base = 10
    if s[:2].lower() == '0x':
        base, i = 16, 2
    elif s[:1] == '0' and len(s) > 1:
        base, i = 8, 1
    digits = '0123456789abcdef'[:base]
    j = i
    while j < len(s) and s[j].lower() in digits:
        j += 1
    v = int(s[i:j], base) if j > i else 0
    rest = s[j:]
    if rest[:1] and rest[0] in 'KkMmGgTtPpEe':
        v <<= 10 * ('kmgtpe'.index(rest[0].lower()) + 1)
        rest = rest[1:]
    if rest:
        raise FsError(errno.EINVAL)
    return min(v // PAGE_SIZE, PAGE_COUNTER_MAX)


def read_u64_max(counter, idx, is_max):
    """hugetlb_cgroup_read_u64_max: bytes, or 'max' for the max 'max' sets (PAGE_COUNTER_MAX rounded
    down to whole huge pages). A new cgroup's max is PAGE_COUNTER_MAX itself and reads as its byte
    count (9223372036854771712), as natively."""
    if is_max:
        limit = PAGE_COUNTER_MAX - PAGE_COUNTER_MAX % HSTATE_PAGES[idx]
        if counter.max == limit:
            return 'max\n'
        return '%d\n' % (counter.max * PAGE_SIZE)
    return '%d\n' % (counter.usage * PAGE_SIZE)


def write_max(counter, idx, data):
    """hugetlb_cgroup_write_dfl: a new max, rounded down to whole huge pages."""
    try:
        text = bytes(data).decode()
    except UnicodeDecodeError:
        raise FsError(errno.EINVAL)
    nr = page_counter_memparse(text)
    nr -= nr % HSTATE_PAGES[idx]
    counter.set_max(nr)


def hugetlb_cgroup_files(hcg):
    """[(name, read_fn, write_fn)] of the controller's files in a non-root cgroup, per hstate
    (__hugetlb_cgroup_file_dfl_init's template: max, rsvd.max, current, rsvd.current, events,
    events.local, numa_stat)."""
    out = []
    for idx, size in ((HSTATE_2M, 2 << 20), (HSTATE_1G, 1 << 30)):
        p = 'hugetlb.%s.' % mem_fmt(size)
        fault, rsvd = hcg.hugepage[idx], hcg.rsvd_hugepage[idx]
        out += [
            (p + 'max', lambda c=fault, i=idx: read_u64_max(c, i, True), lambda d, c=fault, i=idx: write_max(c, i, d)),
            (p + 'rsvd.max', lambda c=rsvd, i=idx: read_u64_max(c, i, True),
             lambda d, c=rsvd, i=idx: write_max(c, i, d)),
            (p + 'current', lambda c=fault, i=idx: read_u64_max(c, i, False), None),
            (p + 'rsvd.current', lambda c=rsvd, i=idx: read_u64_max(c, i, False), None),
            (p + 'events', lambda i=idx: 'max %d\n' % hcg.events[i], None),
            (p + 'events.local', lambda i=idx: 'max %d\n' % hcg.events_local[i], None),
            (p + 'numa_stat', lambda c=fault: 'total=%d N0=%d\n' % (c.usage * PAGE_SIZE, c.usage * PAGE_SIZE),
             None),
        ]
    return out
