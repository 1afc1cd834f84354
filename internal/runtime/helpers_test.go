package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/container/rootfs"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// The image service and images every test shares: a real docker-registry
// on loopback and a real image store, set up once by TestMain.
var (
	images       *image.Service
	busyboxRef   string // runs "sh" by default
	busyboxApp   string // the same, with USER app in its config
	setupErr     error
	setupOnce    sync.Once
	registry     *registrytest.Registry
	imagesRoot   string
	requiredBins = []string{"/usr/sbin/runc", "/usr/bin/conmon", "/usr/bin/catatonit", "/usr/lib/cni/bridge",
		"/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "/usr/sbin/iptables",
		"/usr/bin/busybox", "/usr/bin/docker-registry"}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if registry != nil {
		registry.Close()
	}
	if images != nil {
		images.Close()
	}
	if imagesRoot != "" {
		os.RemoveAll(imagesRoot)
	}
	os.Exit(code)
}

func setupImages() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "peapod-runtime-images-")
	if err != nil {
		return err
	}
	imagesRoot = dir
	registry, err = registrytest.Launch(ctx, filepath.Join(dir, "registry"), registrytest.Options{})
	if err != nil {
		return err
	}
	bb, err := imagetest.BusyboxImage(ctx, imagetest.ImageOptions{})
	if err != nil {
		return err
	}
	app, err := imagetest.BusyboxImage(ctx, imagetest.ImageOptions{Config: v1.Config{User: imagetest.AppUser}})
	if err != nil {
		return err
	}
	if err := registry.Push(ctx, "busybox:test", bb); err != nil {
		return err
	}
	if err := registry.Push(ctx, "busybox-app:test", app); err != nil {
		return err
	}
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, "[[registry]]\nlocation = %q\ninsecure = true\n", registry.Host), 0o600); err != nil {
		return err
	}
	images, err = image.New(ctx, image.Options{Root: filepath.Join(dir, "root"), RegistriesConfig: conf})
	if err != nil {
		return err
	}
	for _, ref := range []string{registry.Ref("busybox:test"), registry.Ref("busybox-app:test")} {
		if _, err := images.Pull(ctx, ref, nil, image.PullOptions{}); err != nil {
			return err
		}
	}
	busyboxRef, busyboxApp = registry.Ref("busybox:test"), registry.Ref("busybox-app:test")
	return nil
}

func require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("runtime tests need root")
	}
	for _, b := range requiredBins {
		if _, err := os.Stat(b); err != nil {
			t.Fatalf("%s is missing: install it with `make deps`", b)
		}
	}
	setupOnce.Do(func() { setupErr = setupImages() })
	if setupErr != nil {
		t.Fatalf("set up test images: %v", setupErr)
	}
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randInt(t testing.TB, n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		t.Fatal(err)
	}
	return v.Int64()
}

func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fixture is one test's daemon: its own ROOT, STATE, CNI conf dir, bridge,
// /24 and cgroup parent. Cleanup removes every sandbox of every owner the
// test used, then the bridge, the cgroup parent and the directories.
type fixture struct {
	t      testing.TB
	opts   Options
	rt     *Runtime
	v      *View
	prefix string // "10.a.b."
	cgroup string // cgroup parent of the test's pods
	mu     sync.Mutex
	owners map[string]bool
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	require(t)
	routes := sh(t, "ip", "-4", "route", "show")
	var prefix string
	for i := 0; ; i++ {
		prefix = fmt.Sprintf("10.%d.%d.", 150+randInt(t, 50), randInt(t, 256))
		if !strings.Contains(routes, prefix) {
			break
		}
		if i > 50 {
			t.Fatal("no free test subnet")
		}
	}
	// Short: attach socket paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "pprt")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		t: t,
		opts: Options{
			Root: filepath.Join(dir, "r"), State: filepath.Join(dir, "s"),
			Network: config.Network{
				CNIConfDir: filepath.Join(dir, "net.d"),
				CNIBinDirs: []string{"/usr/lib/cni"},
				Bridge:     "pprt" + randHex(t, 3),
				Subnet:     prefix + "0/24",
			},
			Runc: "/usr/sbin/runc", Conmon: "/usr/bin/conmon",
			Images: images,
			Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLogLevel()})),
		},
		prefix: prefix,
		cgroup: "/peapod-test-" + randHex(t, 4),
		owners: map[string]bool{},
	}
	t.Cleanup(func() { f.cleanup(dir) })
	f.rt = f.open()
	f.v = f.view("test")
	return f
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (f *fixture) open() *Runtime {
	f.t.Helper()
	rt, err := New(context.Background(), f.opts)
	if err != nil {
		f.t.Fatalf("New: %v", err)
	}
	return rt
}

// view returns owner's view of the current runtime and remembers the
// owner for cleanup.
func (f *fixture) view(owner string) *View {
	f.mu.Lock()
	f.owners[owner] = true
	f.mu.Unlock()
	return f.rt.For(owner)
}

func (f *fixture) cleanup(dir string) {
	t := f.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if f.rt != nil {
		for owner := range f.owners {
			v := f.rt.For(owner)
			list, err := v.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				t.Errorf("cleanup: list sandboxes: %v", err)
				continue
			}
			for _, sb := range list.Items {
				if _, err := v.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
					t.Errorf("cleanup: remove sandbox %s: %v", sb.Id, err)
				}
			}
			cs, _ := v.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
			for _, c := range cs.GetContainers() {
				if _, err := v.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: c.Id}); err != nil {
					t.Errorf("cleanup: remove container %s: %v", c.Id, err)
				}
			}
		}
		f.rt.Close()
	}
	if out, err := exec.Command("ip", "link", "del", f.opts.Network.Bridge).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "Cannot find device") {
		t.Errorf("delete bridge %s: %v: %s", f.opts.Network.Bridge, err, out)
	}
	f.removeIptables()
	for _, d := range cgroupDirs(f.cgroup) {
		if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
			t.Errorf("cleanup: remove cgroup %s: %v", d, err)
		}
	}
	// A safety net: nothing should be mounted under dir any more.
	for _, m := range mountsUnder(dir) {
		t.Errorf("cleanup: %s is still mounted", m)
		_ = rootfs.Unmount(m)
	}
	os.RemoveAll(dir)
}

// removeIptables deletes NAT rules that still name the test's subnet
// (ipMasq and portmap rules), so a failed test does not poison the host.
func (f *fixture) removeIptables() {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, f.prefix) {
			f.t.Errorf("cleanup: iptables rule left: %s", line)
			args := append([]string{"-t", "nat", "-D"}, strings.Fields(strings.TrimPrefix(line, "-A "))...)
			_ = exec.Command("iptables", args...).Run()
		}
	}
}

// cgroupDirs lists the directories of cgroup path p in every hierarchy,
// children first.
func cgroupDirs(p string) []string {
	var out []string
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	for _, h := range hier {
		d := filepath.Join(h, p)
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			kids, _ := filepath.Glob(filepath.Join(d, "*"))
			for _, k := range kids {
				if st, err := os.Stat(k); err == nil && st.IsDir() {
					out = append(out, k)
				}
			}
			out = append(out, d)
		}
	}
	return out
}

// mountsUnder lists mount points at or below dir.
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// podConfig is a pod named name in the test's cgroup parent.
func (f *fixture) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: randHex(f.t, 8)},
		Labels:   map[string]string{"app": name},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: f.cgroup,
			// Kubelet always sends a PID mode; the zero value (POD) means shared.
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}},
		},
	}
}

func (f *fixture) runPod(v *View, cfg *runtimeapi.PodSandboxConfig) string {
	f.t.Helper()
	resp, err := v.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		f.t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.PodSandboxId
}

// ctrConfig runs args in the busybox image.
func ctrConfig(name string, args ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: busyboxRef},
		Command:  args,
		Labels:   map[string]string{"container": name},
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}},
	}
}

// start creates and starts a container.
func (f *fixture) start(v *View, sandboxID string, pod *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	f.t.Helper()
	ctx := context.Background()
	resp, err := v.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: pod})
	if err != nil {
		f.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	if _, err := v.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		f.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return resp.ContainerId
}

// exec runs cmd in a container and returns stdout+stderr and the exit code.
func (f *fixture) exec(v *View, id string, cmd ...string) (string, int32) {
	f.t.Helper()
	resp, err := v.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		f.t.Fatalf("exec %q: %v", cmd, err)
	}
	return string(resp.Stdout) + string(resp.Stderr), resp.ExitCode
}

// execOK is exec that fails the test on a non-zero exit.
func (f *fixture) execOK(v *View, id string, cmd ...string) string {
	f.t.Helper()
	out, code := f.exec(v, id, cmd...)
	if code != 0 {
		f.t.Fatalf("exec %q: exit %d: %s", cmd, code, out)
	}
	return out
}

// info is the verbose status info of a sandbox or container.
type info struct {
	Pid       int    `json:"pid"`
	NetNS     string `json:"netns"`
	SandboxID string `json:"sandboxID"`
	Bundle    string `json:"bundle"`
}

func (f *fixture) sandboxInfo(v *View, id string) (*runtimeapi.PodSandboxStatus, info) {
	f.t.Helper()
	resp, err := v.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		f.t.Fatalf("PodSandboxStatus: %v", err)
	}
	var i info
	if err := json.Unmarshal([]byte(resp.Info["info"]), &i); err != nil {
		f.t.Fatal(err)
	}
	return resp.Status, i
}

func (f *fixture) containerInfo(v *View, id string) (*runtimeapi.ContainerStatus, info) {
	f.t.Helper()
	resp, err := v.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		f.t.Fatalf("ContainerStatus: %v", err)
	}
	var i info
	if err := json.Unmarshal([]byte(resp.Info["info"]), &i); err != nil {
		f.t.Fatal(err)
	}
	return resp.Status, i
}

// waitExited waits for a container to reach EXITED.
func (f *fixture) waitExited(v *View, id string, d time.Duration) *runtimeapi.ContainerStatus {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, _ := f.containerInfo(v, id)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			return st
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("container %s still %s after %s", st.Metadata.Name, st.State, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventually retries fn until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func nsInode(t testing.TB, pid int, ns string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	if err != nil {
		t.Fatalf("read %s namespace of %d: %v", ns, pid, err)
	}
	return l
}

func runOut(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// testLogLevel is Warn, or Debug with PEAPOD_TEST_DEBUG=1 (phase timings).
func testLogLevel() slog.Level {
	if os.Getenv("PEAPOD_TEST_DEBUG") == "1" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}
