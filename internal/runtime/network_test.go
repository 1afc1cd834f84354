package runtime

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Acceptance 4: restarting one container (stop, remove, create attempt 1,
// start, as kubelet does) keeps the pod IP and the other container's open
// connection.
func TestContainerRestartKeepsIPAndConnections(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pod := f.podConfig("restart")
	sb := f.runPod(f.v, pod)
	st, _ := f.sandboxInfo(f.v, sb)
	ip := st.GetNetwork().GetIp()

	// B holds a TCP connection to the host, on the bridge's gateway
	// address; what the host sends arrives in B's log.
	ln, err := net.Listen("tcp", f.prefix+"1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	web := f.start(f.v, sb, pod, ctrConfig("web", httpd("web", 8080)...))
	b := f.start(f.v, sb, pod, ctrConfig("b", "sh", "-c", fmt.Sprintf("sleep 3600 | nc %s1 %d", f.prefix, port)))
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatalf("B did not connect to the host: %v", err)
	}
	defer conn.Close()

	if _, err := f.v.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: web, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.v.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: web}); err != nil {
		t.Fatal(err)
	}
	again := ctrConfig("web", httpd("web again", 8080)...)
	again.Metadata.Attempt = 1
	f.start(f.v, sb, pod, again)

	if st, _ := f.sandboxInfo(f.v, sb); st.GetNetwork().GetIp() != ip {
		t.Errorf("pod IP changed from %s to %s across a container restart", ip, st.GetNetwork().GetIp())
	}
	eventually(t, 10*time.Second, func() error {
		body, err := get(fmt.Sprintf("http://%s:8080/", ip))
		if err != nil || !strings.Contains(body, "hello from web again") {
			return fmt.Errorf("restarted web on the same pod IP: %q, %v", body, err)
		}
		return nil
	})
	if _, err := fmt.Fprintln(conn, "after-restart"); err != nil {
		t.Fatalf("write to B's connection: %v", err)
	}
	bst, _ := f.containerInfo(f.v, b)
	eventually(t, 5*time.Second, func() error {
		log, _ := os.ReadFile(bst.LogPath)
		if !strings.Contains(string(log), " stdout F after-restart") {
			return fmt.Errorf("B's log does not show what came over its connection:\n%s", log)
		}
		return nil
	})
	if bst.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("B is %s after A's restart", bst.State)
	}
}

// Acceptance 5: a hostPort on 127.0.0.1 reaches the container port; a
// hostNetwork pod sees the host's interfaces.
func TestHostPortAndHostNetwork(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	pod := f.podConfig("hostport")
	pod.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: int32(hostPort), HostIp: "127.0.0.1"}}
	sb := f.runPod(f.v, pod)
	f.start(f.v, sb, pod, ctrConfig("web", httpd("hostport", 80)...))
	eventually(t, 10*time.Second, func() error {
		body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
		if err != nil || !strings.Contains(body, "hello from hostport") {
			return fmt.Errorf("GET 127.0.0.1:%d: %q, %v", hostPort, body, err)
		}
		return nil
	})

	hpod := f.podConfig("hostnet")
	hpod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	hsb := f.runPod(f.v, hpod)
	c := f.start(f.v, hsb, hpod, ctrConfig("c", "sleep", "3600"))
	devs := f.execOK(f.v, c, "cat", "/proc/net/dev")
	for _, want := range []string{f.opts.Network.Bridge + ":", hostDefaultIface(t) + ":"} {
		if !strings.Contains(devs, want) {
			t.Errorf("hostNetwork container does not see host interface %s:\n%s", strings.TrimSuffix(want, ":"), devs)
		}
	}
	if st, _ := f.sandboxInfo(f.v, hsb); st.GetNetwork().GetIp() != "" {
		t.Errorf("hostNetwork sandbox reports pod IP %q", st.GetNetwork().GetIp())
	}
}

// hostDefaultIface is the interface of the host's default route.
func hostDefaultIface(t *testing.T) string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 2 && fields[1] == "00000000" {
			return fields[0]
		}
	}
	return "lo"
}
