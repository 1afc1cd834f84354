// Package cri serves the Kubernetes Container Runtime Interface (CRI v1,
// k8s.io/cri-api runtime.v1 RuntimeService and ImageService) on a unix
// socket, so that a kubelet, crictl or critest can use peapod as their
// container runtime.
//
// The package only translates: requests go to the runtime (sandboxes and
// containers, seen through the "cri" owner's view, so that a kubelet never
// sees — and never garbage-collects — the pods of peapod's own pod manager)
// and to the image service; their errors become gRPC status codes here and
// nowhere else. One file per CRI area: sandbox.go, container.go, image.go,
// streaming.go (exec, attach, port-forward), stats.go, status.go.
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
)

// Names the server reports in Version.
const (
	RuntimeName       = "peapod"
	RuntimeAPIVersion = "v1"
	// kubeAPIVersion is the CRI "version" field: the version of the
	// legacy kubelet API, which every v1 runtime reports as 0.1.0.
	kubeAPIVersion = "0.1.0"
)

// DefaultStreamAddress is where the streaming server (exec, attach,
// port-forward) listens when Options.StreamAddress is empty: loopback and a
// free port, as containerd's default stream_server_address. The kubelet
// proxies the streams, so they need not be reachable from elsewhere.
const DefaultStreamAddress = "127.0.0.1:0"

// SocketMode is the permission of the CRI socket: root and the socket's
// group only, since whoever can talk to it can run anything as root.
const SocketMode = 0o660

// Options configure a Server.
type Options struct {
	// Runtime runs the CRI's sandboxes and containers. Required.
	Runtime Runtime
	// Images pulls and keeps images. Required.
	Images Images
	// ImageFsDir is the directory the image store lives in, for
	// ImageFsInfo.
	ImageFsDir string
	// ContainersDir holds the containers' bundle directories (ID/), for a
	// runtime whose verbose status does not name the bundle.
	ContainersDir string
	// ContainerFsDir is the directory the containers' writable layers live
	// in, for ImageFsInfo's container filesystem; empty means ImageFsDir.
	ContainerFsDir string
	// NetworkReady reports whether the pod network can set up pods: nil
	// when it can. Nil means always ready.
	NetworkReady func(ctx context.Context) error
	// PinnedImages are image names reported as pinned (the sandbox image):
	// a kubelet never garbage-collects a pinned image.
	PinnedImages []string
	// StreamAddress is the streaming server's host:port; empty means
	// DefaultStreamAddress.
	StreamAddress string
	// Version is peapod's version, reported as RuntimeVersion.
	Version string
	// Logger receives one record per failed call; nil means slog.Default().
	Logger *slog.Logger
}

// Server is the CRI gRPC server.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	opts    Options
	rt      Runtime
	images  Images
	log     *slog.Logger
	streams streaming.Server
	fsCache fsUsageCache
	cpu     cpuRates

	mu       sync.Mutex
	grpc     *grpc.Server
	streamLn net.Listener
}

var (
	_ runtimeapi.RuntimeServiceServer = (*Server)(nil)
	_ runtimeapi.ImageServiceServer   = (*Server)(nil)
)

// New checks the options and prepares a server; nothing listens until Serve.
func New(opts Options) (*Server, error) {
	if opts.Runtime == nil {
		return nil, errors.New("cri: no runtime")
	}
	if opts.Images == nil {
		return nil, errors.New("cri: no image service")
	}
	if opts.StreamAddress == "" {
		opts.StreamAddress = DefaultStreamAddress
	}
	if opts.ContainerFsDir == "" {
		opts.ContainerFsDir = opts.ImageFsDir
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{opts: opts, rt: opts.Runtime, images: opts.Images, log: log.With("component", "cri")}, nil
}

// Serve listens on the unix socket at path (replacing a stale one), starts
// the streaming server, and serves until ctx ends; then it stops both and
// removes the socket.
func (s *Server) Serve(ctx context.Context, path string) error {
	ln, err := listenUnix(path)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller made.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	streamLn, err := net.Listen("tcp", s.opts.StreamAddress)
	if err != nil {
		ln.Close()
		return fmt.Errorf("cri: streaming server: listen on %s: %w", s.opts.StreamAddress, err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = streamLn.Addr().String()
	// The base URL is given, not derived in Start, so that an Exec call
	// racing the server's start never hands out port 0.
	cfg.BaseURL = &url.URL{Scheme: "http", Host: streamLn.Addr().String()}
	streams, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		ln.Close()
		streamLn.Close()
		return fmt.Errorf("cri: streaming server: %w", err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(16<<20), grpc.MaxSendMsgSize(16<<20))
	runtimeapi.RegisterRuntimeServiceServer(gs, s)
	runtimeapi.RegisterImageServiceServer(gs, s)

	s.mu.Lock()
	s.streams, s.grpc, s.streamLn = streams, gs, streamLn
	s.mu.Unlock()

	hs := &http.Server{Handler: streams}
	errc := make(chan error, 2)
	go func() {
		if err := hs.Serve(streamLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("cri: streaming server: %w", err)
		}
	}()
	go func() {
		if err := gs.Serve(ln); err != nil {
			errc <- fmt.Errorf("cri: serve: %w", err)
		}
	}()
	s.log.Info("CRI server listening", "socket", ln.Addr().String(), "streaming", cfg.BaseURL.String())
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	gs.Stop()
	hs.Close()
	return err
}

// StreamURL is the base URL of the streaming server, once Serve runs.
func (s *Server) StreamURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streamLn == nil {
		return ""
	}
	return "http://" + s.streamLn.Addr().String()
}

// listenUnix makes the socket with SocketMode, replacing a socket left by a
// previous daemon (but never another kind of file).
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("cri: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("cri: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cri: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("cri: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, SocketMode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("cri: chmod %s: %w", path, err)
	}
	return ln, nil
}

// fail logs a failed call and turns its error into a gRPC status. Errors
// from below never carry secrets (the image service redacts them), so the
// message is logged and returned whole.
func (s *Server) fail(op string, err error) error {
	st := toStatus(err)
	s.log.Warn("CRI call failed", "call", op, "code", codeOf(st).String(), "error", err)
	return st
}
