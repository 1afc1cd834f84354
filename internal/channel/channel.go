// Package channel frames the streams of `peapod exec` and `attach` on one
// upgraded HTTP/1.1 connection to the daemon's API socket.
//
// Kubernetes multiplexes these streams over WebSocket messages
// (v5.channel.k8s.io), where each message starts with a channel byte. On a
// unix socket between our own CLI and daemon a WebSocket buys nothing, so
// the connection is upgraded with a plain `Upgrade: ` + Protocol and then
// carries frames with the same channel numbers: one channel byte, a
// big-endian uint32 payload length, the payload.
//
//   - 0 stdin (client to server), 1 stdout, 2 stderr (server to client);
//   - 3 error: the final metav1.Status JSON (Success, or Failure with reason
//     NonZeroExitCode and an ExitCode cause, as the Kubernetes API sends it);
//   - 4 resize (client to server): {"Width":W,"Height":H};
//   - 255 close: the payload's one byte names a channel that has ended
//     (the client sends close(0) at the end of its input).
//
// Port-forward needs no framing: each forwarded connection is one upgraded
// connection whose bytes go to and from the pod's port unchanged.
package channel

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Protocol is the Upgrade header value of an exec or attach connection.
const Protocol = "peapod-channel.v1"

// RawProtocol is the Upgrade header value of a port-forward connection.
const RawProtocol = "peapod-portforward.v1"

// Channel numbers (Kubernetes' remotecommand channels).
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
	Error  byte = 3
	Resize byte = 4
	Close  byte = 255
)

// MaxPayload bounds one frame; longer writes are split.
const MaxPayload = 32 << 10

// Writer writes frames; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a frame writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// WriteFrame writes p on channel ch, split into frames of MaxPayload.
func (w *Writer) WriteFrame(ch byte, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		n := min(len(p), MaxPayload)
		var hdr [5]byte
		hdr[0] = ch
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		if _, err := w.w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// Stream returns an io.Writer that writes on channel ch.
func (w *Writer) Stream(ch byte) io.Writer { return streamWriter{w, ch} }

type streamWriter struct {
	w  *Writer
	ch byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.w.WriteFrame(s.ch, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrame reads one frame. It returns io.EOF at a clean end between
// frames.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("read frame: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxPayload {
		return 0, nil, fmt.Errorf("read frame: payload of %d bytes is over the limit of %d", n, MaxPayload)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, fmt.Errorf("read frame: %w", io.ErrUnexpectedEOF)
	}
	return hdr[0], p, nil
}
