package kubelet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// LogOptions are kubectl logs' options (corev1.PodLogOptions).
type LogOptions struct {
	// Container may be empty for a pod with one container.
	Container  string
	Previous   bool
	Follow     bool
	Timestamps bool
	// TailLines: the last N lines; negative means all.
	TailLines int64
	// SinceTime: only lines written at or after it (zero: all).
	SinceTime time.Time
	// LimitBytes stops after this many bytes (0: no limit).
	LimitBytes int64
}

// ErrBadRequest marks log and exec requests that name no usable container
// (the API answers 400 with the message, as Kubernetes does).
var ErrBadRequest = errors.New("bad request")

// ContainerLogPath finds the log file of a pod's container: the current
// container's, or with previous the one before it. Errors carry
// Kubernetes' messages and wrap ErrBadRequest or are NotFound StatusErrors.
func (k *Kubelet) ContainerLogPath(ctx context.Context, ns, name, container string, previous bool) (path, containerID string, err error) {
	pod, c, err := k.podContainer(ctx, ns, name, container)
	if err != nil {
		return "", "", err
	}
	st, err := k.runtimeState(ctx, pod.UID)
	if err != nil {
		return "", "", err
	}
	cs := st.latest(c)
	if previous {
		cs = st.previous(c)
		if cs == nil {
			return "", "", fmt.Errorf("previous terminated container %q in pod %q not found: %w", c, name, ErrBadRequest)
		}
	}
	if cs == nil {
		reason := ReasonContainerCreating
		for _, s := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
			if s.Name == c && s.State.Waiting != nil {
				reason = s.State.Waiting.Reason
			}
		}
		return "", "", fmt.Errorf("container %q in pod %q is waiting to start: %s: %w", c, name, reason, ErrBadRequest)
	}
	return cs.logPath, cs.id, nil
}

// podContainer resolves the pod and the container name (the only one when
// none is given).
func (k *Kubelet) podContainer(ctx context.Context, ns, name, container string) (*corev1.Pod, string, error) {
	o, err := k.store.Get(ctx, "pods", ns, name)
	if err != nil {
		return nil, "", err
	}
	pod := o.(*corev1.Pod)
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			return nil, "", fmt.Errorf("a container name must be specified for pod %s, choose one of: [%s]: %w", name, strings.Join(names, " "), ErrBadRequest)
		}
		return pod, pod.Spec.Containers[0].Name, nil
	}
	if findContainer(pod, container) == nil {
		return nil, "", fmt.Errorf("container %s is not valid for pod %s: %w", container, name, ErrBadRequest)
	}
	return pod, container, nil
}

// Logs writes a container's log as plain text (kubectl logs): stdout and
// stderr lines go to the matching writer (pass the same writer twice to
// interleave them, as kubectl shows them).
func (k *Kubelet) Logs(ctx context.Context, ns, name string, opts LogOptions, stdout, stderr io.Writer) error {
	path, id, err := k.ContainerLogPath(ctx, ns, name, opts.Container, opts.Previous)
	if err != nil {
		return err
	}
	running := func() bool {
		resp, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		return err == nil && resp.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	if opts.Previous {
		opts.Follow = false
	}
	return ReadLogs(ctx, path, opts, stdout, stderr, running)
}

// ReadLogs turns a CRI log file ("<RFC3339Nano> <stream> <P|F> <text>"
// lines, P for a partial line continued by the next) into plain text. With
// Follow it keeps reading while running() is true.
func ReadLogs(ctx context.Context, path string, opts LogOptions, stdout, stderr io.Writer, running func() bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return apierrors.NewNotFound(corev1.Resource("logs"), path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w := &logWriter{opts: opts, stdout: stdout, stderr: stderr, limit: opts.LimitBytes}
	r := bufio.NewReader(f)
	var lines []logLine
	var pending []byte
	readAll := func(collect bool) error {
		for {
			b, err := r.ReadBytes('\n')
			if len(b) > 0 && b[len(b)-1] != '\n' {
				pending = append(pending, b...) // an incomplete write: wait for the rest
				return nil
			}
			if len(b) > 0 {
				full := append(pending, b...)
				pending = nil
				l, ok := parseCRILine(full)
				if ok {
					if collect {
						lines = append(lines, l)
					} else if err := w.write(l); err != nil {
						return err
					}
				}
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if err := readAll(true); err != nil {
		return err
	}
	lines = joinPartials(lines)
	if opts.TailLines >= 0 && int64(len(lines)) > opts.TailLines {
		lines = lines[int64(len(lines))-opts.TailLines:]
	}
	for _, l := range lines {
		if err := w.write(l); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		alive := running()
		if err := readAll(false); err != nil {
			if errors.Is(err, errLimit) {
				return nil
			}
			return err
		}
		if !alive {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type logLine struct {
	ts      time.Time
	stream  string
	partial bool
	text    []byte
}

func parseCRILine(b []byte) (logLine, bool) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	parts := bytes.SplitN(b, []byte(" "), 4)
	if len(parts) < 3 {
		return logLine{}, false
	}
	ts, err := time.Parse(time.RFC3339Nano, string(parts[0]))
	if err != nil {
		return logLine{}, false
	}
	l := logLine{ts: ts, stream: string(parts[1]), partial: string(parts[2]) == "P"}
	if len(parts) == 4 {
		l.text = parts[3]
	}
	return l, true
}

// joinPartials merges P lines into the F line that ends them.
func joinPartials(in []logLine) []logLine {
	var out []logLine
	var cur *logLine
	for _, l := range in {
		if cur != nil && cur.stream == l.stream {
			cur.text = append(cur.text, l.text...)
			cur.partial = l.partial
		} else {
			if cur != nil {
				out = append(out, *cur)
			}
			c := l
			c.text = append([]byte(nil), l.text...)
			cur = &c
		}
		if !cur.partial {
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

var errLimit = errors.New("limit reached")

type logWriter struct {
	opts           LogOptions
	stdout, stderr io.Writer
	limit          int64
	written        int64
}

func (w *logWriter) write(l logLine) error {
	if !w.opts.SinceTime.IsZero() && l.ts.Before(w.opts.SinceTime) {
		return nil
	}
	var b []byte
	if w.opts.Timestamps {
		b = append(b, l.ts.UTC().Format(time.RFC3339Nano)...)
		b = append(b, ' ')
	}
	b = append(b, l.text...)
	if !l.partial {
		b = append(b, '\n')
	}
	if w.limit > 0 && w.written+int64(len(b)) > w.limit {
		b = b[:w.limit-w.written]
	}
	out := w.stdout
	if l.stream == "stderr" {
		out = w.stderr
	}
	n, err := out.Write(b)
	w.written += int64(n)
	if err != nil {
		return err
	}
	if w.limit > 0 && w.written >= w.limit {
		return errLimit
	}
	return nil
}

// ContainerID returns the runtime ID of a pod's running container, for
// exec, attach and cp (the runtime's Exec/Attach take it). Errors carry
// Kubernetes' messages.
func (k *Kubelet) ContainerID(ctx context.Context, ns, name, container string) (string, error) {
	pod, c, err := k.podContainer(ctx, ns, name, container)
	if err != nil {
		return "", err
	}
	st, err := k.runtimeState(ctx, pod.UID)
	if err != nil {
		return "", err
	}
	cs := st.latest(c)
	if cs == nil || !cs.running() {
		return "", fmt.Errorf("container %s is not running in pod %s: %w", c, name, ErrBadRequest)
	}
	return cs.id, nil
}

// SandboxID returns the runtime ID of a pod's ready sandbox, for
// port-forward.
func (k *Kubelet) SandboxID(ctx context.Context, ns, name string) (string, error) {
	o, err := k.store.Get(ctx, "pods", ns, name)
	if err != nil {
		return "", err
	}
	st, err := k.runtimeState(ctx, o.GetUID())
	if err != nil {
		return "", err
	}
	sb := st.current()
	if sb == nil || !sb.ready {
		return "", fmt.Errorf("pod %s has no running sandbox: %w", name, ErrBadRequest)
	}
	return sb.id, nil
}

// ExecSync runs cmd in a pod's container and returns its output and exit
// code (for `peapod exec` without a terminal, and for probes).
func (k *Kubelet) ExecSync(ctx context.Context, ns, name, container string, cmd []string, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error) {
	id, err := k.ContainerID(ctx, ns, name, container)
	if err != nil {
		return nil, nil, 0, err
	}
	resp, err := k.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: int64(timeout.Seconds())})
	if err != nil {
		return nil, nil, 0, err
	}
	return resp.GetStdout(), resp.GetStderr(), resp.GetExitCode(), nil
}
