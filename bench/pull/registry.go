package main

// TEMPORARY until internal/registrytest lands: a plain-HTTP docker-registry
// on loopback.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type registry struct {
	Host string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRegistry(ctx context.Context, dir string) (*registry, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "config.yml")
	y := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(conf, []byte(y), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("/usr/bin/docker-registry", "serve", conf)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &registry{Host: host, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()
	for range 100 {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.Close()
	return nil, fmt.Errorf("registry on %s did not start", host)
}

func (r *registry) Push(ctx context.Context, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(tag, img, remote.WithContext(ctx))
}

func (r *registry) Close() {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}
