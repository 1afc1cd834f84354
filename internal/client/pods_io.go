package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/channel"
)

// LogOptions are `peapod logs` options (Kubernetes' PodLogOptions).
type LogOptions struct {
	Container  string
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines < 0 means all lines.
	TailLines int64
}

func podPath(ns, name, sub string) string {
	return "/api/v1/namespaces/" + url.PathEscape(ns) + "/pods/" + url.PathEscape(name) + "/" + sub
}

// Logs copies a container's log to w until it ends (or, with Follow, until
// the container stops or ctx ends).
func (c *Client) Logs(ctx context.Context, ns, name string, opts LogOptions, w io.Writer) error {
	q := url.Values{}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	for k, v := range map[string]bool{"follow": opts.Follow, "previous": opts.Previous, "timestamps": opts.Timestamps} {
		if v {
			q.Set(k, "true")
		}
	}
	if opts.TailLines >= 0 {
		q.Set("tailLines", strconv.FormatInt(opts.TailLines, 10))
	}
	resp, err := c.do(ctx, http.MethodGet, podPath(ns, name, "log")+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

// StreamOptions say which streams an exec or attach session carries.
type StreamOptions struct {
	Container string
	Stdin     io.Reader // nil: no input
	Stdout    io.Writer
	Stderr    io.Writer // ignored with TTY
	TTY       bool
	// Resize delivers terminal sizes to send; the first one is the
	// initial size. May be nil.
	Resize <-chan TerminalSize
}

// TerminalSize is a terminal's size in characters.
type TerminalSize struct{ Width, Height uint16 }

// ExitError is a command that ended with a non-zero exit code.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// Exec runs cmd in a pod's container with the given streams. A non-zero
// exit is an *ExitError.
func (c *Client) Exec(ctx context.Context, ns, name string, cmd []string, opts StreamOptions) error {
	q := url.Values{"command": cmd}
	return c.stream(ctx, podPath(ns, name, "exec"), q, opts)
}

// Attach connects the streams to a pod's container's main process.
func (c *Client) Attach(ctx context.Context, ns, name string, opts StreamOptions) error {
	return c.stream(ctx, podPath(ns, name, "attach"), url.Values{}, opts)
}

// upgrade sends a request asking for an upgrade to proto and returns the
// upgraded connection, or the daemon's error.
func (c *Client) upgrade(ctx context.Context, path, proto string) (io.ReadWriteCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", proto)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the peapod daemon at %s (is `peapod daemon` running?): %w", c.host, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return nil, decodeStatus(resp)
	}
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return nil, errors.New("the daemon's upgraded connection is not writable")
	}
	return rwc, nil
}

func (c *Client) stream(ctx context.Context, path string, q url.Values, opts StreamOptions) error {
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	q.Set("stdout", strconv.FormatBool(opts.Stdout != nil))
	q.Set("stderr", strconv.FormatBool(opts.Stderr != nil && !opts.TTY))
	q.Set("stdin", strconv.FormatBool(opts.Stdin != nil))
	q.Set("tty", strconv.FormatBool(opts.TTY))
	conn, err := c.upgrade(ctx, path+"?"+q.Encode(), channel.Protocol)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	fw := channel.NewWriter(conn)
	var wg sync.WaitGroup
	done := make(chan struct{})
	defer func() { close(done); wg.Wait() }()
	if opts.Resize != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case size, ok := <-opts.Resize:
					if !ok {
						return
					}
					data, _ := json.Marshal(size)
					if fw.WriteFrame(channel.Resize, data) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	if opts.Stdin != nil {
		// Not waited for: a read from a terminal cannot be interrupted.
		go func() {
			if _, err := io.Copy(fw.Stream(channel.Stdin), opts.Stdin); err == nil {
				_ = fw.WriteFrame(channel.Close, []byte{channel.Stdin})
			}
		}()
	}
	for {
		ch, p, err := channel.ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return errors.New("the daemon closed the stream without a final status")
			}
			return fmt.Errorf("stream from the daemon: %w", err)
		}
		switch ch {
		case channel.Stdout:
			if opts.Stdout != nil {
				_, _ = opts.Stdout.Write(p)
			}
		case channel.Stderr:
			if opts.Stderr != nil {
				_, _ = opts.Stderr.Write(p)
			}
		case channel.Error:
			return statusError(p)
		}
	}
}

// statusError turns the final Status into nil, an *ExitError or a
// *StatusError.
func statusError(p []byte) error {
	var st metav1.Status
	if err := json.Unmarshal(p, &st); err != nil {
		return fmt.Errorf("bad final status from the daemon: %w", err)
	}
	if st.Status == metav1.StatusSuccess {
		return nil
	}
	if st.Reason == "NonZeroExitCode" && st.Details != nil {
		for _, c := range st.Details.Causes {
			if c.Type == "ExitCode" {
				if n, err := strconv.Atoi(c.Message); err == nil {
					return &ExitError{Code: n}
				}
			}
		}
	}
	return &StatusError{Status: st}
}

// PortForward opens a connection to port inside the pod's network
// namespace; the caller copies bytes both ways and closes it.
func (c *Client) PortForward(ctx context.Context, ns, name string, port uint16) (io.ReadWriteCloser, error) {
	q := url.Values{"ports": {strconv.Itoa(int(port))}}
	return c.upgrade(ctx, podPath(ns, name, "portforward")+"?"+q.Encode(), channel.RawProtocol)
}
