"""Small gaps that made Linux 6.12 mm selftests fare worse here than natively, each checked by a
guest program whose output must equal the same program's on this host.

process_mrelease (mm/oom_kill.c; the mm selftest mrelease_test): userland/src/mrelease.c. A process
sent SIGKILL is marked as dying and ends only when it next runs, so a process_mrelease that comes
first reaps its memory and returns 0 (EINVAL for a live process, ESRCH for a zombie or a reaped one).

/proc/self/smaps VmFlags and FIONREAD (fs/proc/task_mmu.c show_smap_vma_flags, fs/ioctl.c
do_vfs_ioctl): userland/src/smapflags.c prints the letters of MADV_WIPEONFORK ("wf"), DONTFORK,
DONTDUMP, mlock and userfaultfd registrations ("um", "uw", "ui"), and FIONREAD of /proc/self/pagemap
(a regular file of size 0: answered before its PAGEMAP_SCAN ioctl), a memfd, a tmpfs file, a pipe
and a directory (ENOTTY).

io_uring fixed buffers (the gup_longterm case "io_uring fixed buffer with MAP_SHARED file mapping ...
with local tmpfile"): userland/src/uringpin.c; FOLL_LONGTERM|FOLL_WRITE on a shared mapping of a
file that is written back is EFAULT, the other mappings pin.

A /proc file read again from offset 0 (fs/seq_file.c seq_read_iter; the mm selftest mremap_test):
it is generated at each read from the start, not at open.

The 1 GiB hstate (the mm selftest gup_longterm runs its cases for every size it finds): registered
with an empty pool, as Linux on this host's CPU (pdpe1gb) has it.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import assert_matches_native, run_guest, run_native


@pytest.mark.parametrize('cpus', [1, 2])
def test_process_mrelease_matches_native(userland, cpus):
    assert_matches_native(os.path.join(userland, 'mrelease'), b'killed and reaped: yes', cpus=cpus)


def test_process_mrelease_frees_the_memory(userland):
    # MemFree of the whole machine is too noisy to compare natively; the guest machine is quiet
    r = run_guest(os.path.join(userland, 'mrelease'), ['-f'])
    assert r.exit_code == 0
    assert b"the reap freed most of the child's 1 MiB: yes" in r.stdout, r.stdout


def test_smaps_vmflags_and_fionread_match_native(userland):
    prog = os.path.join(userland, 'smapflags')
    code, out, _ = run_native(prog)
    assert code == 0 and b'wipeonfork: VmFlags: rd wr mr mw me ac wf' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    # the guest's kernel has CONFIG_MEM_SOFT_DIRTY as Debian's 6.12 (every VMA "sd" until
    # clear_refs), this host's kernel does not show it
    assert b' wf sd ' in r.stdout
    assert r.exit_code == 0 and re.sub(rb' sd ', b' ', r.stdout) == out


def test_io_uring_longterm_pin_of_a_shared_file_mapping_matches_native(userland):
    # natively the file is made next to the program (a disk filesystem, not tmpfs), in the guest on
    # its simulated disk
    prog = os.path.join(userland, 'uringpin')
    code, out, _ = run_native(prog, cwd=userland)
    assert code == 0 and b'local file MAP_SHARED: EFAULT' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0 and r.stdout == out


# ---- seq_file reads (fs/seq_file.c seq_read_iter; the mm selftest mremap_test) -----------------------
PROC_REREAD_C = r'''
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char buf[1 << 16];

/* does the text read now (at offset 0) show a mapping that starts at p? */
static int shows(int fd, void *p)
{
	char want[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = 0;
	snprintf(want, sizeof(want), "\n%lx-", (unsigned long)p);
	return strstr(buf, want) != NULL;
}

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/maps", O_RDONLY);
	/* mapped after the open, before the first read: seq_open shows nothing yet */
	char *p = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("first read after a mmap shows it: %d\n", shows(fd, p));
	munmap(p, 3 * pg);
	printf("a read at 0 again after munmap shows it: %d\n", shows(fd, p));
	p = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char c;
	lseek(fd, 0, SEEK_SET);
	read(fd, &c, 1);
	printf("read(2) from the start after a mmap shows it: %d\n", shows(fd, p));
	close(fd);
	/* mremap_test's mremap_expand_merge: one VMA again after the expand */
	FILE *f = fopen("/proc/self/maps", "r");
	char *s = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(s + pg, pg);
	char *r = mremap(s, pg, 2 * pg, 0);
	unsigned long a, b, lo = (unsigned long)s, hi = lo + 3 * pg;
	int merged = 0;
	char line[512];
	rewind(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= lo && b >= hi)
			merged = 1;
	printf("mremap expand merge: %s (%s)\n", merged ? "one VMA" : "not merged", r == s ? "in place" : "moved");
	return 0;
}
'''


def _static_c(tmp_path, name, source):
    """Build a static program from source in tmp_path (skip without gcc)."""
    cc = shutil.which('gcc')
    if cc is None:
        pytest.skip('gcc not available')
    src, exe = tmp_path / (name + '.c'), tmp_path / name
    src.write_text(source)
    subprocess.run([cc, '-O1', '-static', '-o', str(exe), str(src)], check=True, capture_output=True)
    return str(exe)


def test_proc_file_is_generated_at_each_read_from_offset_0_as_native(tmp_path):
    """A seq_file shows nothing at open; every read from offset 0 walks the records anew, so a mapping
    made after the open is in the first read (faultlab kept the open's text for the first read, and
    mremap_test's 'mremap expand merge' failed)."""
    prog = _static_c(tmp_path, 'procreread', PROC_REREAD_C)
    code, out, _ = run_native(prog)
    assert code == 0 and b'mremap expand merge: one VMA' in out, out
    assert b'first read after a mmap shows it: 1' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0 and r.stdout == out


# ---- the 1 GiB hstate (the mm selftest gup_longterm runs its cases for each size in /sys/kernel/mm/hugepages)
GIGANTIC_C = r'''
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef MAP_HUGE_SHIFT
#define MAP_HUGE_SHIFT 26
#endif
#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << MAP_HUGE_SHIFT)
#endif
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif
#ifndef MFD_HUGE_1GB
#define MFD_HUGE_1GB (30U << MFD_HUGE_SHIFT)
#endif
#define G "/sys/kernel/mm/hugepages/hugepages-1048576kB/"
#define R(x) ((x) < 0 ? strerrorname_np(errno) : "ok")

static void show(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	int n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	printf("%s: %s%s", path, n < 0 ? strerrorname_np(errno) : buf, n < 0 ? "\n" : "");
	if (fd >= 0)
		close(fd);
}

/* only writes that Linux refuses: the host's settings stay as they are */
static void refused(const char *path, const char *v)
{
	int fd = open(path, O_WRONLY);
	int n = fd < 0 ? -1 : write(fd, v, strlen(v));
	printf("echo %s > %s: %s\n", v, path, R(n));
	if (fd >= 0)
		close(fd);
}

static void try_map(const char *what, int flags, int fd, size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	printf("mmap %s: %s\n", what, m == MAP_FAILED ? strerrorname_np(errno) : "ok");
}

int main(void)
{
	const char *names[] = {"nr_hugepages", "nr_hugepages_mempolicy", "free_hugepages", "resv_hugepages",
			       "surplus_hugepages", "nr_overcommit_hugepages", "demote_size", "demote"};
	char p[256];
	DIR *d = opendir("/sys/kernel/mm/hugepages/");
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			printf("hstate: %s\n", e->d_name);
	closedir(d);
	for (int i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), G "%s", names[i]);
		show(p);
	}
	show("/sys/devices/system/node/node0/hugepages/hugepages-1048576kB/free_hugepages");
	refused(G "nr_overcommit_hugepages", "1");
	refused(G "demote_size", "4096");
	refused(G "demote_size", "1G");
	refused(G "demote", "x");
	try_map("MAP_HUGE_1GB private", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB, -1, 1 << 30);
	try_map("MAP_HUGE_1GB shared", MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB, -1, 4096);
	try_map("MAP_HUGE 512 MiB", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (29 << MAP_HUGE_SHIFT), -1, 4096);
	int fd = memfd_create("g", MFD_HUGETLB | MFD_HUGE_1GB);
	struct statfs st = {0};
	printf("memfd_create MFD_HUGE_1GB: %s\n", R(fd));
	struct stat sb = {0};
	printf("fstatfs: %s, hugetlbfs: %d\n", R(fstatfs(fd, &st)), st.f_type == 0x958458f6);
	fstat(fd, &sb);
	printf("f_bsize %ld, st_blksize %ld\n", (long)st.f_bsize, (long)sb.st_blksize);
	printf("ftruncate 2 MiB: %s\n", R(ftruncate(fd, 2 << 20)));
	printf("ftruncate 1 GiB: %s\n", R(ftruncate(fd, 1 << 30)));
	printf("fallocate 1 GiB: %s\n", R(fallocate(fd, 0, 0, 1 << 30)));
	try_map("memfd shared", MAP_SHARED, fd, 1 << 30);
	try_map("memfd private", MAP_PRIVATE, fd, 1 << 30);
	printf("memfd_create MFD_HUGE 512 MiB: %s\n", R(memfd_create("g", MFD_HUGETLB | (29U << MFD_HUGE_SHIFT))));
	return 0;
}
'''
GIGANTIC_DIR = '/sys/kernel/mm/hugepages/hugepages-1048576kB'


def test_empty_1gib_hstate_matches_native(tmp_path):
    """x86-64 Linux registers the 1 GiB hstate when the CPU has pdpe1gb: its sysfs directory (with
    demote and demote_size) after the 2 MiB one, no overcommit (EINVAL), an empty pool, so every
    MAP_HUGE_1GB mapping fails with ENOMEM and a MFD_HUGE_1GB memfd cannot be filled (ENOSPC); an
    unknown size is EINVAL for mmap and ENODEV for memfd_create. Run natively where this host has that
    directory with an empty pool and root may read it."""
    if os.geteuid() != 0 or not os.path.isdir(GIGANTIC_DIR):
        pytest.skip('needs root and a host with the 1 GiB hstate')
    with open(os.path.join(GIGANTIC_DIR, 'nr_hugepages')) as f:
        if f.read().strip() != '0':
            pytest.skip("the host's 1 GiB pool is not empty")
    prog = _static_c(tmp_path, 'gigantic', GIGANTIC_C)
    code, out, _ = run_native(prog)
    assert code == 0 and b'hstate: hugepages-2048kB\nhstate: hugepages-1048576kB\n' in out, out
    assert b'mmap MAP_HUGE_1GB private: ENOMEM' in out and b'fallocate 1 GiB: ENOSPC' in out
    assert b'f_bsize 1073741824, st_blksize 1073741824\nftruncate 2 MiB: EINVAL' in out
    r = run_guest(prog)
    assert r.result.report is None, r.result.report
    assert r.exit_code == 0 and r.stdout == out


# ---- the pool grows only down to the min watermark (the mm selftest compaction_test) ---------------------
def test_growing_the_pool_stops_at_the_min_watermark():
    """alloc_pool_huge_folio (__GFP_RETRY_MAYFAIL | __GFP_NOWARN) fails once taking a 2 MiB block would
    leave no more than the min watermark free: echo N > nr_hugepages with N past memory keeps the
    system's reserve, as does a surplus page; the boot-time pool (hugepages=N) is taken before the
    watermarks. Not compared natively: it would take this host's memory."""
    from test_mm_unit import Env
    from faultlab.kernel.mm.hugetlb import HState
    from faultlab.kernel.mm.hugetlb_types import PAGES_PER_HPAGE
    e = Env(ram=64 << 20)
    h = HState(e.svc, 0)
    e.svc.set_hstate(h)
    frames, mark = e.svc.frames, e.svc.reclaim.wmark_min
    h.set_max_huge_pages(1 << 20)
    assert h.nr_huge_pages > 0
    assert mark < frames.nr_free <= mark + PAGES_PER_HPAGE - 1
    h.nr_overcommit_huge_pages = 1
    assert h.alloc_surplus_huge_page() is None
    h.set_max_huge_pages(0)
    assert h.nr_huge_pages == 0
    boot = HState(Env(ram=64 << 20).svc, 1 << 20)
    assert boot.frames.nr_free < PAGES_PER_HPAGE       # hugepages=N takes every aligned block
