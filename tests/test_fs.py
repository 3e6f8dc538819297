"""Tests of the guest filesystem (kernel/fs): inodes, superblocks, the Vfs namespace, containment, layouts."""
import errno
import os
import shutil
import struct
import subprocess

import pytest

from faultlab.kernel.fs import (Cred, DiskFs, FsError, HostFs, TmpFs, Vfs, make_root_fs, makedev,
                       pack_dirent64, pack_stat, pack_statfs, parse_mount_spec)
from faultlab.kernel.fs.dirent import DT_CHR, DT_DIR, DT_LNK, DT_REG
from faultlab.kernel.fs.perm import MAY_READ, MAY_WRITE
from faultlab.kernel.fs.stat import STAT_FIELDS, STAT_SIZE, STATFS_FIELDS, STATFS_SIZE, S_IFCHR, S_IFDIR, S_IFREG

PAGE = 4096
USER = Cred(uid=1000, gid=1000)
OTHER = Cred(uid=1001, gid=1001)


class Clock:
    """A deterministic wall clock: 1 ms per reading, starting at 2024-01-01."""

    def __init__(self):
        self.t = 1_704_067_200 * 10**9

    def __call__(self):
        self.t += 1_000_000
        return self.t


@pytest.fixture
def vfs():
    return make_root_fs(Clock(), seed=1, disk_blocks=4096)


def expect(code, fn, *args, **kw):
    with pytest.raises(FsError) as ei:
        fn(*args, **kw)
    assert ei.value.errno == code, f'{fn.__name__}{args}: got {errno.errorcode[ei.value.errno]}, ' \
                                   f'want {errno.errorcode[code]}'


def write(inode, offset, data):
    """A write(2) through the page interface, like the file layer does it."""
    pos = offset
    while pos < offset + len(data):
        idx, off = divmod(pos, PAGE)
        n = min(PAGE - off, offset + len(data) - pos)
        inode.write_page(idx, data[pos - offset:pos - offset + n], off)
        pos += n
    if offset + len(data) > inode.size:
        inode.set_size(offset + len(data))


def read_all(inode):
    out = b''
    i = 0
    while True:
        chunk = inode.read_page(i)
        out += chunk
        if len(chunk) < PAGE:
            return out
        i += 1


# ---------------------------------------------------------------------------------------------------
# regular files (disk and tmpfs)

@pytest.mark.parametrize('where', ['/home/f', '/tmp/f'])
def test_file_pages_eof_and_holes(vfs, where):
    f = vfs.create(where, 0o644)
    assert f.size == 0 and f.read_page(0) == b''
    write(f, 0, b'hello')
    assert f.size == 5
    assert f.read_page(0) == b'hello'
    assert f.read_page(1) == b''
    write(f, 3 * PAGE + 10, b'xyz')                     # pages 1 and 2 stay holes
    assert f.size == 3 * PAGE + 13
    assert f.read_page(1) == bytes(PAGE)
    assert f.read_page(2) == bytes(PAGE)
    p3 = f.read_page(3)
    assert len(p3) == 13 and p3 == bytes(10) + b'xyz'
    assert f.blocks == 2 * 8                           # only pages 0 and 3 allocated
    if where.startswith('/home'):
        assert f.backing == 'disk'
        assert f.bmap(0) is not None and f.bmap(3) is not None
        assert f.bmap(1) is None and f.bmap(2) is None
    else:
        assert f.backing == 'mem'
        assert all(f.bmap(i) is None for i in range(4))


def test_write_page_does_not_change_size(vfs):
    f = vfs.create('/home/f')
    f.write_page(0, b'abc')
    assert f.size == 0 and f.read_page(0) == b''
    f.set_size(3)
    assert f.read_page(0) == b'abc'
    with pytest.raises(ValueError):
        f.write_page(0, b'x' * 10, PAGE - 5)


@pytest.mark.parametrize('where', ['/home/f', '/tmp/f'])
def test_truncate_shrink_zeroes_tail_and_frees(vfs, where):
    f = vfs.create(where)
    write(f, 0, b'A' * (3 * PAGE))
    assert f.blocks == 24
    f.truncate(PAGE + 100)
    assert f.size == PAGE + 100 and f.blocks == 16
    assert f.read_page(1) == b'A' * 100
    f.set_size(2 * PAGE)                                # grow again: no stale data comes back
    assert f.read_page(1) == b'A' * 100 + bytes(PAGE - 100)
    f.truncate(3 * PAGE)
    assert f.read_page(1) == b'A' * 100 + bytes(PAGE - 100)
    assert f.read_page(2) == bytes(PAGE)
    assert f.blocks == 16
    f.truncate(0)
    assert f.blocks == 0 and f.read_page(0) == b''
    expect(errno.EINVAL, f.truncate, -1)


@pytest.mark.parametrize('where', ['/home/f', '/tmp/f'])
def test_punch_hole_and_allocate(vfs, where):
    f = vfs.create(where)
    write(f, 0, b'B' * (4 * PAGE))
    f.punch_hole(100, 2 * PAGE)                        # partial 0, whole 1, partial 2
    assert f.size == 4 * PAGE
    assert f.read_page(0) == b'B' * 100 + bytes(PAGE - 100)
    assert f.read_page(1) == bytes(PAGE)
    assert f.read_page(2) == bytes(100) + b'B' * (PAGE - 100)
    assert f.blocks == 3 * 8
    f.allocate(6 * PAGE, 10)                            # mode 0 extends the size
    assert f.size == 6 * PAGE + 10
    assert f.blocks == 4 * 8
    assert f.read_page(6) == bytes(10) and f.read_page(5) == bytes(PAGE)
    expect(errno.EINVAL, f.punch_hole, 0, 0)
    expect(errno.EINVAL, f.allocate, -1, 5)


def test_diskfs_blocks_allocated_contiguously_and_freed_on_unlink(vfs):
    sb = vfs.root_sb
    free0 = sb.allocator.nfree
    f = vfs.create('/home/big')
    write(f, 0, os.urandom(5 * PAGE))
    blocks = [f.bmap(i) for i in range(5)]
    assert blocks == list(range(blocks[0], blocks[0] + 5))
    assert sb.allocator.nfree == free0 - 5
    assert all(sb.allocator.is_allocated(b) for b in blocks)
    assert bytes(sb.image[blocks[2]]) == f.read_page(2)
    vfs.unlink('/home/big')
    assert sb.allocator.nfree == free0
    assert not any(sb.allocator.is_allocated(b) for b in blocks)
    assert not any(b in sb.image for b in blocks)


def test_diskfs_unlinked_open_file_keeps_blocks_until_iput(vfs):
    sb = vfs.root_sb
    free0 = sb.allocator.nfree
    f = vfs.create('/home/open')
    write(f, 0, b'x' * (2 * PAGE))
    f.ihold()
    vfs.unlink('/home/open')
    expect(errno.ENOENT, vfs.lookup, '/home/open')
    assert f.nlink == 0 and f.read_page(1) == b'x' * PAGE
    assert sb.allocator.nfree == free0 - 2
    f.iput()
    assert sb.allocator.nfree == free0


def test_diskfs_truncate_frees_blocks_and_hardlink_keeps_them(vfs):
    sb = vfs.root_sb
    free0 = sb.allocator.nfree
    f = vfs.create('/home/a')
    write(f, 0, b'y' * (4 * PAGE))
    f.truncate(PAGE)
    assert sb.allocator.nfree == free0 - 1
    vfs.link('/home/a', '/home/b')
    assert f.nlink == 2
    vfs.unlink('/home/a')
    assert sb.allocator.nfree == free0 - 1
    assert vfs.lookup('/home/b') is f and f.nlink == 1
    vfs.unlink('/home/b')
    assert sb.allocator.nfree == free0


def test_diskfs_enospc():
    sb = DiskFs(Clock(), nblocks=16)
    vfs = Vfs(sb)
    f = vfs.create('/f')
    n = sb.allocator.nfree
    assert n == 16 - 2                                  # superblock + one bitmap block reserved
    expect(errno.ENOSPC, f.allocate, 0, (n + 1) * PAGE)
    assert sb.allocator.nfree == n and f.blocks == 0    # nothing half-allocated
    for i in range(n):
        f.write_page(i, b'z')
    expect(errno.ENOSPC, f.write_page, n, b'z')
    st = vfs.statfs('/')
    assert st.f_bfree == 0 and st.f_blocks == 16


def test_tmpfs_anon_file_memfd(vfs):
    m = vfs.memfd_create()
    m.ihold()
    write(m, 0, b'mem')
    assert m.nlink == 0 and m.read_page(0) == b'mem' and m.backing == 'mem'
    m.iput()
    assert m.evicted


# ---------------------------------------------------------------------------------------------------
# metadata, stat and layouts

def test_inode_metadata_and_times(vfs):
    d = vfs.mkdir('/home/u', 0o750, cred=None)
    assert d.mode == S_IFDIR | 0o750 and d.nlink == 2
    home = vfs.lookup('/home')
    n0 = home.nlink
    vfs.mkdir('/home/u/sub')
    assert d.nlink == 3 and home.nlink == n0
    f = vfs.create('/home/u/f', 0o640)
    assert f.mode == S_IFREG | 0o640 and f.nlink == 1 and f.blksize == 4096
    t0 = f.mtime
    write(f, 0, b'1')
    assert f.mtime > t0 and f.ctime == f.mtime
    assert d.mtime >= t0
    assert f.dev == vfs.root_sb.dev == makedev(259, 1)
    assert vfs.lookup('/tmp').dev != f.dev           # the mount root has its own device


def test_setattr_permissions(vfs):
    f = vfs.create('/tmp/own', 0o644, cred=USER)
    assert (f.uid, f.gid) == (1000, 1000)
    f.setattr(mode=0o600, cred=USER)
    assert f.mode & 0o7777 == 0o600
    expect(errno.EPERM, f.setattr, mode=0o777, cred=OTHER)
    expect(errno.EPERM, f.setattr, uid=0, cred=USER)
    f.setattr(uid=5, gid=6)
    assert (f.uid, f.gid) == (5, 6)


def _gcc():
    cc = shutil.which('gcc') or shutil.which('cc')
    if cc is None:
        pytest.skip('gcc not available')
    return cc


def _run_c(tmp_path, name, source, *args):
    cc = _gcc()
    src = tmp_path / f'{name}.c'
    exe = tmp_path / name
    src.write_text(source)
    subprocess.run([cc, '-O0', '-o', str(exe), str(src)], check=True, capture_output=True)
    out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True).stdout
    return dict(line.split('=', 1) for line in out.split())


C_STAT = r'''
#include <stdio.h>
#include <stddef.h>
#include <sys/stat.h>
#define OFF(f) printf("off_" #f "=%zu\n", offsetof(struct stat, f))
int main(int argc, char **argv) {
    struct stat s;
    FILE *fp = fopen(argv[1], "rb");
    if (fread(&s, 1, sizeof s, fp) != sizeof s) return 2;
    printf("sizeof=%zu\n", sizeof s);
    OFF(st_dev); OFF(st_ino); OFF(st_nlink); OFF(st_mode); OFF(st_uid); OFF(st_gid);
    OFF(st_rdev); OFF(st_size); OFF(st_blksize); OFF(st_blocks);
    printf("off_st_atime=%zu\n", offsetof(struct stat, st_atim.tv_sec));
    printf("off_st_atime_nsec=%zu\n", offsetof(struct stat, st_atim.tv_nsec));
    printf("off_st_mtime=%zu\n", offsetof(struct stat, st_mtim.tv_sec));
    printf("off_st_mtime_nsec=%zu\n", offsetof(struct stat, st_mtim.tv_nsec));
    printf("off_st_ctime=%zu\n", offsetof(struct stat, st_ctim.tv_sec));
    printf("off_st_ctime_nsec=%zu\n", offsetof(struct stat, st_ctim.tv_nsec));
    printf("dev=%llu\nino=%llu\nnlink=%llu\nmode=%u\nuid=%u\ngid=%u\nrdev=%llu\nsize=%lld\n",
           (unsigned long long)s.st_dev, (unsigned long long)s.st_ino,
           (unsigned long long)s.st_nlink, s.st_mode, s.st_uid, s.st_gid,
           (unsigned long long)s.st_rdev, (long long)s.st_size);
    printf("blksize=%ld\nblocks=%lld\n", (long)s.st_blksize, (long long)s.st_blocks);
    printf("atime=%ld.%09ld\nmtime=%ld.%09ld\nctime=%ld.%09ld\n",
           (long)s.st_atim.tv_sec, s.st_atim.tv_nsec, (long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec,
           (long)s.st_ctim.tv_sec, s.st_ctim.tv_nsec);
    return 0;
}
'''


def test_pack_stat_matches_c_struct_stat(vfs, tmp_path):
    f = vfs.create('/home/s', 0o4751)
    f.setattr(uid=1234, gid=5678)
    f.setattr(mode=0o4751)
    write(f, 0, b'q' * (PAGE + 1))
    f.atime, f.mtime = (1_700_000_000, 123_456_789), (1_700_000_001, 999_999_999)
    raw = pack_stat(f)
    assert len(raw) == STAT_SIZE == 144
    (tmp_path / 'stat.bin').write_bytes(raw)
    c = _run_c(tmp_path, 'stat', C_STAT, str(tmp_path / 'stat.bin'))
    assert int(c['sizeof']) == STAT_SIZE
    for name, off, _ in STAT_FIELDS:
        if not name.startswith('__'):
            assert int(c['off_' + name]) == off, name
    assert int(c['dev']) == f.dev and int(c['ino']) == f.ino and int(c['nlink']) == 1
    assert int(c['mode']) == S_IFREG | 0o4751
    assert (int(c['uid']), int(c['gid'])) == (1234, 5678)
    assert int(c['size']) == PAGE + 1 and int(c['blksize']) == 4096 and int(c['blocks']) == 16
    assert c['atime'] == '1700000000.123456789' and c['mtime'] == '1700000001.999999999'
    assert c['ctime'] == f'{f.ctime[0]}.{f.ctime[1]:09d}'
    null = vfs.lookup('/dev/null')
    (tmp_path / 'stat.bin').write_bytes(pack_stat(null))
    c = _run_c(tmp_path, 'stat', C_STAT, str(tmp_path / 'stat.bin'))
    assert int(c['rdev']) == os.makedev(1, 3) and int(c['mode']) == S_IFCHR | 0o666


C_STATFS = r'''
#include <stdio.h>
#include <stddef.h>
#include <sys/statfs.h>
#define OFF(f) printf("off_" #f "=%zu\n", offsetof(struct statfs, f))
int main(int argc, char **argv) {
    struct statfs s;
    FILE *fp = fopen(argv[1], "rb");
    if (fread(&s, 1, sizeof s, fp) != sizeof s) return 2;
    printf("sizeof=%zu\n", sizeof s);
    OFF(f_type); OFF(f_bsize); OFF(f_blocks); OFF(f_bfree); OFF(f_bavail); OFF(f_files);
    OFF(f_ffree); OFF(f_fsid); OFF(f_namelen); OFF(f_frsize); OFF(f_flags); OFF(f_spare);
    printf("type=%lx\nblocks=%lu\nbfree=%lu\nnamelen=%ld\nflags=%ld\n", (long)s.f_type,
           (unsigned long)s.f_blocks, (unsigned long)s.f_bfree, (long)s.f_namelen, (long)s.f_flags);
    return 0;
}
'''


def test_pack_statfs_matches_c(vfs, tmp_path):
    st = vfs.statfs('/')
    raw = pack_statfs(st)
    assert len(raw) == STATFS_SIZE
    (tmp_path / 'statfs.bin').write_bytes(raw)
    c = _run_c(tmp_path, 'statfs', C_STATFS, str(tmp_path / 'statfs.bin'))
    assert int(c['sizeof']) == STATFS_SIZE
    for name, off, _ in STATFS_FIELDS:
        assert int(c['off_' + name]) == off, name
    assert c['type'] == 'ef53' and int(c['blocks']) == 4096 and int(c['bfree']) == st.f_bfree
    assert int(c['namelen']) == 255 and int(c['flags']) == 0x20
    assert vfs.statfs('/proc').f_type == 0x9FA0 and vfs.statfs('/tmp').f_type == 0x01021994


C_DIRENT = r'''
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <dirent.h>
int main(int argc, char **argv) {
    static char buf[65536];
    FILE *fp = fopen(argv[1], "rb");
    size_t n = fread(buf, 1, sizeof buf, fp);
    printf("off_d_ino=%zu\noff_d_off=%zu\noff_d_reclen=%zu\noff_d_type=%zu\noff_d_name=%zu\n",
           offsetof(struct dirent64, d_ino), offsetof(struct dirent64, d_off),
           offsetof(struct dirent64, d_reclen), offsetof(struct dirent64, d_type),
           offsetof(struct dirent64, d_name));
    int i = 0;
    for (size_t pos = 0; pos < n; i++) {
        struct dirent64 *d = (struct dirent64 *)(buf + pos);
        printf("e%d=%llu,%lld,%u,%u,%s\n", i, (unsigned long long)d->d_ino, (long long)d->d_off,
               d->d_reclen, d->d_type, d->d_name);
        pos += d->d_reclen;
    }
    return 0;
}
'''


def test_pack_dirent64_matches_c(vfs, tmp_path):
    vfs.mkdir('/home/d')
    vfs.create('/home/d/file')
    vfs.symlink('file', '/home/d/a_longer_link_name')
    vfs.mkdir('/home/d/sub')
    d = vfs.lookup('/home/d')
    entries = vfs.readdir(d)
    assert [e[0] for e in entries] == ['.', '..', 'file', 'a_longer_link_name', 'sub']
    assert entries[1][1] == vfs.lookup('/home').ino
    assert [e[2] for e in entries] == [DT_DIR, DT_DIR, DT_REG, DT_LNK, DT_DIR]
    raw, n = pack_dirent64(entries, 4096)
    assert n == 5
    # reclen = 19 header + name + NUL, rounded up to 8
    assert struct.unpack_from('<H', raw, 16)[0] == 24                 # '.'
    (tmp_path / 'dents.bin').write_bytes(raw)
    c = _run_c(tmp_path, 'dents', C_DIRENT, str(tmp_path / 'dents.bin'))
    assert [int(c[k]) for k in ('off_d_ino', 'off_d_off', 'off_d_reclen', 'off_d_type', 'off_d_name')] \
        == [0, 8, 16, 18, 19]
    for i, (name, ino, dtype) in enumerate(entries):
        cino, coff, creclen, ctype, cname = c[f'e{i}'].split(',')
        assert (int(cino), int(coff), int(ctype), cname) == (ino, i + 1, dtype, name)
        assert int(creclen) % 8 == 0 and int(creclen) >= 19 + len(name) + 1
    assert len(raw) == sum(int(c[f'e{i}'].split(',')[2]) for i in range(5))


def test_pack_dirent64_buffer_limits():
    entries = [('a' * 13, 1, DT_REG), ('b', 2, DT_DIR), ('c' * 100, 3, DT_REG)]
    raw, n = pack_dirent64(entries, 40)             # 'a'*13 -> 19+14 = 33 -> 40 bytes
    assert n == 1 and len(raw) == 40
    raw, n = pack_dirent64(entries, 63)             # second record (24) would end at 64
    assert n == 1
    raw, n = pack_dirent64(entries, 64)
    assert n == 2 and len(raw) == 64
    assert pack_dirent64(entries, 10) == (b'', 0)
    raw, n = pack_dirent64(entries[1:], 4096, start_off=7)
    assert struct.unpack_from('<q', raw, 8)[0] == 8


# ---------------------------------------------------------------------------------------------------
# lookup and namespace operations

def test_lookup_basics_and_dots(vfs):
    home = vfs.lookup('/home')
    assert vfs.lookup('/') is vfs.root
    assert vfs.lookup('/..') is vfs.root and vfs.lookup('/../../..') is vfs.root
    assert vfs.lookup('//home///') is home
    assert vfs.lookup('/home/./../home/.') is home
    assert vfs.lookup('home', cwd='/') is home
    assert vfs.lookup('..', cwd='/home') is vfs.root
    assert vfs.lookup('.', cwd=home) is home
    assert vfs.lookup('/tmp/..') is vfs.root                 # '..' of a mount root
    assert vfs.lookup('/dev/shm/../..') is vfs.root


def test_lookup_errors(vfs):
    vfs.create('/home/file')
    expect(errno.ENOENT, vfs.lookup, '/nope')
    expect(errno.ENOENT, vfs.lookup, '/nope/x')
    expect(errno.ENOENT, vfs.lookup, '')
    expect(errno.ENOTDIR, vfs.lookup, '/home/file/x')
    expect(errno.ENOTDIR, vfs.lookup, '/home/file/')
    expect(errno.ENOTDIR, vfs.lookup, '/home/file/..')
    expect(errno.ENAMETOOLONG, vfs.lookup, '/home/' + 'n' * 256)
    expect(errno.ENOENT, vfs.lookup, '/home/' + 'n' * 255)
    expect(errno.ENAMETOOLONG, vfs.lookup, '/' + 'a/' * 2048)
    expect(errno.ENAMETOOLONG, vfs.create, '/home/' + 'n' * 256)
    expect(errno.ENOTDIR, vfs.lookup, 'x', cwd='/home/file')


def test_eacces_for_unprivileged(vfs):
    vfs.mkdir('/home/private', 0o700)
    vfs.create('/home/private/f')
    expect(errno.EACCES, vfs.lookup, '/home/private/f', cred=USER)
    assert vfs.lookup('/home/private/f') is not None           # root bypasses
    expect(errno.EACCES, vfs.create, '/home/x', cred=USER)     # /home is 0755 root
    expect(errno.EACCES, vfs.mkdir, '/etc/x', cred=USER)
    expect(errno.EACCES, vfs.unlink, '/etc/hostname', cred=USER)
    f = vfs.lookup('/etc/hostname')
    vfs.may_open(f, MAY_READ, USER)
    expect(errno.EACCES, vfs.may_open, f, MAY_WRITE, USER)
    expect(errno.EISDIR, vfs.may_open, vfs.lookup('/etc'), MAY_WRITE)


def test_sticky_tmp(vfs):
    vfs.create('/tmp/mine', cred=USER)
    expect(errno.EPERM, vfs.unlink, '/tmp/mine', cred=OTHER)
    expect(errno.EPERM, vfs.rename, '/tmp/mine', '/tmp/theirs', cred=OTHER)
    vfs.unlink('/tmp/mine', cred=USER)


def test_create_mkdir_unlink_rmdir_errors(vfs):
    vfs.mkdir('/home/d')
    vfs.create('/home/d/f')
    expect(errno.EEXIST, vfs.mkdir, '/home/d')
    expect(errno.EEXIST, vfs.mkdir, '/home/d/f')
    expect(errno.EEXIST, vfs.mkdir, '/home/d/.')
    expect(errno.EEXIST, vfs.mkdir, '/')
    expect(errno.EEXIST, vfs.create, '/home/d/f', exclusive=True)
    assert vfs.create('/home/d/f') is vfs.lookup('/home/d/f')
    expect(errno.EISDIR, vfs.create, '/home/d')
    expect(errno.EISDIR, vfs.create, '/home/d/new/')
    expect(errno.ENOENT, vfs.create, '/home/nodir/f')
    expect(errno.ENOTEMPTY, vfs.rmdir, '/home/d')
    expect(errno.ENOTDIR, vfs.rmdir, '/home/d/f')
    expect(errno.EINVAL, vfs.rmdir, '/home/d/.')
    expect(errno.ENOTEMPTY, vfs.rmdir, '/home/d/..')
    expect(errno.EBUSY, vfs.rmdir, '/')
    expect(errno.EBUSY, vfs.rmdir, '/tmp')                    # a mount point
    expect(errno.EISDIR, vfs.unlink, '/home/d')
    expect(errno.ENOTDIR, vfs.unlink, '/home/d/f/')
    expect(errno.ENOENT, vfs.unlink, '/home/d/zz')
    vfs.unlink('/home/d/f')
    vfs.rmdir('/home/d')
    expect(errno.ENOENT, vfs.lookup, '/home/d')


def test_removed_cwd(vfs):
    d = vfs.mkdir('/home/gone')
    assert vfs.d_path(d) == '/home/gone'
    vfs.rmdir('/home/gone')
    expect(errno.ENOENT, vfs.create, 'x', cwd=d)
    expect(errno.ENOENT, vfs.d_path, d)


def test_rename(vfs):
    vfs.mkdir('/home/a')
    vfs.mkdir('/home/a/sub')
    f = vfs.create('/home/a/f')
    g = vfs.create('/home/g')
    vfs.rename('/home/a/f', '/home/g')                         # replaces g
    assert vfs.lookup('/home/g') is f and g.nlink == 0 and g.evicted
    expect(errno.ENOENT, vfs.lookup, '/home/a/f')
    vfs.mkdir('/home/b')
    vfs.create('/home/b/x')
    expect(errno.ENOTEMPTY, vfs.rename, '/home/a', '/home/b')
    expect(errno.EINVAL, vfs.rename, '/home/a', '/home/a/sub/inside')
    expect(errno.ENOTEMPTY, vfs.rename, '/home/a/sub', '/home')
    expect(errno.EISDIR, vfs.rename, '/home/g', '/home/a')
    expect(errno.ENOTDIR, vfs.rename, '/home/a', '/home/g')
    expect(errno.ENOTDIR, vfs.rename, '/home/g', '/home/g2/')
    expect(errno.EBUSY, vfs.rename, '/home/a/.', '/home/c')
    expect(errno.EXDEV, vfs.rename, '/home/g', '/tmp/g')
    expect(errno.EXDEV, vfs.link, '/home/g', '/tmp/g')
    expect(errno.EPERM, vfs.link, '/home/a', '/home/alink')
    expect(errno.ENOENT, vfs.rename, '/home/none', '/home/z')
    sub = vfs.lookup('/home/a/sub')
    a = vfs.lookup('/home/a')
    b = vfs.lookup('/home/b')
    vfs.rename('/home/a/sub', '/home/b/sub')
    assert sub.parent is b and a.nlink == 2 and b.nlink == 3
    assert vfs.lookup('/home/b/sub/..') is b
    assert vfs.d_path(sub) == '/home/b/sub'
    vfs.rename('/home/g', '/home/g')                           # same file: no-op
    assert vfs.lookup('/home/g') is f


# ---------------------------------------------------------------------------------------------------
# symlinks

def test_symlinks(vfs):
    vfs.mkdir('/home/d')
    f = vfs.create('/home/d/target')
    vfs.symlink('d/target', '/home/rel')
    vfs.symlink('/home/d', '/home/abs')
    vfs.symlink('../home/abs/target', '/etc/chain')
    assert vfs.lookup('/home/rel') is f
    assert vfs.lookup('/home/abs/target') is f
    assert vfs.lookup('/etc/chain') is f
    link = vfs.lookup('/home/rel', follow=False)
    assert link.is_lnk() and link.size == len('d/target')
    assert vfs.readlink('/home/rel') == 'd/target'
    expect(errno.EINVAL, vfs.readlink, '/home/d')
    assert vfs.lookup('/home/abs/', follow=False).is_dir()    # trailing slash follows
    assert vfs.lookup('/home/abs/..') is vfs.lookup('/home')  # '..' after following: physical parent
    expect(errno.EEXIST, vfs.symlink, 'x', '/home/rel')
    expect(errno.ENOENT, vfs.symlink, '', '/home/empty')
    vfs.symlink('d/newfile', '/home/dangling')
    expect(errno.ENOENT, vfs.lookup, '/home/dangling')
    expect(errno.EEXIST, vfs.create, '/home/dangling', exclusive=True)
    new, created = vfs.lookup_open('/home/dangling')        # O_CREAT follows to the target
    assert created and vfs.lookup('/home/d/newfile') is new


def test_symlink_loops(vfs):
    vfs.symlink('b', '/home/a')
    vfs.symlink('a', '/home/b')
    vfs.symlink('self/x', '/home/self')
    expect(errno.ELOOP, vfs.lookup, '/home/a')
    expect(errno.ELOOP, vfs.lookup, '/home/self')
    expect(errno.ELOOP, vfs.create, '/home/a')
    assert vfs.lookup('/home/a', follow=False).is_lnk()
    # a chain of exactly 40 links resolves; 41 is one too many
    vfs.mkdir('/home/c')
    vfs.create('/home/c/end')
    vfs.symlink('end', '/home/c/l0')
    for i in range(1, 41):
        vfs.symlink(f'l{i - 1}', f'/home/c/l{i}')
    assert vfs.lookup('/home/c/l39') is vfs.lookup('/home/c/end')
    expect(errno.ELOOP, vfs.lookup, '/home/c/l40')


# ---------------------------------------------------------------------------------------------------
# host mounts and containment

@pytest.fixture
def host_tree(tmp_path):
    """tmp/outside/secret.txt (not exported) and tmp/shared (exported) with escape attempts."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'secret.txt').write_text('HOST SECRET')
    shared = tmp_path / 'shared'
    shared.mkdir()
    (shared / 'data.txt').write_bytes(b'D' * 5000)
    (shared / 'sub').mkdir()
    (shared / 'sub' / 'inner.txt').write_text('inner')
    os.symlink(str(outside / 'secret.txt'), shared / 'abs_host_link')
    os.symlink(str(outside), shared / 'abs_host_dir')
    os.symlink('../outside/secret.txt', shared / 'rel_escape')
    os.symlink('../../../../../../etc/passwd', shared / 'deep_escape')
    os.symlink('/etc/hostname', shared / 'guest_abs')
    os.symlink('sub/inner.txt', shared / 'inside_link')
    os.symlink('..', shared / 'up')
    os.mkfifo(shared / 'fifo')
    return tmp_path


_opened = []


@pytest.fixture(autouse=True)
def _close_host_mounts():
    yield
    while _opened:
        sb = _opened.pop()
        if sb._root_fd is not None:
            sb.close()


def mount_host(vfs, host, guest='/mnt/host', readonly=True):
    sb = HostFs(str(host), readonly=readonly, clock=Clock())
    _opened.append(sb)
    vfs.mount(sb, guest)
    return sb


def test_hostfs_reads_lazily(vfs, host_tree):
    sb = mount_host(vfs, host_tree / 'shared')
    f = vfs.lookup('/mnt/host/data.txt')
    assert f.size == 5000 and f.backing == 'disk'
    assert f.read_page(0) == b'D' * PAGE and f.read_page(1) == b'D' * 904 and f.read_page(2) == b''
    assert f.bmap(0) is not None and f.bmap(1) == f.bmap(0) + 1
    assert f.bmap(0) == f.bmap(0) and f.bmap(2) is None
    assert vfs.lookup('/mnt/host/data.txt') is f             # one inode per host file
    assert vfs.lookup('/mnt/host/inside_link') is vfs.lookup('/mnt/host/sub/inner.txt')
    names = [e[0] for e in vfs.readdir(vfs.lookup('/mnt/host'))]
    assert names[:2] == ['.', '..'] and 'data.txt' in names
    assert 'fifo' not in names                                # not exposed
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/fifo')
    assert vfs.d_path(vfs.lookup('/mnt/host/sub')) == '/mnt/host/sub'
    assert vfs.statfs('/mnt/host').f_type == 0x01021997
    sb.close()


def test_containment_dotdot(vfs, host_tree):
    mount_host(vfs, host_tree / 'shared')
    mnt = vfs.lookup('/mnt')
    assert vfs.lookup('/mnt/host/..') is mnt                  # guest parent, not the host's
    assert vfs.lookup('/mnt/host/sub/../..') is mnt
    assert vfs.lookup('/mnt/host/../../..') is vfs.root
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/../outside/secret.txt')
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/../../etc/passwd')
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/../../../../outside/secret.txt')
    assert vfs.lookup('/mnt/host/up') is mnt                  # host symlink '..' -> guest parent
    assert vfs.lookup('..', cwd=vfs.lookup('/mnt/host')) is mnt


def test_containment_symlinks(vfs, host_tree):
    mount_host(vfs, host_tree / 'shared')
    # absolute host targets are guest paths: the host's outside/ does not exist in the guest
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/abs_host_link')
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/abs_host_dir/secret.txt')
    assert vfs.readlink('/mnt/host/abs_host_link') == str(host_tree / 'outside' / 'secret.txt')
    # relative escapes climb the guest tree
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/rel_escape')
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/deep_escape')
    assert vfs.lookup('/mnt/host/guest_abs') is vfs.lookup('/etc/hostname')
    # make the guest paths exist: they resolve to guest files, never the host's
    vfs.mkdir('/mnt/outside')
    g = vfs.create('/mnt/outside/secret.txt')
    write(g, 0, b'guest copy')
    assert vfs.lookup('/mnt/host/rel_escape') is g
    assert read_all(vfs.lookup('/mnt/host/rel_escape')) == b'guest copy'
    e = vfs.create('/etc/passwd')
    assert vfs.lookup('/mnt/host/deep_escape') is e


def test_containment_host_swaps_dir_for_symlink(vfs, host_tree):
    sb = mount_host(vfs, host_tree / 'shared')
    sub = vfs.lookup('/mnt/host/sub')
    inner = vfs.lookup('/mnt/host/sub/inner.txt')
    shared = host_tree / 'shared'
    os.rename(shared / 'sub', shared / 'sub_moved')
    os.symlink(str(host_tree / 'outside'), shared / 'sub')       # a host race: sub -> outside
    expect(errno.ESTALE, sub.lookup, 'secret.txt')             # the cached dir refuses to follow
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/sub/secret.txt')
    expect(errno.ESTALE, inner.read_page, 0)
    sb.close()


def test_host_single_file_mount(vfs, host_tree):
    sb = HostFs(str(host_tree / 'outside' / 'secret.txt'))
    _opened.append(sb)
    vfs.mount(sb, '/etc/secret')
    f = vfs.lookup('/etc/secret')
    assert f.is_reg() and f.read_page(0) == b'HOST SECRET'
    expect(errno.ENOTDIR, vfs.lookup, '/etc/secret/..')
    assert vfs.d_path(vfs.lookup('/etc')) == '/etc'
    expect(errno.EROFS, f.write_page, 0, b'x')
    sb.close()


def test_readonly_mount_refuses_everything(vfs, host_tree):
    sb = mount_host(vfs, host_tree / 'shared')
    f = vfs.lookup('/mnt/host/data.txt')
    d = vfs.lookup('/mnt/host/sub')
    expect(errno.EROFS, vfs.create, '/mnt/host/new')
    expect(errno.EROFS, vfs.mkdir, '/mnt/host/newdir')
    expect(errno.EROFS, vfs.symlink, 'x', '/mnt/host/newlink')
    expect(errno.EROFS, vfs.link, '/mnt/host/data.txt', '/mnt/host/hard')
    expect(errno.EROFS, vfs.unlink, '/mnt/host/data.txt')
    expect(errno.EROFS, vfs.unlink, '/mnt/host/missing')     # EROFS comes before ENOENT
    expect(errno.EROFS, vfs.rmdir, '/mnt/host/sub')
    expect(errno.EROFS, vfs.rename, '/mnt/host/data.txt', '/mnt/host/x')
    expect(errno.EXDEV, vfs.rename, '/mnt/host/data.txt', '/home/x')
    expect(errno.EROFS, f.write_page, 0, b'x')
    expect(errno.EROFS, f.truncate, 0)
    expect(errno.EROFS, f.set_size, 10)
    expect(errno.EROFS, f.punch_hole, 0, 10)
    expect(errno.EROFS, f.allocate, 0, 10)
    expect(errno.EROFS, f.setattr, mode=0o777)
    expect(errno.EROFS, d.create, 'x', 0o644)
    expect(errno.EROFS, d.unlink, 'inner.txt')
    expect(errno.EROFS, vfs.may_open, f, MAY_WRITE)
    expect(errno.EEXIST, vfs.mkdir, '/mnt/host/sub')          # EEXIST wins over EROFS
    expect(errno.EEXIST, vfs.create, '/mnt/host/data.txt', exclusive=True)
    assert vfs.create('/mnt/host/data.txt') is f               # opening an existing file is fine
    vfs.may_open(f, MAY_READ)
    assert (host_tree / 'shared' / 'data.txt').read_bytes() == b'D' * 5000
    assert sorted(os.listdir(host_tree / 'shared')) == sorted(
        ['data.txt', 'sub', 'abs_host_link', 'abs_host_dir', 'rel_escape', 'deep_escape',
         'guest_abs', 'inside_link', 'up', 'fifo'])
    assert vfs.statfs('/mnt/host').f_flags & 1
    sb.close()


def test_readwrite_host_mount(vfs, host_tree):
    shared = host_tree / 'shared'
    sb = mount_host(vfs, shared, readonly=False)
    f = vfs.create('/mnt/host/new.txt', 0o644)
    write(f, 0, b'written by guest')
    assert (shared / 'new.txt').read_bytes() == b'written by guest'
    f.truncate(7)
    assert (shared / 'new.txt').read_bytes() == b'written'
    vfs.mkdir('/mnt/host/newdir')
    vfs.rename('/mnt/host/new.txt', '/mnt/host/newdir/moved.txt')
    assert (shared / 'newdir' / 'moved.txt').read_bytes() == b'written'
    assert vfs.lookup('/mnt/host/newdir/moved.txt') is f and f.read_page(0) == b'written'
    vfs.symlink('/etc/hostname', '/mnt/host/newdir/ln')
    assert os.readlink(shared / 'newdir' / 'ln') == '/etc/hostname'
    f.ihold()
    vfs.unlink('/mnt/host/newdir/moved.txt')
    assert not (shared / 'newdir' / 'moved.txt').exists()
    assert f.read_page(0) == b'written'                       # still readable while open
    f.iput()
    vfs.unlink('/mnt/host/newdir/ln')
    vfs.rmdir('/mnt/host/newdir')
    assert not (shared / 'newdir').exists()
    expect(errno.ENOENT, vfs.lookup, '/mnt/host/abs_host_dir/secret.txt')
    expect(errno.EXDEV, vfs.rename, '/mnt/host/data.txt', '/tmp/data.txt')
    assert (host_tree / 'outside' / 'secret.txt').read_text() == 'HOST SECRET'
    sb.close()


def test_parse_mount_spec():
    assert parse_mount_spec('/data:/mnt/data') == ('/data', '/mnt/data', True)
    assert parse_mount_spec('/data:/mnt/data:rw') == ('/data', '/mnt/data', False)
    assert parse_mount_spec('rel/dir:/mnt/x:ro') == ('rel/dir', '/mnt/x', True)
    assert parse_mount_spec('/a:b:/mnt/x') == ('/a:b', '/mnt/x', True)
    for bad, msg in [(':/mnt/x', 'no host path'), ('/data', 'no guest path'), ('/data:', 'no guest path'),
                     ('/data:mnt/x', 'must be absolute'), ('/data:/mnt/x:rx', 'bad mount mode'),
                     ('', 'empty'), (':rw', 'no guest path'), ('/d:/', 'guest root')]:
        with pytest.raises(ValueError, match=msg):
            parse_mount_spec(bad)


def test_make_root_fs_with_host_mounts(host_tree):
    vfs = make_root_fs(Clock(), 0, disk_blocks=1024,
                       host_mounts=[parse_mount_spec(f'{host_tree / "shared"}:/data/shared')])
    _opened.extend(m.sb for m in vfs.mounts if isinstance(m.sb, HostFs))
    assert vfs.lookup('/data/shared/sub/inner.txt').read_page(0) == b'inner'
    assert vfs.lookup('/data/shared/..') is vfs.lookup('/data')
    expect(errno.EROFS, vfs.create, '/data/shared/x')
    with pytest.raises(FsError) as ei:
        HostFs(str(host_tree / 'does-not-exist'))
    assert ei.value.errno == errno.ENOENT


# ---------------------------------------------------------------------------------------------------
# /dev and /proc

def test_devfs(vfs):
    null, zero, ur = (vfs.lookup('/dev/' + n) for n in ('null', 'zero', 'urandom'))
    assert [x.rdev for x in (null, zero, ur)] == [makedev(1, 3), makedev(1, 5), makedev(1, 9)]
    assert vfs.lookup('/dev/random').rdev == makedev(1, 8)
    assert all(x.is_chr() and x.mode & 0o777 == 0o666 for x in (null, zero, ur))
    assert null.read_chr(10) == b'' and null.write_chr(b'abc') == 3
    assert zero.read_chr(5) == bytes(5)
    expect(errno.ENOSPC, vfs.lookup('/dev/full').write_chr, b'x')
    entries = {e[0]: e[2] for e in vfs.readdir(vfs.lookup('/dev'))}
    assert entries['null'] == DT_CHR and entries['shm'] == DT_DIR
    a = ur.read_chr(32)
    again = make_root_fs(Clock(), seed=1).lookup('/dev/urandom').read_chr(32)
    other = make_root_fs(Clock(), seed=2).lookup('/dev/urandom').read_chr(32)
    assert a == again and a != other and len(set(a)) > 8
    assert ur.read_chr(32) != a                                # the stream moves on


def test_synth_files(vfs):
    state = {'n': 0, 'written': []}

    def show():
        state['n'] += 1
        return f'call {state["n"]}\n'.encode()

    f = vfs.register_synth('/proc/sys/vm/drop_caches', show, state['written'].append)
    assert vfs.lookup('/proc/sys/vm').is_dir()
    assert vfs.lookup('/proc/sys/vm/drop_caches') is f
    assert f.size == 0 and f.mode & 0o777 == 0o644 and f.backing == 'mem'
    assert f.read_content() == b'call 1\n' and f.read_content() == b'call 2\n'
    assert f.write_content(b'3\n') == 2 and state['written'] == [b'3\n']
    ro = vfs.register_synth('/proc/self/maps', lambda: 'maps text')
    assert ro.read_content() == b'maps text' and ro.mode & 0o777 == 0o444
    expect(errno.EACCES, ro.write_content, b'x')
    expect(errno.EACCES, vfs.may_open, ro, MAY_WRITE)          # even for root
    vfs.may_open(f, MAY_WRITE)
    assert vfs.register_synth('/proc/self/maps', lambda: 'v2') is ro and ro.read_content() == b'v2'
    vfs.register_synth_symlink('/proc/self/exe', lambda: '/home')
    assert vfs.lookup('/proc/self/exe') is vfs.lookup('/home')
    # the guest cannot change /proc
    expect(errno.EACCES, vfs.create, '/proc/newfile')
    expect(errno.EPERM, vfs.mkdir, '/proc/newdir')
    expect(errno.EPERM, vfs.unlink, '/proc/self/maps')
    expect(errno.EPERM, vfs.rmdir, '/proc/sys/vm')
    expect(errno.EPERM, vfs.symlink, 'x', '/proc/ln')
    expect(errno.EINVAL, vfs.register_synth, '/home/notproc', show)
    expect(errno.EINVAL, vfs.register_synth, 'relative/path', show)
    vfs.unregister_synth('/proc/sys')
    expect(errno.ENOENT, vfs.lookup, '/proc/sys/vm/drop_caches')


def test_mount_umount(vfs):
    t = TmpFs(Clock())
    vfs.mount(t, '/mnt/a/b')                                   # creates the mount point
    assert vfs.lookup('/mnt/a/b') is t.root and t.dev is not None
    vfs.create('/mnt/a/b/f')
    expect(errno.EBUSY, vfs.mount, t, '/mnt/c')
    expect(errno.EBUSY, vfs.umount, '/')
    expect(errno.EINVAL, vfs.umount, '/mnt/a')
    expect(errno.ENOTDIR, vfs.mount, TmpFs(), '/etc/hostname')
    assert vfs.umount('/mnt/a/b') is t
    assert vfs.lookup('/mnt/a/b').sb is vfs.root_sb
    expect(errno.ENOENT, vfs.lookup, '/mnt/a/b/f')


def test_tmpfs_size_limit_gives_enospc_without_allocating():
    """fallocate of 1 PiB on a tmpfs is ENOSPC at once (found by sysfuzz: it looped over every page);
    writes stop at the size limit (Linux's default: half of RAM) and freeing pages makes room again."""
    sb = TmpFs(max_pages=16)
    f = sb.new_file(S_IFREG | 0o644)
    with pytest.raises(FsError) as ei:
        f.allocate(0, 1 << 50)
    assert ei.value.errno == errno.ENOSPC and sb.used_pages == 0
    f.allocate(0, 15 * 4096)
    f.write_page(15, b'x')
    assert f.blocks == 16 * 8 and sb.statfs().f_bfree == 0
    with pytest.raises(FsError) as ei:
        f.write_page(16, b'y')
    assert ei.value.errno == errno.ENOSPC
    f.truncate(4096)
    assert sb.used_pages == 1 and sb.statfs().f_bfree == 15
    assert make_root_fs(tmpfs_pages=100).lookup('/tmp').sb.max_pages == 100
