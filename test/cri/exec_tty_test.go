package cri

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peapod/peapod/internal/registrytest"
)

// TestCrictlExecTTYWindowSize: `crictl exec -it` sends its terminal's
// size over the CRI streaming server's resize stream, and the command's
// terminal has it from its first instruction on.
func TestCrictlExecTTYWindowSize(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script (util-linux) is needed for a terminal: install it with `make deps`")
	}
	reg := registrytest.Start(t, registrytest.Options{})
	ctx := context.Background()
	if err := reg.Push(ctx, "busybox:1", busyboxImage(t)); err != nil {
		t.Fatal(err)
	}
	image := reg.Ref("busybox:1")
	d := StartDaemon(t, DaemonOptions{Registries: insecureRegistries(reg.Host)})
	d.MustCrictl("pull", image)
	podFile := d.WriteFile("pod.json", podConfig("ttysize", filepath.Join(d.Dir, "logs", "ttysize"), nil))
	podID := d.MustCrictl("runp", podFile)
	c := d.MustCrictl("create", podID, d.WriteFile("c.json", containerConfig("sleeper", image, []string{"sleep", "1000"}, nil)), podFile)
	d.MustCrictl("start", c)

	// script gives crictl a terminal; stty sets that terminal's size
	// first, which crictl sends as the exec's initial size.
	line := fmt.Sprintf("stty rows 33 cols 111; %s %s exec -it %s stty size", crictlBin, strings.Join(d.CrictlArgs(), " "), c)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(sctx, "script", "-qec", line, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "33 111") {
		t.Errorf("crictl exec -it stty size in a 33x111 terminal: %v, output %q", err, out)
	}
}
