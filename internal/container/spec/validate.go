package spec

import (
	"errors"
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var namespaceTypes = map[specs.LinuxNamespaceType]bool{
	specs.PIDNamespace: true, specs.NetworkNamespace: true, specs.MountNamespace: true,
	specs.IPCNamespace: true, specs.UTSNamespace: true, specs.UserNamespace: true,
	specs.CgroupNamespace: true, specs.TimeNamespace: true,
}

// Validate checks what runc needs before it will even start a container: a
// version, a root path, a process with arguments and an absolute working
// directory, a Linux section, well-formed namespaces and mounts, a hostname
// only with a UTS namespace of its own, and sysctls only in namespaces the
// container owns. Sandbox and Container return only specs that pass; drivers
// may call it on specs read back from disk.
func Validate(s *specs.Spec) error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s == nil {
		return errors.New("invalid spec: nil")
	}
	if s.Version == "" {
		bad("ociVersion is empty")
	}
	if s.Root == nil || s.Root.Path == "" {
		bad("root.path is empty")
	}
	if s.Process == nil {
		bad("process is missing")
	} else {
		if len(s.Process.Args) == 0 || s.Process.Args[0] == "" {
			bad("process.args is empty")
		}
		if !path.IsAbs(s.Process.Cwd) {
			bad("process.cwd %q is not absolute", s.Process.Cwd)
		}
		if a := s.Process.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
			bad("process.oomScoreAdj %d is outside [-1000, 1000]", *a)
		}
	}
	if s.Linux == nil {
		bad("linux is missing")
		return fmt.Errorf("invalid spec: %w", errors.Join(errs...))
	}
	own := map[specs.LinuxNamespaceType]bool{}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range s.Linux.Namespaces {
		if !namespaceTypes[ns.Type] {
			bad("namespace type %q is unknown", ns.Type)
		}
		if seen[ns.Type] {
			bad("namespace %q is listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !path.IsAbs(ns.Path) {
			bad("namespace %q path %q is not absolute", ns.Type, ns.Path)
		}
		// A joined namespace is the pod's: the container may still set
		// sysctls in it, as runc does for the infra container's netns.
		own[ns.Type] = true
	}
	if !seen[specs.MountNamespace] {
		bad("no mount namespace: the container would share the host's mounts")
	}
	if s.Hostname != "" && !(seen[specs.UTSNamespace] && utsIsNew(s)) {
		bad("hostname %q needs a new UTS namespace", s.Hostname)
	}
	for k := range s.Linux.Sysctl {
		switch ns := sysctlNamespace(k); {
		case ns == "":
			bad("sysctl %q is not namespaced", k)
		case !own[ns]:
			bad("sysctl %q needs the container in a %s namespace of its own", k, ns)
		}
	}
	for _, m := range s.Mounts {
		if !path.IsAbs(m.Destination) {
			bad("mount destination %q is not absolute", m.Destination)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid spec: %w", errors.Join(errs...))
	}
	return nil
}

func utsIsNew(s *specs.Spec) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UTSNamespace {
			return ns.Path == ""
		}
	}
	return false
}

func sysctlNamespace(name string) specs.LinuxNamespaceType {
	switch n := normalizeSysctl(name); {
	case strings.HasPrefix(n, "net."):
		return specs.NetworkNamespace
	case strings.HasPrefix(n, "kernel.shm"), strings.HasPrefix(n, "kernel.msg"), n == "kernel.sem", strings.HasPrefix(n, "fs.mqueue."):
		return specs.IPCNamespace
	}
	return ""
}
