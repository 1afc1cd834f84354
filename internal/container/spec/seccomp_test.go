package spec

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// allowed reports whether the profile lets name through unconditionally.
func allowed(p *specs.LinuxSeccomp, name string) bool {
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow && len(s.Args) == 0 && slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

// mentioned reports whether any rule names the syscall.
func mentioned(p *specs.LinuxSeccomp, name string) bool {
	for _, s := range p.Syscalls {
		if slices.Contains(s.Names, name) {
			return true
		}
	}
	return false
}

func TestDefaultSeccompBlocksDangerousSyscalls(t *testing.T) {
	p := DefaultSeccomp(DefaultCapabilities)
	if p.DefaultAction != specs.ActErrno || p.DefaultErrnoRet == nil || *p.DefaultErrnoRet != 1 {
		t.Fatalf("default action = %s/%v, want errno EPERM", p.DefaultAction, p.DefaultErrnoRet)
	}
	if len(p.Architectures) == 0 {
		t.Fatal("no architectures")
	}
	for _, s := range []string{"unshare", "mount", "umount2", "setns", "keyctl", "add_key", "request_key", "kexec_load",
		"kexec_file_load", "bpf", "ptrace", "process_vm_readv", "init_module", "reboot", "io_uring_setup", "userfaultfd",
		"open_by_handle_at", "perf_event_open", "pivot_root", "clock_settime", "swapon", "acct"} {
		if mentioned(p, s) {
			t.Errorf("%s is allowed for an unprivileged container", s)
		}
	}
}

func TestDefaultSeccompAllowsBusybox(t *testing.T) {
	p := DefaultSeccomp(DefaultCapabilities)
	// What busybox sh, sleep, httpd and wget (and glibc under them, and
	// runc's init after the filter is loaded) call.
	for _, s := range []string{"execve", "brk", "mmap", "mprotect", "munmap", "arch_prctl", "set_tid_address",
		"set_robust_list", "rseq", "prlimit64", "getrandom", "openat", "read", "write", "close", "newfstatat",
		"fstat", "ioctl", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "getpid", "getppid", "getuid",
		"geteuid", "getgid", "getegid", "wait4", "vfork", "fork", "exit_group", "nanosleep", "clock_nanosleep",
		"socket", "bind", "listen", "accept", "accept4", "connect", "sendto", "recvfrom", "setsockopt",
		"getsockname", "poll", "select", "pselect6", "fcntl", "dup2", "dup3", "pipe2", "chdir", "getcwd",
		"setsid", "setpgid", "kill", "uname", "sysinfo", "getdents64", "lseek", "readlink", "stat", "lstat",
		"statx", "capget", "capset", "prctl", "setgroups", "setresuid", "setresgid", "futex", "epoll_pwait",
		"shmget", "shmat", "shmctl", "semget", "msgget", "chroot", "mknod"} {
		if !allowed(p, s) {
			t.Errorf("%s is not allowed: busybox or runc needs it", s)
		}
	}
}

func TestDefaultSeccompClone(t *testing.T) {
	p := DefaultSeccomp(DefaultCapabilities)
	var clone, clone3 *specs.LinuxSyscall
	for i, s := range p.Syscalls {
		if slices.Equal(s.Names, []string{"clone"}) {
			clone = &p.Syscalls[i]
		}
		if slices.Equal(s.Names, []string{"clone3"}) {
			clone3 = &p.Syscalls[i]
		}
	}
	if clone == nil || len(clone.Args) != 1 || clone.Args[0].Op != specs.OpMaskedEqual || clone.Args[0].Value != namespaceCloneFlags || clone.Args[0].ValueTwo != 0 {
		t.Fatalf("clone rule = %+v, want allowed only without namespace flags", clone)
	}
	if clone3 == nil || clone3.Action != specs.ActErrno || *clone3.ErrnoRet != 38 {
		t.Fatalf("clone3 rule = %+v, want ENOSYS", clone3)
	}
	if allowed(p, "clone") || allowed(p, "clone3") {
		t.Fatal("clone allowed unconditionally")
	}
}

func TestDefaultSeccompFollowsCapabilities(t *testing.T) {
	tests := []struct {
		cap      string
		syscalls []string
	}{
		{"CAP_SYS_ADMIN", []string{"unshare", "mount", "setns", "umount2", "clone", "clone3", "bpf"}},
		{"CAP_SYS_PTRACE", []string{"ptrace", "process_vm_readv", "kcmp"}},
		{"CAP_BPF", []string{"bpf"}},
		{"CAP_SYS_TIME", []string{"clock_settime", "settimeofday"}},
		{"CAP_SYS_MODULE", []string{"init_module", "finit_module"}},
		{"CAP_SYS_BOOT", []string{"reboot"}},
	}
	for _, tt := range tests {
		p := DefaultSeccomp(append(slices.Clone(DefaultCapabilities), tt.cap))
		for _, s := range tt.syscalls {
			if !allowed(p, s) {
				t.Errorf("with %s, %s is not allowed", tt.cap, s)
			}
		}
		for _, s := range []string{"keyctl", "kexec_load"} {
			if mentioned(p, s) {
				t.Errorf("with %s, %s is allowed", tt.cap, s)
			}
		}
	}
	if allowed(DefaultSeccomp(nil), "chroot") {
		t.Error("chroot allowed without CAP_SYS_CHROOT")
	}
}

func TestSeccompProfileSelection(t *testing.T) {
	local := filepath.Join(t.TempDir(), "profile.json")
	write(t, local, `{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)
	tests := []struct {
		name       string
		sp         *runtime.SecurityProfile
		legacy     string
		privileged bool
		want       string // "default", "none", "local", or an error fragment prefixed with "err:"
	}{
		{name: "runtime default", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}, want: "default"},
		{name: "unconfined", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Unconfined}, want: "none"},
		{name: "localhost", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: local}, want: "local"},
		{name: "localhost relative", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: "profile.json"}, want: "err:absolute"},
		{name: "localhost missing", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: local + ".nope"}, want: "err:no such file"},
		{name: "nil is unconfined", want: "none"},
		{name: "legacy runtime/default", legacy: "runtime/default", want: "default"},
		{name: "legacy unconfined", legacy: "unconfined", want: "none"},
		{name: "legacy docker/default", legacy: "docker/default", want: "default"},
		{name: "legacy localhost", legacy: "localhost/" + local, want: "local"},
		{name: "legacy junk", legacy: "whatever", want: "err:not one of"},
		{name: "privileged runtime default is unconfined", sp: &runtime.SecurityProfile{}, privileged: true, want: "none"},
		{name: "privileged ignores a localhost profile", sp: &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: local}, privileged: true, want: "none"},
		{name: "privileged ignores a bad legacy path too", legacy: "whatever", privileged: true, want: "err:not one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seccompProfile(tt.sp, tt.legacy, tt.privileged, DefaultCapabilities)
			if frag, ok := strings.CutPrefix(tt.want, "err:"); ok {
				if err == nil || !strings.Contains(err.Error(), frag) {
					t.Fatalf("err = %v, want %q", err, frag)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tt.want {
			case "none":
				if got != nil {
					t.Fatalf("profile = %+v, want unconfined", got)
				}
			case "default":
				if got == nil || got.DefaultAction != specs.ActErrno || !allowed(got, "read") {
					t.Fatalf("profile = %+v, want the default", got)
				}
			case "local":
				if got == nil || got.DefaultAction != specs.ActLog {
					t.Fatalf("profile = %+v, want the local file", got)
				}
			}
		})
	}
}

func TestLoadSeccompDockerFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "docker.json")
	write(t, p, `{
	  "defaultAction": "SCMP_ACT_ERRNO",
	  "defaultErrnoRet": 1,
	  "archMap": [
	    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
	    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	  ],
	  "syscalls": [
	    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
	    {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
	    {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
	    {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_NET_RAW"]}},
	    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
	  ]
	}`)
	got, err := LoadSeccomp(p, DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if !allowed(got, "read") || !allowed(got, "getpid") {
		t.Errorf("plain rules lost: %+v", got.Syscalls)
	}
	if mentioned(got, "mount") {
		t.Error("a rule that needs CAP_SYS_ADMIN was included without it")
	}
	if mentioned(got, "ptrace") {
		t.Error("a rule excluded for CAP_NET_RAW was included")
	}
	if !mentioned(got, "personality") {
		t.Error("rule with args lost")
	}
	if len(got.Architectures) == 0 || (got.Architectures[0] != specs.ArchX86_64 && got.Architectures[0] != specs.ArchAARCH64) {
		t.Errorf("architectures = %v", got.Architectures)
	}
	withAdmin, err := LoadSeccomp(p, []string{"CAP_SYS_ADMIN"})
	if err != nil || !allowed(withAdmin, "mount") || !allowed(withAdmin, "ptrace") {
		t.Errorf("with CAP_SYS_ADMIN: %+v, %v", withAdmin, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	write(t, bad, `{"syscalls": []}`)
	if _, err := LoadSeccomp(bad, nil); err == nil || !strings.Contains(err.Error(), "defaultAction") {
		t.Errorf("profile without defaultAction: %v", err)
	}
}
