package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/peapod/peapod/internal/runtime"
)

// Streamer runs the streams behind Exec, Attach and PortForward
// (*runtime.View does, for the CRI and the pod manager alike). A Runtime
// that does not implement it serves no streams.
type Streamer interface {
	Exec(ctx context.Context, containerID string, cmd []string, s runtime.Streams) (int, error)
	Attach(ctx context.Context, containerID string, s runtime.Streams) error
	PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error
}

var _ Streamer = (*runtime.View)(nil)

// containerInfo is what the server reads from a container's verbose
// status "info" JSON.
type containerInfo struct {
	Pid       int    `json:"pid"`
	Bundle    string `json:"bundle"`
	SandboxID string `json:"sandboxID"`
}

// sandboxInfo is what the server reads from a sandbox's verbose status.
type sandboxInfo struct {
	Pid   int    `json:"pid"`
	NetNS string `json:"netns"`
}

// container finds a container's status and bundle directory: from the
// verbose info's "bundle", else Options.ContainersDir/ID.
func (s *Server) container(ctx context.Context, id string) (*runtimeapi.ContainerStatus, containerInfo, error) {
	resp, err := s.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id, Verbose: true})
	if err != nil {
		return nil, containerInfo{}, err
	}
	var info containerInfo
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, info, fmt.Errorf("container %s: verbose info: %w", id, err)
		}
	}
	if info.Bundle == "" && s.opts.ContainersDir != "" {
		info.Bundle = filepath.Join(s.opts.ContainersDir, resp.GetStatus().GetId())
	}
	if info.Bundle == "" {
		return nil, info, fmt.Errorf("container %s: the runtime does not say where its bundle is", id)
	}
	return resp.GetStatus(), info, nil
}

func (s *Server) sandbox(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, sandboxInfo, error) {
	resp, err := s.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return nil, sandboxInfo{}, err
	}
	var info sandboxInfo
	if raw := resp.GetInfo()["info"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &info); err != nil {
			return nil, info, fmt.Errorf("pod sandbox %s: verbose info: %w", id, err)
		}
	}
	return resp.GetStatus(), info, nil
}

// processSpec reads the container's process from its bundle's config.json.
func processSpec(bundle string) (specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return specs.Process{}, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return specs.Process{}, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	if spec.Process == nil {
		return specs.Process{}, fmt.Errorf("%s/config.json has no process", bundle)
	}
	return *spec.Process, nil
}

// terminalSizes passes the streaming server's sizes on in the runtime's
// type until in closes.
func terminalSizes(in <-chan remotecommand.TerminalSize) <-chan runtime.TerminalSize {
	if in == nil {
		return nil
	}
	out := make(chan runtime.TerminalSize)
	go func() {
		defer close(out)
		for ts := range in {
			out <- runtime.TerminalSize{Width: ts.Width, Height: ts.Height}
		}
	}()
	return out
}

// streams is the runtime's view of a streaming server session; a nil
// WriteCloser becomes a nil Writer (output discarded).
func streams(in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) runtime.Streams {
	s := runtime.Streams{Stdin: in, TTY: tty, Resize: terminalSizes(resize)}
	if out != nil {
		s.Stdout = out
	}
	if errw != nil {
		s.Stderr = errw
	}
	return s
}
