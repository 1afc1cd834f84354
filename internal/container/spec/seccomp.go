package spec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// seccompProfile chooses the seccomp section for a container or sandbox; nil
// means unconfined.
//
//   - RuntimeDefault: DefaultSeccomp for the process's bounding capabilities.
//   - Localhost: the JSON profile at LocalhostRef (an absolute host path, as
//     kubelet sends it), in the Docker/containers format or as a bare OCI
//     LinuxSeccomp.
//   - Unconfined: nil.
//   - no profile at all: the deprecated seccomp_profile_path if set, else
//     unconfined, as containerd does. kubelet always sends a profile
//     (Unconfined unless its seccompDefault is on, then RuntimeDefault), so
//     only crictl and critest rely on this; critest expects it.
//
// A privileged container runs unconfined whatever it asks for, as with
// containerd and CRI-O: it may already do everything a filter would stop.
func seccompProfile(sp *runtime.SecurityProfile, legacyPath string, privileged bool, caps []string) (*specs.LinuxSeccomp, error) {
	if sp == nil {
		var err error
		if sp, err = legacySeccomp(legacyPath); err != nil {
			return nil, err
		}
	}
	if privileged {
		return nil, nil
	}
	switch sp.GetProfileType() {
	case runtime.SecurityProfile_Unconfined:
		return nil, nil
	case runtime.SecurityProfile_RuntimeDefault:
		return DefaultSeccomp(caps), nil
	case runtime.SecurityProfile_Localhost:
		return LoadSeccomp(sp.GetLocalhostRef(), caps)
	default:
		return nil, fmt.Errorf("seccomp profile type %d: not supported", sp.GetProfileType())
	}
}

func legacySeccomp(p string) (*runtime.SecurityProfile, error) {
	switch {
	case p == "runtime/default", p == "docker/default":
		return &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_RuntimeDefault}, nil
	case p == "", p == "unconfined":
		return &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Unconfined}, nil
	case strings.HasPrefix(p, "localhost/"):
		return &runtime.SecurityProfile{ProfileType: runtime.SecurityProfile_Localhost, LocalhostRef: strings.TrimPrefix(p, "localhost/")}, nil
	default:
		return nil, fmt.Errorf("seccomp profile path %q: not one of runtime/default, docker/default, unconfined, localhost/<path>", p)
	}
}

// seccompFile is the JSON a Localhost profile may contain: the OCI
// LinuxSeccomp fields plus the Docker/containers extensions (archMap, a
// singular name, includes/excludes by capability and architecture).
type seccompFile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	ArchMap          []seccompArchMap         `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []seccompFileSyscall     `json:"syscalls,omitempty"`
}

type seccompArchMap struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

type seccompFileSyscall struct {
	specs.LinuxSyscall
	Name     string        `json:"name,omitempty"`
	Includes seccompFilter `json:"includes"`
	Excludes seccompFilter `json:"excludes"`
}

type seccompFilter struct {
	Caps   []string `json:"caps,omitempty"`
	Arches []string `json:"arches,omitempty"`
}

// LoadSeccomp reads a Localhost seccomp profile for a process with the given
// capabilities.
func LoadSeccomp(path string, caps []string) (*specs.LinuxSeccomp, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("load seccomp profile %q: the localhost profile must be an absolute path", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load seccomp profile: %w", err)
	}
	var f seccompFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load seccomp profile %s: %w", path, err)
	}
	if f.DefaultAction == "" {
		return nil, fmt.Errorf("load seccomp profile %s: no defaultAction", path)
	}
	out := &specs.LinuxSeccomp{
		DefaultAction:    f.DefaultAction,
		DefaultErrnoRet:  f.DefaultErrnoRet,
		Architectures:    f.Architectures,
		Flags:            f.Flags,
		ListenerPath:     f.ListenerPath,
		ListenerMetadata: f.ListenerMetadata,
	}
	if len(out.Architectures) == 0 {
		native := seccompArchitectures()
		for _, m := range f.ArchMap {
			if len(native) > 0 && m.Arch == native[0] {
				out.Architectures = append([]specs.Arch{m.Arch}, m.SubArches...)
			}
		}
	}
	for _, s := range f.Syscalls {
		if !s.Includes.matches(caps, true) || (s.Excludes.matches(caps, false) && !s.Excludes.empty()) {
			continue
		}
		call := s.LinuxSyscall
		if s.Name != "" && !slices.Contains(call.Names, s.Name) {
			call.Names = append(call.Names, s.Name)
		}
		if len(call.Names) == 0 || call.Action == "" {
			return nil, fmt.Errorf("load seccomp profile %s: a syscall rule without names or action", path)
		}
		out.Syscalls = append(out.Syscalls, call)
	}
	return out, nil
}

func (f seccompFilter) empty() bool { return len(f.Caps) == 0 && len(f.Arches) == 0 }

// matches reports whether an includes (all) or excludes (any) filter applies.
func (f seccompFilter) matches(caps []string, all bool) bool {
	arch := slices.Contains(f.Arches, goruntime.GOARCH)
	if all {
		for _, c := range f.Caps {
			if !slices.Contains(caps, normalizeCap(c)) {
				return false
			}
		}
		return len(f.Arches) == 0 || arch
	}
	if arch {
		return true
	}
	for _, c := range f.Caps {
		if slices.Contains(caps, normalizeCap(c)) {
			return true
		}
	}
	return false
}
