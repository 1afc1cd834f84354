package cri

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// busyboxImage is a runnable image built from this machine's busybox.
func busyboxImage(t *testing.T) v1.Image {
	t.Helper()
	l, err := imagetest.Busybox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Image(imagetest.ImageOptions{Layers: []v1.Layer{l}, Config: v1.Config{Cmd: []string{"/bin/sh"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// insecureRegistries is a registries.conf that allows plain HTTP to hosts.
func insecureRegistries(hosts ...string) string {
	var b strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&b, "[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n\n", h, h)
	}
	return b.String()
}

func podConfig(name, logDir string, labels map[string]string) string {
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "crictl-test", "uid": "uid-" + name, "attempt": 0},
		"log_directory": logDir,
		"labels":        labels,
		"linux":         map[string]any{},
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

func containerConfig(name, image string, cmd []string, extra map[string]any) string {
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"command":  cmd,
		"log_path": name + ".log",
		"linux":    map[string]any{},
		"labels":   map[string]string{"app": name},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return string(b)
}

// lines splits crictl -q output into IDs.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func sameIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// inspectPid reads info.pid from crictl inspect/inspectp -o json.
func inspectPid(t *testing.T, d *Daemon, cmd, id string) int {
	t.Helper()
	var out struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	raw := d.MustCrictl(cmd, "-o", "json", id)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("crictl %s: %v in %s", cmd, err, raw)
	}
	return out.Info.Pid
}

// TestCrictlPodLifecycle walks a pod through crictl as an operator would:
// pull, runp, create, start, exec (plain, with stdin, with a terminal),
// logs, attach, port-forward, inspect, stats, ps/pods with filters, stop,
// rm, rmi.
func TestCrictlPodLifecycle(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	if err := reg.Push(ctx, "busybox:1", busyboxImage(t)); err != nil {
		t.Fatal(err)
	}
	image := reg.Ref("busybox:1")
	d := StartDaemon(t, DaemonOptions{Registries: insecureRegistries(reg.Host)})

	// pull, images
	d.MustCrictl("pull", image)
	if out := d.MustCrictl("images"); !strings.Contains(out, reg.Host+"/busybox") {
		t.Errorf("crictl images does not list the pulled image:\n%s", out)
	}

	// runp
	logDir := filepath.Join(d.Dir, "logs", "web")
	podFile := d.WriteFile("pod.json", podConfig("web", logDir, map[string]string{"tier": "front"}))
	podID := d.MustCrictl("runp", podFile)
	otherPod := d.MustCrictl("runp", d.WriteFile("pod2.json", podConfig("other", filepath.Join(d.Dir, "logs", "other"), map[string]string{"tier": "back"})))

	// create, start
	web := d.MustCrictl("create", podID, d.WriteFile("web.json", containerConfig("web", image,
		[]string{"/bin/sh", "-c", "echo hello-from-log; mkdir -p /www; echo pf-ok > /www/index.html; exec httpd -f -p 8080 -h /www"}, nil)), podFile)
	d.MustCrictl("start", web)
	reader := d.MustCrictl("create", podID, d.WriteFile("reader.json", containerConfig("reader", image,
		[]string{"/bin/sh", "-c", "read line; echo got:$line"}, map[string]any{"stdin": true, "stdin_once": true})), podFile)
	d.MustCrictl("start", reader)
	created := d.MustCrictl("create", podID, d.WriteFile("idle.json", containerConfig("idle", image, []string{"sleep", "1000"}, nil)), podFile)

	// exec: output, exit code, stdin, terminal
	if out := d.MustCrictl("exec", web, "echo", "hi"); out != "hi" {
		t.Errorf("crictl exec echo hi = %q", out)
	}
	// Through the streaming server the exit code arrives as an error
	// (crictl exits 1 and names it); ExecSync returns it as a result.
	if _, errOut, err := d.Crictl("exec", web, "sh", "-c", "exit 3"); err == nil || !strings.Contains(errOut, "exit code 3") {
		t.Errorf("crictl exec exit 3: %v %s, want a failure naming exit code 3", err, errOut)
	}
	if _, errOut, err := d.Crictl("exec", "--sync", web, "sh", "-c", "exit 3"); err == nil || !strings.Contains(errOut, "exited with 3") {
		t.Errorf("crictl exec --sync exit 3: %v %s, want a failure naming exit code 3", err, errOut)
	}
	if out, _, err := d.CrictlInput("from-stdin\n", "exec", "-i", web, "cat"); err != nil || strings.TrimSpace(out) != "from-stdin" {
		t.Errorf("crictl exec -i cat = %q, %v", out, err)
	}
	// -it needs a terminal on crictl's side: script(1) gives it one.
	itCmd := fmt.Sprintf("%s %s exec -it %s sh -c 'tty; echo tty-ok'", crictlBin, strings.Join(d.CrictlArgs(), " "), web)
	itCtx, itCancel := context.WithTimeout(ctx, 30*time.Second)
	out, err := exec.CommandContext(itCtx, "script", "-qec", itCmd, "/dev/null").CombinedOutput()
	itCancel()
	if err != nil || !strings.Contains(string(out), "/dev/pts/") || !strings.Contains(string(out), "tty-ok") {
		t.Errorf("crictl exec -it: %v\n%s", err, out)
	}

	// logs (CRI log format, read back by crictl) at LogDirectory/LogPath
	waitFor(t, "log line", func() bool {
		out, _, _ := d.Crictl("logs", web)
		return strings.Contains(out, "hello-from-log")
	})
	if _, err := os.Stat(filepath.Join(logDir, "web.log")); err != nil {
		t.Errorf("log not at log_directory/log_path: %v", err)
	}

	// attach: stdin goes to the container, its output comes back
	if out, errOut, err := d.CrictlInput("ping\n", "attach", "-i", reader); err != nil || !strings.Contains(out, "got:ping") {
		t.Errorf("crictl attach -i = %q, %v (stderr %s)", out, err, errOut)
	}

	// port-forward into the pod's network namespace
	portForward(t, d, podID, 8080, "pf-ok")

	// inspect: info.pid is the container's and the infra's process
	for _, c := range []struct{ cmd, id string }{{"inspect", web}, {"inspectp", podID}} {
		pid := inspectPid(t, d, c.cmd, c.id)
		if pid <= 0 {
			t.Errorf("crictl %s: info.pid = %d", c.cmd, pid)
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			t.Errorf("crictl %s: info.pid %d is no process: %v", c.cmd, pid, err)
		}
	}
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", inspectPid(t, d, "inspect", web))); err != nil || !strings.HasSuffix(exe, "busybox") {
		t.Errorf("container pid runs %q (%v), want busybox", exe, err)
	}

	// stats
	var stats struct {
		Stats []struct {
			Attributes struct{ ID string } `json:"attributes"`
			CPU        struct {
				UsageCoreNanoSeconds struct{ Value string } `json:"usageCoreNanoSeconds"`
			} `json:"cpu"`
			Memory struct {
				WorkingSetBytes struct{ Value string } `json:"workingSetBytes"`
			} `json:"memory"`
			WritableLayer struct {
				UsedBytes struct{ Value string } `json:"usedBytes"`
			} `json:"writableLayer"`
		} `json:"stats"`
	}
	raw := d.MustCrictl("stats", "-o", "json", "--id", web)
	if err := json.Unmarshal([]byte(raw), &stats); err != nil || len(stats.Stats) != 1 {
		t.Fatalf("crictl stats: %v in %s", err, raw)
	}
	st := stats.Stats[0]
	if n, _ := strconv.ParseUint(st.Memory.WorkingSetBytes.Value, 10, 64); n == 0 {
		t.Errorf("stats: no memory working set: %s", raw)
	}
	if n, _ := strconv.ParseUint(st.CPU.UsageCoreNanoSeconds.Value, 10, 64); n == 0 {
		t.Errorf("stats: no CPU usage: %s", raw)
	}
	if n, _ := strconv.ParseUint(st.WritableLayer.UsedBytes.Value, 10, 64); n == 0 {
		t.Errorf("stats: writable layer is empty though /www was written: %s", raw)
	}
	if out := d.MustCrictl("statsp", "-o", "json", "--id", podID); !strings.Contains(out, podID) {
		t.Errorf("crictl statsp does not report the pod:\n%s", out)
	}

	// ps / pods with filters
	waitFor(t, "reader to exit", func() bool {
		return len(lines(d.MustCrictl("ps", "-a", "-q", "--state", "exited"))) == 1
	})
	sameIDs(t, "ps -q (running)", lines(d.MustCrictl("ps", "-q")), web)
	sameIDs(t, "ps -a --state created", lines(d.MustCrictl("ps", "-a", "-q", "--state", "created")), created)
	sameIDs(t, "ps -a --state exited", lines(d.MustCrictl("ps", "-a", "-q", "--state", "exited")), reader)
	sameIDs(t, "ps -a --name reader", lines(d.MustCrictl("ps", "-a", "-q", "--name", "reader")), reader)
	sameIDs(t, "ps -a --label app=idle", lines(d.MustCrictl("ps", "-a", "-q", "--label", "app=idle")), created)
	sameIDs(t, "ps -a --pod other", lines(d.MustCrictl("ps", "-a", "-q", "--pod", otherPod)))
	sameIDs(t, "ps --id prefix", lines(d.MustCrictl("ps", "-q", "--id", web[:12])), web)
	sameIDs(t, "pods --name web", lines(d.MustCrictl("pods", "-q", "--name", "web")), podID)
	sameIDs(t, "pods --label tier=back", lines(d.MustCrictl("pods", "-q", "--label", "tier=back")), otherPod)
	sameIDs(t, "pods --namespace", lines(d.MustCrictl("pods", "-q", "--namespace", "nope")))
	if got := lines(d.MustCrictl("pods", "-q", "--state", "ready")); len(got) != 2 {
		t.Errorf("pods --state ready = %v, want both pods", got)
	}

	// stop, rm (twice: gone is fine), stopp, rmp, rmi
	d.MustCrictl("stop", "--timeout", "2", web)
	sameIDs(t, "ps -q after stop", lines(d.MustCrictl("ps", "-q")))
	d.MustCrictl("rm", web)
	if _, errOut, err := d.Crictl("inspect", web); err == nil || !strings.Contains(strings.ToLower(errOut), "not found") {
		t.Errorf("inspect of a removed container: %v %s, want NotFound", err, errOut)
	}
	d.MustCrictl("stopp", otherPod)
	sameIDs(t, "pods --state notready", lines(d.MustCrictl("pods", "-q", "--state", "notready")), otherPod)
	d.MustCrictl("stopp", otherPod)
	d.MustCrictl("rmp", otherPod)
	d.MustCrictl("rmp", "-f", podID)
	sameIDs(t, "pods after rmp", lines(d.MustCrictl("pods", "-q")))
	sameIDs(t, "ps -a after rmp", lines(d.MustCrictl("ps", "-a", "-q")))
	d.MustCrictl("rmi", image)
	if out := d.MustCrictl("images", "-q"); out != "" {
		t.Errorf("images after rmi: %s", out)
	}
}

// portForward runs crictl port-forward to an ephemeral local port and
// fetches / from the pod's port.
func portForward(t *testing.T, d *Daemon, podID string, port int, want string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, crictlBin, append(d.CrictlArgs(), "port-forward", podID, fmt.Sprintf("0:%d", port))...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	var local string
	select {
	case local = <-found:
	case <-time.After(30 * time.Second):
		t.Fatal("crictl port-forward printed no local port")
	}
	var body []byte
	waitFor(t, "port-forwarded HTTP answer", func() bool {
		client := http.Client{Timeout: 5 * time.Second}
		resp, err := client.Get("http://127.0.0.1:" + local + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == 200
	})
	if strings.TrimSpace(string(body)) != want {
		t.Errorf("port-forwarded GET / = %q, want %q", body, want)
	}
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
