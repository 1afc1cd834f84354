// Package apiserver serves peapod's REST API on a unix socket for the CLI.
//
// Paths are shaped like the Kubernetes API: Kubernetes objects will live
// under /api/v1/..., and what Kubernetes has no type for (images, registry
// login) under /apis/peapod.io/v1/. Errors are metav1.Status objects.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/api"
	objstore "github.com/peapod/peapod/internal/store"
)

// Version is set at build time; "dev" otherwise.
var Version = "dev"

// Server is the API server. Create it with New, then call Serve.
type Server struct {
	images    ImageService
	nodeCreds NodeCredentials
	objects   *objstore.Store // Kubernetes objects (core.go); nil until SetObjectStore
	log       *slog.Logger
	mux       *http.ServeMux
}

// New returns a server backed by the given services. nodeCreds may be nil.
func New(images ImageService, nodeCreds NodeCredentials, log *slog.Logger) *Server {
	s := &Server{images: images, nodeCreds: nodeCreds, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET "+api.VersionPath, s.version)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	s.routeImages()
	s.routeCore()
	s.routeApps()
	return s
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve listens on the unix socket at path (mode 0660, root only) until ctx
// ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	// A socket file left by a daemon that died is in the way.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("api socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return fmt.Errorf("api socket: %w", err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info("api listening", "socket", path)
	err = srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Version{
		Version:   Version,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeStatus answers with a Kubernetes Status object.
func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  msg,
		Reason:   reason,
		Code:     int32(code),
	})
}

// decodeBody decodes a JSON request body strictly: an unknown field is an
// error rather than silently ignored.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode request body: %w", err)
	}
	return nil
}
