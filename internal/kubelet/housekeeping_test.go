package kubelet

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/image"
	imagestore "github.com/peapod/peapod/internal/image/store"
)

func criLine(t time.Time, text string) string {
	return t.UTC().Format(time.RFC3339Nano) + " stdout F " + text + "\n"
}

func TestLogRotationKeepsMaxFilesAndLogsStillRead(t *testing.T) {
	h := newHarness(t)
	h.k.opts.ContainerLogMaxSize = 200
	h.k.opts.ContainerLogMaxFiles = 3
	h.create(simplePod("chatty", corev1.RestartPolicyAlways, "a"))
	h.sync("chatty")
	path, _, err := h.k.ContainerLogPath(h.ctx, "default", "chatty", "a", false)
	if err != nil {
		t.Fatal(err)
	}
	write := func(text string, n int) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for i := 0; i < n; i++ {
			f.WriteString(criLine(h.clk.Now(), fmt.Sprintf("%s-%d", text, i)))
		}
	}
	write("small", 1)
	h.k.rotateLogs(h.ctx)
	if len(h.rt.reopened) != 0 {
		t.Fatalf("a log below the max size was rotated")
	}
	for round := 0; round < 4; round++ {
		write(fmt.Sprintf("round%d", round), 10)
		h.k.rotateLogs(h.ctx)
		h.clk.Step(time.Second)
	}
	if len(h.rt.reopened) != 4 {
		t.Errorf("log reopened %d times, want 4", len(h.rt.reopened))
	}
	rotated, _ := rotatedLogs(path)
	// max 3 files: the current one (conmon reopens it) and two rotated.
	if len(rotated) != 2 {
		t.Fatalf("rotated files %v, want 2", rotated)
	}
	if !strings.HasSuffix(rotated[0], ".gz") || strings.HasSuffix(rotated[1], ".gz") {
		t.Errorf("rotated %v: want the older compressed and the newest plain", rotated)
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("the current log still exists after rotation (the fake runtime does not reopen it)")
	}
	b, _ := os.ReadFile(rotated[1])
	if !strings.Contains(string(b), "round3-9") {
		t.Errorf("newest rotated log lacks the last round:\n%s", b)
	}
	f, _ := os.Open(rotated[0])
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := io.ReadAll(zr)
	f.Close()
	if !strings.Contains(string(old), "round2-0") {
		t.Errorf("compressed log is not round 2's:\n%s", old)
	}

	// The runtime writes a fresh file at the same path; `logs` reads it.
	write("fresh", 1)
	var out bytes.Buffer
	if err := h.k.Logs(h.ctx, "default", "chatty", LogOptions{TailLines: -1}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "fresh-0\n" {
		t.Errorf("logs after rotation: %q, want the current file", out.String())
	}

	// A failed reopen puts the file back.
	h.rt.exit("a", 0)
	id := ""
	for cid := range h.rt.containers {
		id = cid
	}
	if err := h.k.rotateLog(h.ctx, id, path); err == nil {
		t.Error("rotating the log of a stopped container did not fail")
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("log not restored after a failed reopen: %v", err)
	}
}

func TestDeadContainersRemovedWithRotatedLogs(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("loop", corev1.RestartPolicyAlways, "a"))
	h.sync("loop")
	var paths []string
	for i := 0; i < 3; i++ {
		path, _, _ := h.k.ContainerLogPath(h.ctx, "default", "loop", "a", false)
		paths = append(paths, path)
		os.WriteFile(path, []byte(criLine(h.clk.Now(), "x")), 0o640)
		os.WriteFile(path+".20261126-120000.gz", nil, 0o640)
		h.rt.exit("a", 1)
		h.clk.Step(10 * time.Minute)
		h.sync("loop")
	}
	if _, c := h.rt.counts(); c != 2 {
		t.Errorf("%d containers kept, want 2 (current and previous)", c)
	}
	for _, p := range []string{paths[0], paths[0] + ".20261126-120000.gz"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s of a removed container is still there", p)
		}
	}
	if _, err := os.Stat(paths[2]); err != nil {
		t.Errorf("the previous container's log went: %v", err)
	}
}

func TestGCPodsRemovesWhatGonePodsLeft(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("stay", corev1.RestartPolicyAlways, "a"))
	h.sync("stay")
	p := h.pod("stay")
	gone := "0b7c6b0e-5d2a-4c8e-9d3f-1a2b3c4d5e6f"
	for _, d := range []string{gone + "/volumes/kubernetes.io~empty-dir/x", "default_old_" + gone + "/c", "not-a-pod", string(p.UID) + "/volumes"} {
		if err := os.MkdirAll(filepath.Join(h.root, "pods", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h.k.gcPods(h.ctx)
	for _, d := range []string{gone, "default_old_" + gone} {
		if _, err := os.Stat(filepath.Join(h.root, "pods", d)); err == nil {
			t.Errorf("%s of a gone pod is still there", d)
		}
	}
	for _, d := range []string{string(p.UID), "default_stay_" + string(p.UID), "not-a-pod"} {
		if _, err := os.Stat(filepath.Join(h.root, "pods", d)); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}

// fakeImageStore is an image store with sizes and creation times.
type fakeImageStore struct {
	images  map[string]*imagestore.Image
	removed []string
}

func (f *fakeImageStore) add(name string, size int64, created time.Time) *imagestore.Image {
	img := &imagestore.Image{ID: digest.FromString(name), RepoTags: []string{name}, Size: size, Created: created}
	f.images[img.ID.String()] = img
	return img
}

func (f *fakeImageStore) List() ([]*imagestore.Image, error) {
	var out []*imagestore.Image
	for _, img := range f.images {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeImageStore) Status(name string) (*imagestore.Image, error) {
	for _, img := range f.images {
		if img.ID.String() == name || img.RepoTags[0] == name {
			return img, nil
		}
	}
	return nil, fmt.Errorf("image %s: %w", name, image.ErrNotFound)
}

func (f *fakeImageStore) Remove(name string) error {
	img, err := f.Status(name)
	if err != nil {
		return err
	}
	delete(f.images, img.ID.String())
	f.removed = append(f.removed, img.RepoTags[0])
	return nil
}

// otherOwner is another runtime owner's view (the CRI's) with one
// container.
type otherOwner struct{ image string }

func (o otherOwner) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{{Id: "cri1", Image: &runtimeapi.ImageSpec{Image: o.image},
		State: runtimeapi.ContainerState_CONTAINER_EXITED}}}, nil
}

func TestImageGCRemovesUnusedImagesOldestFirstDownToLowThreshold(t *testing.T) {
	h := newHarness(t)
	now := h.clk.Now()
	fs := &fakeImageStore{images: map[string]*imagestore.Image{}}
	// In use by a kubelet pod (the harness pulls it into its own fake
	// image service; the GC store knows it by the same ID).
	h.create(simplePod("user", corev1.RestartPolicyAlways, "a"))
	h.sync("user")
	var inUseID string
	for _, c := range h.rt.containers {
		inUseID = c.cfg.GetImage().GetImage()
	}
	fs.images[inUseID] = &imagestore.Image{ID: digest.Digest(inUseID), RepoTags: []string{"in-use"}, Size: 500, Created: now.Add(-72 * time.Hour)}
	fs.add("pause", 500, now.Add(-72*time.Hour))
	fs.add("cri-user", 500, now.Add(-72*time.Hour))
	fs.add("oldest", 100, now.Add(-48*time.Hour))
	fs.add("older", 100, now.Add(-24*time.Hour))
	fs.add("newer", 100, now.Add(-12*time.Hour))
	fs.add("just-pulled", 100, now.Add(-time.Minute)) // younger than the minimum age

	used := uint64(900)
	k, err := New(Options{Root: h.root, Runtime: h.rt, Store: h.store, Images: h.images, Clock: h.clk,
		NodeName: "node1", HostIP: "192.0.2.10", Logger: h.k.log,
		ImageStore: fs, PinnedImages: []string{"pause"}, ImageUsers: []ContainerLister{otherOwner{"cri-user"}},
		ImageFsUsage: func() (uint64, uint64, error) { return used, 1000, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if k.opts.ImageGCHighThresholdPercent != 85 || k.opts.ImageGCLowThresholdPercent != 80 || k.opts.ImageMinimumGCAge != 2*time.Minute ||
		k.opts.ImageGCPeriod != 5*time.Minute || k.opts.ContainerLogMaxSize != 10<<20 || k.opts.ContainerLogMaxFiles != 5 || k.opts.LogRotateInterval != 10*time.Second {
		t.Errorf("defaults: %+v", k.opts)
	}
	// 90% used, low 80%: 100 bytes to free -> the oldest unused image.
	if err := k.imageGC.run(h.ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.removed, ","); got != "oldest" {
		t.Errorf("removed %s, want oldest", got)
	}
	used = 860 // 86%: 60 bytes to free
	k.imageGC.run(h.ctx)
	if got := strings.Join(fs.removed, ","); got != "oldest,older" {
		t.Errorf("removed %s, want oldest,older", got)
	}
	used = 840 // below the high threshold: nothing to do
	k.imageGC.run(h.ctx)
	if got := strings.Join(fs.removed, ","); got != "oldest,older" {
		t.Errorf("removed %s below the high threshold", got)
	}
	used = 1000 // everything eligible goes, nothing in use, pinned or young
	k.imageGC.run(h.ctx)
	if got := strings.Join(fs.removed, ","); got != "oldest,older,newer" {
		t.Errorf("removed %s, want oldest,older,newer (in-use, pause, cri-user and just-pulled kept)", got)
	}
}

func TestImageGCPrefersImagesUnusedLongest(t *testing.T) {
	h := newHarness(t)
	now := h.clk.Now()
	fs := &fakeImageStore{images: map[string]*imagestore.Image{}}
	fs.add("a", 100, now.Add(-48*time.Hour)) // oldest, but used a moment ago
	fs.add("b", 100, now.Add(-24*time.Hour))
	user := &otherOwnerSwitch{image: "a"}
	used := uint64(100)
	k, err := New(Options{Root: h.root, Runtime: h.rt, Store: h.store, Images: h.images, Clock: h.clk, Logger: h.k.log,
		ImageStore: fs, ImageUsers: []ContainerLister{user}, ImageFsUsage: func() (uint64, uint64, error) { return used, 1000, nil }})
	if err != nil {
		t.Fatal(err)
	}
	k.imageGC.run(h.ctx) // notes that a is in use
	user.image = ""      // its container went
	h.clk.Step(time.Minute)
	used = 900
	k.imageGC.run(h.ctx)
	if got := strings.Join(fs.removed, ","); got != "b" {
		t.Errorf("removed %s, want b (a was used more recently)", got)
	}
}

type otherOwnerSwitch struct{ image string }

func (o *otherOwnerSwitch) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if o.image == "" {
		return &runtimeapi.ListContainersResponse{}, nil
	}
	return otherOwner{o.image}.ListContainers(ctx, r)
}

func TestHousekeepingOptionsValidated(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name string
		mut  func(*Options)
		want string
	}{
		{"one log file", func(o *Options) { o.ContainerLogMaxFiles = 1 }, "containerLogMaxFiles must be at least 2"},
		{"low above high", func(o *Options) { o.ImageGCHighThresholdPercent, o.ImageGCLowThresholdPercent = 70, 80 }, "image GC thresholds"},
		{"high above 100", func(o *Options) { o.ImageGCHighThresholdPercent, o.ImageGCLowThresholdPercent = 101, 80 }, "image GC thresholds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Root: h.root, Runtime: h.rt, Store: h.store, Images: h.images, Clock: h.clk}
			tc.mut(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHousekeepingTestSetting(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    time.Duration
		wantErr bool
	}{
		{"", 0, false},
		{"1s", time.Second, false},
		{"soon", 0, true},
		{"-1s", 0, true},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv(TestHousekeepingEnv, tc.env)
			var o Options
			err := ApplyTestSettings(&o)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v", err)
			}
			if o.LogRotateInterval != tc.want || o.ImageGCPeriod != tc.want || o.ContainerGCPeriod != tc.want || o.ImageMinimumGCAge != tc.want {
				t.Errorf("options %+v, want every housekeeping period %v", o, tc.want)
			}
		})
	}
}
