"""The OOM killer (mm/oom_kill.c): when a fault finds no page even after reclaim and swap, the process
with the highest badness is killed, not necessarily the one that faulted.

oom_badness: resident pages + swap entries + page-table pages, plus oom_score_adj thousandths of all
memory (RAM + swap); OOM_SCORE_ADJ_MIN (-1000) exempts a process. The victim (on ties the later one in
the task list, as select_bad_process's >= keeps the last) dies by SIGKILL with Linux's "Out of
memory: Killed process" line, its memory is freed, and the faulting task retries its fault (a fault
that still finds nothing picks again). When no process is eligible Linux panics ("Out of memory and
no killable processes"); here the faulting process ends with that report.

/proc/self/oom_score_adj (fs/proc/base.c oom_score_adj_write: kstrtoint, -1000..1000 else EINVAL;
below oom_score_adj_min only with CAP_SYS_RESOURCE, which also sets the minimum) and /proc/self/oom_score
(proc_oom_score: the badness scaled to 0..2000 and by 2/3, 0 for an exempt process). Both live in the
signal struct: threads share them and fork copies them.
"""
import errno

from faultlab.kernel.capability import CAP_SYS_RESOURCE, capable
from faultlab.kernel.fs import FsError
from faultlab.kernel.futex import cancel_wait

OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000
SIGKILL = 9
PROC_NUMBUF = 13


def oom_score_adj(group):
    """signal->oom_score_adj of a process."""
    return getattr(group, 'oom_score_adj', 0)


def copy_oom_score_adj(parent_group, child_group):
    """copy_signal: a new process starts with its parent's oom_score_adj and oom_score_adj_min."""
    child_group.oom_score_adj = oom_score_adj(parent_group)
    child_group.oom_score_adj_min = getattr(parent_group, 'oom_score_adj_min', 0)


def oom_totalpages(k):
    """oc->totalpages of a global OOM: totalram_pages() + total_swap_pages."""
    return (k.phys.size >> 12) + k.swap_area.nr_slots - 1


def _mm_counts(mm):
    """(anon rss, file rss, swap entries, page-table pages) of an address space."""
    return mm.rss_anon, mm.rss_file, max(0, getattr(mm, 'swap_ents', 0)), len(mm.pgtables.table_pfns)


def oom_badness(group, totalpages):
    """oom_badness: the process's pages (rss + swap + page tables) plus its adjustment, or None when it
    cannot be chosen (exempt, or its memory is already gone)."""
    live = group.live_threads()
    if not live or group.group_exit:
        return None
    adj = oom_score_adj(group)
    if adj == OOM_SCORE_ADJ_MIN:
        return None
    anon, file, swap, ptes = _mm_counts(live[0].mm)
    return anon + file + swap + ptes + adj * (totalpages // 1000)


def select_bad_process(k, totalpages):
    """select_bad_process: the eligible process with the highest badness (the later one on a tie)."""
    chosen, chosen_points = None, None
    seen = set()
    for t in k.tasks.live():
        group = t.group
        if id(group) in seen:
            continue
        seen.add(id(group))
        points = oom_badness(group, totalpages)
        if points is None or (chosen_points is not None and points < chosen_points):
            continue
        chosen, chosen_points = group, points
    return chosen


def out_of_memory(k, current, what):
    """out_of_memory: kill the process select_bad_process picks, with the kernel's report; the caller
    retries its allocation when the victim was another process."""
    victim = select_bad_process(k, oom_totalpages(k))
    if victim is None:
        victim = current.group
        head = 'Out of memory and no killable processes'
    else:
        head = 'Out of memory'
    leader = victim.leader
    anon, file, swap, ptes = _mm_counts(leader.mm)
    report = ('%s[%d] invoked oom-killer (%s; RAM %d MiB, swap %d MiB). %s: Killed process %d (%s) '
              'total-vm:%dkB, anon-rss:%dkB, file-rss:%dkB, shmem-rss:0kB, UID:%d pgtables:%dkB oom_score_adj:%d'
              % (current.comm, current.tid, what, k.phys.size >> 20, k.swap_area.nr_slots >> 8, head,
                 leader.tgid, leader.comm, leader.mm.total_vm * 4, anon * 4, file * 4, leader.cred.uid,
                 ptes * 4, oom_score_adj(victim)))
    k.stats['oom_kill'] += 1
    if victim.parent is not None:
        k.warn(report)                      # the kernel log's line; the victim's parent sees SIGKILL
    for th in victim.live_threads():
        cancel_wait(k, th)
    k.do_group_exit(leader, 0, (SIGKILL, 'out of memory: killed %s[%d] (%s): %s'
                                % (leader.comm, leader.tgid, what, report)))
    return victim is not current.group


def proc_oom_score(k, task):
    """/proc/PID/oom_score: (1000 + badness * 1000 / totalpages) * 2 / 3, 0 for an exempt process."""
    totalpages = oom_totalpages(k)
    badness = oom_badness(task.group, totalpages)
    if badness is None:
        return '0\n'
    scaled = 1000 + int(badness * 1000 / totalpages)       # C division: toward zero
    return '%d\n' % (scaled * 2 // 3)


def _kstrtoint(data):
    """kstrtoint(strstrip(buf), 0): a signed int in base 0 (0x.., 0..), one trailing newline allowed."""
    s = data.split(b'\0', 1)[0].strip()
    try:
        text = s.decode('ascii')
        neg = text.startswith('-')
        body = text[1:] if text[:1] in '+-' else text
        if body[:2].lower() == '0x':
            v = int(body[2:], 16) if body[2:] else None
        elif body.startswith('0') and len(body) > 1:
            v = int(body[1:], 8)
        else:
            v = int(body, 10) if body.isdigit() else None
    except (UnicodeDecodeError, ValueError):
        v = None
    if v is None:
        raise FsError(errno.EINVAL)
    v = -v if neg else v
    if not -(1 << 31) <= v < 1 << 31:
        raise FsError(errno.ERANGE)
    return v


def oom_score_adj_write(k, task, data):
    """oom_score_adj_write / __set_oom_adj for the writing task's process."""
    value = _kstrtoint(bytes(data[:PROC_NUMBUF - 1]))
    if not OOM_SCORE_ADJ_MIN <= value <= OOM_SCORE_ADJ_MAX:
        raise FsError(errno.EINVAL)
    group = task.group
    if value < getattr(group, 'oom_score_adj_min', 0) and not capable(task, CAP_SYS_RESOURCE):
        raise FsError(errno.EACCES)
    group.oom_score_adj = value
    if capable(task, CAP_SYS_RESOURCE):
        group.oom_score_adj_min = value


def register_oom_procfs(k):
    """Publish /proc/self/oom_score_adj and /proc/self/oom_score."""
    k.vfs.register_synth('/proc/self/oom_score_adj', lambda: '%d\n' % oom_score_adj(k.current.group),
                         lambda d: oom_score_adj_write(k, k.current, d))
    k.vfs.register_synth('/proc/self/oom_score', lambda: proc_oom_score(k, k.current))
