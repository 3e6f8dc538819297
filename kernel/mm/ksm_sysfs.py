"""/sys/kernel/mm/ksm (mm/ksm.c ksm_attr_group) and /proc/PID/ksm_stat, /proc/PID/ksm_merging_pages
(fs/proc/base.c proc_pid_ksm_stat, proc_pid_ksm_merging_pages), with Linux 6.12's names, defaults,
formats and store checks; ksm_init builds the machine's KSM state and ksmd at boot."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.mm.hugetlb_sysfs import kstrtoul
from faultlab.kernel.mm.ksm import KSM_RUN_MERGE, KSM_RUN_UNMERGE, KsmState, unmerge_and_remove_all_rmap_items
from faultlab.kernel.mm.ksm_scan import Ksmd

KSM = '/sys/kernel/mm/ksm/'
UINT_MAX = (1 << 32) - 1
INT_MAX = (1 << 31) - 1


def kstrtouint(data):
    """kstrtouint(buf, 10): as kstrtoul, ERANGE past UINT_MAX."""
    v = kstrtoul(data)
    if v > UINT_MAX:
        raise FsError(errno.ERANGE)
    return v


def kstrtobool(data):
    """kstrtobool: y/Y/1/n/N/0 or on/off by their first characters; EINVAL otherwise."""
    s = bytes(data)
    if not s:
        raise FsError(errno.EINVAL)
    c = s[:1].lower()
    if c in (b'y', b't', b'1'):
        return 1
    if c in (b'n', b'f', b'0'):
        return 0
    if c == b'o':
        if s[1:2].lower() == b'n':
            return 1
        if s[1:2].lower() == b'f':
            return 0
    raise FsError(errno.EINVAL)


def run_store(ksm, data):
    """run_store: 0 stops ksmd, 1 merges, 2 unmerges everything and stops; anything else EINVAL."""
    try:
        flags = kstrtouint(data)
    except FsError:
        raise FsError(errno.EINVAL) from None
    if flags > KSM_RUN_UNMERGE:
        raise FsError(errno.EINVAL)
    if ksm.run != flags:
        ksm.run = flags
        if flags & KSM_RUN_UNMERGE:
            err = unmerge_and_remove_all_rmap_items(ksm)
            if err:
                ksm.run = 0
                raise FsError(-err)
    if flags & KSM_RUN_MERGE:
        ksm.wake_ksmd()


def _uint_store(name, lo=0):
    """A kstrtouint knob (EINVAL for a bad number or one below lo)."""
    def store(ksm, data):
        try:
            v = kstrtouint(data)
        except FsError:
            raise FsError(errno.EINVAL) from None
        if v < lo:
            raise FsError(errno.EINVAL)
        setattr(ksm, name, v)
    return store


def pages_to_scan_store(ksm, data):
    """pages_to_scan_store: EINVAL while the advisor sets it."""
    if ksm.advisor_mode != 'none':
        raise FsError(errno.EINVAL)
    _uint_store('pages_to_scan')(ksm, data)


def _bool_store(name):
    def store(ksm, data):
        setattr(ksm, name, kstrtobool(data))
    return store


def max_page_sharing_store(ksm, data):
    """max_page_sharing_store: at least 2; EBUSY while KSM pages exist (the stable tree would have to
    be rebuilt)."""
    text = bytes(data).rstrip(b'\n')
    neg = text.startswith(b'-')
    try:
        v = kstrtoul(text[1:] if neg else text)
    except FsError:
        raise FsError(errno.EINVAL) from None
    v = -v if neg else v
    if v > INT_MAX or v < -INT_MAX - 1:
        raise FsError(errno.ERANGE)
    if v < 2:
        raise FsError(errno.EINVAL)
    if v == ksm.max_page_sharing:
        return
    if ksm.pages_shared:
        raise FsError(errno.EBUSY)
    ksm.remove_all_stable_nodes()
    ksm.max_page_sharing = v


def merge_across_nodes_store(ksm, data):
    """merge_across_nodes_store: 0 or 1; EBUSY while KSM pages exist."""
    v = kstrtoul(data)
    if v > 1:
        raise FsError(errno.EINVAL)
    if v != ksm.merge_across_nodes:
        if ksm.pages_shared:
            raise FsError(errno.EBUSY)
        ksm.remove_all_stable_nodes()
        ksm.merge_across_nodes = v


ADVISOR_MODES = ('none', 'scan-time')


def advisor_mode_show(ksm):
    return ' '.join('[%s]' % m if m == ksm.advisor_mode else m for m in ADVISOR_MODES) + '\n'


def advisor_mode_store(ksm, data):
    """advisor_mode_store: "none" or "scan-time" (sysfs_streq)."""
    word = bytes(data).decode('ascii', 'replace')
    word = word[:-1] if word.endswith('\n') else word
    if word not in ADVISOR_MODES:
        raise FsError(errno.EINVAL)
    ksm.advisor_mode = word


def _ulong_store(name, lo=0, hi=None):
    def store(ksm, data):
        v = kstrtoul(data)
        if v < lo or hi is not None and v > hi:
            raise FsError(errno.EINVAL)
        setattr(ksm, name, v)
    return store


# knob -> (show, store); shows print '%u\n' / '%lu\n' / '%ld\n' of the value
KNOBS = {
    'run': (lambda s: s.run, run_store),
    'pages_to_scan': (lambda s: s.pages_to_scan, pages_to_scan_store),
    'sleep_millisecs': (lambda s: s.sleep_millisecs, _uint_store('sleep_millisecs')),
    'merge_across_nodes': (lambda s: s.merge_across_nodes, merge_across_nodes_store),
    'use_zero_pages': (lambda s: s.use_zero_pages, _bool_store('use_zero_pages')),
    'max_page_sharing': (lambda s: s.max_page_sharing, max_page_sharing_store),
    'stable_node_chains_prune_millisecs': (lambda s: s.stable_node_chains_prune_millisecs,
                                           _uint_store('stable_node_chains_prune_millisecs')),
    'smart_scan': (lambda s: s.smart_scan, _bool_store('smart_scan')),
    'advisor_max_cpu': (lambda s: s.advisor_max_cpu, _ulong_store('advisor_max_cpu')),
    'advisor_min_pages_to_scan': (lambda s: s.advisor_min_pages_to_scan, _ulong_store('advisor_min_pages_to_scan')),
    'advisor_max_pages_to_scan': (lambda s: s.advisor_max_pages_to_scan, _ulong_store('advisor_max_pages_to_scan')),
    'advisor_target_scan_time': (lambda s: s.advisor_target_scan_time,
                                 _ulong_store('advisor_target_scan_time', lo=1)),
}
COUNTERS = {
    'pages_scanned': lambda s: s.pages_scanned,
    'pages_shared': lambda s: s.pages_shared,
    'pages_sharing': lambda s: s.pages_sharing,
    'pages_unshared': lambda s: s.pages_unshared,
    'pages_volatile': lambda s: s.pages_volatile(),
    'pages_skipped': lambda s: s.pages_skipped,
    'ksm_zero_pages': lambda s: s.ksm_zero_pages(),
    'general_profit': lambda s: s.general_profit(),
    'stable_node_chains': lambda s: s.stable_node_chains(),
    'stable_node_dups': lambda s: s.stable_node_dups(),
    'full_scans': lambda s: s.seqnr,
}


def _show(ksm, fn):
    """Reading a KSM file: ksmd, asleep while nothing could change, looks again (its wait is over)."""
    ksm.wake_ksmd()
    return '%d\n' % fn(ksm)


def ksm_sysfs_init(k, ksm):
    """Publish /sys/kernel/mm/ksm: the knobs rw-r--r--, the counters r--r--r--, in the order Linux's
    attribute group lists them."""
    reg = k.vfs.register_synth
    reg(KSM + 'advisor_mode', lambda: advisor_mode_show(ksm), lambda d: advisor_mode_store(ksm, d), 0o644)
    for name, (show, store) in KNOBS.items():
        reg(KSM + name, lambda f=show: _show(ksm, f), lambda d, f=store: f(ksm, d), 0o644)
    for name, show in COUNTERS.items():
        reg(KSM + name, lambda f=show: _show(ksm, f), None, 0o444)


def proc_pid_ksm_stat(ksm, mm):
    """/proc/PID/ksm_stat (Linux 6.12: four lines)."""
    return ('ksm_rmap_items %d\nksm_zero_pages %d\nksm_merging_pages %d\nksm_process_profit %d\n'
            % (ksm.ksm_rmap_items(mm), ksm.mm_ksm_zero_pages(mm), ksm.ksm_merging_pages(mm),
               ksm.ksm_process_profit(mm)))


def register_ksm_procfs(k):
    """/proc/self/ksm_stat and /proc/self/ksm_merging_pages, mode 0400 as Linux's (ONE(..., S_IRUSR))."""
    reg = k.vfs.register_synth
    reg('/proc/self/ksm_stat', lambda: proc_pid_ksm_stat(k.ksm, k.current.mm), None, 0o400)
    reg('/proc/self/ksm_merging_pages', lambda: '%d\n' % k.ksm.ksm_merging_pages(k.current.mm), None, 0o400)


def ksm_init(k):
    """ksm_init: the KSM state on the machine's mm services (mm code finds it as svc.ksm), ksmd on the
    simulated clock, and the sysfs files."""
    ksm = KsmState(k.mmsvc, k._all_mms)
    k.mmsvc.ksm = ksm

    def quiet():
        return not k.events.pending and len(k.sched.blocked_tasks()) >= k.nr_live_tasks()
    Ksmd(ksm, k.events.schedule, k.now, k.costs.freq_hz, quiet)
    ksm_sysfs_init(k, ksm)
    return ksm
