"""The root filesystem kept in a disk image across runs (--disk-image FILE).

The file data is in the image's blocks already (kernel/block/store.py); what save_tree records is the
metadata DiskFs keeps in memory (ext4 would have it in its inode table and directories): every
directory, regular file and symbolic link reachable from the root with its inode number, mode, owner,
size, times, link count and, for a file, its page -> block map. restore_tree rebuilds the tree, the
block bitmap and the blocks' "holds data" marks from it. Other inode types (device nodes, FIFOs,
sockets) and files deleted while still open are not kept, as after an unclean shutdown and fsck.
"""
from faultlab.kernel.block.store import DiskImageError
from faultlab.kernel.fs.diskfs import DiskFs
from faultlab.kernel.fs.stat import S_IFMT, S_IFDIR, S_IFLNK, S_IFREG, Timespec

FORMAT = 1
_TIMES = ('atime', 'mtime', 'ctime', 'btime')


def save_tree(sb):
    """The record of DiskFs sb's tree (JSON-able)."""
    inodes, seen = [], set()
    stack = [sb.root]
    while stack:
        inode = stack.pop()
        if inode.ino in seen:
            continue
        seen.add(inode.ino)
        rec = {'ino': inode.ino, 'mode': inode.mode, 'uid': inode.uid, 'gid': inode.gid, 'size': inode.size,
               'nlink': inode.nlink}
        for t in _TIMES:
            rec[t] = list(getattr(inode, t))
        kind = inode.mode & S_IFMT
        if kind == S_IFDIR:
            rec['dir_block'] = inode.dir_block
            rec['entries'] = [[name, child.ino] for name, child in inode.entries()]
            stack.extend(child for _name, child in reversed(inode.entries())
                         if child.mode & S_IFMT in (S_IFDIR, S_IFREG, S_IFLNK))
        elif kind == S_IFREG:
            rec['map'] = sorted(inode._map.items())
            rec['unwritten'] = sorted(inode._unwritten)
        else:
            rec['target'] = inode.target
        inodes.append(rec)
    return {'format': FORMAT, 'nblocks': sb.allocator.nblocks, 'next_ino': sb._next_ino, 'inodes': inodes}


def restore_tree(sb, record):
    """Rebuild the tree of a fresh DiskFs sb from save_tree's record; ValueError when it does not fit."""
    if record.get('format') != FORMAT:
        raise ValueError('disk image format %r, expected %d' % (record.get('format'), FORMAT))
    if record['nblocks'] != sb.allocator.nblocks:
        raise ValueError('the image holds a root filesystem of %d MiB, not the %d MiB of --disk size_mb'
                         % (record['nblocks'] >> 8, sb.allocator.nblocks >> 8))
    recs = {r['ino']: r for r in record['inodes']}
    root_rec = record['inodes'][0]
    made = {root_rec['ino']: sb.root}
    for r in record['inodes'][1:]:
        kind = r['mode'] & S_IFMT
        if kind == S_IFDIR:
            inode = sb.dir_class(sb, r['ino'], r['mode'], r['uid'], r['gid'], None)
        elif kind == S_IFREG:
            inode = sb.file_class(sb, r['ino'], r['mode'], r['uid'], r['gid'])
        else:
            inode = sb.symlink_class(sb, r['ino'], r['target'], r['uid'], r['gid'])
        made[r['ino']] = inode
    for ino, inode in made.items():
        _fill(sb, inode, recs[ino], made)
    sb.root.parent = None
    sb._next_ino = record['next_ino']
    sb.ninodes = len(made)


def _fill(sb, inode, r, made):
    """Attributes, entries and blocks of one restored inode."""
    inode.mode, inode.size, inode.nlink = r['mode'], r['size'], r['nlink']
    for t in _TIMES:
        setattr(inode, t, Timespec(*r[t]))
    kind = r['mode'] & S_IFMT
    if kind == S_IFDIR:
        if r['dir_block'] is not None and inode is not sb.root:
            inode.dir_block = r['dir_block']
            _take(sb, r['dir_block'])
        for name, ino in r['entries']:
            child = made.get(ino)
            if child is None:
                continue
            inode._entries[name] = child
            if child.is_dir():
                child.parent = inode
        inode.size = r['size']
    elif kind == S_IFREG:
        inode._map = {int(i): b for i, b in r['map']}
        inode._unwritten = set(r['unwritten'])
        for i, b in inode._map.items():
            _take(sb, b)
            if i not in inode._unwritten:
                sb.image.mark_written(b)


def _take(sb, block):
    """Mark a restored block allocated in the bitmap."""
    a = sb.allocator
    if not a.first_data_block <= block < a.nblocks or a._bitmap[block]:
        raise ValueError('block %d of the image is out of range or used twice' % block)
    a._bitmap[block] = 1
    a.nfree -= 1


def open_root_fs(clock, nblocks, store):
    """The root DiskFs on blocks [0, nblocks) of store, with the tree a disk image saved, if any."""
    root = DiskFs(clock, nblocks=nblocks, image=store.region(0, nblocks))
    if store.saved is not None:
        try:
            restore_tree(root, store.saved)
        except (ValueError, KeyError, TypeError, IndexError) as e:
            raise DiskImageError('%s: %s' % (store.path, e)) from None
    return root


def save_root_fs(root, store, end_block):
    """Record root's tree in its disk image, after block end_block (nothing for a temporary disk)."""
    if store.path is not None:
        store.save(save_tree(root), end_block)
