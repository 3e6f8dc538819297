"""Shared cache lines written with atomics (kernel.locking.CacheLine): the CPU that wrote a line last owns
it; another CPU's atomic first waits for the line to move (cacheline_transfer), and the transfers of one
line happen one at a time, so CPUs writing it at once queue. The speculative path writes the VMA-tree
lock's word (read_lock, read_unlock) and the VMA's reference count (get_vma, put_vma) as the SPF series
does, the classic path mmap_lock's word (down_read, up_read)."""
from faultlab.core.cycles import CostTable
from faultlab.kernel.locking import CacheLine
from faultlab.kernel.mm import mmap_lock
from tests.test_spf_unit import ADDR, prime, spf_fault, two_thread_env

COST = CostTable().costs['cacheline_transfer']


def test_the_owner_writes_without_a_transfer_another_cpu_waits_for_one():
    line = CacheLine('x')
    assert line.write(100, 0, COST) is None            # never written: nothing to fetch
    assert line.write(200, 0, COST) is None            # cpu 0 owns it
    assert line.write(300, 1, COST) == (300, 300 + COST)
    assert line.write(300 + COST, 1, COST) is None


def test_transfers_of_one_line_are_serialised_the_more_cpus_the_longer_the_queue():
    line = CacheLine('x')
    line.write(0, 0, COST)
    ends = [line.write(1000, cpu, COST)[1] for cpu in range(1, 9)]
    assert ends == [1000 + k * COST for k in range(1, 9)]        # the k-th waits for k - 1 transfers first
    other = CacheLine('y')                                       # another line: its own queue
    other.write(0, 0, COST)
    assert other.write(1000, 5, COST) == (1000, 1000 + COST)


def test_the_owner_at_a_time_is_the_last_writer_before_it_in_simulated_time():
    line = CacheLine('x')
    line.write(100, 0, COST)
    line.write(10_000, 0, COST)                        # cpu 0 ran ahead on the host
    assert line.write(5_000, 1, COST) is not None      # at 5,000 cpu 0 had written it last
    assert line.write(6_000, 1, COST) is None          # ... and now cpu 1 has


def test_a_speculative_fault_writes_the_tree_lock_and_the_vma_reference_lines():
    env, clock = two_thread_env()
    prime(env)
    clock.cpu = 0
    assert spf_fault(env, ADDR + 0x1000) is not None
    env.stats.clear()
    clock.cpu = 1
    t0 = clock.now()
    assert spf_fault(env, ADDR + 0x2000) is not None
    # read_lock and get_vma move the lines from cpu 0; read_unlock and put_vma find them here
    assert env.stats['cacheline_transfers_mm_rb_lock'] == 1
    assert env.stats['cacheline_transfers_vm_ref_count'] == 1
    assert clock.now() - t0 >= 2 * COST
    env.stats.clear()
    assert spf_fault(env, ADDR + 0x3000) is not None   # the same CPU again: it owns both lines
    assert env.stats['cacheline_transfers'] == 0


def test_the_classic_path_writes_mmap_lock_word():
    env, clock = two_thread_env()
    for cpu in (0, 1):
        clock.cpu = cpu
        t = mmap_lock.mmap_read_lock(env.mm)
        mmap_lock.mmap_read_unlock(env.mm, t)
    assert env.stats['cacheline_transfers_mmap_lock'] == 1
