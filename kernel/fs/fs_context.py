"""Mount options (fs/fs_context.c, mm/shmem.c shmem_parse_one, fs/hugetlbfs/inode.c hugetlbfs_parse_param)
and making the superblock of a new tmpfs or hugetlbfs mount from them (get_tree)."""
import errno

from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.hugetlbfs import HugetlbFs
from faultlab.kernel.fs.stat import PAGE_SIZE
from faultlab.kernel.fs.tmpfs import TmpFs
from faultlab.kernel.mm.hugetlb_types import HPAGE_SHIFT, HPAGE_SIZE

# the superblock flags any filesystem's option string may carry (vfs_parse_sb_flag): name -> read-only?
SB_FLAG_OPTIONS = {'ro': True, 'rw': False}
SB_FLAG_IGNORED = ('sync', 'async', 'dirsync', 'lazytime', 'nolazytime', 'mand', 'nomand')
FILESYSTEMS = ('tmpfs', 'hugetlbfs')


def memparse(s):
    """memparse: a number (0x/0 prefixes allowed) with an optional K/M/G/T/P/E suffix; (value, rest).
    EINVAL when no digits start the string."""
    i = 0
    base = 10
    if s[:2].lower() == '0x':
        base, i = 16, 2
    elif s[:1] == '0' and len(s) > 1 and s[1].isdigit():
        base, i = 8, 1
    digits = '0123456789abcdef'[:base]
    j = i
    while j < len(s) and s[j].lower() in digits:
        j += 1
    if j == i and not (base == 8):
        raise FsError(errno.EINVAL)
    v = int(s[i:j] or '0', base)
    rest = s[j:]
    if rest[:1] and rest[0] in 'KkMmGgTtPpEe':
        v <<= 10 * ('kmgtpe'.index(rest[0].lower()) + 1)
        rest = rest[1:]
    return v, rest


def _uint(value, base=10):
    """fsparam_u32 / fsparam_u32oct: an unsigned 32-bit number (EINVAL otherwise)."""
    try:
        v = int(value, base)
    except (TypeError, ValueError):
        raise FsError(errno.EINVAL)
    if v < 0 or v > 0xFFFFFFFF:
        raise FsError(errno.EINVAL)
    return v


def _id(value):
    """A uid/gid option: (uid_t)-1 is not a valid id (EINVAL)."""
    v = _uint(value)
    if v == 0xFFFFFFFF:
        raise FsError(errno.EINVAL)
    return v


def _memparse_whole(value):
    """memparse with nothing after the number (EINVAL otherwise)."""
    n, rest = memparse(value)
    if rest:
        raise FsError(errno.EINVAL)
    return n


def _parse_owner(key, value, ctx, mode_mask):
    """The root directory's mode (octal, masked), uid and gid, as both tmpfs and hugetlbfs parse
    them; EINVAL for any other option."""
    if key == 'mode':
        ctx['mode'] = _uint(value, 8) & mode_mask
    elif key in ('uid', 'gid'):
        ctx[key] = _id(value)
    else:
        raise FsError(errno.EINVAL)


def split_options(data):
    """generic_parse_monolithic: 'a=b,c' -> [(a, b), (c, None)], and whether 'ro' was given."""
    opts = []
    readonly = None
    for item in (data or '').split(','):
        if not item:
            continue
        key, eq, value = item.partition('=')
        if key in SB_FLAG_OPTIONS and not eq:
            readonly = SB_FLAG_OPTIONS[key]
        elif key in SB_FLAG_IGNORED and not eq:
            continue
        elif key == 'source':
            continue
        else:
            opts.append((key, value if eq else None))
    return opts, readonly


def parse_tmpfs(opts, totalram_pages):
    """shmem_parse_one: {'blocks', 'inodes', 'huge', 'mode', 'uid', 'gid'} for the options seen (EINVAL on an
    unknown option or a bad value)."""
    ctx = {}
    for key, value in opts:
        if value is None:
            raise FsError(errno.EINVAL)
        if key == 'size':
            size, rest = memparse(value)
            if rest == '%':
                size = (size << 12) * totalram_pages // 100
                rest = ''
            if rest:
                raise FsError(errno.EINVAL)
            ctx['blocks'] = (size + PAGE_SIZE - 1) // PAGE_SIZE
        elif key == 'nr_blocks':
            ctx['blocks'] = _memparse_whole(value)
        elif key == 'nr_inodes':
            ctx['inodes'] = _memparse_whole(value)
            if ctx['inodes'] > ((1 << 64) - 1) // 1024:
                raise FsError(errno.EINVAL)
        elif key == 'huge':
            if value not in ('never', 'always', 'within_size', 'advise'):      # shmem_parse_huge
                raise FsError(errno.EINVAL)
            ctx['huge'] = value
        else:
            _parse_owner(key, value, ctx, 0o7777)
    return ctx


def tmpfs_get_tree(ctx, clock, totalram_pages, readonly):
    """shmem_fill_super: a new tmpfs; size and inode limits default to half of RAM (0 = unlimited)."""
    default_pages = totalram_pages // 2
    sb = TmpFs(clock, readonly, mode=ctx.get('mode', 0o1777), uid=ctx.get('uid', 0), gid=ctx.get('gid', 0),
               max_pages=default_pages, max_inodes=default_pages)
    if 'blocks' in ctx:
        sb.max_pages = ctx['blocks'] or None
    if 'inodes' in ctx:
        sb.max_inodes = ctx['inodes'] or None
    sb.huge = ctx.get('huge', 'never')
    return sb


def tmpfs_reconfigure(sb, ctx):
    """shmem_reconfigure: a new size or inode limit, not below what is in use (EINVAL), and no limit
    put back on an unlimited tmpfs."""
    blocks, inodes = ctx.get('blocks'), ctx.get('inodes')
    if blocks:
        if sb.max_pages is None or sb.used_pages > blocks:
            raise FsError(errno.EINVAL)
    if inodes:
        if sb.max_inodes is None or sb.ninodes > inodes:
            raise FsError(errno.EINVAL)
    if 'blocks' in ctx:
        sb.max_pages = blocks or None
    if 'inodes' in ctx:
        sb.max_inodes = inodes or None
    if 'huge' in ctx:
        sb.huge = ctx['huge']


def parse_hugetlbfs(opts, hstate):
    """hugetlbfs_parse_param + hugetlbfs_validate: pagesize (only the 2 MiB hstate exists here), size
    and min_size (bytes or % of the pool, in whole huge pages), nr_inodes, mode, uid, gid."""
    ctx = {}
    sizes = {}
    for key, value in opts:
        if value is None:
            raise FsError(errno.EINVAL)
        if key == 'pagesize':
            ps, rest = memparse(value)
            if ps != HPAGE_SIZE:                 # size_to_hstate: "Unsupported page size"
                raise FsError(errno.EINVAL)
        elif key in ('size', 'min_size'):
            n, rest = memparse(value)
            pct = rest == '%'
            if rest and not pct:
                raise FsError(errno.EINVAL)
            sizes[key] = (n, pct)
        elif key == 'nr_inodes':
            ctx['inodes'] = _memparse_whole(value)
        else:
            _parse_owner(key, value, ctx, 0o1777)
    for key, name in (('size', 'max_hpages'), ('min_size', 'min_hpages')):
        if key in sizes:
            n, pct = sizes[key]
            if pct:
                n = (n << HPAGE_SHIFT) * hstate.nr_huge_pages // 100
            ctx[name] = n >> HPAGE_SHIFT
    if ctx.get('max_hpages') is not None and ctx.get('min_hpages') is not None and \
            ctx['min_hpages'] > ctx['max_hpages']:
        raise FsError(errno.EINVAL)
    return ctx


def hugetlbfs_get_tree(ctx, hstate, clock, readonly):
    """hugetlbfs_fill_super: a new hugetlbfs; min_size= reserves its pages (ENOMEM when the pool
    cannot)."""
    sb = HugetlbFs(hstate, clock, None, ctx.get('mode', 0o755), ctx.get('uid', 0), ctx.get('gid', 0),
                   ctx.get('inodes'), ctx.get('max_hpages'), ctx.get('min_hpages'))
    sb.readonly = readonly
    err = sb.fill_subpool()
    if err:
        raise FsError(-err)
    return sb
