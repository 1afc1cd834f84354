package spec

import (
	goruntime "runtime"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The RuntimeDefault seccomp profile is peapod's own allowlist, written from
// the Linux syscall tables with the same shape as the Docker/containerd
// default:
//
//   - the default action is SCMP_ACT_ERRNO with EPERM, so anything not listed
//     (including syscalls newer than this list) fails cleanly instead of
//     killing the process;
//   - baseSyscalls are what ordinary programs need (files, memory, processes
//     and threads, signals, time, polling, sockets, SysV and POSIX IPC,
//     scheduling of oneself, landlock and seccomp for self-sandboxing);
//   - syscalls that act on the kernel or on other processes are allowed only
//     when the container holds the capability that the kernel checks for
//     them anyway (capSyscalls): the profile then narrows the kernel's attack
//     surface without changing what a granted capability means;
//   - clone is allowed only without namespace flags (unless CAP_SYS_ADMIN),
//     and clone3, whose flags seccomp cannot inspect, returns ENOSYS so that
//     libc falls back to clone;
//   - never allowed, whatever the capabilities (only an Unconfined or
//     privileged container can use them): keyctl, add_key, request_key (the
//     keyring is not namespaced), kexec_load and kexec_file_load, io_uring_*
//     (a long series of kernel escapes), userfaultfd, modify_ldt, lookup_dcookie,
//     uselib, nfsservctl, personality values other than the harmless ones,
//     and the obsolete or arch-specific rest.
//
// unshare, mount, setns, bpf and ptrace are thus blocked for an unprivileged
// container and allowed when CAP_SYS_ADMIN (or CAP_BPF, CAP_SYS_PTRACE) is
// added explicitly. Unknown names on an architecture are skipped by runc, so
// one list serves every architecture.
var baseSyscalls = []string{
	// files and descriptors
	"access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
	"creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
	"fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
	"fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat",
	"ioctl", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "listxattrat",
	"llistxattr", "lremovexattr", "lseek", "_llseek", "lsetxattr", "lstat", "lstat64", "mkdir",
	"mkdirat", "mknod", "mknodat", "newfstatat", "open", "openat", "openat2", "pipe", "pipe2",
	"pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
	"readlink", "readlinkat", "readv", "removexattr", "removexattrat", "rename", "renameat",
	"renameat2", "rmdir", "sendfile", "sendfile64", "setxattr", "setxattrat", "splice", "stat",
	"stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
	"sync_file_range2", "arm_sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask",
	"unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write",
	"writev", "arm_fadvise64_64", "memfd_create",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	// memory
	"brk", "madvise", "membarrier", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
	"mprotect", "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
	"pkey_mprotect", "remap_file_pages", "cacheflush", "set_tls", "breakpoint",
	// processes, threads, identity
	"arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group",
	"fork", "get_robust_list", "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid",
	"geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getpgid", "getpgrp", "getpid",
	"getppid", "getpriority", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
	"getrusage", "getsid", "gettid", "getuid", "getuid32", "ioprio_get", "ioprio_set", "prctl",
	"prlimit64", "restart_syscall", "rseq", "sched_get_priority_max", "sched_get_priority_min",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
	"sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
	"sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "set_robust_list",
	"set_thread_area", "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
	"setgid", "setgid32", "setgroups", "setgroups32", "setpgid", "setpriority", "setregid",
	"setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid",
	"setreuid32", "setrlimit", "setsid", "setuid", "setuid32", "ugetrlimit", "vfork", "wait4",
	"waitid", "waitpid", "pidfd_open", "pidfd_send_signal", "process_mrelease", "getrandom",
	"uname", "sysinfo", "times", "landlock_add_rule", "landlock_create_ruleset",
	"landlock_restrict_self", "seccomp",
	// signals
	"alarm", "kill", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal",
	"signalfd", "signalfd4", "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "tgkill",
	"tkill",
	// time and waiting
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
	"clock_nanosleep", "clock_nanosleep_time64", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd",
	"eventfd2", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "getitimer", "gettimeofday", "nanosleep", "poll", "ppoll", "ppoll_time64",
	"pselect6", "pselect6_time64", "select", "_newselect", "setitimer", "time", "timer_create",
	"timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
	"timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
	"timerfd_settime", "timerfd_settime64",
	// sockets
	"accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
	"listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
	"sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall", "socketpair",
	// SysV and POSIX IPC (namespaced with the pod's IPC namespace)
	"ipc", "msgctl", "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget", "mq_getsetattr", "mq_notify",
	"mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink",
	// asynchronous I/O (the old interface; io_uring stays blocked)
	"io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
	"io_setup", "io_submit",
}

// capSyscalls are allowed only when the container holds the capability.
var capSyscalls = map[string][]string{
	"CAP_SYS_ADMIN": {"bpf", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen",
		"fspick", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
		"pivot_root", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
		"syslog", "umount", "umount2", "unshare", "vm86", "vm86old"},
	"CAP_SYS_PTRACE":      {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"},
	"CAP_SYS_BOOT":        {"reboot"},
	"CAP_SYS_CHROOT":      {"chroot"},
	"CAP_SYS_MODULE":      {"delete_module", "finit_module", "init_module"},
	"CAP_SYS_PACCT":       {"acct"},
	"CAP_SYS_RAWIO":       {"ioperm", "iopl"},
	"CAP_SYS_TIME":        {"adjtimex", "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"},
	"CAP_SYS_TTY_CONFIG":  {"vhangup"},
	"CAP_SYS_NICE":        {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node", "migrate_pages", "move_pages"},
	"CAP_SYSLOG":          {"syslog"},
	"CAP_BPF":             {"bpf"},
	"CAP_PERFMON":         {"perf_event_open"},
	"CAP_DAC_READ_SEARCH": {"open_by_handle_at"},
}

// namespaceCloneFlags are CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET.
const namespaceCloneFlags = 0x7E020000

// harmlessPersonalities are PER_LINUX, PER_LINUX32, UNAME26 with either, and
// the query value: what 32-bit programs and "linux32"/"setarch" use.
var harmlessPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

func seccompArchitectures() []specs.Arch {
	switch goruntime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "386":
		return []specs.Arch{specs.ArchX86}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	case "arm":
		return []specs.Arch{specs.ArchARM}
	case "riscv64":
		return []specs.Arch{specs.ArchRISCV64}
	case "ppc64le":
		return []specs.Arch{specs.ArchPPC64LE}
	case "s390x":
		return []specs.Arch{specs.ArchS390X, specs.ArchS390}
	default:
		return nil
	}
}

// DefaultSeccomp returns the RuntimeDefault profile for a process with the
// given capabilities (its bounding set).
func DefaultSeccomp(caps []string) *specs.LinuxSeccomp {
	eperm := uint(1)
	enosys := uint(38)
	allowed := slices.Clone(baseSyscalls)
	sysAdmin := slices.Contains(caps, "CAP_SYS_ADMIN")
	for _, c := range caps {
		for _, s := range capSyscalls[c] {
			if !slices.Contains(allowed, s) {
				allowed = append(allowed, s)
			}
		}
	}
	slices.Sort(allowed)
	p := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   seccompArchitectures(),
		Syscalls:        []specs.LinuxSyscall{{Names: allowed, Action: specs.ActAllow}},
	}
	// clone's flags are its first argument on every architecture we build
	// for (s390 swaps the first two; peapod does not target it).
	if sysAdmin {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow})
	} else {
		p.Syscalls = append(p.Syscalls,
			specs.LinuxSyscall{
				Names:  []string{"clone"},
				Action: specs.ActAllow,
				Args:   []specs.LinuxSeccompArg{{Index: 0, Value: namespaceCloneFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}},
			},
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		)
	}
	for _, v := range harmlessPersonalities {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{
			Names:  []string{"personality"},
			Action: specs.ActAllow,
			Args:   []specs.LinuxSeccompArg{{Index: 0, Value: v, Op: specs.OpEqualTo}},
		})
	}
	return p
}
