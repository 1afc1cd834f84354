package e2e

import (
	"strings"
	"testing"
)

func TestDaemonAnswersVersion(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	out := d.MustRun("version")
	if !strings.Contains(out, "Client Version:") || !strings.Contains(out, "Server Version:") {
		t.Fatalf("version output lacks client or server version:\n%s", out)
	}
}

func TestCLIWithoutDaemonSaysWhereItLooked(t *testing.T) {
	d := &Daemon{t: t, Dir: t.TempDir(), Host: "unix:///nonexistent/peapod/api.sock"}
	_, stderr, err := d.Run("images")
	if err == nil {
		t.Fatal("images without a daemon must fail")
	}
	if !strings.Contains(stderr, "/nonexistent/peapod/api.sock") || !strings.Contains(stderr, "peapod daemon") {
		t.Fatalf("error should name the socket and hint at the daemon, got: %s", stderr)
	}
}
