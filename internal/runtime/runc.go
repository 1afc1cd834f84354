package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/peapod/peapod/internal/container/runc"
)

// runPause creates and starts the pause container with one `runc run
// --detach` instead of `runc create` then `runc start`: the same container
// in the same state (its process has exec'd when runc returns), one runc
// process less on the path of every pod start (~5-8 ms here, a Go binary's
// start-up and state load). The process's stdio is /dev/null, as with
// runc.Create: nothing reads the pause process's output.
func (r *Runtime) runPause(ctx context.Context, id, bundle, pidFile string) error {
	logPath := filepath.Join(bundle, "runc-run.log")
	defer os.Remove(logPath)
	cmd := exec.CommandContext(ctx, r.runc.Binary(),
		"--root", r.runc.Root(), "--log", logPath, "--log-format", "json",
		"run", "--detach", "--bundle", bundle, "--pid-file", pidFile, id)
	cmd.WaitDelay = 5 * time.Second
	// Files, not pipes: the container keeps its stdio open after runc
	// exits, and a pipe would make Wait block until the container ends.
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("runc run %s: %w", id, err)
	}
	defer devNull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devNull, devNull, devNull
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return &runc.Error{Command: "run", ID: id, Message: lastRuncError(logPath), Err: err}
	}
	return nil
}

// lastRuncError returns the last error runc wrote to its JSON log.
func lastRuncError(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msg string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msg = e.Msg
		}
	}
	return msg
}
