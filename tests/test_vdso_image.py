"""The vDSO image (vdso/): ELF structure, symbol lookup from C, and running its code.

* pyelftools sees an x86-64 ET_DYN with every export versioned LINUX_2.6;
* a C program of our own resolves the exports through DT_HASH and DT_GNU_HASH with
  version checks, the way user-space vDSO parsers do;
* glibc's own loader (dlopen + dlvsym) accepts the file and finds the versioned symbols,
  and the functions run natively against a vvar page written by vdso.vvar;
* Unicorn runs every function against a vvar page, including the seqcount retry, the
  syscall fallback and prefetch_page's exception-table fixup;
* the __ex_table entry points at the load in __vdso_prefetch_page (checked with capstone).
"""

import dataclasses
import io
import shutil
import struct
import subprocess

import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from capstone.x86_const import X86_OP_MEM, X86_REG_RDI
from elftools.elf.elffile import ELFFile
from unicorn import (UC_HOOK_INSN, UC_HOOK_MEM_READ, UC_HOOK_MEM_UNMAPPED, UC_PROT_EXEC,
                     UC_PROT_READ, UC_PROT_WRITE, UC_ARCH_X86, UC_MODE_64, Uc, UcError)
from unicorn.x86_const import (UC_X86_INS_SYSCALL, UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14,
                               UC_X86_REG_R15, UC_X86_REG_RAX, UC_X86_REG_RBP, UC_X86_REG_RBX,
                               UC_X86_REG_RDI, UC_X86_REG_RDX, UC_X86_REG_RIP, UC_X86_REG_RSI,
                               UC_X86_REG_RSP)

from faultlab.vdso import elfwriter
from faultlab.vdso import vvar as vv
from faultlab.vdso.image import (VDSO_EX_ASYNC, X86_TRAP_PF, build_vdso_image, get_vdso_image,
                        parse_extable, search_exception_table)

FUNCS = ['__vdso_clock_gettime', '__vdso_clock_getres', '__vdso_gettimeofday', '__vdso_time',
         '__vdso_getcpu', '__vdso_prefetch_page']
ALIASES = {'clock_gettime': '__vdso_clock_gettime', 'clock_getres': '__vdso_clock_getres',
           'gettimeofday': '__vdso_gettimeofday', 'time': '__vdso_time',
           'getcpu': '__vdso_getcpu', 'prefetch_page': '__vdso_prefetch_page'}

REALTIME_BASE = 1_700_000_000 * 10**9 + 111_222_333
MONOTONIC = 98_765 * 10**9 + 432_100_999
REALTIME = REALTIME_BASE + MONOTONIC
CPU, NODE = 3, 1
U64 = (1 << 64) - 1


@pytest.fixture(scope='module')
def img():
    return get_vdso_image()


@pytest.fixture(scope='module')
def image_file(img, tmp_path_factory):
    path = tmp_path_factory.mktemp('vdso') / 'vdso-image.so'
    img.write(path)
    return path


def expected_clock(clk):
    return REALTIME if clk in (vv.CLOCK_REALTIME, vv.CLOCK_REALTIME_COARSE) else MONOTONIC


# ----------------------------------------------------------------------------------
# Image basics
# ----------------------------------------------------------------------------------

def test_image_is_built_once_and_page_padded(img):
    assert get_vdso_image() is img
    assert len(img.data) % 4096 == 0 and 0 < img.pages <= 2
    assert img.vvar_offset == -4096
    assert set(FUNCS) | set(ALIASES) == set(img.symbols)
    for alias, target in ALIASES.items():
        assert img.symbols[alias] == img.symbols[target]
    for name in FUNCS:
        off = img.symbols[name]
        assert img.text_offset <= off and off + img.symbol_sizes[name] <= img.text_offset + img.text_size
        assert img.symbol_sizes[name] > 0


def test_rebuild_is_identical(img):
    assert build_vdso_image().data == img.data


def test_hash_functions_known_values():
    assert elfwriter.elf_hash('LINUX_2.6') == 0x3ae75f6
    assert elfwriter.elf_hash('') == 0
    assert elfwriter.gnu_hash('') == 0x1505
    assert elfwriter.gnu_hash('printf') == 0x156b2bb8


def test_vvar_pack_unpack_roundtrip():
    data = vv.pack_vvar(REALTIME_BASE, MONOTONIC, CPU, NODE, seq=6)
    assert len(data) == vv.VVAR_DATA_SIZE == 88
    d = vv.unpack_vvar(data)
    assert (d['seq'], d['cpu'], d['node']) == (6, CPU, NODE)
    for clk in range(vv.VVAR_NR_CLOCKS):
        want = expected_clock(clk) if clk in vv.VVAR_CLOCKS else 0
        assert d['clock_ns'][clk] == want
    assert vv.VVAR_CLOCK_MASK == 0b11110011
    page = vv.vvar_page(REALTIME_BASE, MONOTONIC, CPU)
    assert len(page) == 4096 and page[:88] == vv.pack_vvar(REALTIME_BASE, MONOTONIC, CPU)
    assert vv.begin_update(6) == 7 and vv.end_update(6) == 8 and vv.end_update(7) == 8


# ----------------------------------------------------------------------------------
# pyelftools
# ----------------------------------------------------------------------------------

def test_pyelftools_structure(img):
    elf = ELFFile(io.BytesIO(img.data))
    assert elf['e_type'] == 'ET_DYN' and elf['e_machine'] == 'EM_X86_64'
    assert elf.elfclass == 64 and elf.little_endian
    names = [s.name for s in elf.iter_sections()]
    for want in ('.hash', '.gnu.hash', '.dynsym', '.dynstr', '.gnu.version', '.gnu.version_d',
                 '.text', '.dynamic', '__ex_table', '.shstrtab'):
        assert want in names
    segs = {s['p_type']: s for s in elf.iter_segments()}
    load = segs['PT_LOAD']
    assert load['p_vaddr'] == 0 and load['p_offset'] == 0 and load['p_align'] == 4096
    assert load['p_filesz'] == load['p_memsz'] == len(img.data)
    assert load['p_flags'] == 5       # R+X
    assert 'PT_DYNAMIC' in segs and 'PT_NOTE' in segs
    text = elf.get_section_by_name('.text')
    assert text['sh_offset'] == img.text_offset and text['sh_flags'] & 4
    ex = elf.get_section_by_name('__ex_table')
    assert (ex['sh_offset'], ex['sh_size']) == (img.extable_offset, img.extable_size)
    dyn_tags = {t.entry.d_tag for t in elf.get_section_by_name('.dynamic').iter_tags()}
    for tag in ('DT_HASH', 'DT_GNU_HASH', 'DT_STRTAB', 'DT_SYMTAB', 'DT_VERSYM', 'DT_VERDEF',
                'DT_SONAME'):
        assert tag in dyn_tags
    notes = list(elf.get_section_by_name('.note').iter_notes())
    assert notes[0]['n_name'] == 'Linux'


def test_pyelftools_versioned_symbols(img):
    elf = ELFFile(io.BytesIO(img.data))
    dynsym = elf.get_section_by_name('.dynsym')
    versym = elf.get_section_by_name('.gnu.version')
    verdef = elf.get_section_by_name('.gnu.version_d')
    text_index = [s.name for s in elf.iter_sections()].index('.text')
    defs = {}
    for vd, auxs in verdef.iter_versions():
        defs[vd['vd_ndx']] = (vd['vd_flags'], vd['vd_hash'], [a.name for a in auxs])
    assert defs[1][0] == 1 and defs[1][2] == ['linux-vdso.so.1']          # base version
    assert defs[2] == (0, elfwriter.elf_hash('LINUX_2.6'), ['LINUX_2.6'])
    seen = {}
    for i, sym in enumerate(dynsym.iter_symbols()):
        if i == 0:
            assert versym.get_symbol(0)['ndx'] == 'VER_NDX_LOCAL'
            continue
        ndx = versym.get_symbol(i)['ndx']
        _, auxs = verdef.get_version(ndx)
        assert [a.name for a in auxs] == ['LINUX_2.6'], sym.name
        assert sym['st_info']['type'] == 'STT_FUNC'
        want_bind = 'STB_WEAK' if sym.name in ALIASES else 'STB_GLOBAL'
        assert sym['st_info']['bind'] == want_bind
        assert sym['st_shndx'] == text_index
        seen[sym.name] = sym['st_value']
    assert seen == img.symbols
    # pyelftools' own hash-table lookups agree
    for secname in ('.hash', '.gnu.hash'):
        table = elf.get_section_by_name(secname)
        for name, off in img.symbols.items():
            assert table.get_symbol(name)['st_value'] == off
        assert table.get_symbol('__vdso_nothing') is None


# ----------------------------------------------------------------------------------
# A C parser of our own: DT_HASH and DT_GNU_HASH lookups with version checks
# ----------------------------------------------------------------------------------

C_PARSER = r'''
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What we need from the image, as pointers into the file buffer. */
struct image {
    uintptr_t bias;                /* file buffer address of virtual address 0 */
    const Elf64_Sym *symtab;
    const char *strtab;
    const Elf64_Word *sysv;        /* DT_HASH */
    const Elf64_Word *gnu;         /* DT_GNU_HASH */
    const Elf64_Half *versym;
    const Elf64_Verdef *verdef;
};

static uint32_t hash_sysv(const char *p)
{
    uint32_t h = 0;
    for (; *p; p++) {
        h = (h << 4) + (unsigned char)*p;
        uint32_t hi = h & 0xf0000000u;
        if (hi)
            h ^= hi >> 24;
        h &= ~hi;
    }
    return h;
}

static uint32_t hash_gnu(const char *p)
{
    uint32_t h = 5381;
    while (*p)
        h = h * 33 + (unsigned char)*p++;
    return h;
}

static const void *ptr(const struct image *im, Elf64_Addr vaddr)
{
    return (const void *)(im->bias + vaddr);
}

/* Does symbol idx carry version `want` (a non-base definition with that name and hash)? */
static int has_version(const struct image *im, uint32_t idx, const char *want)
{
    if (!im->versym || !im->verdef)
        return 0;
    unsigned ndx = im->versym[idx] & 0x7fff;
    const char *p = (const char *)im->verdef;
    for (;;) {
        const Elf64_Verdef *vd = (const Elf64_Verdef *)p;
        if (vd->vd_version != 1)
            return 0;
        if (vd->vd_ndx == ndx && !(vd->vd_flags & VER_FLG_BASE)) {
            const Elf64_Verdaux *aux = (const Elf64_Verdaux *)(p + vd->vd_aux);
            return vd->vd_hash == hash_sysv(want) && !strcmp(im->strtab + aux->vda_name, want);
        }
        if (!vd->vd_next)
            return 0;
        p += vd->vd_next;
    }
}

static int matches(const struct image *im, uint32_t idx, const char *name, const char *ver)
{
    const Elf64_Sym *s = &im->symtab[idx];
    unsigned bind = ELF64_ST_BIND(s->st_info);
    if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF)
        return 0;
    if (bind != STB_GLOBAL && bind != STB_WEAK)
        return 0;
    return !strcmp(im->strtab + s->st_name, name) && has_version(im, idx, ver);
}

static long find_sysv(const struct image *im, const char *name, const char *ver)
{
    uint32_t nbucket = im->sysv[0], nchain = im->sysv[1];
    const Elf64_Word *bucket = im->sysv + 2, *chain = bucket + nbucket;
    uint32_t steps = 0;
    for (uint32_t i = bucket[hash_sysv(name) % nbucket]; i != STN_UNDEF; i = chain[i]) {
        if (i >= nchain || ++steps > nchain)
            return -2;                                     /* corrupt table */
        if (matches(im, i, name, ver))
            return (long)im->symtab[i].st_value;
    }
    return -1;
}

static long find_gnu(const struct image *im, const char *name, const char *ver)
{
    uint32_t nbuckets = im->gnu[0], first = im->gnu[1], nwords = im->gnu[2], shift = im->gnu[3];
    const uint64_t *bloom = (const uint64_t *)(im->gnu + 4);
    const Elf64_Word *buckets = (const Elf64_Word *)(bloom + nwords);
    const Elf64_Word *hashes = buckets + nbuckets;         /* entry k is symbol first + k */
    uint32_t h = hash_gnu(name);
    uint64_t word = bloom[(h / 64) & (nwords - 1)];
    if (!((word >> (h % 64)) & (word >> ((h >> shift) % 64)) & 1))
        return -1;
    uint32_t i = buckets[h % nbuckets];
    if (i == 0)
        return -1;
    if (i < first)
        return -2;
    for (;; i++) {
        uint32_t hv = hashes[i - first];
        if ((hv >> 1) == (h >> 1) && matches(im, i, name, ver))
            return (long)im->symtab[i].st_value;
        if (hv & 1)
            return -1;
    }
}

/* Walk every GNU hash bucket to its end mark; each symbol must be in its own bucket.
   Returns the number of symbols visited, or -1 if the table is inconsistent. */
static long walk_gnu(const struct image *im)
{
    uint32_t nbuckets = im->gnu[0], first = im->gnu[1], nwords = im->gnu[2];
    const Elf64_Word *buckets = (const Elf64_Word *)((const uint64_t *)(im->gnu + 4) + nwords);
    const Elf64_Word *hashes = buckets + nbuckets;
    uint32_t nsyms = im->sysv[1];
    long seen = 0;
    for (uint32_t b = 0; b < nbuckets; b++) {
        uint32_t i = buckets[b];
        if (i == 0)
            continue;
        for (;; i++) {
            if (i < first || i >= nsyms)
                return -1;
            const char *name = im->strtab + im->symtab[i].st_name;
            if (hash_gnu(name) % nbuckets != b || (hash_gnu(name) | 1) != (hashes[i - first] | 1))
                return -1;
            seen++;
            if (hashes[i - first] & 1)
                break;
        }
    }
    return seen;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s IMAGE VERSION NAME...\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f)
        return 3;
    static unsigned char buf[1 << 16] __attribute__((aligned(4096)));
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_DYN || eh->e_machine != EM_X86_64)
        return 4;

    const Elf64_Phdr *ph = (const Elf64_Phdr *)(buf + eh->e_phoff);
    const Elf64_Phdr *load = NULL, *dynph = NULL;
    for (int i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !load)
            load = &ph[i];
        else if (ph[i].p_type == PT_DYNAMIC)
            dynph = &ph[i];
    }
    if (!load || !dynph)
        return 5;

    struct image im = {0};
    im.bias = (uintptr_t)buf + load->p_offset - load->p_vaddr;
    for (const Elf64_Dyn *d = ptr(&im, dynph->p_vaddr); d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_STRTAB: im.strtab = ptr(&im, d->d_un.d_ptr); break;
        case DT_SYMTAB: im.symtab = ptr(&im, d->d_un.d_ptr); break;
        case DT_HASH: im.sysv = ptr(&im, d->d_un.d_ptr); break;
        case DT_GNU_HASH: im.gnu = ptr(&im, d->d_un.d_ptr); break;
        case DT_VERSYM: im.versym = ptr(&im, d->d_un.d_ptr); break;
        case DT_VERDEF: im.verdef = ptr(&im, d->d_un.d_ptr); break;
        }
    }
    if (!im.strtab || !im.symtab || !im.sysv || !im.gnu)
        return 6;
    printf("nsyms %u\n", im.sysv[1]);
    printf("gnuwalk %ld\n", walk_gnu(&im));
    for (int i = 3; i < argc; i++) {
        printf("sysv %s %ld\n", argv[i], find_sysv(&im, argv[i], argv[2]));
        printf("gnu %s %ld\n", argv[i], find_gnu(&im, argv[i], argv[2]));
    }
    return 0;
}
'''

GLIBC_DLOPEN = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>

typedef int (*gettime_fn)(clockid_t, struct timespec *);
typedef int (*getres_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(struct timeval *, struct timezone *);
typedef time_t (*time_fn)(time_t *);
typedef long (*getcpu_fn)(unsigned *, unsigned *, void *);
typedef long (*prefetch_fn)(const void *);

int main(int argc, char **argv)
{
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("dlopen-error %s\n", dlerror());
        return 1;
    }
    struct link_map *lm;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm))
        return 2;
    uintptr_t base = lm->l_addr;
    for (int i = 3; i < argc; i++) {
        void *p = dlvsym(h, argv[i], "LINUX_2.6");
        printf("sym %s %ld\n", argv[i], p ? (long)((uintptr_t)p - base) : -1L);
    }
    printf("wrongver %d\n", dlvsym(h, "__vdso_clock_gettime", "LINUX_2.5") != NULL);

    /* A vvar page one page below the image, as the kernel maps it. */
    unsigned char vvar[4096];
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(vvar, 1, sizeof vvar, f) != sizeof vvar)
        return 3;
    fclose(f);
    void *want = (void *)(base - 4096);
    void *got = mmap(want, 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (got != want) {
        printf("native-skip\n");
        return 0;
    }
    memcpy(got, vvar, sizeof vvar);
    mprotect(got, 4096, PROT_READ);

    gettime_fn gettime = (gettime_fn)dlvsym(h, "__vdso_clock_gettime", "LINUX_2.6");
    getres_fn getres = (getres_fn)dlvsym(h, "__vdso_clock_getres", "LINUX_2.6");
    gtod_fn gtod = (gtod_fn)dlvsym(h, "__vdso_gettimeofday", "LINUX_2.6");
    time_fn tm = (time_fn)dlvsym(h, "__vdso_time", "LINUX_2.6");
    getcpu_fn getcpu = (getcpu_fn)dlvsym(h, "__vdso_getcpu", "LINUX_2.6");
    prefetch_fn prefetch = (prefetch_fn)dlvsym(h, "__vdso_prefetch_page", "LINUX_2.6");

    static const int vvar_clocks[] = {0, 1, 4, 5, 6, 7};
    for (unsigned i = 0; i < sizeof vvar_clocks / sizeof vvar_clocks[0]; i++) {
        struct timespec ts = {-1, -1};
        int rc = gettime(vvar_clocks[i], &ts);
        printf("clock %d %d %lld %ld\n", vvar_clocks[i], rc, (long long)ts.tv_sec, ts.tv_nsec);
    }
    struct timespec ts = {-1, -1};
    printf("cputime %d\n", gettime(CLOCK_PROCESS_CPUTIME_ID, &ts));   /* real syscall */
    printf("badclock %d\n", gettime(1000, &ts));                       /* real syscall: -EINVAL */
    struct timespec res = {-1, -1};
    int rc;
    rc = getres(CLOCK_MONOTONIC, &res);
    printf("getres %d %lld %ld\n", rc, (long long)res.tv_sec, res.tv_nsec);
    struct timeval tv = {-1, -1};
    struct timezone tz;
    memset(&tz, 0x55, sizeof tz);
    rc = gtod(&tv, &tz);
    printf("gtod %d %lld %ld %d %d\n", rc, (long long)tv.tv_sec, (long)tv.tv_usec,
           tz.tz_minuteswest, tz.tz_dsttime);
    time_t t = 0;
    time_t r = tm(&t);
    printf("time %lld %lld\n", (long long)r, (long long)t);
    unsigned cpu = 99, node = 99;
    long ret = getcpu(&cpu, &node, NULL);
    printf("getcpu %ld %u %u\n", ret, cpu, node);
    static volatile char mapped = 7;
    printf("prefetch %ld\n", prefetch((const void *)&mapped));
    return 0;
}
'''


def _compile(tmp_path, name, source, *libs):
    gcc = shutil.which('gcc')
    if gcc is None:
        pytest.skip('gcc is not installed')
    src = tmp_path / (name + '.c')
    src.write_text(source)
    exe = tmp_path / name
    subprocess.run([gcc, '-O1', '-Wall', '-Werror', '-o', str(exe), str(src), *libs], check=True)
    return exe


def _run(exe, *args):
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.splitlines()


def test_c_parser_resolves_every_export(img, image_file, tmp_path):
    exe = _compile(tmp_path, 'vdso_lookup', C_PARSER)
    names = sorted(img.symbols) + ['__vdso_nothing', 'clock_gettim']
    out = _run(exe, image_file, 'LINUX_2.6', *names)
    assert out[0] == 'nsyms %d' % (len(img.symbols) + 1)
    assert out[1] == 'gnuwalk %d' % len(img.symbols)
    found = {}
    for line in out[2:]:
        kind, name, value = line.split()
        found[(kind, name)] = int(value)
    for name in names:
        want = img.symbols.get(name, -1)
        assert found[('sysv', name)] == want, name
        assert found[('gnu', name)] == want, name


def test_c_parser_checks_the_version(img, image_file, tmp_path):
    exe = _compile(tmp_path, 'vdso_lookup', C_PARSER)
    out = _run(exe, image_file, 'LINUX_2.5', *FUNCS)
    assert all(line.endswith(' -1') for line in out[2:]) and len(out) == 2 + 2 * len(FUNCS)


def test_glibc_dlopen_finds_versioned_symbols_and_code_runs(img, image_file, tmp_path):
    """glibc's loader parses the image (GNU hash, verdef/versym) and the code runs natively."""
    exe = _compile(tmp_path, 'vdso_dlopen', GLIBC_DLOPEN, '-ldl')
    vvar_file = tmp_path / 'vvar.bin'
    vvar_file.write_bytes(vv.vvar_page(REALTIME_BASE, MONOTONIC, CPU, NODE, seq=4))
    out = _run(exe, image_file, vvar_file, *sorted(img.symbols))
    lines = {}
    for line in out:
        key, _, rest = line.partition(' ')
        lines.setdefault(key, []).append(rest.split())
    assert 'dlopen-error' not in lines
    assert {n: int(v) for n, v in lines['sym']} == img.symbols
    assert lines['wrongver'] == [['0']]
    if 'native-skip' in lines:
        pytest.skip('could not map a vvar page below the dlopen()ed image')
    for clk, rc, sec, nsec in lines['clock']:
        want = expected_clock(int(clk))
        assert (int(rc), int(sec), int(nsec)) == (0, want // 10**9, want % 10**9), clk
    assert lines['cputime'] == [['0']]
    assert lines['badclock'] == [['-22']]
    assert lines['getres'] == [['0', '0', '1']]
    assert lines['gtod'] == [['0', str(REALTIME // 10**9), str(REALTIME % 10**9 // 1000), '0', '0']]
    assert lines['time'] == [[str(REALTIME // 10**9)] * 2]
    assert lines['getcpu'] == [['0', str(CPU), str(NODE)]]
    assert lines['prefetch'] == [['0']]


# ----------------------------------------------------------------------------------
# Running the code with Unicorn
# ----------------------------------------------------------------------------------

BASE = 0x7fff_f7fc_0000
STACK_TOP = 0x7fff_0001_0000
DATA = 0x1000_0000
RET = 0x2000_0000
UNMAPPED = 0x5555_0000_1000
PF_USER = 4
CALLEE_SAVED = {UC_X86_REG_RBX: 0x1111, UC_X86_REG_RBP: 0x2222, UC_X86_REG_R12: 0x3333,
                UC_X86_REG_R13: 0x4444, UC_X86_REG_R14: 0x5555, UC_X86_REG_R15: 0x6666}


class Segfault(Exception):
    """A fault the vDSO exception table does not cover (the kernel would send SIGSEGV)."""


class VdsoCpu:
    """The image mapped at BASE with its vvar page, a stack, a data page and a hlt to return to."""

    def __init__(self, image, vvar_data):
        self.img = image
        uc = self.uc = Uc(UC_ARCH_X86, UC_MODE_64)
        uc.mem_map(BASE + image.vvar_offset, 4096, UC_PROT_READ)
        uc.mem_write(BASE + image.vvar_offset, vvar_data)
        uc.mem_map(BASE, len(image.data), UC_PROT_READ | UC_PROT_EXEC)
        uc.mem_write(BASE, image.data)
        uc.mem_map(STACK_TOP - 0x10000, 0x10000, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_map(DATA, 0x1000, UC_PROT_READ | UC_PROT_WRITE)
        uc.mem_map(RET, 0x1000, UC_PROT_READ | UC_PROT_EXEC)
        uc.mem_write(RET, b'\xf4')          # hlt: never executed, we stop on reaching it
        self.syscalls = []
        self.syscall_result = 0
        self.faults = []
        uc.hook_add(UC_HOOK_INSN, self._on_syscall, None, 1, 0, UC_X86_INS_SYSCALL)
        uc.hook_add(UC_HOOK_MEM_UNMAPPED, self._on_unmapped)

    def _on_syscall(self, uc, _ud):
        self.syscalls.append(tuple(uc.reg_read(r) for r in
                                   (UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RSI)))
        uc.reg_write(UC_X86_REG_RAX, self.syscall_result & U64)

    def _on_unmapped(self, uc, _access, address, _size, _value, _ud):
        self.faults.append((uc.reg_read(UC_X86_REG_RIP), address))
        return False                        # stop; the "kernel" below handles the fault

    def _handle_fault(self):
        """Do what the kernel's #PF path does for a fault it cannot resolve in the vDSO."""
        rip, address = self.faults[-1]
        assert self.uc.reg_read(UC_X86_REG_RIP) == rip
        hit = search_exception_table(self.img, rip - BASE, X86_TRAP_PF)
        if hit is None:
            raise Segfault(hex(rip), hex(address))
        self.uc.reg_write(UC_X86_REG_RDI, X86_TRAP_PF)
        self.uc.reg_write(UC_X86_REG_RSI, PF_USER)
        self.uc.reg_write(UC_X86_REG_RDX, address)
        return BASE + hit.fixup_offset

    def call(self, name, *args):
        uc = self.uc
        for reg, val in zip((UC_X86_REG_RDI, UC_X86_REG_RSI, UC_X86_REG_RDX), args):
            uc.reg_write(reg, val & U64)
        for reg, val in CALLEE_SAVED.items():
            uc.reg_write(reg, val)
        sp = STACK_TOP - 0x100
        uc.mem_write(sp, struct.pack('<Q', RET))
        uc.reg_write(UC_X86_REG_RSP, sp)
        uc.reg_write(UC_X86_REG_RAX, 0xdead_beef_dead_beef)
        start = BASE + self.img.symbols[name]
        for _ in range(4):
            try:
                uc.emu_start(start, RET, count=100_000)
                break
            except UcError:
                start = self._handle_fault()
        assert uc.reg_read(UC_X86_REG_RIP) == RET, 'did not return'
        assert uc.reg_read(UC_X86_REG_RSP) == sp + 8, 'unbalanced stack'
        for reg, val in CALLEE_SAVED.items():
            assert uc.reg_read(reg) == val, 'callee-saved register clobbered'
        return uc.reg_read(UC_X86_REG_RAX)

    def read(self, addr, fmt):
        return struct.unpack(fmt, self.uc.mem_read(addr, struct.calcsize(fmt)))

    def fill(self, addr, size, byte=0xAA):
        self.uc.mem_write(addr, bytes([byte]) * size)


@pytest.fixture
def cpu(img):
    return VdsoCpu(img, vv.vvar_page(REALTIME_BASE, MONOTONIC, CPU, NODE, seq=2))


@pytest.mark.parametrize('clk', vv.VVAR_CLOCKS)
def test_clock_gettime_reads_vvar(cpu, clk):
    cpu.fill(DATA, 16)
    assert cpu.call('__vdso_clock_gettime', clk, DATA) == 0
    want = expected_clock(clk)
    assert cpu.read(DATA, '<qq') == (want // 10**9, want % 10**9)
    assert cpu.syscalls == []


# -31 and -26 are 1 and 6 modulo 32: a signed range check would let bt accept them.
NON_VVAR_CLOCKS = [vv.CLOCK_PROCESS_CPUTIME_ID, vv.CLOCK_THREAD_CPUTIME_ID, 8, 11, 33, 1000,
                   -1, -6, -31, -26]


@pytest.mark.parametrize('clk', NON_VVAR_CLOCKS)
def test_clock_gettime_falls_back_to_syscall(cpu, clk):
    cpu.syscall_result = -22
    cpu.fill(DATA, 16)
    assert cpu.call('__vdso_clock_gettime', clk, DATA) == (-22) & U64
    assert cpu.syscalls == [(228, clk & U64, DATA)]
    assert cpu.read(DATA, '<16s')[0] == b'\xaa' * 16     # the vDSO itself wrote nothing


def test_clock_gettime_ignores_upper_half_of_clockid(cpu):
    cpu.fill(DATA, 16)
    assert cpu.call('__vdso_clock_gettime', (0xffff_ffff << 32) | vv.CLOCK_MONOTONIC, DATA) == 0
    assert cpu.read(DATA, '<qq') == divmod(MONOTONIC, 10**9)


@pytest.mark.parametrize('clk', NON_VVAR_CLOCKS)
def test_clock_getres_falls_back_to_syscall(cpu, clk):
    cpu.syscall_result = -22
    cpu.fill(DATA, 16)
    assert cpu.call('__vdso_clock_getres', clk, DATA) == (-22) & U64
    assert cpu.syscalls == [(229, clk & U64, DATA)]
    assert cpu.read(DATA, '<16s')[0] == b'\xaa' * 16


def test_clock_getres(cpu):
    cpu.fill(DATA, 16)
    assert cpu.call('__vdso_clock_getres', vv.CLOCK_MONOTONIC, DATA) == 0
    assert cpu.read(DATA, '<qq') == (0, 1)
    assert cpu.call('__vdso_clock_getres', vv.CLOCK_REALTIME, 0) == 0
    assert cpu.syscalls == []
    assert cpu.call('__vdso_clock_getres', vv.CLOCK_PROCESS_CPUTIME_ID, DATA) == 0
    assert cpu.syscalls == [(229, vv.CLOCK_PROCESS_CPUTIME_ID, DATA)]


def test_gettimeofday(cpu):
    cpu.fill(DATA, 32)
    assert cpu.call('__vdso_gettimeofday', DATA, DATA + 16) == 0
    assert cpu.read(DATA, '<qq') == (REALTIME // 10**9, REALTIME % 10**9 // 1000)
    assert cpu.read(DATA + 16, '<ii') == (0, 0)
    # NULL tv and tz are allowed
    cpu.fill(DATA, 32)
    assert cpu.call('__vdso_gettimeofday', DATA, 0) == 0
    assert cpu.read(DATA + 16, '<8s')[0] == b'\xaa' * 8
    assert cpu.call('__vdso_gettimeofday', 0, DATA + 16) == 0
    assert cpu.read(DATA + 16, '<ii') == (0, 0)
    assert cpu.call('__vdso_gettimeofday', 0, 0) == 0
    assert cpu.syscalls == []


def test_time(cpu):
    cpu.fill(DATA, 8)
    assert cpu.call('__vdso_time', DATA) == REALTIME // 10**9
    assert cpu.read(DATA, '<q') == (REALTIME // 10**9,)
    assert cpu.call('__vdso_time', 0) == REALTIME // 10**9


def test_getcpu(cpu):
    cpu.fill(DATA, 8)
    assert cpu.call('__vdso_getcpu', DATA, DATA + 4, 0) == 0
    assert cpu.read(DATA, '<II') == (CPU, NODE)
    cpu.fill(DATA, 8)
    assert cpu.call('__vdso_getcpu', DATA, 0, 0) == 0
    assert cpu.read(DATA, '<II') == (CPU, 0xaaaaaaaa)
    cpu.fill(DATA, 8)
    assert cpu.call('__vdso_getcpu', 0, DATA + 4, 0) == 0
    assert cpu.read(DATA, '<II') == (0xaaaaaaaa, NODE)
    assert cpu.call('__vdso_getcpu', 0, 0, 0) == 0


def test_aliases_run_the_same_code(cpu):
    cpu.fill(DATA, 16)
    assert cpu.call('clock_gettime', vv.CLOCK_REALTIME, DATA) == 0
    assert cpu.read(DATA, '<qq') == divmod(REALTIME, 10**9)
    assert cpu.call('time', 0) == REALTIME // 10**9


def test_clock_tracks_vvar_updates(img):
    cpu = VdsoCpu(img, vv.vvar_page(REALTIME_BASE, MONOTONIC, CPU, seq=2))
    cpu.call('__vdso_clock_gettime', vv.CLOCK_MONOTONIC, DATA)
    assert cpu.read(DATA, '<qq') == divmod(MONOTONIC, 10**9)
    later = MONOTONIC + 1_500_000_000
    cpu.uc.mem_write(BASE - 4096, vv.pack_vvar(REALTIME_BASE, later, 5, seq=4))
    cpu.call('__vdso_clock_gettime', vv.CLOCK_MONOTONIC, DATA)
    assert cpu.read(DATA, '<qq') == divmod(later, 10**9)
    assert cpu.call('__vdso_getcpu', DATA, 0, 0) == 0 and cpu.read(DATA, '<I') == (5,)


def _watch_vvar(cpu, on_read):
    vvar = BASE - 4096
    reads = {'seq': 0, 'clock': 0, 'mult': 0}

    def hook(uc, _access, address, _size, _value, _ud):
        field = 'seq' if address == vvar + vv.VVAR_SEQ else 'mult' if address == vvar + vv.VVAR_TSC_MULT \
            else 'clock'
        reads[field] += 1
        on_read(field, reads)

    cpu.uc.hook_add(UC_HOOK_MEM_READ, hook, None, vvar, vvar + 4095)
    return reads


def test_seqcount_waits_while_update_in_progress(img):
    """An odd seq means the kernel is writing: the reader spins until it is even again."""
    stale = 1 * 10**9
    cpu = VdsoCpu(img, vv.vvar_page(0, stale, seq=vv.begin_update(2)))
    vvar = BASE - 4096

    def on_read(field, reads):
        if field == 'seq' and reads['seq'] == 5:
            cpu.uc.mem_write(vvar, vv.pack_vvar(0, MONOTONIC, seq=vv.end_update(2)))

    reads = _watch_vvar(cpu, on_read)
    assert cpu.call('__vdso_clock_gettime', vv.CLOCK_MONOTONIC, DATA) == 0
    assert cpu.read(DATA, '<qq') == divmod(MONOTONIC, 10**9)
    assert reads['seq'] >= 6 and reads['clock'] == 1


def test_seqcount_retries_when_seq_changes(img):
    """If seq changed between the two reads, the values are re-read."""
    stale = 1 * 10**9
    cpu = VdsoCpu(img, vv.vvar_page(0, stale, seq=2))
    vvar = BASE - 4096

    def on_read(field, reads):
        if field == 'clock' and reads['clock'] == 1:
            cpu.uc.mem_write(vvar, vv.pack_vvar(0, MONOTONIC, seq=4))

    reads = _watch_vvar(cpu, on_read)
    assert cpu.call('__vdso_clock_gettime', vv.CLOCK_MONOTONIC, DATA) == 0
    assert cpu.read(DATA, '<qq') == divmod(MONOTONIC, 10**9)
    assert reads == {'seq': 4, 'clock': 2, 'mult': 2}


def test_prefetch_page_mapped(cpu):
    assert cpu.call('__vdso_prefetch_page', DATA + 123) == 0
    assert cpu.faults == []


def test_prefetch_page_unmapped_uses_extable_fixup(cpu, img):
    assert cpu.call('__vdso_prefetch_page', UNMAPPED) == U64      # -1
    assert len(cpu.faults) == 1
    rip, address = cpu.faults[0]
    assert rip == BASE + img.extable[0].insn_offset
    assert address == UNMAPPED
    assert cpu.uc.reg_read(UC_X86_REG_RDI) == X86_TRAP_PF
    assert cpu.uc.reg_read(UC_X86_REG_RSI) == PF_USER
    assert cpu.uc.reg_read(UC_X86_REG_RDX) == UNMAPPED
    # and the next call works normally again
    assert cpu.call('__vdso_prefetch_page', DATA) == 0


def test_fault_outside_extable_is_fatal(cpu):
    with pytest.raises(Segfault):
        cpu.call('__vdso_clock_gettime', vv.CLOCK_MONOTONIC, UNMAPPED)


# ----------------------------------------------------------------------------------
# Exception table
# ----------------------------------------------------------------------------------

def _disasm(img, name):
    md = Cs(CS_ARCH_X86, CS_MODE_64)
    md.detail = True
    off = img.symbols[name]
    return list(md.disasm(img.data[off:off + img.symbol_sizes[name]], off))


def test_prefetch_page_code_shape(img):
    insns = _disasm(img, '__vdso_prefetch_page')
    text = ['%s %s' % (i.mnemonic, i.op_str) for i in insns]
    assert text[:3] == ['push rbp', 'mov rbp, rsp', 'xor eax, eax']
    loads = [i for i in insns
             if any(op.type == X86_OP_MEM and op.mem.base == X86_REG_RDI and op.size == 1
                    for op in i.operands)]
    assert len(loads) == 1
    load = loads[0]
    assert insns[insns.index(load) + 1].mnemonic == 'pop'
    (entry,) = img.extable
    assert entry.insn_offset == load.address
    assert entry.mask == 1 << 14 and entry.flags & VDSO_EX_ASYNC
    fixup = [i for i in insns if i.address == entry.fixup_offset]
    assert fixup and fixup[0].mnemonic == 'mov' and fixup[0].op_str == 'rax, 0xffffffffffffffff'
    jump = insns[insns.index(fixup[0]) + 1]
    assert jump.mnemonic == 'jmp' and int(jump.op_str, 16) == insns[insns.index(load) + 1].address


def test_extable_encoding_is_relative_to_each_field(img):
    raw = img.data[img.extable_offset:img.extable_offset + img.extable_size]
    assert len(raw) == 16
    insn, fixup, mask, flags = struct.unpack('<iiII', raw)
    entry = img.extable[0]
    assert img.extable_offset + insn == entry.insn_offset
    assert img.extable_offset + 4 + fixup == entry.fixup_offset
    assert (mask, flags) == (1 << X86_TRAP_PF, VDSO_EX_ASYNC)
    assert parse_extable(img.data, img.extable_offset, img.extable_size) == img.extable


def test_search_exception_table(img):
    entry = img.extable[0]
    hit = search_exception_table(img, entry.insn_offset, X86_TRAP_PF)
    assert hit == (entry.fixup_offset, VDSO_EX_ASYNC)
    assert hit.fixup_offset == entry.fixup_offset and hit.flags == VDSO_EX_ASYNC
    assert search_exception_table(img, entry.insn_offset, 13) is None     # #GP not in the mask
    assert search_exception_table(img, entry.insn_offset + 1, X86_TRAP_PF) is None
    assert search_exception_table(img, img.symbols['__vdso_time'], X86_TRAP_PF) is None


def test_search_reads_the_table_from_the_image_bytes(img):
    data = bytearray(img.data)
    struct.pack_into('<I', data, img.extable_offset + 8, 1 << 13)     # mask: #GP only
    patched = dataclasses.replace(img, data=bytes(data))
    insn = img.extable[0].insn_offset
    assert search_exception_table(patched, insn, X86_TRAP_PF) is None
    assert search_exception_table(patched, insn, 13) is not None


def test_builder_rejects_unsupported_directives(tmp_path):
    src = tmp_path / 'bad.S'
    src.write_text('.section .data\n.globl f\n.type f, @function\nf:\n    ret\n')
    with pytest.raises(ValueError, match='not supported'):
        build_vdso_image(src)
    src.write_text('.globl f\nf:\n    ret\n')
    with pytest.raises(ValueError, match='@function'):
        build_vdso_image(src)
    src.write_text('.globl f\n.type f, @function\nf:\n    bogus rax\n')
    with pytest.raises(ValueError, match='assembling'):
        build_vdso_image(src)
