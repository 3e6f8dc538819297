"""The simulated disk's contents in a host file (kernel/block/store.py) and --disk-image.

* host memory: a run that swaps out far more than its RAM keeps its RSS near guest RAM (the slots' bytes
  are in the host file, not the emulator's heap), measured with wait4's ru_maxrss of the run alone
  (started by a small probe process: a child of pytest would report at least pytest's own peak RSS);
* the swapped data comes back intact (swaptouch checks every page), with the native run's output;
* deferred swap writes (one pwritev per batch) change nothing the guest or the counters see;
* --disk-image FILE keeps the root filesystem across runs; a temporary disk leaves no file behind;
* bad --disk-image paths end with one line and status 2, and a file that is not an image is not touched.
"""
import json
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT, run_guest
from faultlab.bench.speed_goals import run_child
from faultlab.kernel.block.store import BlockRegion, DiskImageError, DiskStore

FAULTLAB = [sys.executable, '-m', 'faultlab.cli', 'run']
PAGE = 4096


def _faultlab(args, env=None):
    """(status, stdout, stderr, None) of one `faultlab run` subprocess."""
    p = subprocess.run(FAULTLAB + list(args), capture_output=True, cwd=ROOT, env=dict(os.environ, **(env or {})),
                       timeout=300)
    return p.returncode, p.stdout, p.stderr, None


def _native(prog, *args):
    return subprocess.run([os.path.join(BUILD, prog)] + list(args), capture_output=True, timeout=60)


def test_host_rss_stays_near_guest_ram_when_swap_holds_far_more(userland, tmp_path):
    """32 MiB of RAM, 160 MiB touched: some 33,000 pages go to swap (130 MiB). The run's peak RSS
    stays within 48 MiB of a hello run's with the same RAM (kept in a heap, the swapped pages alone
    would add 130 MiB)."""
    ram = FAULTLAB + ['--ram', '32M', '--swap', '512M']
    code, out, _cpu, base = run_child(ram + [os.path.join(BUILD, 'hello')])
    assert code == 0, out
    stats_file = tmp_path / 'stats.json'
    code, out, _cpu, rss = run_child(ram + ['--stats-json', str(stats_file), os.path.join(BUILD, 'swaptouch'), '160', '1'])
    assert code == 0, out
    assert out == _native('swaptouch', '160', '1').stdout
    stats = json.loads(stats_file.read_text())
    swapped = stats['pswpout'] * PAGE >> 10
    assert swapped > 100 << 10                        # > 100 MiB went to swap
    assert rss - base < 48 << 10, (rss, base, swapped)


def test_swapped_pages_come_back_intact_with_deferred_writes_or_not(userland, monkeypatch):
    """swaptouch checks each page after it came back from swap; its output is the native one, and
    writing each slot at once (a batch of 1) gives the same output and the same counters."""
    native = _native('swaptouch', '24', '3').stdout
    runs = []
    for batch in (BlockRegion.BATCH, 1):
        monkeypatch.setattr(BlockRegion, 'BATCH', batch)
        r = run_guest(os.path.join(BUILD, 'swaptouch'), ['24', '3'], ram=16 << 20)
        assert r.exit_code == 0 and r.stdout == native, r.stdout
        runs.append(r.stats)
    assert runs[0]['pswpout'] > 5000 and runs[0]['pswpin'] > 5000
    assert runs[0] == runs[1]


def test_block_region_reads_what_was_written_and_forgets_freed_blocks(tmp_path):
    store = DiskStore(tmpdir=str(tmp_path))
    assert os.listdir(tmp_path) == []                 # the temporary disk file has no name
    r = store.region(1 << 20, 16)
    a, b = bytes([1]) * PAGE, bytearray([2]) * PAGE
    r[3] = a
    r.defer(4, b)
    assert 4 in r.pending and r.get(4) == bytes(b) and not r.pending     # a read flushes first
    r.defer(5, memoryview(b))
    r.pop(5)
    assert 5 not in r and r.get(5) is None and not r.pending
    assert sorted(r) == [3, 4] and r[3] == a
    buf = bytearray(PAGE)
    assert r.read_into(4, buf) and buf == b and not r.read_into(6, buf)
    with pytest.raises(KeyError):
        r[16] = a
    store.close()


def test_a_disk_image_keeps_the_root_filesystem(userland, tmp_path):
    """A file written (and not synced) in one run is there, through its symbolic link and mmap, in the
    next run on the same image, with the checksum of the same program run natively; a run on a fresh
    (temporary) disk does not see it; no file is left in TMPDIR."""
    img = str(tmp_path / 'disk.img')
    scratch = tmp_path / 'tmp'
    scratch.mkdir()
    env = {'TMPDIR': str(scratch)}
    prog = os.path.join(BUILD, 'diskkeep')
    code, out, err, _ = _faultlab(['--disk-image', img, prog, 'write', '/home/f', '300'], env)
    assert (code, out) == (0, b'wrote 307200 bytes\n'), err
    code, out, err, _ = _faultlab(['--disk-image', img, prog, 'check', '/home/f', '300'], env)
    native_file = str(tmp_path / 'nf')
    _native('diskkeep', 'write', native_file, '300')
    assert code == 0, out + err
    assert out == _native('diskkeep', 'check', native_file, '300').stdout
    code, out, _err, _ = _faultlab(['--disk-image', img, os.path.join(BUILD, 'hello')], env)
    assert code == 0
    code, out, _err, _ = _faultlab([prog, 'check', '/home/f', '300'], env)
    assert code == 1 and out.startswith(b'FAIL: open')
    assert os.listdir(scratch) == []
    st = os.stat(img)
    assert st.st_blocks * 512 < 64 << 20 < st.st_size         # sparse: the swap area is far out
    # the image holds a 4096 MiB root filesystem: another size is refused, in one line
    code, out, err, _ = _faultlab(['--disk-image', img, '--disk', 'size_mb=512', os.path.join(BUILD, 'hello')])
    assert code == 2 and err.count(b'\n') == 1 and b'4096 MiB' in err and b'Traceback' not in err


@pytest.mark.parametrize('kind', ['directory', 'missing parent', 'not an image', 'damaged'])
def test_bad_disk_image_paths_are_one_line_errors(userland, tmp_path, kind):
    path = {'directory': str(tmp_path), 'missing parent': str(tmp_path / 'no' / 'disk.img')}.get(kind)
    before = None
    if kind == 'not an image':
        path = str(tmp_path / 'notes.txt')
        before = b'my notes\n' * 1000
    elif kind == 'damaged':
        path = str(tmp_path / 'disk.img')
        before = b'faultlab disk image 1\n{"offset": 99999999, "length": 12}'
    if before is not None:
        with open(path, 'wb') as f:
            f.write(before)
    code, out, err, _ = _faultlab(['--disk-image', path, os.path.join(BUILD, 'hello')])
    assert code == 2 and out == b'', err
    assert err.startswith(b'faultlab: ' + path.encode()) and err.count(b'\n') == 1, err
    if before is not None:
        with open(path, 'rb') as f:
            assert f.read() == before                 # refused, not overwritten
    with pytest.raises(DiskImageError):
        DiskStore(path)


def test_a_disk_image_in_use_is_refused(tmp_path):
    """Two runs on one image at once would mix their blocks: the second is refused while the first has it."""
    path = str(tmp_path / 'disk.img')
    first = DiskStore(path)
    with pytest.raises(DiskImageError, match='in use by another faultlab run'):
        DiskStore(path)
    first.close()
    DiskStore(path).close()


def test_a_saved_tree_comes_back_with_links_times_holes_and_free_space(tmp_path):
    """save_disk_image then a new machine on the image: hard links are one inode (nlink 2), a symbolic
    link keeps its target, a fallocated range reads as zeros without data, a deleted file's blocks are
    free again, and the block and inode counts (statfs) are those of the first machine."""
    from faultlab.kernel.kernel import KernelConfig
    from faultlab.machine import Machine
    img = str(tmp_path / 'disk.img')

    def machine():
        return Machine(ram=16 << 20, config=KernelConfig(stdout=lambda b: None, disk_image=img, swap_bytes=1 << 20))
    k = machine().kernel
    vfs = k.vfs
    vfs.mkdir('/home/d', 0o750)
    f = vfs.create('/home/d/f', 0o600)
    for i in range(3):
        f.write_page(i, bytes([i + 1]) * PAGE)
    f.set_size(3 * PAGE - 100)
    f.allocate(8 * PAGE, 4 * PAGE)
    vfs.link('/home/d/f', '/root/hard')
    vfs.symlink('d/f', '/home/sym')
    gone = vfs.create('/home/gone')
    gone.write_page(0, b'x' * PAGE)
    gone.set_size(PAGE)
    vfs.unlink('/home/gone')
    st0 = vfs.root_sb.statfs()
    times = (f.mtime, f.ctime, f.btime)
    k.save_disk_image()

    k2 = machine().kernel
    v2 = k2.vfs
    f2 = v2.lookup('/home/d/f')
    assert f2 is v2.lookup('/root/hard') and f2.nlink == 2 and f2.ino == f.ino
    assert v2.lookup('/home/sym') is f2 and v2.lookup('/home/sym', follow=False).target == 'd/f'
    assert f2.size == 12 * PAGE and (f2.mtime, f2.ctime, f2.btime) == times and f2.mode & 0o7777 == 0o600
    assert [f2.read_page(i)[:1] for i in range(3)] == [b'\x01', b'\x02', b'\x03']
    assert len(f2.read_page(2)) == PAGE and f2.read_page(9) == bytes(PAGE) and f2.bmap(9) is None
    assert v2.lookup('/home/d').mode & 0o7777 == 0o750
    with pytest.raises(Exception):
        v2.lookup('/home/gone')
    st1 = v2.root_sb.statfs()
    assert (st1.f_bfree, st1.f_ffree) == (st0.f_bfree, st0.f_ffree)
    assert v2.lookup('/etc/hostname').read_page(0) == b'faultlab\n'
    new = v2.create('/home/new')                      # inode numbers go on from where they were
    assert new.ino > f.ino
