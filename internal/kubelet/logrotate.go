package kubelet

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rotatedTimeFormat is the suffix of a rotated log, kubelet's
// "<log>.20060102-150405" (it sorts by time as a string).
const rotatedTimeFormat = "20060102-150405"

// rotateLogs is one round of kubelet's container log manager: the log of
// every running container that grew beyond ContainerLogMaxSize is renamed
// to <log>.<timestamp> and the runtime reopens the log, so conmon writes a
// fresh file at the same path (which `logs` reads). At most
// ContainerLogMaxFiles files stay per container, the current one
// included; rotated files other than the newest are gzipped.
func (k *Kubelet) rotateLogs(ctx context.Context) {
	resp, err := k.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		k.log.Warn("log rotation: list containers", "err", err)
		return
	}
	for _, c := range resp.GetContainers() {
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		st, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.GetId()})
		if err != nil || st.GetStatus().GetLogPath() == "" {
			continue
		}
		path := st.GetStatus().GetLogPath()
		fi, err := os.Stat(path)
		if err != nil || fi.Size() < k.opts.ContainerLogMaxSize {
			continue
		}
		if err := k.rotateLog(ctx, c.GetId(), path); err != nil {
			k.log.Warn("rotate container log", "container", c.GetId(), "path", path, "err", err)
		}
	}
}

// rotateLog rotates one container's log now.
func (k *Kubelet) rotateLog(ctx context.Context, id, path string) error {
	rotated, err := rotatedLogs(path)
	if err != nil {
		return err
	}
	// Room for the file about to be rotated: current + rotated <= max.
	for len(rotated) > max(k.opts.ContainerLogMaxFiles-2, 0) {
		if err := os.Remove(rotated[0]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		rotated = rotated[1:]
	}
	for _, r := range rotated {
		if !strings.HasSuffix(r, ".gz") {
			if err := compressLog(r); err != nil {
				return err
			}
		}
	}
	target := path + "." + k.clock.Now().UTC().Format(rotatedTimeFormat)
	if _, err := os.Stat(target); err == nil {
		return nil // rotated this second already; the next round will do
	}
	if err := os.Rename(path, target); err != nil {
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	if _, err := k.rt.ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		// Put the file back, or the container's output would go to a
		// file nobody reads.
		if rerr := os.Rename(target, path); rerr != nil {
			k.log.Warn("restore container log after a failed reopen", "path", path, "err", rerr)
		}
		return fmt.Errorf("reopen log of container %s: %w", id, err)
	}
	k.log.Debug("rotated container log", "container", id, "path", path, "to", target)
	return nil
}

// rotatedLogs lists a log's rotated files, oldest first; half-written
// compressions (".tmp") are removed.
func rotatedLogs(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if strings.HasSuffix(m, ".tmp") {
			_ = os.Remove(m)
			continue
		}
		out = append(out, m)
	}
	sort.Strings(out)
	return out, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// compressLog gzips a rotated log to <name>.gz and removes it.
func compressLog(name string) error {
	in, err := os.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := name + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name+".gz")
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compress %s: %w", name, err)
	}
	return os.Remove(name)
}

// removeLogs removes a container's log with its rotated files.
func removeLogs(path string) {
	if path == "" {
		return
	}
	_ = os.Remove(path)
	rotated, _ := rotatedLogs(path)
	for _, r := range rotated {
		_ = os.Remove(r)
	}
}
