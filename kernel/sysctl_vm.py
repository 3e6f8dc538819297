"""/proc/sys/vm/*: the vm sysctl table (kernel/sysctl.c, mm/util.c, mm/page-writeback.c,
mm/compaction.c, security/min_addr.c) over the knobs in kernel/mm/vm_sysctl.py: Linux's names,
modes, ranges (EINVAL outside them) and side effects."""
import errno

from faultlab.kernel.fs import FsError
from faultlab.kernel.capability import CAP_SYS_RAWIO, capable
from faultlab.kernel.sysctl import INT_MAX, ULONG_MAX, proc_dointvec_minmax, proc_doulongvec_minmax


def _write_only():
    """Reading a write-only sysctl (mode 0200): sysctl_perm refuses even root."""
    raise FsError(errno.EACCES)


class VmSysctlTable:
    """The vm_table entries: each knob's file reads its value and writes it through its handler."""

    def __init__(self, k):
        self.k = k
        self.sc = k.mmsvc.sysctl

    def _set(self, name, lo=0, hi=INT_MAX, clear=None):
        """A handler storing a number in [lo, hi] into knob `name` (and zeroing its exclusive twin); the
        unsigned long knobs (proc_doulongvec_minmax) are those whose range goes past INT_MAX."""
        parse = proc_doulongvec_minmax if hi > INT_MAX else proc_dointvec_minmax

        def write(data):
            v = parse(data, lo, hi)
            if v is None:
                return
            setattr(self.sc, name, v)
            if clear is not None:
                setattr(self.sc, clear, 0)
        return write

    def _show(self, name):
        return lambda: '%d\n' % getattr(self.sc, name)

    def write_mmap_min_addr(self, data):
        """mmap_min_addr_handler: only with CAP_SYS_RAWIO (EPERM); sets dac_mmap_min_addr."""
        if not capable(self.k.current, CAP_SYS_RAWIO):
            raise FsError(errno.EPERM)
        v = proc_doulongvec_minmax(data, 0, ULONG_MAX)
        if v is not None:
            self.sc.dac_mmap_min_addr = v

    @staticmethod
    def write_compact_memory(data):
        """sysctl_compaction_handler: only 1 is accepted (EINVAL otherwise); compacting has nothing to
        do here (order-0 frames, and the hugetlb pool takes aligned blocks from the fresh frames)."""
        v = proc_dointvec_minmax(data)
        if v is not None and v != 1:
            raise FsError(errno.EINVAL)

    def entries(self):
        """(name, read, write, mode) of every file, in vm_table order."""
        s = self._set
        return [
            ('overcommit_memory', self._show('overcommit_memory'), s('overcommit_memory', 0, 2), None),
            ('overcommit_ratio', self._show('overcommit_ratio'), s('overcommit_ratio', 0, INT_MAX,
                                                                  'overcommit_kbytes'), None),
            ('overcommit_kbytes', self._show('overcommit_kbytes'), s('overcommit_kbytes', 0, ULONG_MAX,
                                                                    'overcommit_ratio'), None),
            ('max_map_count', self._show('max_map_count'), s('max_map_count', 0), None),
            ('mmap_min_addr', self._show('dac_mmap_min_addr'), self.write_mmap_min_addr, None),
            ('swappiness', self._show('swappiness'), s('swappiness', 0, 200), None),
            ('compact_memory', _write_only, self.write_compact_memory, 0o200),
            ('compact_unevictable_allowed', self._show('compact_unevictable_allowed'),
             s('compact_unevictable_allowed', 0, 1), None),
            ('dirty_background_ratio', self._show('dirty_background_ratio'),
             s('dirty_background_ratio', 0, 100, 'dirty_background_bytes'), None),
            ('dirty_background_bytes', self._show('dirty_background_bytes'),
             s('dirty_background_bytes', 1, ULONG_MAX, 'dirty_background_ratio'), None),
            ('dirty_ratio', self._show('dirty_ratio'), s('dirty_ratio', 0, 100, 'dirty_bytes'), None),
            ('dirty_bytes', self._show('dirty_bytes'), s('dirty_bytes', 2 * 4096, ULONG_MAX, 'dirty_ratio'),
             None),
            ('dirty_expire_centisecs', self._show('dirty_expire_centisecs'), s('dirty_expire_centisecs'), None),
            ('dirty_writeback_centisecs', self._show('dirty_writeback_centisecs'),
             s('dirty_writeback_centisecs'), None),
            ('dirtytime_expire_seconds', self._show('dirtytime_expire_seconds'), s('dirtytime_expire_seconds'),
             None),
            ('admin_reserve_kbytes', self._show('admin_reserve_kbytes'), s('admin_reserve_kbytes', 0, ULONG_MAX),
             None),
            ('user_reserve_kbytes', self._show('user_reserve_kbytes'), s('user_reserve_kbytes', 0, ULONG_MAX),
             None),
        ]


def register_sysctl_vm(k):
    """Publish /proc/sys/vm's knobs (register_sysctl_init("vm", vm_table)); the reserves are sized
    from the free memory at boot, as init_admin_reserve / init_user_reserve do."""
    k.mmsvc.sysctl.init_reserves(k.frames.nr_free)
    for name, read, write, mode in VmSysctlTable(k).entries():
        k.vfs.register_synth('/proc/sys/vm/' + name, read, write, mode)
