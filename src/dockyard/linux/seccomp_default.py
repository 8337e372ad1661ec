"""Dockyard's default seccomp profile, as data, and its resolution for one container.

It allows and denies what Docker's default profile (moby ``profiles/seccomp/default.json``,
copy in ../shared/specs/seccomp-default.json) allows and denies on x86_64 and aarch64 — a
unit test compares the two rule by rule for several capability sets. Our representation keeps
only what those two architectures need and states each condition once::

    default              errno EPERM for everything not listed
    ALLOWED              always allowed
    ALLOWED_SINCE_4_8    allowed on kernels >= 4.8 (ptrace could bypass seccomp before)
    ARG_RULES            allowed only with these argument values (socket families, personality)
    ARCH_ALLOWED         allowed on one architecture (arch_prctl on x86_64, ...)
    CAP_ALLOWED          allowed when the container holds the capability
    WITHOUT_SYS_ADMIN    rules for containers *without* CAP_SYS_ADMIN: clone without namespace
                         flags only, clone3 -> ENOSYS so libcs fall back to clone

:func:`resolve` turns it into plain OCI ``linux.seccomp`` (no includes/excludes), which is what
``dockyard.linux.seccomp.compile`` and the bundle's config.json carry.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from typing import Any

__all__ = ["resolve"]

DEFAULT_ERRNO = errno.EPERM
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    "x86_64": ("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "aarch64": ("SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"),
}

ALLOWED: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
    "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old",
    "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
    "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod",
    "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64",
    "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
    "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername",
    "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
    "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage",
    "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday",
    "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
    "restart_syscall", "riscv_hwprobe", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
)  # fmt: skip

CAP_ALLOWED: dict[str, tuple[str, ...]] = {
    "CAP_DAC_READ_SEARCH": (
        "open_by_handle_at",
    ),
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
        "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
        "unshare",
    ),
    "CAP_SYS_BOOT": (
        "reboot",
    ),
    "CAP_SYS_CHROOT": (
        "chroot",
    ),
    "CAP_SYS_MODULE": (
        "delete_module", "init_module", "finit_module",
    ),
    "CAP_SYS_PACCT": (
        "acct",
    ),
    "CAP_SYS_PTRACE": (
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace",
    ),
    "CAP_SYS_RAWIO": (
        "iopl", "ioperm",
    ),
    "CAP_SYS_TIME": (
        "settimeofday", "stime", "clock_settime", "clock_settime64",
    ),
    "CAP_SYS_TTY_CONFIG": (
        "vhangup",
    ),
    "CAP_SYS_NICE": (
        "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
    ),
    "CAP_SYSLOG": (
        "syslog",
    ),
    "CAP_BPF": (
        "bpf",
    ),
    "CAP_PERFMON": (
        "perf_event_open",
    ),
}  # fmt: skip


ALLOWED_SINCE_4_8: tuple[str, ...] = ("process_vm_readv", "process_vm_writev", "ptrace")

# (syscall, ((arg index, operator, value), ...)): each tuple is one allow rule.
# socket: every family except AF_ALG (38) and AF_VSOCK (40). personality: PER_LINUX,
# PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query value 0xffffffff.
ARG_RULES: tuple[tuple[str, tuple[tuple[int, str, int], ...]], ...] = (
    ("socket", ((0, "SCMP_CMP_LT", 38),)),
    ("socket", ((0, "SCMP_CMP_EQ", 39),)),
    ("socket", ((0, "SCMP_CMP_GT", 40),)),
    ("personality", ((0, "SCMP_CMP_EQ", 0x0),)),
    ("personality", ((0, "SCMP_CMP_EQ", 0x8),)),
    ("personality", ((0, "SCMP_CMP_EQ", 0x20000),)),
    ("personality", ((0, "SCMP_CMP_EQ", 0x20008),)),
    ("personality", ((0, "SCMP_CMP_EQ", 0xFFFFFFFF),)),
)

ARCH_ALLOWED: dict[str, tuple[str, ...]] = {
    "x86_64": ("arch_prctl", "modify_ldt"),
    "aarch64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
                "cacheflush", "set_tls"),
}

# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: clone(2) flags arg must have none.
CLONE_NAMESPACE_FLAGS = 0x7E020000
WITHOUT_SYS_ADMIN: tuple[dict[str, Any], ...] = (
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
)


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        parts = os.uname().release.split(".")
        return (int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)) >= (major, minor)
    except (ValueError, IndexError):
        return True


def resolve(caps: Iterable[str] | None = None, arch: str | None = None) -> dict[str, Any]:
    """The profile for a container holding ``caps`` (default: Docker's default set) on ``arch``.

    ``arch`` is ``uname -m`` style (``x86_64``, ``aarch64``); other architectures
    get the common rules and no compat ABIs.
    """
    from dockyard.linux.capabilities import DEFAULT_CAPS, parse

    held = parse(DEFAULT_CAPS if caps is None else caps)
    arch = arch or os.uname().machine
    allowed = list(ALLOWED)
    if _kernel_at_least(4, 8):
        allowed += ALLOWED_SINCE_4_8
    allowed += ARCH_ALLOWED.get(arch, ())
    rules: list[dict[str, Any]] = [{"names": allowed, "action": "SCMP_ACT_ALLOW"}]
    for name, args in ARG_RULES:
        rules.append({"names": [name], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": i, "value": v, "valueTwo": 0, "op": op} for i, op, v in args]})
    for cap, names in CAP_ALLOWED.items():
        if cap in held:
            rules.append({"names": list(names), "action": "SCMP_ACT_ALLOW"})
    if "CAP_SYS_ADMIN" not in held:
        rules += [dict(r) for r in WITHOUT_SYS_ADMIN]
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": DEFAULT_ERRNO,
        "architectures": list(ARCHITECTURES.get(arch, ())),
        "syscalls": rules,
    }
