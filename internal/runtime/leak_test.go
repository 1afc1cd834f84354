package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/container/runc"
)

// Acceptance 9: 100 pod create/remove cycles (a sandbox with a running
// container, removed without stopping first) leave no mount, network
// namespace, veth, IP lease, cgroup, runc state, conmon process, NAT rule
// or directory behind.
func TestNoLeaksAfterManyCycles(t *testing.T) {
	cycles := 100
	if testing.Short() {
		cycles = 10
	}
	f := newFixture(t)
	ctx := context.Background()
	root := filepath.Dir(f.opts.Root)
	// One pod stays up through the cycles, so the bridge and the shared
	// iptables chains exist before and after.
	keep := f.podConfig("keep")
	f.runPod(f.v, keep)
	before := snapshotHost(t, f, root)

	// Four at a time, as a node starting and deleting pods does: the
	// cycles also race each other through CNI, runc and the state db.
	const workers = 4
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < cycles; i += workers {
				pod := f.podConfig(fmt.Sprintf("cycle-%d", i))
				resp, err := f.v.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
				if err != nil {
					return fmt.Errorf("cycle %d: RunPodSandbox: %w", i, err)
				}
				sb := resp.PodSandboxId
				c, err := f.v.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sb, Config: ctrConfig("c", "sleep", "3600"), SandboxConfig: pod})
				if err != nil {
					return fmt.Errorf("cycle %d: CreateContainer: %w", i, err)
				}
				if _, err := f.v.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
					return fmt.Errorf("cycle %d: StartContainer: %w", i, err)
				}
				if _, err := f.v.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb}); err != nil {
					return fmt.Errorf("cycle %d: RemovePodSandbox: %w", i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	after := snapshotHost(t, f, root)
	for k, b := range before {
		if a := after[k]; a != b {
			t.Errorf("%s: %q before the cycles, %q after", k, b, a)
		}
	}
}

// snapshotHost counts what a pod leaves on the host if it leaks.
func snapshotHost(t *testing.T, f *fixture, root string) map[string]string {
	t.Helper()
	count := func(n int) string { return strings.Repeat("|", min(n, 1000)) }
	s := map[string]string{}
	s["mounts under the test dirs"] = count(len(mountsUnder(root)))
	netns, _ := os.ReadDir(filepath.Join(f.opts.State, "runtime", "netns"))
	s["pinned netns"] = count(len(netns))
	s["veths on the bridge"] = count(vethCount(t, f.opts.Network.Bridge))
	leases, _ := filepath.Glob(filepath.Join(f.opts.Root, "runtime", "cni", "ipam", "*", f.prefix+"*"))
	s["IP leases"] = count(len(leases))
	var cg int
	for _, d := range cgroupDirs(f.cgroup) {
		if d != "" {
			cg++
		}
	}
	s["cgroup dirs"] = count(cg)
	states, err := runc.New(f.opts.Runc, filepath.Join(f.opts.State, "runtime", "runc")).List(context.Background())
	if err != nil {
		t.Fatalf("runc list: %v", err)
	}
	s["runc containers"] = count(len(states))
	s["conmon processes"] = count(processesMentioning(root))
	for _, d := range []string{"sandboxes", "containers"} {
		ents, _ := os.ReadDir(filepath.Join(f.opts.Root, "runtime", d))
		s[d+" dirs"] = count(len(ents))
	}
	for _, d := range []string{"exits", "a"} {
		ents, _ := os.ReadDir(filepath.Join(f.opts.State, "runtime", d))
		s["state/"+d+" entries"] = count(len(ents))
	}
	nat, _ := runOut("iptables-save", "-t", "nat")
	s["NAT rules for the subnet"] = count(strings.Count(nat, f.prefix))
	return s
}

// processesMentioning counts processes whose command line names dir (every
// conmon of the test names its bundle there).
func processesMentioning(dir string) int {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n := 0
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), dir+"/") {
			n++
		}
	}
	return n
}
