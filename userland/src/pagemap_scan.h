/* PAGEMAP_SCAN, the /proc/PID/pagemap ioctl of Linux 6.7 (include/uapi/linux/fs.h), for C libraries
 * whose headers are older. */
#ifndef FAULTLAB_PAGEMAP_SCAN_H
#define FAULTLAB_PAGEMAP_SCAN_H
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/fs.h>

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)
struct page_region { uint64_t start, end, categories; };
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif
#endif
