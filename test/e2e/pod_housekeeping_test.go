package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// Housekeeping as a kubelet does it, configured in peapod.toml's [kubelet]
// table: a chatty container's log is rotated at container_log_max_size and
// at most container_log_max_files files are kept while `logs` keeps
// reading the current one; with the image filesystem above
// image_gc_high_threshold_percent, an image no container uses is removed
// and the one a pod runs is kept. PEAPOD_TEST_HOUSEKEEPING=1s makes the
// rounds come every second instead of every 10 s / 5 min.
func TestPodHousekeeping(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{Env: []string{podTestBackOff, "PEAPOD_TEST_HOUSEKEEPING=1s"}})
	d.Stop()
	cfg, err := os.ReadFile(d.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Any real filesystem is more than 1% full: image GC runs every round.
	// The harness's config already has a [kubelet] table (cgroup_root).
	keys := "container_log_max_size = \"4Ki\"\ncontainer_log_max_files = 3\n" +
		"image_gc_high_threshold_percent = 1\nimage_gc_low_threshold_percent = 0\n"
	if !strings.Contains(string(cfg), "[kubelet]\n") {
		t.Fatalf("test daemon config has no [kubelet] table:\n%s", cfg)
	}
	cfg = []byte(strings.Replace(string(cfg), "[kubelet]\n", "[kubelet]\n"+keys, 1))
	if err := os.WriteFile(d.Config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	d.start()

	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	other, err := imagetest.BusyboxImage(context.Background(), imagetest.ImageOptions{Config: v1.Config{Cmd: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(context.Background(), "unused:1", other); err != nil {
		t.Fatal(err)
	}
	cleanupPods(t, d, "default")

	apply(t, d, "chatty.yaml", fmt.Sprintf(onePod, "chatty", "Always", reg.Ref("busybox:1"),
		"i=0; while true; do echo line-$i-padding-padding-padding-padding-padding; i=$((i+1)); sleep 0.005; done"))
	waitStatus(t, d, "default", "chatty", "Running", 60*time.Second)
	p := getPod(t, d, "default", "chatty")
	dir := filepath.Join(d.Root, "pods", p.Namespace+"_"+p.Name+"_"+string(p.UID), "c")

	var files []string
	waitFor(t, 60*time.Second, "the log to be rotated into a compressed file", func() (bool, string) {
		entries, _ := os.ReadDir(dir)
		files = files[:0]
		gz := false
		for _, e := range entries {
			files = append(files, e.Name())
			gz = gz || strings.HasSuffix(e.Name(), ".gz")
		}
		return gz, strings.Join(files, " ")
	})
	for i := 0; i < 3; i++ {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".tmp") { // a compression under way
				names = append(names, e.Name())
			}
		}
		if len(names) > 3 {
			t.Errorf("%d log files kept, want at most container_log_max_files = 3: %v", len(names), names)
		}
		time.Sleep(time.Second)
	}
	// `logs` reads the current file: the newest line, far past the first.
	out := d.MustRun("logs", "chatty", "--tail", "1")
	parts := strings.SplitN(strings.TrimSpace(out), "-", 3)
	n := -1
	if len(parts) == 3 {
		n, _ = strconv.Atoi(parts[1])
	}
	if n < 100 {
		t.Errorf("logs --tail 1 after rotation: %q, want a recent line", out)
	}
	if s := getPod(t, d, "default", "chatty"); containerStatus(s, "c").RestartCount != 0 {
		t.Errorf("rotation restarted the container")
	}

	// Image GC: the pulled but unused image goes, the running pod's stays.
	d.MustRun("pull", reg.Ref("unused:1"))
	waitFor(t, 30*time.Second, "image GC to remove the unused image", func() (bool, string) {
		list := d.MustRun("images")
		return !strings.Contains(list, "unused"), list
	})
	if list := d.MustRun("images"); !strings.Contains(list, reg.Host+"/busybox") {
		t.Errorf("image GC removed the image a running pod uses:\n%s", list)
	}
	if !strings.Contains(d.Log(), "image garbage collection: removed unused image") {
		t.Errorf("the daemon log does not say which image GC removed")
	}
}
