package runc_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/peapod/peapod/internal/container/runc"
)

// syncBuffer is a bytes.Buffer safe to read while the exec writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// An exec's terminal starts with the client's first size and follows every
// later one, as `kubectl exec -t` users see in `stty size`.
func TestExecTerminalWindowSize(t *testing.T) {
	r, id, _ := started(t, "sleep", "1000")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	tests := []struct {
		name  string
		sizes []runc.Winsize
		want  string
	}{
		{"initial size", []runc.Winsize{{Width: 123, Height: 45}}, "45 123"},
		{"no size sent", nil, "24 80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resize := make(chan runc.Winsize, len(tt.sizes))
			for _, s := range tt.sizes {
				resize <- s
			}
			close(resize)
			proc := specs.Process{Args: []string{"stty", "size"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
			var out bytes.Buffer
			code, err := r.ExecTerminal(ctx, id, proc, nil, &out, resize)
			if err != nil || code != 0 {
				t.Fatalf("exec = %d, %v (output %q)", code, err, out.String())
			}
			if got := strings.TrimSpace(out.String()); got != tt.want {
				t.Errorf("stty size = %q (exit %d), want %q", got, code, tt.want)
			}
		})
	}

	t.Run("resize while running", func(t *testing.T) {
		resize := make(chan runc.Winsize, 1)
		resize <- runc.Winsize{Width: 90, Height: 20}
		pr, pw := io.Pipe()
		defer pw.Close()
		proc := specs.Process{Args: []string{"sh", "-c", "stty size; while read x; do stty size; done"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			_, err := r.ExecTerminal(ctx, id, proc, pr, &out, resize)
			done <- err
		}()
		waitFor(t, ctx, &out, "20 90", nil)
		resize <- runc.Winsize{Width: 100, Height: 30}
		// runc applies the size when our SIGWINCH reaches it: ask again
		// until the new size shows.
		waitFor(t, ctx, &out, "30 100", func() { _, _ = pw.Write([]byte("\n")) })
		_, _ = pw.Write([]byte{4}) // ^D: end of input on a terminal
		pw.Close()
		if err := <-done; err != nil {
			t.Fatalf("exec: %v", err)
		}
	})
}

func waitFor(t *testing.T, ctx context.Context, out *syncBuffer, want string, poke func()) {
	t.Helper()
	for !strings.Contains(out.String(), want) {
		if poke != nil {
			poke()
		}
		select {
		case <-ctx.Done():
			got := out.String()
			if len(got) > 200 {
				got = "..." + got[len(got)-200:]
			}
			t.Fatalf("output never showed %q: %q", want, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
