package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/client"
	"github.com/peapod/peapod/internal/kubelet"
)

// fakePods stands in for the pod manager: exec runs a few scripted
// commands against the streams it is given.
type fakePods struct {
	mu      sync.Mutex
	resizes []kubelet.TerminalSize
	tty     bool
}

func (f *fakePods) Logs(ctx context.Context, ns, name string, opts kubelet.LogOptions, stdout, stderr io.Writer) error {
	if name != "p" {
		return fmt.Errorf("a container name must be specified for pod %s, choose one of: [a b]: %w", name, kubelet.ErrBadRequest)
	}
	fmt.Fprintf(stdout, "tail=%d follow=%v container=%s\n", opts.TailLines, opts.Follow, opts.Container)
	return nil
}

func (f *fakePods) ContainerID(ctx context.Context, ns, name, container string) (string, error) {
	if name != "p" {
		return "", fmt.Errorf("container c is not running in pod %s: %w", name, kubelet.ErrBadRequest)
	}
	return "id", nil
}

func (f *fakePods) Exec(ctx context.Context, ns, name, container string, cmd []string, s kubelet.Streams) (int, error) {
	f.mu.Lock()
	f.tty = s.TTY
	f.mu.Unlock()
	switch cmd[0] {
	case "cat": // echo stdin to stdout until it ends
		_, err := io.Copy(s.Stdout, s.Stdin)
		return 0, err
	case "fail":
		fmt.Fprint(s.Stderr, "bad thing\n")
		return 42, nil
	case "sizes": // report resizes until two arrived
		for size := range s.Resize {
			f.mu.Lock()
			f.resizes = append(f.resizes, size)
			n := len(f.resizes)
			f.mu.Unlock()
			fmt.Fprintf(s.Stdout, "%dx%d\n", size.Width, size.Height)
			if n == 2 {
				return 0, nil
			}
		}
		return 1, nil
	}
	return -1, errors.New("no such command")
}

func (f *fakePods) Attach(ctx context.Context, ns, name, container string, s kubelet.Streams) error {
	_, err := io.Copy(s.Stdout, strings.NewReader("attached\n"))
	return err
}

func (f *fakePods) DialPod(ctx context.Context, ns, name string, port int32) (net.Conn, error) {
	return nil, errors.New("connect: connection refused")
}

func startPodIO(t *testing.T, pods PodIO) *client.Client {
	t.Helper()
	s := New(nil, nil, slog.New(slog.DiscardHandler))
	s.SetPodIO(pods)
	return serve(t, s)
}

// serve serves s on a unix socket of the test's own until the test ends and
// returns a client of it.
func serve(t *testing.T, s *Server) *client.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.Handler()}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExecProtocol(t *testing.T) {
	pods := &fakePods{}
	c := startPodIO(t, pods)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("stdin to stdout, end of input ends the command", func(t *testing.T) {
		in := strings.Repeat("0123456789", 10000) // several frames
		var out bytes.Buffer
		err := c.Exec(ctx, "default", "p", []string{"cat"}, client.StreamOptions{Stdin: strings.NewReader(in), Stdout: &out, Stderr: io.Discard})
		if err != nil || out.String() != in {
			t.Fatalf("exec cat: %v, %d bytes back of %d", err, out.Len(), len(in))
		}
	})
	t.Run("exit code and stderr", func(t *testing.T) {
		var stderr bytes.Buffer
		err := c.Exec(ctx, "default", "p", []string{"fail"}, client.StreamOptions{Stdout: io.Discard, Stderr: &stderr})
		var ee *client.ExitError
		if !errors.As(err, &ee) || ee.Code != 42 || stderr.String() != "bad thing\n" {
			t.Fatalf("exec fail: err %v, stderr %q; want exit code 42 and the stderr line", err, stderr.String())
		}
	})
	t.Run("terminal resizes reach the command", func(t *testing.T) {
		resize := make(chan client.TerminalSize, 2)
		resize <- client.TerminalSize{Width: 80, Height: 24}
		resize <- client.TerminalSize{Width: 132, Height: 50}
		var out bytes.Buffer
		err := c.Exec(ctx, "default", "p", []string{"sizes"}, client.StreamOptions{Stdout: &out, TTY: true, Stdin: blockingReader{ctx}, Resize: resize})
		if err != nil || out.String() != "80x24\n132x50\n" {
			t.Fatalf("exec sizes: %v, output %q", err, out.String())
		}
		pods.mu.Lock()
		defer pods.mu.Unlock()
		if !pods.tty {
			t.Errorf("the command did not get a terminal")
		}
	})
	t.Run("a failure before the upgrade is the daemon's message", func(t *testing.T) {
		err := c.Exec(ctx, "default", "other", []string{"cat"}, client.StreamOptions{Stdout: io.Discard})
		var se *client.StatusError
		if !errors.As(err, &se) || se.Status.Code != 400 || se.Error() != "container c is not running in pod other" {
			t.Fatalf("exec in a pod without a running container: %v", err)
		}
	})
	t.Run("attach", func(t *testing.T) {
		var out bytes.Buffer
		if err := c.Attach(ctx, "default", "p", client.StreamOptions{Stdout: &out}); err != nil || out.String() != "attached\n" {
			t.Fatalf("attach: %v, %q", err, out.String())
		}
	})
	t.Run("logs", func(t *testing.T) {
		var out bytes.Buffer
		err := c.Logs(ctx, "default", "p", client.LogOptions{Container: "x", TailLines: 3, Follow: true}, &out)
		if err != nil || out.String() != "tail=3 follow=true container=x\n" {
			t.Fatalf("logs: %v, %q", err, out.String())
		}
		err = c.Logs(ctx, "default", "q", client.LogOptions{TailLines: -1}, &out)
		if err == nil || err.Error() != "a container name must be specified for pod q, choose one of: [a b]" {
			t.Fatalf("logs of a two-container pod: %v", err)
		}
	})
	t.Run("port-forward to a closed port", func(t *testing.T) {
		_, err := c.PortForward(ctx, "default", "p", 9)
		if err == nil || !strings.Contains(err.Error(), "error forwarding port 9 to pod p") {
			t.Fatalf("port-forward: %v", err)
		}
	})
}

// blockingReader is a terminal's input: it never ends by itself.
type blockingReader struct{ ctx context.Context }

func (b blockingReader) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, io.EOF
}
