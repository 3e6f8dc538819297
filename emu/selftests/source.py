"""The Linux 6.12 mm selftests: fetched with `apt-get download linux-source-6.12`, the parts their Makefile
needs unpacked into a cache directory (never into the repository), UAPI headers made with `make headers`,
and the programs built twice by tools/testing/selftests/mm/Makefile: as it builds them (dynamically
linked) and with -static."""
import glob
import os
import shlex
import shutil
import subprocess

PACKAGE = 'linux-source-6.12'
TARBALL = './usr/src/linux-source-6.12.tar.xz'
TOP = 'linux-source-6.12'
MM = 'tools/testing/selftests/mm'
# what the mm Makefile, lib.mk and the tests' includes reach: the Kbuild parts `make headers` runs,
# the UAPI and tools headers, ../x86/check_cc.sh, and the two kernel headers tests include by path
MEMBERS = ('Makefile', 'Kbuild', 'Kconfig', 'scripts', 'include', 'arch/x86', 'usr', 'tools/include',
           'tools/scripts', MM, 'tools/testing/selftests/x86', 'tools/testing/selftests/lib.mk',
           'tools/testing/selftests/kselftest.h', 'tools/testing/selftests/kselftest_harness.h',
           'tools/testing/selftests/kselftest', 'tools/testing/selftests/Makefile', 'mm/gup_test.h',
           'lib/test_hmm_uapi.h')
FLAVOURS = ('static', 'dynamic')
FLAVOUR_FLAGS = {'static': ['EXTRA_CFLAGS=-static'], 'dynamic': []}


class SourceError(Exception):
    """A step of getting or building the selftests failed (the message says which)."""


def tree(cache):
    return os.path.join(cache, 'src', TOP)


def mm_dir(cache):
    return os.path.join(tree(cache), MM)


def build_dir(cache, flavour):
    return os.path.join(cache, 'build', flavour)


def _run(argv, log, **kw):
    with open(log, 'ab') as f:
        f.write(('$ %s\n' % ' '.join(shlex.quote(a) for a in argv)).encode())
        f.flush()
        p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, **kw)
    return p.returncode


def download(cache, log):
    """The linux-source .deb in cache/dl (apt-get download; apt-get update first when apt does not
    know the package yet)."""
    dl = os.path.join(cache, 'dl')
    os.makedirs(dl, exist_ok=True)
    debs = glob.glob(os.path.join(dl, PACKAGE + '_*.deb'))
    if debs:
        return sorted(debs)[-1]
    if _run(['apt-get', 'download', PACKAGE], log, cwd=dl) != 0:
        _run(['apt-get', 'update', '-qq'], log)
        if _run(['apt-get', 'download', PACKAGE], log, cwd=dl) != 0:
            raise SourceError('apt-get download %s failed (see %s)' % (PACKAGE, log))
    debs = glob.glob(os.path.join(dl, PACKAGE + '_*.deb'))
    if not debs:
        raise SourceError('apt-get download left no %s .deb in %s' % (PACKAGE, dl))
    return sorted(debs)[-1]


def unpack(cache, deb, log):
    """Only MEMBERS of the tree from the .deb's tarball into cache/src, then `make headers`."""
    src = os.path.join(cache, 'src')
    os.makedirs(src, exist_ok=True)
    members = ' '.join(shlex.quote('%s/%s' % (TOP, m)) for m in MEMBERS)
    script = ('set -o pipefail; dpkg-deb --fsys-tarfile %s | tar -xO %s | xz -dc | tar -x -C %s %s'
              % (shlex.quote(deb), TARBALL, shlex.quote(src), members))
    if _run(['bash', '-c', script], log) != 0:
        raise SourceError('unpacking %s failed (see %s)' % (deb, log))
    if _run(['make', '-s', 'headers'], log, cwd=tree(cache)) != 0:
        raise SourceError('make headers failed (see %s)' % log)
    open(os.path.join(tree(cache), '.headers-done'), 'w').close()


def ensure_source(cache, log):
    """The unpacked tree with its headers made, fetching it when it is not in the cache yet."""
    if not os.path.exists(os.path.join(tree(cache), '.headers-done')):
        unpack(cache, download(cache, log), log)
    return tree(cache)


def build(cache, flavour, jobs, log):
    """Build every mm selftest for one flavour into cache/build/FLAVOUR (make -k: a program that does
    not build is missing, the others are there). Returns the directory."""
    out = build_dir(cache, flavour)
    os.makedirs(out, exist_ok=True)
    _run(['make', '-k', '-j%d' % jobs, 'OUTPUT=%s' % out] + FLAVOUR_FLAGS[flavour], log, cwd=mm_dir(cache))
    build_khugepaged(cache, flavour, log)
    for script in glob.glob(os.path.join(mm_dir(cache), '*.sh')):    # next to the programs, as installed
        shutil.copy2(script, out)
    return out


def build_khugepaged(cache, flavour, log):
    """The 6.12 khugepaged.c fails with "'KSFT_SKIP' undeclared" (khugepaged.c:1195: it uses KSFT_SKIP
    without including kselftest.h); build that one program again with KSFT_SKIP defined as kselftest.h
    defines it (4), the rest of its flags as the Makefile gives them."""
    out = os.path.abspath(build_dir(cache, flavour))
    extra = ' '.join(f.split('=', 1)[1] for f in FLAVOUR_FLAGS[flavour] if f.startswith('EXTRA_CFLAGS='))
    _run(['make', 'OUTPUT=%s' % out, 'EXTRA_CFLAGS=%s -DKSFT_SKIP=4' % extra, os.path.join(out, 'khugepaged')],
         log, cwd=mm_dir(cache))


def syscall_names(cache):
    """nr -> name from the tree's arch/x86/entry/syscalls/syscall_64.tbl (common and 64-bit ABIs)."""
    names = {}
    path = os.path.join(tree(cache), 'arch/x86/entry/syscalls/syscall_64.tbl')
    try:
        with open(path) as f:
            for line in f:
                words = line.split()
                if len(words) >= 3 and not line.startswith('#') and words[1] in ('common', '64'):
                    names[int(words[0])] = words[2]
    except OSError:
        pass
    return names
