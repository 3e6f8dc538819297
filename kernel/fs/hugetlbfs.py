"""hugetlbfs (fs/hugetlbfs/inode.c): files whose pages are 2 MiB pages of the hugetlb pool, behind
MAP_HUGETLB memory (an unlinked file per mapping) and memfd_create(MFD_HUGETLB). No write(2); read(2)
straight from the huge pages; fallocate takes (and clears) pool pages; sizes are multiples of 2 MiB.
A memfd of the 1 GiB hstate (MFD_HUGE_1GB) is a file of this kind whose pool is empty: its sizes are
multiples of 1 GiB, its block size 1 GiB, and it never gets a page."""
import errno

from faultlab.kernel.cgroup.hugetlb_cgroup import (hugetlb_cgroup_cancel_charge, hugetlb_cgroup_charge_cgroup,
                                                   hugetlb_cgroup_commit_charge, hugetlb_cgroup_uncharge_rsvd)
from faultlab.kernel.file import OpenFile
from faultlab.kernel.fs.dir import MemDir
from faultlab.kernel.fs.errors import FsError
from faultlab.kernel.fs.regfile import PagedFile
from faultlab.kernel.fs.stat import S_IFDIR
from faultlab.kernel.fs.superblock import SuperBlock
from faultlab.kernel.fs.symlink import Symlink
from faultlab.kernel.mm.hugetlb_types import (HPAGE_SHIFT, HPAGE_SIZE, HUGETLB_PAGE_ORDER, HUGETLBFS_MAGIC,
                                              PAGES_PER_HPAGE)
from faultlab.kernel.mm.hugetlb_unmap import zap_huge_pmd_range
from faultlab.kernel.mm.vma import VM_HUGETLB


def hugetlb_vmdelete_list(inode, first, last=None):
    """hugetlb_vmdelete_list: unmap huge indices [first, last) of inode from every mapping of it
    (truncate and hole punch), the private mappings' copies included, as Linux has always done."""
    h = inode.sb.hstate
    for mm in h.svc.reclaim.mms():
        for vma in list(mm.vmas):
            f = vma.vm_file
            if f is None or f.inode is not inode or not vma.vm_flags & VM_HUGETLB:
                continue
            v_first = vma.vm_pgoff >> HUGETLB_PAGE_ORDER
            v_last = v_first + ((vma.vm_end - vma.vm_start) >> HPAGE_SHIFT)
            s, e = max(first, v_first), v_last if last is None else min(last, v_last)
            if s < e:
                zap_huge_pmd_range(mm, vma.vm_start + ((s - v_first) << HPAGE_SHIFT),
                                   vma.vm_start + ((e - v_first) << HPAGE_SHIFT))


class HugetlbFile(PagedFile):
    """A hugetlbfs file: its pages are 2 MiB pool pages (hpages: huge index -> head page); `resv` holds
    the huge indices reserved by shared mappings and not yet allocated."""
    backing = 'mem'
    fop_write = None                  # hugetlbfs_file_operations has no write_iter: write(2) is EINVAL
    def __init__(self, sb, ino, mode, uid=0, gid=0):
        super().__init__(sb, ino, mode, uid, gid)
        self.hpages = {}
        self.resv = set()
        self.resv_cg = {}                 # huge index -> the hugetlb cgroup its reservation is charged to

    @property
    def h(self):
        return self.sb.hstate

    @property
    def blksize(self):
        """st_blksize: the hstate's page size (hugetlbfs_fill_super's s_blocksize)."""
        return self.sb.hstate.page_size

    @property
    def blocks(self):
        return len(self.hpages) * (HPAGE_SIZE // 512)

    # content, 4 KiB at a time (read(2) goes through the page cache in 4 KiB pages)
    def _page_get(self, index):
        head = self.hpages.get(index >> HUGETLB_PAGE_ORDER)
        if head is None:
            return None
        return self.sb.hstate.frames.phys.frame(head.pfn + (index & (PAGES_PER_HPAGE - 1)))

    def _page_for_write(self, index):
        raise FsError(errno.EINVAL)        # hugetlbfs has no write(2)

    def _page_free(self, index):
        pass

    def _page_indices(self):
        return [i << HUGETLB_PAGE_ORDER | j for i in self.hpages for j in range(PAGES_PER_HPAGE)]

    def write_page(self, index, data, offset_in_page=0):
        raise FsError(errno.EINVAL)

    no_write_iter = True

    def read_iter(self, pos, count):
        """hugetlbfs_read_iter: read(2) straight from the huge pages (holes read as zeros)."""
        end = min(self.size, pos + count)
        out = bytearray()
        mv = self.sb.hstate.frames.phys.mv
        while pos < end:
            n = min(end - pos, HPAGE_SIZE - (pos & (HPAGE_SIZE - 1)))
            head = self.hpages.get(pos >> HPAGE_SHIFT)
            if head is None:
                out += bytes(n)
            else:
                a = (head.pfn << 12) + (pos & (HPAGE_SIZE - 1))
                out += mv[a:a + n]
            pos += n
        return bytes(out)

    def alloc_file_page(self, idx):
        """The pool page for huge index idx, newly allocated (from this file's reservation if it has
        one) and cleared, added to the file; None when the pool has none."""
        h, sb = self.h, self.sb
        use_resv = idx in self.resv
        from_subpool_resv = False
        if not use_resv:
            from_subpool_resv = sb.subpool_get()
            if from_subpool_resv is None:
                return None
        charge = hugetlb_cgroup_charge_cgroup(h, not use_resv)
        head = h.alloc_huge_page(use_resv or from_subpool_resv) if charge is not None else None
        if head is None:
            if not use_resv:
                sb.subpool_unget(from_subpool_resv)
            hugetlb_cgroup_cancel_charge(h, charge)
            return None
        hugetlb_cgroup_commit_charge(h, head, charge)
        if use_resv:
            sb.used_hpages += 1
            sb.subpool_absorb()
        self.resv.discard(idx)
        h.clear_huge_page(head)
        head.mapping = self
        head.index = idx
        self.hpages[idx] = head
        return head

    def remove_huge_page(self, idx):
        """Drop the file's reference to its page at idx (mappings keep theirs)."""
        head = self.hpages.pop(idx, None)
        if head is not None:
            head.mapping = None
            self.h.put_huge_page(head)
            self.sb.subpool_put(self.sb.rsv_wanted())

    def allocate(self, offset, length):
        """fallocate mode 0 / KEEP_SIZE: a cleared pool page for every huge page in the range (ENOSPC
        when the pool runs out); the size grows to offset + length. Returns the huge pages allocated."""
        if offset < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        end = offset + length
        n = 0
        for idx in range(offset >> HPAGE_SHIFT, (end + HPAGE_SIZE - 1) >> HPAGE_SHIFT):
            if idx not in self.hpages:
                if self.alloc_file_page(idx) is None:
                    raise FsError(errno.ENOSPC)
                n += 1
        if end > self.size:
            self.size = end
        self.touch_mtime()
        return n

    def punch_hole(self, start, length):
        """hugetlbfs_punch_hole: zero the partial huge pages at the ends; unmap the whole ones inside
        from every mapping (private copies too), free them and drop their reservations."""
        if start < 0 or length <= 0:
            raise FsError(errno.EINVAL)
        end = start + length
        first, last = (start + HPAGE_SIZE - 1) >> HPAGE_SHIFT, end >> HPAGE_SHIFT
        for a, b in ((start, min(end, first << HPAGE_SHIFT)), (max(start, last << HPAGE_SHIFT), end)):
            head = self.hpages.get(a >> HPAGE_SHIFT)
            if a < b and head is not None:
                p = (head.pfn << 12) + (a & (HPAGE_SIZE - 1))
                self.h.frames.phys.mv[p:p + (b - a)] = bytes(b - a)
        if first < last:
            hugetlb_vmdelete_list(self, first, last)
            self.remove_inode_hugepages(first, last)
        self.touch_mtime()

    def remove_inode_hugepages(self, first, last=None):
        """remove_inode_hugepages: the file lets go of its pages at huge indices [first, last) and of
        the reservations it holds there (hugetlb_unreserve_pages)."""
        for idx in [i for i in self.hpages if i >= first and (last is None or i < last)]:
            self.remove_huge_page(idx)
        drop = [i for i in self.resv if i >= first and (last is None or i < last)]
        self.resv.difference_update(drop)
        for i in [i for i in self.resv_cg if i >= first and (last is None or i < last)]:
            hugetlb_cgroup_uncharge_rsvd(self.h, self.resv_cg.pop(i))     # region_del
        self.h.hugetlb_acct_memory(-len(drop))

    def set_size(self, new_size):
        self.truncate(new_size)

    def truncate(self, new_size):
        """hugetlbfs setattr: the size must be a multiple of the huge page size; shrinking unmaps the
        pages past it from every mapping and frees them (hugetlb_vmtruncate)."""
        if new_size < 0 or new_size & (self.h.page_size - 1):
            raise FsError(errno.EINVAL)
        old = self.size
        self.size = new_size
        if new_size < old:
            hugetlb_vmdelete_list(self, new_size >> HPAGE_SHIFT)
            self.remove_inode_hugepages(new_size >> HPAGE_SHIFT)
        if new_size != old:
            self.touch_mtime()

    def evict(self):
        """hugetlbfs_evict_inode: the last reference is gone; every page and reservation goes."""
        self.remove_inode_hugepages(0)


class HugetlbFs(SuperBlock):
    """A hugetlbfs instance: the internal one (hugetlbfs_vfsmount, no root) behind MAP_HUGETLB and
    MFD_HUGETLB, or a mounted one (mount -t hugetlbfs) with a root directory, nr_inodes= and a
    subpool (hugepage_subpool): size= caps the huge pages its files hold, min_size= keeps that many
    reserved in the pool while it is mounted."""
    fstype = 'hugetlbfs'
    magic = HUGETLBFS_MAGIC
    file_class = HugetlbFile
    dir_class = MemDir
    symlink_class = Symlink

    def __init__(self, hstate, clock=None, dev=0, root_mode=None, uid=0, gid=0, max_inodes=None,
                 max_hpages=None, min_hpages=None):
        super().__init__(clock, dev=dev)
        self.hstate = hstate
        self.mode, self.uid, self.gid = root_mode, uid, gid
        self.max_inodes = None
        self.max_hpages, self.min_hpages = max_hpages, min_hpages
        self.used_hpages = 0               # pages its files hold (subpool used_hpages)
        self.rsv_hpages = 0                # pool pages reserved for it by min_size= and not in use
        if root_mode is not None:
            self.root = self.new_dir(S_IFDIR | root_mode, uid, gid, None)
        self.max_inodes = max_inodes

    def alloc_ino(self):
        """hugetlbfs_dec_free_inodes: ENOSPC once nr_inodes files and directories exist."""
        if self.max_inodes is not None and self.ninodes >= self.max_inodes:
            raise FsError(errno.ENOSPC)
        return super().alloc_ino()

    def fill_subpool(self):
        """hugepage_new_subpool: reserve min_size's pages in the pool (-ENOMEM when it cannot)."""
        if self.min_hpages:
            if self.hstate.hugetlb_acct_memory(self.min_hpages):
                return -errno.ENOMEM
            self.rsv_hpages = self.min_hpages
        return 0

    def kill_sb(self):
        """The mount went away (kill_litter_super): its files that nothing holds open give their huge
        pages back, and the pool reservation min_size= still holds is released."""
        dirs = [self.root] if self.root is not None else []
        while dirs:
            d = dirs.pop()
            for _name, inode in d.entries():
                if inode.is_dir():
                    dirs.append(inode)
                elif isinstance(inode, HugetlbFile) and inode.refs == 0:
                    inode.evict()
        self.hstate.hugetlb_acct_memory(-self.rsv_hpages)
        self.rsv_hpages = 0

    def subpool_absorb(self):
        """A page reserved by a mapping was used while min_size= still holds pool pages: in Linux that
        mapping's reservation came out of the subpool's (hugepage_subpool_get_pages), so one of those
        goes back to the pool."""
        if self.rsv_hpages:
            self.rsv_hpages -= 1
            self.hstate.resv_huge_pages -= 1

    def subpool_get(self):
        """hugepage_subpool_get_pages for one page not reserved by a mapping: None when size= is used
        up, True when it comes out of the min_size= reservation, False when from the free pool."""
        if self.max_hpages is not None and self.used_hpages >= self.max_hpages:
            return None
        self.used_hpages += 1
        if self.rsv_hpages:
            self.rsv_hpages -= 1
            return True
        return False

    def rsv_wanted(self):
        """hugepage_subpool_put_pages: a page given back below min_size= returns to the reservation."""
        self.used_hpages -= 1
        return self.min_hpages is not None and self.used_hpages < self.min_hpages

    def subpool_unget(self, from_resv):
        """Undo subpool_get when the pool had no page after all."""
        self.used_hpages -= 1
        if from_resv:
            self.rsv_hpages += 1

    def subpool_put(self, to_resv):
        """Keep a freed page reserved for min_size=."""
        if to_resv:
            self.rsv_hpages += 1
            self.hstate.resv_huge_pages += 1

    def show_options(self):
        """hugetlbfs_show_options."""
        out = ''
        if self.uid:
            out += ',uid=%d' % self.uid
        if self.gid:
            out += ',gid=%d' % self.gid
        if self.mode is not None and self.mode != 0o755:
            out += ',mode=%o' % self.mode
        if self.max_inodes is not None:
            out += ',nr_inodes=%d' % self.max_inodes
        out += ',pagesize=%dM' % (HPAGE_SIZE >> 20)
        if self.max_hpages is not None:
            out += ',size=%d' % (self.max_hpages << HPAGE_SHIFT)
        if self.min_hpages is not None:
            out += ',min_size=%d' % (self.min_hpages << HPAGE_SHIFT)
        return out

    def statfs(self):
        """hugetlbfs_statfs: block counts in huge pages from the subpool when size= is set."""
        st = super().statfs()
        st.f_bsize = st.f_frsize = self.hstate.page_size
        st.f_namelen = 255
        if self.max_hpages is not None:
            st.f_blocks = self.max_hpages
            st.f_bfree = st.f_bavail = self.max_hpages - self.used_hpages
        if self.max_inodes is not None:
            st.f_files = self.max_inodes
            st.f_ffree = self.max_inodes - self.ninodes
        return st


def hugetlb_file_setup(hstate, pagecache, size, path='/anon_hugepage (deleted)'):
    """The unlinked hugetlbfs file behind an anonymous MAP_HUGETLB mapping, as an open file."""
    inode = hstate.sb.new_anon_file()
    inode.ihold()
    inode.size = size
    return OpenFile(inode, 2, path, pagecache)
