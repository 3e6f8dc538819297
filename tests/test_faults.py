"""Each fault type, checked by counting what the kernel did."""
import os

from conftest import run_guest, DATA

MOUNT = [(DATA, '/data', True)]


def _handler(run, name):
    return run.stats['fault_breakdown'].get(name, {}).get('count', 0)


def test_anonymous_write_faults_one_per_page(userland):
    small = run_guest(os.path.join(userland, 'pagetouch'), ['4'])
    big = run_guest(os.path.join(userland, 'pagetouch'), ['12'])
    pages = (12 - 4) * 256
    assert big.stats['minor_faults'] - small.stats['minor_faults'] == pages
    assert big.stats['pages_zeroed'] - small.stats['pages_zeroed'] == pages
    assert _handler(big, 'do_anonymous_page') - _handler(small, 'do_anonymous_page') == pages
    assert big.stats['major_faults'] == small.stats['major_faults']


def test_anonymous_read_faults_map_the_zero_page(userland):
    small = run_guest(os.path.join(userland, 'pagetouch'), ['4', 'r'])
    big = run_guest(os.path.join(userland, 'pagetouch'), ['12', 'r'])
    pages = (12 - 4) * 256
    assert _handler(big, 'do_anonymous_page(zero)') - _handler(small, 'do_anonymous_page(zero)') == pages
    # reading allocates nothing: no extra zeroed frames
    assert big.stats['pages_zeroed'] == small.stats['pages_zeroed']


def test_cold_file_mapping_reads_in_readahead_windows(userland):
    """readahead maps a 257-page file and reads a byte of each page in order."""
    big = run_guest(os.path.join(userland, 'readahead'), ['/data/big.bin'], mounts=MOUNT)
    small = run_guest(os.path.join(userland, 'readahead'), ['/data/small.txt'], mounts=MOUNT)
    # 257 pages in 128 KiB (32-page) windows: 9 requests, every page read once
    assert big.stats['disk_read_bytes'] - small.stats['disk_read_bytes'] == 256 * 4096
    assert big.stats['disk_reads'] - small.stats['disk_reads'] == 8
    assert big.stats['major_faults'] > small.stats['major_faults']
    # fault-around maps the cached neighbours: far fewer faults than pages
    file_faults = big.stats['page_faults'] - small.stats['page_faults']
    assert 0 < file_faults < 256 // 4
    assert big.stats['fault_around_pages'] - small.stats['fault_around_pages'] >= 256 - file_faults


def test_fault_around_off_gives_one_fault_per_page(userland):
    on = run_guest(os.path.join(userland, 'readahead'), ['/data/big.bin'], mounts=MOUNT)
    off = run_guest(os.path.join(userland, 'readahead'), ['/data/big.bin'], mounts=MOUNT, fault_around_bytes=4096)
    assert off.stats['fault_around_pages'] == 0
    assert off.stats['page_faults'] - on.stats['page_faults'] >= 256 - 32
    assert off.stdout == on.stdout


def test_private_file_write_copies_and_leaves_file_unchanged(userland):
    big = run_guest(os.path.join(userland, 'filemap'), ['/data/big.bin'], mounts=MOUNT)
    small = run_guest(os.path.join(userland, 'filemap'), ['/data/small.txt'], mounts=MOUNT)
    assert b'file unchanged' in big.stdout
    assert _handler(big, 'do_cow_fault') + _handler(big, 'do_wp_page(copy)') - \
        _handler(small, 'do_cow_fault') - _handler(small, 'do_wp_page(copy)') == 256
    assert big.stats['pages_copied'] - small.stats['pages_copied'] == 256
    with open(os.path.join(DATA, 'big.bin'), 'rb') as f:
        data = f.read(8)
    assert data == bytes(((i * 2654435761) >> 13) & 0xFF for i in range(8))


def test_per_fault_breakdown_charges_named_costs(userland):
    r = run_guest(os.path.join(userland, 'pagetouch'), ['1'])
    anon = r.stats['fault_breakdown']['do_anonymous_page']
    costs = r.machine.costs
    per = anon['cycles'] / anon['count']
    assert anon['page_zero'] == costs.page_zero * anon['count']
    # frames not in the modeled last-level cache add DRAM time (kernel/mm/llc.py), in whole units; a
    # fault may also pay for the first user load of a page an earlier fault mapped
    dram = anon.get('page_zero_dram', 0)
    assert dram % costs.page_zero_dram == 0 and dram // costs.page_zero_dram <= anon['count']
    assert anon.get('llc_miss', 0) % costs.llc_miss == 0
    assert per == costs.exception_entry + costs.exception_exit + costs.fault_handle + costs.vma_lookup + \
        costs.page_alloc + costs.page_zero + costs.pte_set + (dram + anon.get('llc_miss', 0)) / anon['count']


def test_major_fault_waits_for_the_disk(userland):
    from faultlab.kernel.block.params import DiskParams
    fast = run_guest(os.path.join(userland, 'readahead'), ['/data/big.bin'], mounts=MOUNT,
                     disk=DiskParams(read_latency_us=10.0))
    slow = run_guest(os.path.join(userland, 'readahead'), ['/data/big.bin'], mounts=MOUNT,
                     disk=DiskParams(read_latency_us=1000.0))
    assert slow.stats['iowait_cycles'] > fast.stats['iowait_cycles'] * 10
    assert slow.stats['instructions'] == fast.stats['instructions']


def test_memory_pressure_swaps_and_keeps_contents(userland):
    from conftest import run_native
    prog = os.path.join(userland, 'pagetouch')
    r = run_guest(prog, ['40'], ram=24 << 20, swap_bytes=64 << 20)
    code, out, _ = run_native(prog, ['40'])
    assert r.stdout == out and r.exit_code == code == 0
    assert r.stats['pswpout'] > 0 and r.stats['pswpin'] > 0
    assert _handler(r, 'do_swap_page') > 0
    # cluster read-ahead: one major fault reads up to 8 slots, the neighbours then fault minor
    swapins = _handler(r, 'do_swap_page')
    assert swapins // 8 <= r.stats['major_faults'] < swapins
    assert r.stats['pswpin'] >= swapins


def test_without_swap_memory_pressure_ends_in_oom_kill(userland):
    # 24 MiB: one mapping larger than RAM + swap would be refused by mmap (OVERCOMMIT_GUESS)
    r = run_guest(os.path.join(userland, 'pagetouch'), ['24'], ram=24 << 20, swap_bytes=0)
    assert r.exit_code == 128 + 9 and 'out of memory' in r.result.report
