"""The threads as gdb lists them: qXfer:threads:read ("Thread List Format" in the GDB manual: each
thread's id, the CPU it is on, its name) and the description `info threads` shows in parentheses."""
from faultlab.xmlescape import escape, quoteattr


def thread_cpu(kernel, t):
    """The index of the simulated CPU whose task t is, or None (waiting for a CPU, or asleep)."""
    for rq in kernel.sched.rqs:
        if rq.curr is t:
            return rq.index
    return None


def thread_description(kernel, t, stopped):
    """What `info threads` shows in parentheses: where the thread is (stopped is the reporting one)."""
    cpu = thread_cpu(kernel, t)
    if t.state != 'R':
        where = 'sleeping' if t.state == 'S' else 'in uninterruptible wait' if t.state == 'D' else t.state
    elif cpu is None:
        where = 'waiting for a CPU'
    else:
        where = 'CPU %d' % cpu
    return 'tid %d, %s%s' % (t.tid, where, ', stopped here' if t is stopped else '')


def threads_xml(kernel, threads, stopped, thread_id):
    """The qXfer:threads:read document; thread_id(t) is the id as the stub writes it in replies."""
    items = []
    for t in threads:
        cpu = thread_cpu(kernel, t)
        core = ' core="%d"' % cpu if cpu is not None else ''
        items.append('<thread id="%s"%s name=%s>%s</thread>' % (thread_id(t), core, quoteattr(t.comm),
                                                               escape(thread_description(kernel, t, stopped))))
    return '<?xml version="1.0"?><threads>%s</threads>' % ''.join(items)
