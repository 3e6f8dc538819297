"""The vDSO in every process (arch/x86/entry/vdso/vma.c, extable.c).

One copy of the image lives in reserved frames; exec maps it read+exec as [vdso] with the [vvar] data
page just below it, read-only. The kernel keeps the vvar current with simulated time. A fault at an
instruction listed in the image's own exception table is fixed up here (fixup_vdso_exception).
"""
from faultlab.kernel.arch.cpu_interface import PAGE_SIZE
from faultlab.kernel.mm.mmap import get_unmapped_area
from faultlab.kernel.mm.page_alloc import PG_reserved
from faultlab.kernel.mm.pgtable import pfn_pte, vm_get_page_prot, _PAGE_ACCESSED
from faultlab.kernel.mm.vma import VmArea, VM_READ, VM_EXEC, VM_MAYREAD, VM_MAYEXEC, VM_DONTEXPAND, VM_PFNMAP, VM_IO
from faultlab.vdso.image import get_vdso_image, search_exception_table
from faultlab.vdso import vvar as vvar_layout

EX_FLAG_ASYNC = 1


class VdsoPages:
    """The image and vvar frames, shared by every process of the machine."""

    def __init__(self, frames):
        self.image = img = get_vdso_image()
        self.frames = frames
        self.text_pfns = []
        for i in range(img.pages):
            page = frames.alloc_page(zero=False)
            if page is None:
                raise MemoryError("no memory for the vDSO")
            page.flags |= PG_reserved
            frames.phys.write(page.pfn * PAGE_SIZE, img.data[i * PAGE_SIZE:(i + 1) * PAGE_SIZE])
            self.text_pfns.append(page.pfn)
        vv = frames.alloc_page(zero=True)
        if vv is None:
            raise MemoryError("no memory for the vvar page")
        vv.flags |= PG_reserved
        self.vvar_pfn = vv.pfn

    def publish_clocks(self, boot_epoch_ns, freq_hz, cpu=0):
        """Write the vvar once: clocks are derived from rdtsc (the simulated cycle clock)."""
        self.frames.phys.write(self.vvar_pfn * PAGE_SIZE,
                               vvar_layout.pack_vvar(boot_epoch_ns, 0, cpu,
                                                     tsc_mult=vvar_layout.tsc_mult_for(freq_hz)))

    def symbol(self, name):
        return self.image.symbols.get(name)


def map_vdso(mm, vp):
    """arch_setup_additional_pages: map [vvar] and [vdso]; returns the vDSO base address."""
    vvar_pages = -vp.image.vvar_offset // PAGE_SIZE
    total = (vvar_pages + len(vp.text_pfns)) * PAGE_SIZE
    start = get_unmapped_area(mm, 0, total, False)
    if start < 0:
        return start
    base = start + vvar_pages * PAGE_SIZE
    vvar = VmArea(start, base, VM_READ | VM_MAYREAD | VM_DONTEXPAND | VM_PFNMAP | VM_IO, 0, None, '[vvar]')
    text = VmArea(base, base + len(vp.text_pfns) * PAGE_SIZE,
                  VM_READ | VM_EXEC | VM_MAYREAD | VM_MAYEXEC | VM_DONTEXPAND, 0, None, '[vdso]')
    for v in (vvar, text):
        v.anon = False
        mm.vmas.insert(v)
        mm.total_vm += (v.vm_end - v.vm_start) >> 12
    phys = mm.svc.frames.phys
    phys.write64(mm.pgtables.pte_slot(start + (vvar_pages - 1) * PAGE_SIZE),
                 pfn_pte(vp.vvar_pfn, vm_get_page_prot(True, False, False) | _PAGE_ACCESSED))
    for i, pfn in enumerate(vp.text_pfns):
        phys.write64(mm.pgtables.pte_slot(base + i * PAGE_SIZE),
                     pfn_pte(pfn, vm_get_page_prot(True, False, True) | _PAGE_ACCESSED))
    mm.vdso_base = base
    return base


def fixup_vdso_exception(mm, vp, rip, trapnr):
    """The extable entry for a trap at rip inside the vDSO: ExtableHit(fixup_offset, flags) or None."""
    base = getattr(mm, 'vdso_base', 0)
    if vp is None or not base or not base <= rip < base + len(vp.text_pfns) * PAGE_SIZE:
        return None
    return search_exception_table(vp.image, rip - base, trapnr)
