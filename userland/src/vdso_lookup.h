/*
 * vdso_lookup.h: find a versioned dynamic symbol in the vDSO announced in AT_SYSINFO_EHDR.
 *
 * The image is parsed as the kernel maps it (like Linux's tools/testing/selftests/vDSO/parse_vdso.c):
 * the first PT_LOAD gives the load offset, PT_DYNAMIC the symbol table, string table, SysV hash
 * (DT_HASH) and the version tables (DT_VERSYM/DT_VERDEF). A symbol matches when it is a defined
 * function with that name and, if the image has version tables, that version.
 *
 *   void *vdso_sym(const char *version, const char *name)
 *       the symbol's address in this process's vDSO, or NULL (no vDSO, no such symbol/version)
 *   void *vdso_lookup(uintptr_t base, const char *version, const char *name)
 *       the same for an ELF image mapped at base
 *
 * Header-only (static functions), for the userland programs that are built one .c file each.
 */
#ifndef FAULTLAB_VDSO_LOOKUP_H
#define FAULTLAB_VDSO_LOOKUP_H

#include <elf.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>

/* Find a versioned dynamic symbol in an ELF image mapped at base. */
static inline void *vdso_lookup(uintptr_t base, const char *version, const char *name)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)base;
    Elf64_Phdr *ph = (Elf64_Phdr *)(base + eh->e_phoff);
    uintptr_t load_offset = 0;
    Elf64_Dyn *dyn = NULL;
    int found_load = 0;

    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !found_load) {
            found_load = 1;
            load_offset = base + ph[i].p_offset - ph[i].p_vaddr;
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = (Elf64_Dyn *)(base + ph[i].p_offset);
        }
    }
    if (!found_load || !dyn)
        return NULL;

    const char *strtab = NULL;
    Elf64_Sym *symtab = NULL;
    Elf64_Word *hash = NULL;
    Elf64_Versym *versym = NULL;
    Elf64_Verdef *verdef = NULL;
    for (Elf64_Dyn *d = dyn; d->d_tag != DT_NULL; d++) {
        uintptr_t p = d->d_un.d_ptr + load_offset;
        switch (d->d_tag) {
        case DT_STRTAB: strtab = (const char *)p; break;
        case DT_SYMTAB: symtab = (Elf64_Sym *)p; break;
        case DT_HASH: hash = (Elf64_Word *)p; break;
        case DT_VERSYM: versym = (Elf64_Versym *)p; break;
        case DT_VERDEF: verdef = (Elf64_Verdef *)p; break;
        }
    }
    if (!strtab || !symtab || !hash)
        return NULL;

    unsigned long h = 0, g;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++) {
        h = (h << 4) + *s;
        g = h & 0xf0000000;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    Elf64_Word nbucket = hash[0];
    Elf64_Word *bucket = &hash[2], *chain = &hash[2 + nbucket];
    for (Elf64_Word i = bucket[h % nbucket]; i; i = chain[i]) {
        Elf64_Sym *sym = &symtab[i];
        if (ELF64_ST_TYPE(sym->st_info) != STT_FUNC || sym->st_shndx == SHN_UNDEF)
            continue;
        if (strcmp(strtab + sym->st_name, name))
            continue;
        if (versym && verdef) {
            Elf64_Versym idx = versym[i] & 0x7fff;
            Elf64_Verdef *vd = verdef;
            int match = 0;
            for (;;) {
                if (vd->vd_ndx == idx && !(vd->vd_flags & VER_FLG_BASE)) {
                    Elf64_Verdaux *aux = (Elf64_Verdaux *)((char *)vd + vd->vd_aux);
                    match = !strcmp(strtab + aux->vda_name, version);
                    break;
                }
                if (!vd->vd_next)
                    break;
                vd = (Elf64_Verdef *)((char *)vd + vd->vd_next);
            }
            if (!match)
                continue;
        }
        return (void *)(load_offset + sym->st_value);
    }
    return NULL;
}

/* The symbol in this process's vDSO (AT_SYSINFO_EHDR), or NULL. */
static inline void *vdso_sym(const char *version, const char *name)
{
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    return base ? vdso_lookup(base, version, name) : NULL;
}

#endif
