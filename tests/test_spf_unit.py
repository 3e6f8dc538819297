"""handle_speculative_fault's checks, one abort reason at a time, against holds made by "another CPU".

Each test builds a two-thread mm (mm_users 2) and plays the other CPU by recording a lock hold, a VMA
write or a page-table change at simulated times around the fault; the guest-level races are in
tests/test_threads.py.
"""
from faultlab.kernel.arch.fault import access_error, X86_PF_WRITE, X86_PF_USER
from faultlab.kernel.mm.mm_types import FAULT_FLAG_WRITE, FAULT_FLAG_USER
from faultlab.kernel.mm.mmap import do_mmap, do_mprotect, MAP_PRIVATE, MAP_ANONYMOUS
from faultlab.kernel.mm import mmap_lock, spf
from tests.test_mm_unit import Env, PROT_R, PROT_RW

ADDR = 0x40000000


class SmpClock:
    """The scheduler as mm code sees it, with a CPU number the test switches."""

    def __init__(self, env):
        self.env = env
        self.t = 0
        self.cpu = 0

    def now(self):
        return self.t + self.env.kcycles      # the env bills charges and raw cycles (charge_cycles)

    def cpu_id(self):
        return self.cpu

    def lock_wait(self, until, what, spin=False):
        self.t += max(0, until - self.now())

    def wait_until(self, when, why):
        self.lock_wait(when, why)


def two_thread_env(prot=PROT_RW):
    env = Env()
    clock = env.svc.sched = SmpClock(env)
    env.mm.users = 2
    env.svc.spf = True
    assert do_mmap(env.mm, ADDR, 1 << 20, prot, MAP_PRIVATE | MAP_ANONYMOUS, None, 0) == ADDR
    return env, clock


def spf_fault(env, va, write=True):
    ec = X86_PF_USER | (X86_PF_WRITE if write else 0)
    flags = FAULT_FLAG_USER | (FAULT_FLAG_WRITE if write else 0)
    return spf.handle_speculative_fault(env.mm, va, flags, lambda vma: not access_error(ec, vma))


def prime(env):
    """A first (classic) write fault: anon_vma and the PTE table exist afterwards."""
    env.fault(ADDR, write=True)


def test_speculative_fault_succeeds_without_conflict():
    env, clock = two_thread_env()
    prime(env)
    res = spf_fault(env, ADDR + 0x1000)
    assert res is not None and res[0] == 0
    assert env.stats['spf'] == 1 and env.pte(ADDR + 0x1000) & 1


def test_noanon_before_the_first_anonymous_page():
    env, _ = two_thread_env()
    assert spf_fault(env, ADDR) is None
    assert env.stats['spf_vma_noanon'] == 1 and env.pte(ADDR) == 0


def test_notsup_without_a_page_table():
    env, _ = two_thread_env()
    prime(env)
    env.mm.vmas.find_vma(ADDR).vm_end = ADDR + (4 << 20)     # the VMA reaches a 2 MiB range with no table
    assert spf_fault(env, ADDR + (2 << 20)) is None
    assert env.stats['spf_vma_notsup'] == 1


def test_access_error_aborts():
    env, _ = two_thread_env(PROT_R)
    env.fault(ADDR, write=False)
    env.mm.vmas.find_vma(ADDR).anon_vma = True
    assert spf_fault(env, ADDR, write=True) is None
    assert env.stats['spf_vma_access'] == 1


def test_vma_changed_by_a_writer_on_another_cpu():
    env, clock = two_thread_env()
    prime(env)
    vma = env.mm.vmas.find_vma(ADDR)
    t = clock.now()
    mmap_lock.vma_seqcount(vma).write(t + 100, t + 5000, cpu=1)      # mprotect on CPU 1 overlaps the fault
    assert spf_fault(env, ADDR + 0x1000) is None
    assert env.stats['spf_vma_changed'] == 1 and env.pte(ADDR + 0x1000) == 0


def test_writer_on_the_same_cpu_or_in_the_past_does_not_abort():
    env, clock = two_thread_env()
    prime(env)
    vma = env.mm.vmas.find_vma(ADDR)
    t = clock.now()
    mmap_lock.vma_seqcount(vma).write(t - 9000, t - 5000, cpu=1)
    mmap_lock.vma_seqcount(vma).write(t, t + 5000, cpu=0)
    assert spf_fault(env, ADDR + 0x1000) is not None


def test_pte_lock_held_by_another_cpu():
    env, clock = two_thread_env()
    prime(env)
    slot = env.mm.pgtables.pte_slot(ADDR, create=False)
    t = clock.now()
    env.mm.locks.pte_lock(slot).holds.add(t, t + 20000, 1)      # zap_pte_range on CPU 1
    assert spf_fault(env, ADDR + 0x1000) is None
    assert env.stats['spf_pte_lock'] == 1


def test_pmd_changed_under_the_fault():
    env, clock = two_thread_env()
    prime(env)
    t = clock.now()
    env.mm.locks.pmd_changes(ADDR).write(t + 50, t + 3000, 1)  # a table torn down / installed on CPU 1
    assert spf_fault(env, ADDR + 0x1000) is None
    assert env.stats['spf_pmd_changed'] == 1


def test_mmap_write_unlock_bumps_changed_and_new_vmas_only():
    env, clock = two_thread_env()
    other = do_mmap(env.mm, ADDR + (8 << 20), 1 << 20, PROT_RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0)
    token = mmap_lock.mmap_write_lock(env.mm)
    do_mprotect(env.mm, ADDR, 0x2000, PROT_R)                    # splits the first VMA
    mmap_lock.mmap_write_unlock(env.mm, token)
    first = env.mm.vmas.find_vma(ADDR)
    rest = env.mm.vmas.find_vma(ADDR + 0x2000)
    untouched = env.mm.vmas.find_vma(other)
    for v in (first, rest):
        assert v.seqcount is not None and v.seqcount.seq >= 2
    assert untouched.seqcount is None or untouched.seqcount.seq == 0


def test_tlb_targets_follow_mm_cpumask_with_lazy_idle_cpus():
    """A shootdown interrupts the CPUs running the mm and the idle ones that ran it last (lazy TLB, as
    4.15); a CPU that switched to another mm is not a target; idle or sleeping ones are halted."""
    from faultlab.kernel.sched import Scheduler

    class T:
        def __init__(self, mm):
            self.mm = mm
    mm, other = object(), object()
    s = Scheduler(None, 5)
    me, running, lazy, elsewhere, sleeping = s.rqs
    s.this_rq = me
    me.curr = T(mm)
    running.curr, running.active_mm = T(mm), mm
    lazy.curr, lazy.active_mm = None, mm                  # idle after running a thread of mm
    elsewhere.curr, elsewhere.active_mm = None, other     # idle after running another process
    sleeping.curr, sleeping.active_mm = T(mm), mm
    sleeping.halt(1000, 5000)                             # asleep on a lock from 1000 to 5000
    assert s.tlb_targets(mm, 2000) == (3, 2)
    assert s.tlb_targets(mm, 6000) == (3, 1)              # woken by then
    assert s.tlb_targets(other, 2000) == (1, 1)
