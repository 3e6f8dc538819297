/*
 * prefetch_test: checks __vdso_prefetch_page() from the vDSO announced in AT_SYSINFO_EHDR.
 * The vDSO is parsed here (program headers, dynamic section, SysV hash, version LINUX_2.6).
 * TAP output. On a kernel whose vDSO has no prefetch_page, every test is skipped.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

typedef long (*prefetch_fn)(const void *);

static int failures;
static int test_no;

static void report(int ok, const char *what)
{
    printf("%s %d %s\n", ok ? "ok" : "not ok", ++test_no, what);
    if (!ok)
        failures++;
}

/* Find a versioned dynamic symbol in an ELF image mapped at base. */
static void *vdso_lookup(uintptr_t base, const char *version, const char *name)
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

static int resident(void *p)
{
    unsigned char v = 0;
    if (mincore(p, 4096, &v))
        return -1;
    return v & 1;
}

static int drop_caches(void)
{
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0)
        return -1;
    int ok = write(fd, "1", 1) == 1;
    close(fd);
    return ok ? 0 : -1;
}

static char present_data[4096] = {1};

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/home";
    uintptr_t base = getauxval(AT_SYSINFO_EHDR);
    prefetch_fn prefetch = base ? (prefetch_fn)vdso_lookup(base, "LINUX_2.6", "__vdso_prefetch_page") : NULL;

    printf("TAP version 13\n1..5\n");
    if (!prefetch) {
        for (int i = 1; i <= 5; i++)
            printf("ok %d # SKIP no __vdso_prefetch_page in the vDSO\n", i);
        return 0;
    }

    report(prefetch(NULL) != 0, "NULL returns non-zero without a signal");

    present_data[0]++;
    report(prefetch(present_data) == 0, "present page returns 0");

    char *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report(anon != MAP_FAILED && prefetch(anon) == 0 && resident(anon) == 1,
           "fresh anonymous page returns 0 and is then resident");

    /* a file page made cold: the call starts the read and fails; once mincore says it is resident, 0 */
    char path[256];
    snprintf(path, sizeof(path), "%s/prefetch_test.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    static char buf[4 * 4096];
    memset(buf, 'p', sizeof(buf));
    int ok = fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf) && fsync(fd) == 0 &&
             drop_caches() == 0;
    char *map = ok ? mmap(NULL, sizeof(buf), PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    long first = map != MAP_FAILED ? prefetch(map + 4096) : 0;
    int was_resident = map != MAP_FAILED ? resident(map + 4096) : 1;
    long spins = 0;
    while (map != MAP_FAILED && resident(map + 4096) != 1 && spins < 100000000)
        spins++;
    long second = map != MAP_FAILED ? prefetch(map + 4096) : -1;
    report(ok && first != 0 && was_resident == 0 && second == 0 && map[4096] == 'p',
           "cold file page returns non-zero, then 0 once resident");
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }

    void *none = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    report(none != MAP_FAILED && prefetch(none) != 0, "PROT_NONE page returns non-zero without a signal");

    return failures ? 1 : 0;
}
