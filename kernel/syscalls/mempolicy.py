"""NUMA memory policy on a machine with one node (mm/mempolicy.c, mm/migrate.c): set_mempolicy,
get_mempolicy, mbind, migrate_pages and move_pages.

Node 0 holds all memory (nr_node_ids = 1, MAX_NUMNODES = 1024 as CONFIG_NODES_SHIFT=10), so every
policy places pages where they already are; the calls check their arguments and nodes exactly as
Linux does on such a machine and report the policies they were given. A range's policy from mbind is
kept per address range of the mm (not per VMA object) and reported by get_mempolicy(MPOL_F_ADDR).
"""
import errno
import struct

from faultlab.kernel.cred import CAP_SYS_NICE, capable
from faultlab.kernel.mm.pgtable import _PAGE_PRESENT, pte_pfn
from faultlab.kernel.syscalls.registry import s32, syscall

MPOL_DEFAULT, MPOL_PREFERRED, MPOL_BIND, MPOL_INTERLEAVE, MPOL_LOCAL = 0, 1, 2, 3, 4
MPOL_PREFERRED_MANY, MPOL_WEIGHTED_INTERLEAVE, MPOL_MAX = 5, 6, 7
MPOL_F_STATIC_NODES, MPOL_F_RELATIVE_NODES, MPOL_F_NUMA_BALANCING = 1 << 15, 1 << 14, 1 << 13
MPOL_MODE_FLAGS = MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES | MPOL_F_NUMA_BALANCING
MPOL_F_NODE, MPOL_F_ADDR, MPOL_F_MEMS_ALLOWED = 1, 2, 4
MPOL_MF_STRICT, MPOL_MF_MOVE, MPOL_MF_MOVE_ALL = 1, 2, 4
MPOL_MF_VALID = MPOL_MF_STRICT | MPOL_MF_MOVE | MPOL_MF_MOVE_ALL
MAX_NUMNODES = 1024
NR_NODE_IDS = 1
NODE_MEMORY = 1                         # node_states[N_MEMORY]: node 0
BITS_PER_LONG = 64
PAGE_SIZE = 4096
DEFAULT_POLICY = (MPOL_DEFAULT, 0, 0)   # (mode, mode flags, nodes as a bit mask)


def _get_bitmap(t, nmask, bits):
    """get_bitmap: `bits` bits from the user's array of longs (the rest of the last long cleared)."""
    nlongs = (bits + BITS_PER_LONG - 1) // BITS_PER_LONG
    raw = t.umem.read(nmask, nlongs * 8) if nlongs else b''
    if raw is None:
        return None
    value = int.from_bytes(raw, 'little')
    return value & ((1 << bits) - 1)


def get_nodes(t, nmask, maxnode):
    """A node mask from the user (maxnode - 1 bits; bits past MAX_NUMNODES must be clear), or -errno."""
    maxnode = (maxnode - 1) & ((1 << 64) - 1)
    if maxnode == 0 or not nmask:
        return 0
    if maxnode > PAGE_SIZE * 8:
        return -errno.EINVAL
    mask = _get_bitmap(t, nmask, maxnode)
    if mask is None:
        return -errno.EFAULT
    if mask >> MAX_NUMNODES:
        return -errno.EINVAL
    return mask


def sanitize_mpol_flags(mode):
    """(mode, mode flags) of a mode argument, or -errno."""
    mode = s32(mode)
    flags = mode & MPOL_MODE_FLAGS
    mode &= ~MPOL_MODE_FLAGS
    if not 0 <= mode < MPOL_MAX:
        return -errno.EINVAL
    if flags & MPOL_F_STATIC_NODES and flags & MPOL_F_RELATIVE_NODES:
        return -errno.EINVAL
    if flags & MPOL_F_NUMA_BALANCING and mode not in (MPOL_BIND, MPOL_PREFERRED_MANY):
        return -errno.EINVAL
    return mode, flags


def mpol_new(mode, flags, nodes):
    """mpol_new + mpol_set_nodemask: the policy (mode, flags, nodes) for one node, or -EINVAL."""
    if mode == MPOL_DEFAULT:
        return -errno.EINVAL if nodes else DEFAULT_POLICY
    static_or_relative = flags & (MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES)
    if mode == MPOL_PREFERRED and not nodes:
        if static_or_relative:
            return -errno.EINVAL
        mode = MPOL_LOCAL
    if mode == MPOL_LOCAL:
        return -errno.EINVAL if nodes or static_or_relative else (MPOL_LOCAL, flags, 0)
    if not nodes:
        return -errno.EINVAL
    # relative node numbers fold onto the allowed nodes (one: node 0); others must include node 0
    effective = NODE_MEMORY if flags & MPOL_F_RELATIVE_NODES else nodes & NODE_MEMORY
    if not effective:
        return -errno.EINVAL
    if mode == MPOL_PREFERRED:
        effective &= -effective                        # first_node
    return mode, flags, nodes if static_or_relative else effective


def _task_policy(t):
    return getattr(t, 'mempolicy', DEFAULT_POLICY)


def _range_policies(mm):
    if not hasattr(mm, 'range_policies'):
        mm.range_policies = []
    return mm.range_policies


def _range_policy(mm, addr):
    for start, end, pol in reversed(_range_policies(mm)):
        if start <= addr < end:
            return pol
    return None


def _copy_nodes_to_user(t, nmask, maxnode, nodes):
    """copy_nodes_to_user: ALIGN(maxnode - 1, 64) / 8 bytes, zeros past the kernel's one long."""
    copy = ((maxnode - 1 + 63) & ~63) // 8
    data = nodes.to_bytes(8, 'little')
    if copy > 8:
        if copy > PAGE_SIZE:
            return -errno.EINVAL
        data = data.ljust(copy, b'\0')
    else:
        data = data[:copy]
    return 0 if not data or t.umem.write(nmask, data) else -errno.EFAULT


def _mode_and_nodes(t, mode, nmask, maxnode):
    """The start of kernel_set_mempolicy and kernel_mbind: sanitize_mpol_flags, then get_nodes;
    (mode, mode flags, node mask) or -errno."""
    mf = sanitize_mpol_flags(mode)
    if isinstance(mf, int):
        return mf
    nodes = get_nodes(t, nmask, maxnode)
    if nodes < 0:
        return nodes
    return mf[0], mf[1], nodes


@syscall(238, 'set_mempolicy')
def sys_set_mempolicy(k, t, mode, nmask, maxnode, *_):
    mf = _mode_and_nodes(t, mode, nmask, maxnode)
    if isinstance(mf, int):
        return mf
    mode, mode_flags, nodes = mf
    pol = mpol_new(mode, mode_flags, nodes)
    if isinstance(pol, int):
        return pol
    t.mempolicy = pol
    return 0


@syscall(239, 'get_mempolicy')
def sys_get_mempolicy(k, t, policy, nmask, maxnode, addr, flags, *_):
    if nmask and maxnode < NR_NODE_IDS:
        return -errno.EINVAL
    if flags & ~(MPOL_F_NODE | MPOL_F_ADDR | MPOL_F_MEMS_ALLOWED):
        return -errno.EINVAL
    if flags & MPOL_F_MEMS_ALLOWED:
        if flags & (MPOL_F_NODE | MPOL_F_ADDR):
            return -errno.EINVAL
        pval, nodes = 0, NODE_MEMORY
    else:
        pol = _task_policy(t)
        if flags & MPOL_F_ADDR:
            if t.mm.vmas.vma_lookup(addr) is None:
                return -errno.EFAULT
            pol = _range_policy(t.mm, addr) or pol
        elif addr:
            return -errno.EINVAL
        mode, mflags, nodes = pol
        if flags & MPOL_F_NODE:
            if flags & MPOL_F_ADDR:
                pval = lookup_node(k, t, addr)
                if pval < 0:
                    return pval
            elif mode in (MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE) and pol is _task_policy(t):
                pval = 0                          # the next interleave node: the only one
            else:
                return -errno.EINVAL
        else:
            pval = mode | mflags
    if policy and not t.umem.write(policy, struct.pack('<i', pval)):
        return -errno.EFAULT
    return _copy_nodes_to_user(t, nmask, maxnode, nodes) if nmask else 0


def lookup_node(k, t, addr):
    """The node of the page at addr, faulting it in for reading as get_user_pages does: 0 or -errno."""
    va = addr & ~0xFFF
    if t.umem.accessible(va, 1, False) < 1 or t.umem.read(va, 1) is None:
        return -errno.EFAULT
    return 0


def _range_mapped(mm, start, end):
    """No hole in [start, end) (queue_pages_range without MPOL_MF_DISCONTIG_OK)."""
    cur = start
    while cur < end:
        vma = mm.vmas.vma_lookup(cur)
        if vma is None:
            return False
        cur = vma.vm_end
    return True


@syscall(237, 'mbind')
def sys_mbind(k, t, start, length, mode, nmask, maxnode, flags, *_):
    mf = _mode_and_nodes(t, mode, nmask, maxnode)
    if isinstance(mf, int):
        return mf
    mode, mode_flags, nodes = mf
    flags &= 0xFFFFFFFF
    if flags & ~MPOL_MF_VALID:
        return -errno.EINVAL
    if flags & MPOL_MF_MOVE_ALL and not capable(t, CAP_SYS_NICE):
        return -errno.EPERM
    if start & 0xFFF:
        return -errno.EINVAL
    end = start + ((length + 0xFFF) & ~0xFFF)
    if end >= 1 << 64 or end < start:
        return -errno.EINVAL
    if end == start:
        return 0
    pol = mpol_new(mode, mode_flags, nodes)
    if isinstance(pol, int):
        return pol
    if not _range_mapped(t.mm, start, end):
        return -errno.EFAULT
    _range_policies(t.mm).append((start, end, None if pol == DEFAULT_POLICY else pol))
    return 0


def _find_mm_task(k, t, pid):
    """The task whose pages move_pages/migrate_pages act on (0: the caller), or -errno."""
    pid = s32(pid)
    if not pid:
        return t
    task = k.tasks.get(pid)
    if task is None or task.exited:
        return -errno.ESRCH
    if task.tgid != t.tgid and not capable(t, CAP_SYS_NICE) and \
            t.cred.uid not in (task.cred.uid, task.cred.suid) and t.cred.euid not in (task.cred.uid, task.cred.suid):
        return -errno.EPERM
    return task


@syscall(256, 'migrate_pages')
def sys_migrate_pages(k, t, pid, maxnode, old_nodes, new_nodes, *_):
    """Every page is on node 0 already: nothing moves (0 pages left behind) once the nodes check."""
    old = get_nodes(t, old_nodes, maxnode)
    if old < 0:
        return old
    new = get_nodes(t, new_nodes, maxnode)
    if new < 0:
        return new
    task = _find_mm_task(k, t, pid)
    if isinstance(task, int):
        return task
    if new & ~NODE_MEMORY and not capable(t, CAP_SYS_NICE):
        return -errno.EPERM
    if not new & NODE_MEMORY:
        return -errno.EINVAL
    return 0


def _page_status(k, mm, addr):
    """The node of the page mapped at addr (0), -ENOENT when none is, -EFAULT outside any mapping or
    for the shared zero page (as do_pages_stat_array and add_page_for_migration answer)."""
    if mm.vmas.vma_lookup(addr) is None:
        return -errno.EFAULT
    pte = mm.pgtables.get_pte(addr & ~0xFFF)
    if not pte & _PAGE_PRESENT:
        return -errno.ENOENT
    return -errno.EFAULT if pte_pfn(pte) == mm.svc.zero_page.pfn else 0


@syscall(279, 'move_pages')
def sys_move_pages(k, t, pid, nr_pages, pages, nodes, status, flags, *_):
    flags &= 0xFFFFFFFF                         # int flags
    if flags & ~(MPOL_MF_MOVE | MPOL_MF_MOVE_ALL):
        return -errno.EINVAL
    if flags & MPOL_MF_MOVE_ALL and not capable(t, CAP_SYS_NICE):
        return -errno.EPERM
    task = _find_mm_task(k, t, pid)
    if isinstance(task, int):
        return task
    mm = task.mm
    for i in range(nr_pages):
        p = t.umem.read_u64(pages + 8 * i)
        if p is None:
            return -errno.EFAULT
        if nodes:
            raw = t.umem.read(nodes + 4 * i, 4)
            if raw is None:
                return -errno.EFAULT
            node = struct.unpack('<i', raw)[0]
            if not 0 <= node < MAX_NUMNODES or not NODE_MEMORY >> node & 1:
                return -errno.ENODEV
        st = _page_status(k, mm, p)
        if not t.umem.write(status + 4 * i, struct.pack('<i', st)):
            return -errno.EFAULT
    return 0
