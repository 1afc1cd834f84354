package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func destinations(ms []specs.Mount) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Destination)
	}
	return out
}

func find(ms []specs.Mount, dst string) *specs.Mount {
	for i := range ms {
		if ms[i].Destination == dst {
			return &ms[i]
		}
	}
	return nil
}

func TestMountOrderingAndOverrides(t *testing.T) {
	h := t.TempDir()
	req := []*runtime.Mount{
		{ContainerPath: "/data/cache/deep", HostPath: h},
		{ContainerPath: "/data", HostPath: h},
		{ContainerPath: "/dev/termination-log", HostPath: h},
		{ContainerPath: "/data/cache", HostPath: h, Readonly: true},
		{ContainerPath: "/etc/hosts", HostPath: h},
	}
	pod := podMounts(SandboxFiles{Hosts: filepath.Join(h), ResolvConf: h, Hostname: h, Shm: h}, false, false)
	ms, prop, err := containerMounts(req, pod, mountSources{})
	if err != nil {
		t.Fatal(err)
	}
	got := destinations(ms)
	// Parents first (by depth); otherwise stable: the request's mounts, then the pod's.
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
		"/data", "/dev/termination-log", "/data/cache", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/dev/shm", "/data/cache/deep"}
	if !slices.Equal(got, want) {
		t.Fatalf("mounts = %q\nwant     %q", got, want)
	}
	for i, d := range got {
		for _, later := range got[i+1:] {
			if strings.HasPrefix(d, later+"/") {
				t.Errorf("%s is mounted before its parent %s", d, later)
			}
		}
	}
	if prop != "" {
		t.Errorf("rootfs propagation = %q for private mounts", prop)
	}
	if m := find(ms, "/data/cache"); !slices.Equal(m.Options, []string{"rbind", "rprivate", "ro"}) || m.Type != "bind" {
		t.Errorf("/data/cache = %+v", m)
	}
	if m := find(ms, "/etc/hosts"); m.Source != h {
		t.Errorf("the request's /etc/hosts must replace the pod's: %+v", m)
	}
}

func TestMountReplacesBase(t *testing.T) {
	h := t.TempDir()
	ms, _, err := containerMounts([]*runtime.Mount{{ContainerPath: "/proc/", HostPath: h}}, nil, mountSources{})
	if err != nil {
		t.Fatal(err)
	}
	if m := find(ms, "/proc"); m == nil || m.Type != "bind" {
		t.Fatalf("/proc = %+v, want the request's bind mount", m)
	}
	ms, _, err = containerMounts([]*runtime.Mount{{ContainerPath: "/dev", HostPath: h}}, nil, mountSources{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range destinations(ms) {
		if strings.HasPrefix(d, "/dev/") {
			t.Errorf("%s kept although /dev is replaced", d)
		}
	}
}

func TestPodMounts(t *testing.T) {
	f := SandboxFiles{Hosts: "/p/hosts", ResolvConf: "/p/resolv.conf", Hostname: "/p/hostname", Shm: "/p/shm"}
	for _, tt := range []struct {
		name          string
		ro, hostIPC   bool
		wantShm       string
		wantEtcRO     bool
		files         SandboxFiles
		wantDestCount int
	}{
		{name: "rw rootfs", files: f, wantShm: "/p/shm", wantDestCount: 4},
		{name: "read-only rootfs makes /etc files read-only", ro: true, files: f, wantShm: "/p/shm", wantEtcRO: true, wantDestCount: 4},
		{name: "host IPC binds the host's /dev/shm", hostIPC: true, files: f, wantShm: "/dev/shm", wantDestCount: 4},
		{name: "no files, no mounts", files: SandboxFiles{}, wantDestCount: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ms := podMounts(tt.files, tt.ro, tt.hostIPC)
			if len(ms) != tt.wantDestCount {
				t.Fatalf("mounts = %v", ms)
			}
			for _, m := range ms {
				switch m.ContainerPath {
				case "/dev/shm":
					if m.HostPath != tt.wantShm || m.Readonly {
						t.Errorf("/dev/shm = %+v", m)
					}
				default:
					if m.Readonly != tt.wantEtcRO {
						t.Errorf("%s readonly = %v", m.ContainerPath, m.Readonly)
					}
				}
			}
		})
	}
}

func TestMountPropagation(t *testing.T) {
	shared, slave, private := t.TempDir(), t.TempDir(), t.TempDir()
	mi := filepath.Join(t.TempDir(), "mountinfo")
	write(t, mi, strings.Join([]string{
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
		"40 22 0:40 / " + shared + " rw shared:7 - tmpfs tmpfs rw",
		"41 22 0:41 / " + slave + " rw master:8 - tmpfs tmpfs rw",
		"42 22 0:42 / " + private + " rw - tmpfs tmpfs rw",
	}, "\n")+"\n")
	src := mountSources{mountinfo: mi}
	tests := []struct {
		name     string
		host     string
		prop     runtime.MountPropagation
		wantOpt  string
		wantRoot string
		wantErr  string
	}{
		{name: "private", host: private, prop: runtime.MountPropagation_PROPAGATION_PRIVATE, wantOpt: "rprivate"},
		{name: "host to container on shared", host: shared, prop: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, wantOpt: "rslave", wantRoot: "rslave"},
		{name: "host to container on slave", host: slave, prop: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, wantOpt: "rslave", wantRoot: "rslave"},
		{name: "host to container on private", host: private, prop: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, wantErr: "neither shared nor a slave"},
		{name: "bidirectional on shared", host: shared, prop: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, wantOpt: "rshared", wantRoot: "rshared"},
		{name: "bidirectional on slave", host: slave, prop: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, wantErr: "not shared"},
		{name: "bidirectional below a shared mount", host: filepath.Join(shared, "sub"), prop: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL, wantOpt: "rshared", wantRoot: "rshared"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.MkdirAll(tt.host, 0o755); err != nil {
				t.Fatal(err)
			}
			ms, root, err := containerMounts([]*runtime.Mount{{ContainerPath: "/m", HostPath: tt.host, Propagation: tt.prop}}, nil, src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m := find(ms, "/m"); !slices.Contains(m.Options, tt.wantOpt) {
				t.Errorf("options = %v, want %s", m.Options, tt.wantOpt)
			}
			if root != tt.wantRoot {
				t.Errorf("rootfs propagation = %q, want %q", root, tt.wantRoot)
			}
		})
	}
	// rshared wins over rslave whatever the order.
	_, root, err := containerMounts([]*runtime.Mount{
		{ContainerPath: "/a", HostPath: shared, Propagation: runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL},
		{ContainerPath: "/b", HostPath: slave, Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}, nil, src)
	if err != nil || root != "rshared" {
		t.Fatalf("mixed propagation: root = %q, %v", root, err)
	}
}

func TestMountErrorsAndSources(t *testing.T) {
	h := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(h, link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "made", "by", "us")
	ms, _, err := containerMounts([]*runtime.Mount{
		{ContainerPath: "/l", HostPath: link},
		{ContainerPath: "/new", HostPath: missing},
	}, nil, mountSources{create: true})
	if err != nil {
		t.Fatal(err)
	}
	if m := find(ms, "/l"); m.Source != h {
		t.Errorf("symlinked source = %s, want it resolved to %s", m.Source, h)
	}
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("missing source not created: %v", err)
	}
	for _, tt := range []struct {
		name string
		m    *runtime.Mount
		want string
	}{
		{"relative container path", &runtime.Mount{ContainerPath: "rel", HostPath: h}, "must be absolute"},
		{"relative host path", &runtime.Mount{ContainerPath: "/x", HostPath: "rel"}, "must be absolute"},
		{"recursive read-only but writable", &runtime.Mount{ContainerPath: "/x", HostPath: h, RecursiveReadOnly: true}, "must be read-only"},
		{"recursive read-only with propagation", &runtime.Mount{ContainerPath: "/x", HostPath: h, Readonly: true, RecursiveReadOnly: true, Propagation: runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}, "private propagation"},
		{"image volume", &runtime.Mount{ContainerPath: "/x", Image: &runtime.ImageSpec{Image: "busybox"}}, "image volumes"},
		{"id mapped", &runtime.Mount{ContainerPath: "/x", HostPath: h, UidMappings: []*runtime.IDMapping{{HostId: 1, Length: 1}}}, "ID-mapped"},
		{"missing source without create", &runtime.Mount{ContainerPath: "/x", HostPath: filepath.Join(h, "nope")}, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := containerMounts([]*runtime.Mount{tt.m}, nil, mountSources{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if _, _, err := containerMounts([]*runtime.Mount{{ContainerPath: "/x", HostPath: h}, {ContainerPath: "/x/", HostPath: h}}, nil, mountSources{}); err == nil {
		t.Fatal("duplicate destinations accepted")
	}
}

func TestRecursiveReadOnlyMount(t *testing.T) {
	h := t.TempDir()
	ms, _, err := containerMounts([]*runtime.Mount{
		{ContainerPath: "/rro", HostPath: h, Readonly: true, RecursiveReadOnly: true},
		{ContainerPath: "/ro", HostPath: h, Readonly: true},
	}, nil, mountSources{})
	if err != nil {
		t.Fatal(err)
	}
	if o := find(ms, "/rro").Options; !slices.Contains(o, "rro") || !slices.Contains(o, "ro") {
		t.Errorf("recursive read-only options = %v, want ro and rro", o)
	}
	if o := find(ms, "/ro").Options; slices.Contains(o, "rro") {
		t.Errorf("plain read-only options = %v, want no rro", o)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	if got := unescapeMountinfo(`/mnt/with\040space\134x`); got != `/mnt/with space\x` {
		t.Fatalf("got %q", got)
	}
}
