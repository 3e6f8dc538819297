"""Access to another address space's memory from the kernel (mm/memory.c __access_remote_vm), as
/proc/PID/mem and ptrace use it: page by page through get_user_pages, so FOLL_FORCE reaches what the
mapping's rights forbid the task itself: reads of PROT_NONE memory, writes to read-only private
mappings, which break copy-on-write into an anonymous copy that stays mapped read-only."""
from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.gup_pin import FOLL_FORCE, FOLL_WRITE, get_user_pages, put_user_page
from faultlab.kernel.mm.page_alloc import PG_dirty, PG_exec, PG_reserved


def access_remote_vm(mm, addr, data=None, length=0, gup_flags=FOLL_FORCE):
    """Read `length` bytes at addr (data None) or write `data` there (FOLL_WRITE is added): the bytes
    read, or the count written; it stops short at the first page get_user_pages cannot take."""
    write = data is not None
    flags = gup_flags | (FOLL_WRITE if write else 0)
    total = len(data) if write else length
    phys = mm.svc.frames.phys
    out = []
    done = 0
    while done < total:
        va = addr + done
        got = get_user_pages(mm, va, 1, flags)
        if isinstance(got, int) or not got:
            break
        page, pfn = got[0]
        off = va & (PAGE_SIZE - 1)
        n = min(PAGE_SIZE - off, total - done)
        pa = (pfn << 12) + off
        if write:
            phys.write(pa, bytes(data[done:done + n]))      # copy_to_user_page
            if not page.flags & PG_reserved:
                page.flags |= PG_dirty                      # set_page_dirty_lock
            if page.flags & PG_exec:
                mm.svc.frames.stale_code = True             # flush_icache_user_page: code was rewritten
        else:
            out.append(phys.read(pa, n))
        put_user_page(mm, page, flags)
        mm.svc.charge('pgtable_walk_level', 4)
        done += n
    return done if write else b''.join(out)
