package apiserver

// A pod's log, exec, attach and portforward subresources, on Kubernetes'
// paths (/api/v1/namespaces/NS/pods/NAME/{log,exec,attach,portforward})
// with Kubernetes' query parameters. The log is plain text streamed as it
// is read. exec and attach upgrade the connection to package channel's
// framing; portforward upgrades it to a raw byte pipe to one port of the
// pod (one connection per forwarded connection). Every check that can fail
// (pod, container, running, dial) happens before the upgrade, so errors
// reach the client as an ordinary Status answer.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/channel"
	"github.com/peapod/peapod/internal/kubelet"
)

// PodIO is what the pod subresources need from the pod manager
// (*kubelet.Kubelet).
type PodIO interface {
	Logs(ctx context.Context, ns, name string, opts kubelet.LogOptions, stdout, stderr io.Writer) error
	ContainerID(ctx context.Context, ns, name, container string) (string, error)
	Exec(ctx context.Context, ns, name, container string, cmd []string, s kubelet.Streams) (int, error)
	Attach(ctx context.Context, ns, name, container string, s kubelet.Streams) error
	DialPod(ctx context.Context, ns, name string, port int32) (net.Conn, error)
}

var _ PodIO = (*kubelet.Kubelet)(nil)

// podIOServer serves the subresources with the pod manager.
type podIOServer struct {
	podIO PodIO
	log   *slog.Logger
}

// SetPodIO gives the server the pod manager and serves the pod
// subresources with it. Call it once, before Serve.
func (s *Server) SetPodIO(p PodIO) {
	h := &podIOServer{podIO: p, log: s.log}
	s.mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{name}/log", h.podLog)
	for _, sub := range []string{"exec", "attach"} {
		s.mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{name}/"+sub, h.podStream)
		s.mux.HandleFunc("POST /api/v1/namespaces/{ns}/pods/{name}/"+sub, h.podStream)
	}
	s.mux.HandleFunc("GET /api/v1/namespaces/{ns}/pods/{name}/portforward", h.podPortForward)
	s.mux.HandleFunc("POST /api/v1/namespaces/{ns}/pods/{name}/portforward", h.podPortForward)
}

// writePodIOError answers with Kubernetes' status for err: a request that
// names no usable container is a 400 with kubelet's message.
func writePodIOError(w http.ResponseWriter, err error) {
	if errors.Is(err, kubelet.ErrBadRequest) {
		msg := strings.TrimSuffix(err.Error(), ": "+kubelet.ErrBadRequest.Error())
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, msg)
		return
	}
	writeError(w, err)
}

func queryBool(q map[string][]string, key string) bool {
	v := ""
	if l := q[key]; len(l) > 0 {
		v = l[0]
	}
	b, _ := strconv.ParseBool(v)
	return b
}

// flushWriter flushes after every write, so that `logs -f` sees a line as
// soon as it is read.
type flushWriter struct {
	w       http.ResponseWriter
	started bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	if !f.started {
		f.started = true
		f.w.Header().Set("Content-Type", "text/plain")
		f.w.WriteHeader(http.StatusOK)
	}
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

func (s *podIOServer) podLog(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	opts := kubelet.LogOptions{
		Container:  q.Get("container"),
		Follow:     queryBool(q, "follow"),
		Previous:   queryBool(q, "previous"),
		Timestamps: queryBool(q, "timestamps"),
		TailLines:  -1,
	}
	for key, dst := range map[string]*int64{"tailLines": &opts.TailLines, "limitBytes": &opts.LimitBytes} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid %s %q: must be a non-negative integer", key, v))
				return
			}
			*dst = n
		}
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid sinceSeconds %q: must be greater than 0", v))
			return
		}
		opts.SinceTime = time.Now().Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid sinceTime %q: %v", v, err))
			return
		}
		opts.SinceTime = t
	}
	fw := &flushWriter{w: w}
	err := s.podIO.Logs(r.Context(), r.PathValue("ns"), r.PathValue("name"), opts, fw, fw)
	if err != nil && !fw.started {
		writePodIOError(w, err)
		return
	}
	if err != nil {
		s.log.Debug("pod log stream ended", "pod", r.PathValue("ns")+"/"+r.PathValue("name"), "err", err)
	}
	if !fw.started {
		fw.Write(nil)
	}
}

// upgrade switches the connection to proto after checking the client asked
// for it. The returned reader holds what the client sent after its request.
func upgrade(w http.ResponseWriter, r *http.Request, proto string) (net.Conn, *bufio.Reader, bool) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), proto) {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("this subresource needs a connection upgrade to %s (Upgrade and Connection headers)", proto))
		return nil, nil, false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, "connection cannot be upgraded")
		return nil, nil, false
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, false
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", proto); err != nil {
		conn.Close()
		return nil, nil, false
	}
	return conn, brw.Reader, true
}

// podStream serves exec and attach.
func (s *podIOServer) podStream(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	exec := strings.HasSuffix(r.URL.Path, "/exec")
	q := r.URL.Query()
	container := q.Get("container")
	tty, stdin, stdout, stderr := queryBool(q, "tty"), queryBool(q, "stdin"), queryBool(q, "stdout"), queryBool(q, "stderr")
	if _, ok := q["stdout"]; !ok {
		stdout = true // kubectl's default
	}
	if tty && stderr {
		stderr = false // a terminal has one output stream
	}
	cmd := q["command"]
	if exec && len(cmd) == 0 {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "you must specify at least one command for the container")
		return
	}
	if !stdin && !stdout && !stderr {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "you must specify at least one of stdin, stdout, stderr")
		return
	}
	// Refuse a pod or container that cannot take the stream before the
	// upgrade, with kubelet's message.
	if _, err := s.podIO.ContainerID(r.Context(), ns, name, container); err != nil {
		writePodIOError(w, err)
		return
	}
	conn, br, ok := upgrade(w, r, channel.Protocol)
	if !ok {
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	fw := channel.NewWriter(conn)
	streams := kubelet.Streams{TTY: tty}
	var stdinW *io.PipeWriter
	if stdin {
		var pr *io.PipeReader
		pr, stdinW = io.Pipe()
		streams.Stdin = pr
	}
	if stdout {
		streams.Stdout = fw.Stream(channel.Stdout)
	}
	if stderr {
		streams.Stderr = fw.Stream(channel.Stderr)
	}
	resize := make(chan kubelet.TerminalSize, 4)
	streams.Resize = resize
	// The reader owns resize and stdin: it ends them when the client's
	// side ends; a client gone entirely ends the session.
	go func() {
		defer close(resize)
		closeStdin := func() {
			if stdinW != nil {
				stdinW.Close()
				stdinW = nil
			}
		}
		defer closeStdin()
		for {
			ch, p, err := channel.ReadFrame(br)
			if err != nil {
				cancel()
				return
			}
			switch ch {
			case channel.Stdin:
				if stdinW != nil {
					if _, err := stdinW.Write(p); err != nil {
						closeStdin()
					}
				}
			case channel.Resize:
				var size kubelet.TerminalSize
				if json.Unmarshal(p, &size) == nil {
					select {
					case resize <- size:
					default:
					}
				}
			case channel.Close:
				if len(p) == 1 && p[0] == channel.Stdin {
					closeStdin()
				}
			}
		}
	}()

	var status metav1.Status
	if exec {
		code, err := s.podIO.Exec(ctx, ns, name, container, cmd, streams)
		status = execStatus(code, err)
	} else {
		status = execStatus(0, s.podIO.Attach(ctx, ns, name, container, streams))
	}
	data, _ := json.Marshal(status)
	_ = fw.WriteFrame(channel.Error, data)
}

// execStatus is the final Status Kubernetes sends on the error channel:
// Success, a NonZeroExitCode failure carrying the exit code, or the
// failure's message.
func execStatus(code int, err error) metav1.Status {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}}
	switch {
	case err != nil:
		st.Status = metav1.StatusFailure
		st.Reason = metav1.StatusReasonInternalError
		st.Message = err.Error()
		var ast apierrors.APIStatus
		if errors.As(err, &ast) {
			st.Reason = ast.Status().Reason
		}
	case code != 0:
		st.Status = metav1.StatusFailure
		st.Reason = "NonZeroExitCode"
		st.Message = fmt.Sprintf("command terminated with non-zero exit code: exit status %d", code)
		st.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: strconv.Itoa(code)}}}
	default:
		st.Status = metav1.StatusSuccess
	}
	return st
}

// podPortForward forwards one connection to one port of the pod:
// ?ports=PORT (Kubernetes' parameter; exactly one port per connection).
func (s *podIOServer) podPortForward(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("ns"), r.PathValue("name")
	ports := r.URL.Query()["ports"]
	if len(ports) != 1 {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "exactly one port must be given as ?ports=PORT per connection")
		return
	}
	port, err := strconv.ParseUint(ports[0], 10, 16)
	if err != nil || port == 0 {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid port %q", ports[0]))
		return
	}
	podConn, err := s.podIO.DialPod(r.Context(), ns, name, int32(port))
	if err != nil {
		var ae apierrors.APIStatus
		if !errors.Is(err, kubelet.ErrBadRequest) && !errors.As(err, &ae) {
			// The pod refused or did not answer: kubelet's wording.
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError,
				fmt.Sprintf("error forwarding port %d to pod %s: %v", port, name, err))
			return
		}
		writePodIOError(w, err)
		return
	}
	defer podConn.Close()
	conn, br, ok := upgrade(w, r, channel.RawProtocol)
	if !ok {
		return
	}
	defer conn.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(podConn, br)
		if tc, ok := podConn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(conn, podConn)
	if uc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = uc.CloseWrite()
	}
	// The pod closed its side; the client's side ends with its close.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}
