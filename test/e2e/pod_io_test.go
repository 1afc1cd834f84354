package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/registrytest"
)

// The pods of TestPodIO: a talker that logs a few lines and sleeps, a
// two-container pod whose web container serves a page with busybox httpd
// on 8080, and a crasher whose previous run's log is kept.
const podIOManifest = `apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %[1]s
    command: ["sh", "-c", "echo line1; echo line2; echo line3; echo oops >&2; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata:
  name: duo
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %[1]s
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"]
  - name: side
    image: %[1]s
    command: ["sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.2; done"]
---
apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[1]s
    command: ["sh", "-c", "echo run-$(date +%%s%%N); sleep 1; exit 1"]
`

// runCLI runs the CLI against d with stdin and returns stdout, stderr and
// the exit code (-1 when it did not run to an exit).
func runCLI(t *testing.T, d *Daemon, stdin string, args ...string) (string, string, int) {
	t.Helper()
	out, errOut, err := d.RunInput(stdin, args...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, errOut, 0
	case errors.As(err, &ee):
		return out, errOut, ee.ExitCode()
	}
	t.Fatalf("peapod %s: %v", strings.Join(args, " "), err)
	return "", "", -1
}

// startCLI starts a long-running CLI command (logs -f, port-forward,
// attach) and returns its stdout lines; it is killed when the test ends.
func startCLI(t *testing.T, d *Daemon, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(peapodBin, args...)
	cmd.Env = append(os.Environ(), "PEAPOD_HOST="+d.Host)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("peapod %s stderr: %s", strings.Join(args, " "), stderr.String())
		}
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// waitLine waits for a line containing want.
func waitLine(t *testing.T, lines <-chan string, want string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended without %q; got:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, l)
			if strings.Contains(l, want) {
				return l
			}
		case <-deadline:
			t.Fatalf("no line with %q within %s; got:\n%s", want, timeout, strings.Join(seen, "\n"))
		}
	}
}

// TestPodIO covers issue 5's logs, exec, attach, port-forward and cp, run
// through the CLI against a real daemon, runc and conmon.
func TestPodIO(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:io")
	cleanupPods(t, d, "default")
	apply(t, d, "io.yaml", fmt.Sprintf(podIOManifest, reg.Ref("busybox:io")))
	waitStatus(t, d, "default", "talker", "Running", 90*time.Second)
	waitStatus(t, d, "default", "duo", "Running", 90*time.Second)
	waitLog(t, d, "default", "talker", "main", "oops")

	t.Run("Logs", func(t *testing.T) {
		out, errOut, code := runCLI(t, d, "", "logs", "talker")
		if code != 0 || out != "line1\nline2\nline3\noops\n" {
			t.Errorf("logs talker = %q (stderr %q, exit %d), want the four lines, stderr's among them", out, errOut, code)
		}
		out, _, _ = runCLI(t, d, "", "logs", "pod/talker", "--tail", "2")
		if out != "line3\noops\n" {
			t.Errorf("logs --tail 2 = %q, want the last two lines", out)
		}
		out, _, _ = runCLI(t, d, "", "logs", "talker", "--timestamps", "--tail=1")
		ts, text, _ := strings.Cut(strings.TrimSuffix(out, "\n"), " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil || text != "oops" {
			t.Errorf("logs --timestamps --tail=1 = %q, want an RFC3339 timestamp and the line", out)
		}
		out, _, _ = runCLI(t, d, "", "logs", "duo", "-c", "side", "--tail", "1")
		if !strings.HasPrefix(out, "tick") {
			t.Errorf("logs duo -c side = %q, want a tick line", out)
		}
	})

	t.Run("LogsErrors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"logs", "duo"}, "a container name must be specified for pod duo, choose one of: [web side]"},
			{[]string{"logs", "duo", "-c", "nope"}, "container nope is not valid for pod duo"},
			{[]string{"logs", "ghost"}, `pods "ghost" not found`},
			{[]string{"logs", "talker", "--previous"}, `previous terminated container "main" in pod "talker" not found`},
		} {
			_, errOut, code := runCLI(t, d, "", tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("peapod %s: exit %d, stderr %q; want a failure saying %q", strings.Join(tc.args, " "), code, errOut, tc.want)
			}
		}
	})

	t.Run("LogsFollow", func(t *testing.T) {
		lines := startCLI(t, d, "logs", "-f", "talker")
		waitLine(t, lines, "oops", 20*time.Second)
		// Written to the main process's stdout after `logs -f` started.
		if _, errOut, code := runCLI(t, d, "", "exec", "talker", "--", "sh", "-c", "echo late-line > /proc/1/fd/1"); code != 0 {
			t.Fatalf("exec: exit %d: %s", code, errOut)
		}
		waitLine(t, lines, "late-line", 20*time.Second)
	})

	t.Run("LogsPrevious", func(t *testing.T) {
		waitFor(t, 60*time.Second, "the crasher's previous run in logs --previous", func() (bool, string) {
			p := getPod(t, d, "default", "crasher")
			if cs := containerStatus(p, "c"); cs.RestartCount < 1 {
				return false, fmt.Sprintf("restartCount %d", cs.RestartCount)
			}
			out, errOut, code := runCLI(t, d, "", "logs", "crasher", "--previous")
			return code == 0 && strings.HasPrefix(out, "run-") && strings.Count(out, "\n") == 1, out + errOut
		})
	})

	t.Run("Exec", func(t *testing.T) {
		out, errOut, code := runCLI(t, d, "", "exec", "talker", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3")
		if out != "to-out\n" || !strings.Contains(errOut, "to-err\n") || code != 3 {
			t.Errorf("exec: stdout %q, stderr %q, exit %d; want to-out, to-err, 3", out, errOut, code)
		}
		if !strings.Contains(errOut, "command terminated with exit code 3") {
			t.Errorf("exec stderr %q lacks kubectl's \"command terminated with exit code 3\"", errOut)
		}
		out, _, code = runCLI(t, d, "", "exec", "duo", "-c", "side", "--", "hostname")
		if out != "duo\n" || code != 0 {
			t.Errorf("exec duo -c side hostname = %q, exit %d; want duo", out, code)
		}
		_, errOut, code = runCLI(t, d, "", "exec", "duo", "--", "true")
		if code == 0 || !strings.Contains(errOut, "a container name must be specified for pod duo") {
			t.Errorf("exec duo without -c: exit %d, stderr %q", code, errOut)
		}
		_, errOut, code = runCLI(t, d, "", "exec", "talker", "--", "/no/such/binary")
		if code == 0 {
			t.Errorf("exec of a missing binary succeeded; stderr %q", errOut)
		}
	})

	t.Run("ExecStdin", func(t *testing.T) {
		out, errOut, code := runCLI(t, d, "alpha\nbeta\n", "exec", "-i", "talker", "--", "sh", "-c", "wc -l; cat /proc/1/comm")
		if code != 0 || strings.Fields(out)[0] != "2" {
			t.Errorf("exec -i wc -l = %q (stderr %q, exit %d), want 2 lines counted", out, errOut, code)
		}
		// Without -i the command sees no input at all.
		out, _, _ = runCLI(t, d, "ignored\n", "exec", "talker", "--", "sh", "-c", "cat; echo end")
		if out != "end\n" {
			t.Errorf("exec without -i read input: %q", out)
		}
	})

	t.Run("ExecTTY", func(t *testing.T) {
		if _, err := exec.LookPath("script"); err != nil {
			t.Fatalf("script (util-linux) is needed for a terminal: install it with `make deps`")
		}
		// script gives the CLI a pseudo-terminal, as a user's shell has.
		line := fmt.Sprintf("%s exec -it talker -- sh -c 'tty; echo in-a-tty; exit 5'", peapodBin)
		cmd := exec.Command("script", "-qec", line, "/dev/null")
		cmd.Env = append(os.Environ(), "PEAPOD_HOST="+d.Host)
		cmd.Stdin = strings.NewReader("")
		outb, err := cmd.CombinedOutput()
		out := string(outb)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 5 {
			t.Errorf("exec -it: %v, want exit code 5; output %q", err, out)
		}
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "in-a-tty\r\n") {
			t.Errorf("exec -it output %q: want a /dev/pts terminal with CRLF line ends", out)
		}
	})

	t.Run("Attach", func(t *testing.T) {
		lines := startCLI(t, d, "attach", "duo", "-c", "side")
		first := waitLine(t, lines, "tick", 20*time.Second)
		n, _ := strconv.Atoi(strings.TrimPrefix(first, "tick"))
		// Lines written after attaching arrive as they are written.
		waitLine(t, lines, fmt.Sprintf("tick%d", n+3), 20*time.Second)
	})

	t.Run("PortForward", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		lines := startCLI(t, d, "port-forward", "duo", fmt.Sprintf("%d:8080", port))
		waitLine(t, lines, fmt.Sprintf("Forwarding from 127.0.0.1:%d -> 8080", port), 20*time.Second)
		for i := range 3 { // each connection is forwarded on its own
			var body string
			waitFor(t, 30*time.Second, "the pod's page through the forwarded port", func() (bool, string) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/index.html", port), nil)
				resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
				if err != nil {
					return false, err.Error()
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				body = string(b)
				return resp.StatusCode == 200 && body == "hello-from-the-pod\n", fmt.Sprintf("request %d: %s %q", i, resp.Status, body)
			})
		}
		// A port nothing listens on in the pod fails that connection only.
		lines2 := startCLI(t, d, "port-forward", "talker", fmt.Sprintf("%d:9", port+1))
		waitLine(t, lines2, "Forwarding from", 20*time.Second)
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, rerr := c.Read(make([]byte, 1))
			c.Close()
			if n != 0 || rerr == nil {
				t.Errorf("forward to a closed pod port: read %d bytes, %v; want the connection closed", n, rerr)
			}
		}
	})

	t.Run("Cp", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "up.txt")
		if err := os.WriteFile(src, []byte("uploaded content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := runCLI(t, d, "", "cp", src, "talker:/tmp/up.txt"); code != 0 {
			t.Fatalf("cp to the pod: exit %d: %s", code, errOut)
		}
		out, _, _ := runCLI(t, d, "", "exec", "talker", "--", "cat", "/tmp/up.txt")
		if out != "uploaded content\n" {
			t.Errorf("file copied into the pod reads %q", out)
		}
		dst := filepath.Join(dir, "hostname")
		if _, errOut, code := runCLI(t, d, "", "cp", "talker:/etc/hostname", dst); code != 0 {
			t.Fatalf("cp from the pod: exit %d: %s", code, errOut)
		}
		b, err := os.ReadFile(dst)
		if err != nil || string(b) != "talker\n" {
			t.Errorf("file copied from the pod: %q, %v; want talker", b, err)
		}
		_, errOut, code := runCLI(t, d, "", "cp", "talker:/no/such/file", filepath.Join(dir, "x"))
		if code == 0 {
			t.Errorf("cp of a missing file succeeded; stderr %q", errOut)
		}
	})
}

const ttyPod = `apiVersion: v1
kind: Pod
metadata:
  name: tty
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: %s
    stdin: true
    tty: true
    command: ["sh", "-c", "read a; echo got-$a; stty size; while read b; do stty size; done"]
`

// openPty opens a pseudo-terminal pair of the given size.
func openPty(t *testing.T, rows, cols uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// startOnPty starts the CLI against d with a new terminal of the given size
// as its controlling terminal and stdio, as a person at a terminal would.
// It returns the command (the caller waits for it), the terminal's master
// side (to type and resize) and what the terminal shows, chunk by chunk.
func startOnPty(t *testing.T, d *Daemon, rows, cols uint16, args ...string) (*exec.Cmd, *os.File, <-chan string) {
	t.Helper()
	master, slave := openPty(t, rows, cols)
	cmd := exec.Command(peapodBin, args...)
	cmd.Env = append(os.Environ(), "PEAPOD_HOST="+d.Host)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 100)
	go func() {
		defer close(out)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				out <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return cmd, master, out
}

// TestPodIOAttachTTY attaches to a container's terminal from a local
// terminal: input reaches the container, the local size is the
// container's, and a resize of the local terminal follows.
func TestPodIOAttachTTY(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:tty")
	cleanupPods(t, d, "default")
	apply(t, d, "tty.yaml", fmt.Sprintf(ttyPod, reg.Ref("busybox:tty")))
	waitStatus(t, d, "default", "tty", "Running", 90*time.Second)

	cmd, master, out := startOnPty(t, d, 33, 101, "attach", "-it", "tty")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var seen strings.Builder
	expect := func(want string) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for !strings.Contains(seen.String(), want) {
			select {
			case s, ok := <-out:
				if !ok {
					t.Fatalf("terminal closed without %q; got %q", want, seen.String())
				}
				seen.WriteString(s)
			case <-deadline:
				t.Fatalf("no %q on the terminal within 20s; got %q", want, seen.String())
			}
		}
	}
	// The CLI copies input only once it is attached: nothing is lost.
	if _, err := master.WriteString("hello\r"); err != nil {
		t.Fatal(err)
	}
	expect("got-hello")
	expect("33 101")
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	// The resize goes to conmon beside the input, not in order with it:
	// ask for the size until the new one shows.
	waitFor(t, 20*time.Second, "the container's terminal to follow the resize", func() (bool, string) {
		if _, err := master.WriteString("x\r"); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-out:
			seen.WriteString(s)
		case <-time.After(200 * time.Millisecond):
		}
		return strings.Contains(seen.String(), "40 120"), seen.String()
	})
}
