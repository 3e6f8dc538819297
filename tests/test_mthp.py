"""Multi-size THP for anonymous memory (kernel/mm/huge_memory.py alloc_anon_folio, kernel/mm/memory.py
map_anon_folio, the hugepages-<size>kB knobs of kernel/mm/thp_sysfs.py): userland/src/mthpfault.c sets
hugepages-64kB/enabled to always (restoring it afterwards) and is compared with the native run."""
import os

from conftest import run_guest, run_native


def _matches_native(prog, guest_out):
    """The guest's lines equal a native run's. The knobs are the host's, shared with whatever else runs
    there (other tests' native runs set them too), so a native run that differs is tried again, twice."""
    for _ in range(3):
        code, out, _err = run_native(prog)
        assert code == 0, out
        if out.decode().splitlines() == guest_out.decode().splitlines():
            return True
    return False


def test_mthp_64k_fault_matches_native(userland):
    """One write fault maps 16 pages (ru_minflt 1, 16 present in pagemap, naturally aligned frames that
    /proc/kpageflags shows as KPF_THP with COMPOUND_HEAD/TAIL), fork and COW keep each side's data, a
    partial munmap leaves the rest: the same lines as natively (run as root)."""
    prog = os.path.join(userland, 'mthpfault')
    r = run_guest(prog, check=True)
    assert r.exit_code == 0, r.stderr
    assert _matches_native(prog, r.stdout)
    assert b'one write: 1 fault(s), 16 of 16 pages present' in r.stdout
    assert b'page 5: anon 1 head 0 tail 1 thp 1' in r.stdout     # kpageflags of a PTE-mapped large folio
    assert r.machine.kernel.mmsvc.thp.mthp_stats[4, 'anon_fault_alloc'] == 2


def test_mthp_sysfs_defaults_and_fallback(userland, tmp_path):
    """The per-size knobs start as Linux's ('never', the PMD size 'inherit'); with every knob at
    'never' a write fault maps one page."""
    src = tmp_path / 'knobs.c'
    src.write_text(r'''
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    const char *sz[] = {"8", "16", "64", "1024", "2048"};
    for (int i = 0; i < 5; i++) {
        char path[128], buf[128] = {0};
        snprintf(path, sizeof(path), "/sys/kernel/mm/transparent_hugepage/hugepages-%skB/enabled", sz[i]);
        int fd = open(path, O_RDONLY);
        if (fd < 0) { printf("%s: none\n", sz[i]); continue; }
        read(fd, buf, sizeof(buf) - 1);
        printf("%s: %s", sz[i], buf);
        close(fd);
    }
    int fd = open("/sys/kernel/mm/transparent_hugepage/hugepages-64kB/enabled", O_WRONLY);
    printf("bad write: %zd\n", write(fd, "sometimes", 9));
    return 0;
}
''')
    exe = tmp_path / 'knobs'
    assert os.system('gcc -O1 -o %s %s' % (exe, src)) == 0
    r = run_guest(str(exe))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.decode().splitlines() == [
        '8: none', '16: always inherit madvise [never]', '64: always inherit madvise [never]',
        '1024: always inherit madvise [never]', '2048: always [inherit] madvise never', 'bad write: -1']
    assert not r.machine.kernel.mmsvc.thp.mthp_stats


def test_mthp_order_choice_matches_native(userland):
    """The order one write fault maps under the 32/64/128 kB knobs: madvise needs MADV_HUGEPAGE,
    MADV_NOHUGEPAGE excludes all, the largest order that fits the VMA over none PTEs, and smaps'
    THPeligible for a VMA only a smaller order fits, as natively."""
    prog = os.path.join(userland, 'mthporders')
    r = run_guest(prog, check=True)
    assert r.exit_code == 0, r.stderr
    assert _matches_native(prog, r.stdout)
    assert b'all always, page 20 read, fault at 0     16 pages, THPeligible 1' in r.stdout
