"""The credentials of a first process started as another user, as `sudo -u USER PROGRAM` leaves
them: root's setgroups + setresgid + setresuid to the user's ids (kernel/sys.c __sys_setresuid),
whose capability fix-up (security/commoncap.c cap_emulate_setxuid) empties the permitted, effective
and ambient sets when no id stays 0; the bounding set is kept, and execve then sets the saved and
filesystem ids from the effective ones."""
from faultlab.kernel.cred import INIT_CRED, NGROUPS_MAX, cap_task_fix_setuid, exec_creds

ID_MAX = 0xFFFFFFFE             # (uid_t)-1 is "no id" for set*id calls, never a valid id


class UserSpecError(ValueError):
    """A bad UID[:GID] (one line)."""


def parse_user_spec(text):
    """'UID[:GID[,GROUP...]]' -> (uid, gid, groups): decimal ids from 0 to 4294967294; GID defaults
    to UID; the supplementary groups are GID and the GROUPs, as initgroups lists a user's primary
    group with the others."""
    uid_s, colon, rest = text.partition(':')
    gid_s, comma, groups_s = rest.partition(',')
    fields = [uid_s, gid_s if colon else uid_s] + (groups_s.split(',') if comma else [])
    ids = []
    for f in fields:
        f = f.strip()
        if not (f.isascii() and f.isdigit()) or int(f) > ID_MAX:
            raise UserSpecError('--user %r: expected UID[:GID[,GROUP...]] with decimal ids from 0 to %d'
                                % (text, ID_MAX))
        ids.append(int(f))
    uid, gid, groups = ids[0], ids[1], tuple(sorted(set(ids[1:])))
    if len(groups) > NGROUPS_MAX:
        raise UserSpecError('--user %r: more than %d groups' % (text, NGROUPS_MAX))
    return uid, gid, groups


def user_cred(uid, gid, groups):
    """The Cred of a program root started with these ids (sudo -u): real, effective, saved and
    filesystem ids set, the supplementary groups, and the capabilities commoncap leaves."""
    new = INIT_CRED.change(groups=tuple(groups), gid=gid, egid=gid, sgid=gid, fsgid=gid)
    setuid = new.change(uid=uid, euid=uid, suid=uid, fsuid=uid)
    return exec_creds(cap_task_fix_setuid(setuid, new))
