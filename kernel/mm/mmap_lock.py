"""mmap_lock and the PTE locks in simulated time, and the VMA sequence counts the speculative path checks.

The classic fault path takes mmap_lock for read; mmap/munmap/mprotect/mremap/brk take it for write and
bump the sequence count of every VMA they change (vm_write_begin/end), and note the PMDs whose PTE tables
they tear down or install, so that a speculative fault (kernel/mm/spf.py) that overlapped them in
simulated time aborts. Host execution of a kernel path is atomic, so "concurrently" means overlapping in
simulated time with another CPU's hold (kernel/locking.py). Linux: include/linux/mmap_lock.h and the
pte_offset_map_lock/pte_unmap_unlock pair.
"""
from itertools import compress, count
from operator import attrgetter, is_not, ne, or_

from faultlab.kernel.locking import SeqCount

_VMA_FIELDS = attrgetter('vm_start', 'vm_end', 'vm_flags', 'vm_pgoff')


def vma_seqcount(vma):
    """The VMA's sequence count (vm_sequence), made on first use."""
    s = vma.seqcount
    if s is None:
        s = vma.seqcount = SeqCount()
    return s


def lock_wait(mm, lock, until, t0, spin=False):
    """A CPU blocked on a lock until `until`: a reader sleeps (idle time, then a wake-up); a writer
    spins on a running writer (rwsem optimistic spinning), burning the cycles instead. Returns True
    if it slept: a reader was handed the lock at `until`, so its hold starts there and the wake-up
    latency is spent holding it (rwsem_mark_wake grants readers the lock before they run; a writer
    is only woken, see mmap_write_lock)."""
    clock = mm.svc.sched
    if until > t0:
        clock.lock_wait(until, lock.name, spin)
        lock.wait_cycles += until - t0
        lock.contended += 1
        return not spin
    return False


def cacheline_touch(mm, line):
    """An atomic on a shared cache line (kernel.locking.CacheLine) at this CPU's time: if another CPU
    wrote it last, the CPU waits for the transfers queued on the line, then for its own."""
    svc = mm.svc
    clock = svc.sched
    t = clock.now()
    span = line.write(t, clock.cpu_id(), svc.cost('cacheline_transfer'))
    if span is not None:
        svc.charge_cycles(span[1] - t)
        stats = svc.stats
        stats['cacheline_transfers'] += 1
        stats['cacheline_transfers_' + line.name] += 1
        stats['cacheline_queue_cycles'] += span[0] - t


def _touch_lock_word(mm, lock):
    """An atomic on the lock's count: its cache line moves here first if another CPU wrote it last."""
    cacheline_touch(mm, lock.word)


def mmap_read_lock(mm):
    """down_read(mmap_lock) at this CPU's time; returns the acquire time for the unlock."""
    clock = mm.svc.sched
    lock = mm.locks.mmap_lock
    t0 = clock.now()
    cpu = clock.cpu_id()
    _touch_lock_word(mm, lock)
    granted = lock.read_wait(t0, cpu)
    slept = lock_wait(mm, lock, granted, t0)
    mm.svc.charge('lock_acquire')
    return granted if slept else clock.now()


def mmap_read_unlock(mm, t_acq):
    """up_read(mmap_lock): the read hold from t_acq ends now."""
    clock = mm.svc.sched
    lock = mm.locks.mmap_lock
    _touch_lock_word(mm, lock)
    lock.readers.add(t_acq, clock.now(), clock.cpu_id())


def mmap_write_lock(mm):
    """down_write(mmap_lock): wait for readers and writers holding it; returns a token for the unlock.

    A writer spins while a writer owns the lock; if readers own it there is no owner to spin on,
    and it sleeps (rwsem_optimistic_spin gives up on a reader-owned rw_semaphore)."""
    clock = mm.svc.sched
    lock = mm.locks.mmap_lock
    t0 = clock.now()
    cpu = clock.cpu_id()
    _touch_lock_word(mm, lock)
    until = lock.write_wait(t0, cpu)
    # spinning needs a running writer to watch: not if readers own it when the writer comes or when
    # it is handed over (the last holder before this writer was a reader)
    readers_own = lock.readers.busy_until(t0, cpu) != t0 or lock.readers.busy_until(until - 1, cpu) >= until
    if lock_wait(mm, lock, until, t0, spin=not readers_own):
        # rwsem_mark_wake wakes a writer without granting it the lock ("other writers are able to
        # steal it"; readers wait behind it): queued until `until`, it takes the lock only once it
        # runs after its wake-up
        lock.writers.add(t0, until, cpu)
        lock.queued.add(until, clock.now(), cpu)
        t0 = clock.now()
        lock_wait(mm, lock, lock.write_wait(t0, cpu), t0, spin=True)
    mm.svc.charge('lock_acquire')
    return t0, clock.now(), _vma_state(mm)


def mmap_write_unlock(mm, token):
    """up_write(mmap_lock): VMAs the writer changed or removed get their sequence count bumped."""
    _end_write(mm, token)


def mmap_write_downgrade(mm, token):
    """downgrade_write(mmap_lock): the write hold ends now, a read hold begins (returns its start)."""
    return _end_write(mm, token)


def _end_write(mm, token):
    """The write hold ends now. It covers the wait too (FIFO: who came after it waits after it); the
    VMA sequence counts and the tree are written only while the VMAs are updated, at the start of
    the critical section (vm_write_begin/end around __vma_adjust and the rb-tree update)."""
    t0, t_acq, before = token
    clock = mm.svc.sched
    _touch_lock_word(mm, mm.locks.mmap_lock)
    t1, cpu = clock.now(), clock.cpu_id()
    mm.locks.mmap_lock.writers.add(t0, t1, cpu)
    w0, w1 = t_acq, min(t1, t_acq + mm.svc.cost('vma_modify'))
    changed, made = vmas_written(before, _vma_state(mm))
    for vma in changed:
        vma_seqcount(vma).write(w0, w1, cpu)
    for vma in made:
        vma_seqcount(vma).write(w0, w1, cpu)
    if changed or made:
        mm.locks.mm_rb.writers.add(w0, w1, cpu)
        _touch_lock_word(mm, mm.locks.mm_rb)      # write_lock and write_unlock of the VMA-tree lock
        _touch_lock_word(mm, mm.locks.mm_rb)
    return t1


def _vma_state(mm):
    """The VMAs in address order and each one's (start, end, flags, offset), to tell which ones a
    writer changed."""
    vmas = list(mm.vmas)
    return vmas, list(map(_VMA_FIELDS, vmas))


def vmas_written(before, after):
    """(VMAs removed or changed, VMAs made) between two _vma_state snapshots. A writer changes a few
    neighbouring VMAs: the common head and tail of the two lists (the same VMA objects with the same
    fields) are skipped at C speed, only the part between them is compared VMA by VMA."""
    bv, bf = before
    av, af = after
    n = min(len(bv), len(av))
    head = next(compress(count(), map(or_, map(is_not, bv, av), map(ne, bf, af))), n)
    tail = next(compress(count(), map(or_, map(is_not, reversed(bv), reversed(av)),
                                      map(ne, reversed(bf), reversed(af)))), n)
    tail = min(tail, n - head)
    old = dict(zip(bv[head:len(bv) - tail], bf[head:len(bf) - tail]))
    new = dict(zip(av[head:len(av) - tail], af[head:len(af) - tail]))
    return [vma for vma, _fields in old.items() - new.items()], new.keys() - old.keys()


def note_pmd_change(mm, va, since=None):
    """A PTE table under va's PMD was torn down (since `since`) or installed just now."""
    clock = mm.svc.sched
    t = clock.now()
    mm.locks.pmd_changes(va).write(t - mm.svc.cost('pte_set') if since is None else since, t, clock.cpu_id())


def pte_lock_classic(mm, slot):
    """spin_lock of the PTE table in the classic path: spin (busy) until another CPU's hold ends."""
    svc = mm.svc
    clock = svc.sched
    cpu = clock.cpu_id()
    t = clock.now()
    ptl = mm.locks.pte_lock(slot)
    until = ptl.wait(t, cpu)
    if until > t:
        svc.charge_cycles(until - t)      # spinning burns the cycles
        svc.stats['pte_lock_spin_cycles'] += until - t
    return ptl


def pte_unlock_classic(mm, ptl):
    """spin_unlock of the PTE table in the classic path: the hold covers the PTE update just made."""
    svc = mm.svc
    clock = svc.sched
    t1 = clock.now()
    ptl.holds.add(t1 - svc.cost('pte_set'), t1, clock.cpu_id())


def zap_hold(mm, slot, t0, t1):
    """zap_pte_range held the PTE lock of this table from t0 to t1."""
    mm.locks.pte_lock(slot).holds.add(t0, t1, mm.svc.sched.cpu_id())
