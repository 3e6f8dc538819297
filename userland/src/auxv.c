/* The auxiliary vector as the program sees it, printed as facts that hold natively and under
 * faultlab alike (no addresses): which entries there are, what AT_BASE, AT_ENTRY, AT_PHDR and
 * AT_SYSINFO_EHDR point at, and where the interpreter and the program were put. Built statically
 * (AT_BASE 0) and dynamically (AT_BASE = the loader's base).  usage: auxv */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;
extern char _start[];

struct objects {
    unsigned long main_phdr, interp_addr;
    int count;
};

static int each_object(struct dl_phdr_info *info, size_t size, void *data)
{
    struct objects *o = data;
    (void)size;
    if (o->count++ == 0)
        o->main_phdr = (unsigned long)info->dlpi_phdr;
    else if (info->dlpi_name && strstr(info->dlpi_name, "ld-linux"))
        o->interp_addr = info->dlpi_addr;
    return 0;
}

static const char *elf_kind(unsigned long addr)
{
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)addr;
    if (!addr)
        return "none";
    if (memcmp(e->e_ident, ELFMAG, SELFMAG) != 0)
        return "not ELF";
    return e->e_type == ET_DYN ? "ELF ET_DYN" : e->e_type == ET_EXEC ? "ELF ET_EXEC" : "ELF other";
}

int main(void)
{
    char **p = environ;
    while (*p)
        p++;
    printf("auxv types:");
    for (Elf64_auxv_t *a = (Elf64_auxv_t *)(p + 1); a->a_type != AT_NULL; a++)
        if (a->a_type != 27 && a->a_type != 28)      /* AT_RSEQ_*: faultlab has no rseq */
            printf(" %lu", (unsigned long)a->a_type);
    printf("\n");

    struct objects o = {0, 0, 0};
    dl_iterate_phdr(each_object, &o);
    unsigned long base = getauxval(AT_BASE), entry = getauxval(AT_ENTRY), phdr = getauxval(AT_PHDR);
    unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
    printf("AT_PAGESZ %lu AT_PHENT %lu AT_PHNUM %lu AT_CLKTCK %lu AT_FLAGS %lu AT_SECURE %lu\n",
           getauxval(AT_PAGESZ), getauxval(AT_PHENT), getauxval(AT_PHNUM), getauxval(AT_CLKTCK),
           getauxval(AT_FLAGS), getauxval(AT_SECURE));
    printf("AT_ENTRY is _start: %s\n", entry == (unsigned long)_start ? "yes" : "no");
    printf("AT_PHDR is the program's headers: %s\n", phdr == o.main_phdr ? "yes" : "no");
    printf("AT_BASE: %s, page-aligned %s\n", elf_kind(base), base & 4095 ? "no" : "yes");
    printf("AT_BASE is the interpreter's load address: %s\n", base && base == o.interp_addr ? "yes" : "no");
    printf("interpreter above the program: %s\n", base > entry ? "yes" : "no");
    printf("AT_SYSINFO_EHDR: %s\n", elf_kind(vdso));
    printf("AT_PLATFORM %s\n", (const char *)getauxval(AT_PLATFORM));
    printf("AT_RANDOM set: %s\n", getauxval(AT_RANDOM) ? "yes" : "no");
    printf("shared objects: %d\n", o.count);
    return 0;
}
