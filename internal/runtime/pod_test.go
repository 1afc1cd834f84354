package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// httpd serves "hello from NAME" on port in the busybox image.
func httpd(name string, port int) []string {
	return []string{"sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo hello from %s > /tmp/www/index.html && exec httpd -f -p %d -h /tmp/www", name, port)}
}

// Acceptance 1: two containers share the pause container's net, IPC and UTS
// namespaces: same inodes, localhost between them, SysV shared memory, and
// the pod's hostname.
func TestContainersShareNetIPCUTS(t *testing.T) {
	f := newFixture(t)
	pod := f.podConfig("shared")
	sb := f.runPod(f.v, pod)
	a := f.start(f.v, sb, pod, ctrConfig("a", httpd("a", 8080)...))
	b := f.start(f.v, sb, pod, ctrConfig("b", "sleep", "3600"))

	_, si := f.sandboxInfo(f.v, sb)
	for _, id := range []string{a, b} {
		_, ci := f.containerInfo(f.v, id)
		for _, ns := range []string{"net", "ipc", "uts"} {
			if got, want := nsInode(t, ci.Pid, ns), nsInode(t, si.Pid, ns); got != want {
				t.Errorf("container %s: %s namespace %s, pause has %s", id[:12], ns, got, want)
			}
		}
		if nsInode(t, ci.Pid, "pid") == nsInode(t, si.Pid, "pid") {
			t.Errorf("container %s shares the pause PID namespace without shareProcessNamespace", id[:12])
		}
	}

	eventually(t, 10*time.Second, func() error {
		out, code := f.exec(f.v, b, "wget", "-q", "-O", "-", "http://localhost:8080/")
		if code != 0 || !strings.Contains(out, "hello from a") {
			return fmt.Errorf("B: wget http://localhost:8080/ = %d %q", code, out)
		}
		return nil
	})

	out := f.execOK(f.v, a, "ipcmk", "-M", "4096")
	var shmid string
	if _, err := fmt.Sscanf(strings.TrimSpace(out[strings.LastIndex(out, ":")+1:]), "%s", &shmid); err != nil {
		t.Fatalf("ipcmk output %q: %v", out, err)
	}
	// The segment's key, not its ID, names it for the host check: IDs
	// restart at 0 in every IPC namespace, so the host may well have a
	// segment with the same ID; the key ipcmk picked is random.
	key := shmKey(f.execOK(f.v, a, "ipcs", "-m"), shmid)
	if key == "" {
		t.Fatalf("A's ipcs -m does not list segment %s", shmid)
	}
	if got := f.execOK(f.v, b, "ipcs", "-m"); shmKey(got, shmid) != key {
		t.Errorf("B does not see A's shared memory segment %s (key %s):\n%s", shmid, key, got)
	}
	if host := sh(t, "ipcs", "-m"); strings.Contains(host, key+" ") {
		t.Errorf("the host sees the pod's shared memory segment %s (key %s)", shmid, key)
	}

	for _, id := range []string{a, b} {
		if got := strings.TrimSpace(f.execOK(f.v, id, "hostname")); got != "shared" {
			t.Errorf("hostname in %s = %q, want the pod name", id[:12], got)
		}
	}
}

// Acceptance 2: with shareProcessNamespace the pause process is PID 1, B
// sees A's processes, and an orphan that exits is reaped; without it each
// entrypoint is PID 1 and nobody reaps A's orphan.
func TestSharedProcessNamespace(t *testing.T) {
	f := newFixture(t)
	// A leaves an orphan that exits after 0.3 s: its subshell exits at
	// once, so the kernel hands sleep to the PID namespace's init.
	orphan := []string{"sh", "-c", "(sleep 0.3 &); exec sleep 3601"}
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			pod := f.podConfig(fmt.Sprintf("pid-%v", shared))
			mode := runtimeapi.NamespaceMode_CONTAINER
			if shared {
				mode = runtimeapi.NamespaceMode_POD
			}
			pod.Linux.SecurityContext.NamespaceOptions.Pid = mode
			sb := f.runPod(f.v, pod)
			ca, cb := ctrConfig("a", orphan...), ctrConfig("b", "sleep", "3602")
			ca.Linux.SecurityContext.NamespaceOptions.Pid = mode
			cb.Linux.SecurityContext.NamespaceOptions.Pid = mode
			a := f.start(f.v, sb, pod, ca)
			b := f.start(f.v, sb, pod, cb)

			pid1A := f.execOK(f.v, a, "cat", "/proc/1/cmdline")
			pid1B := f.execOK(f.v, b, "cat", "/proc/1/cmdline")
			ps := f.execOK(f.v, b, "ps", "-o", "pid,args")
			if shared {
				for _, got := range []string{pid1A, pid1B} {
					if !strings.Contains(got, "catatonit") {
						t.Errorf("PID 1 = %q, want the pause process (catatonit)", got)
					}
				}
				if !strings.Contains(ps, "sleep 3601") {
					t.Errorf("B does not see A's process:\n%s", ps)
				}
			} else {
				if !strings.HasPrefix(pid1A, "sleep\x003601") || !strings.HasPrefix(pid1B, "sleep\x003602") {
					t.Errorf("PID 1 of A = %q, of B = %q; want each container's entrypoint", pid1A, pid1B)
				}
				if strings.Contains(ps, "sleep 3601") {
					t.Errorf("B sees A's process without a shared PID namespace:\n%s", ps)
				}
			}
			time.Sleep(time.Second)
			states := f.execOK(f.v, a, "sh", "-c", "cat /proc/[0-9]*/stat")
			zombie := strings.Contains(states, ") Z ")
			if shared && zombie {
				t.Errorf("a zombie is left in the shared PID namespace:\n%s", states)
			}
			if !shared && !zombie {
				t.Errorf("expected A's orphan to stay a zombie (its PID 1 is sleep, which reaps nothing):\n%s", states)
			}
		})
	}
}

// Acceptance 3: the pod IP answers from the host, and the pod has exactly
// one veth on the bridge however many containers it has.
func TestPodIPAndOneVeth(t *testing.T) {
	f := newFixture(t)
	pod := f.podConfig("ip")
	sb := f.runPod(f.v, pod)
	f.start(f.v, sb, pod, ctrConfig("web", httpd("web", 8080)...))
	f.start(f.v, sb, pod, ctrConfig("b", "sleep", "3600"))
	f.start(f.v, sb, pod, ctrConfig("c", "sleep", "3600"))
	st, _ := f.sandboxInfo(f.v, sb)
	ip := st.GetNetwork().GetIp()
	if !strings.HasPrefix(ip, f.prefix) {
		t.Fatalf("pod IP %q is not in the test subnet %s0/24", ip, f.prefix)
	}
	eventually(t, 10*time.Second, func() error {
		body, err := get(fmt.Sprintf("http://%s:8080/", ip))
		if err != nil || !strings.Contains(body, "hello from web") {
			return fmt.Errorf("GET pod IP from the host: %q, %v", body, err)
		}
		return nil
	})
	if n := vethCount(t, f.opts.Network.Bridge); n != 1 {
		t.Errorf("%d veths on the bridge for one pod with three containers, want 1", n)
	}
}

func get(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func vethCount(t testing.TB, bridge string) int {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") {
			return 0
		}
		t.Fatalf("ip link show master %s: %v: %s", bridge, err, out)
	}
	return strings.Count(strings.TrimSpace(string(out)), "\n") + min(1, len(strings.TrimSpace(string(out))))
}

// Ownership: each owner lists only its own sandboxes and containers, and
// cannot act on the other's.
func TestOwnersSeeOnlyTheirOwn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cri, kubelet := f.view("cri"), f.view("kubelet")
	pod := f.podConfig("mine")
	sb := f.runPod(cri, pod)
	c := f.start(cri, sb, pod, ctrConfig("a", "sleep", "3600"))

	ls, _ := kubelet.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	lc, _ := kubelet.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if len(ls.Items) != 0 || len(lc.Containers) != 0 {
		t.Errorf("kubelet sees %d sandboxes and %d containers of the CRI", len(ls.Items), len(lc.Containers))
	}
	if _, err := kubelet.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb}); !errors.Is(err, ErrNotFound) {
		t.Errorf("kubelet PodSandboxStatus of the CRI's sandbox = %v, want not found", err)
	}
	if _, err := kubelet.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb}); err != nil {
		t.Errorf("kubelet RemovePodSandbox of an unknown sandbox = %v, want nil", err)
	}
	ls, _ = cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	lc, _ = cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if len(ls.Items) != 1 || ls.Items[0].State != runtimeapi.PodSandboxState_SANDBOX_READY || len(lc.Containers) != 1 || lc.Containers[0].Id != c {
		t.Errorf("the CRI lists %v and %v after the kubelet's remove, want its ready sandbox and container", ls.Items, lc.Containers)
	}
	// Filters.
	lc, _ = cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_EXITED}}})
	if len(lc.Containers) != 0 {
		t.Errorf("state filter EXITED lists a running container")
	}
	ls, _ = cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "other"}}})
	if len(ls.Items) != 0 {
		t.Errorf("label filter app=other lists sandbox app=mine")
	}
}

// shmKey returns the key of the shared memory segment with ID id in the
// output of ipcs -m ("key shmid owner ..." rows), or "".
func shmKey(ipcs, id string) string {
	for _, line := range strings.Split(ipcs, "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == id && strings.HasPrefix(f[0], "0x") {
			return f[0]
		}
	}
	return ""
}
