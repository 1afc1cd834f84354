package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

func insecureConf(t *testing.T, hosts ...string) string {
	var es []registryEntry
	for _, h := range hosts {
		es = append(es, registryEntry{Prefix: h, Location: h, Insecure: true})
	}
	return writeRegistriesConf(t, es...)
}

func simpleImage(t *testing.T, tag string) v1.Image {
	return testImage(t, imagetest.Docker, layer(t, imagetest.Gzip, imagetest.Reg("hello", "hello from "+tag)))
}

func assertNothingStored(t *testing.T, s *Service) {
	t.Helper()
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 0 {
		t.Errorf("images stored after a failed pull: %d", len(imgs))
	}
	for _, sub := range []string{"layers", "tmp", "content/sha256"} {
		entries, err := os.ReadDir(filepath.Join(s.Store().Dir(), sub))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Errorf("%s not empty after a failed pull: %v", sub, entries)
		}
	}
}

// Acceptance 1: plain HTTP only when the registry is marked insecure.
func TestPlainHTTPRegistryOnlyWhenInsecure(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	push(t, reg, "app:v1", simpleImage(t, "v1"))
	image := reg.Host + "/app:v1"

	s, _ := testService(t, Options{})
	_, err := s.Pull(t.Context(), image, nil, PullOptions{})
	if !errors.Is(err, ErrRegistryUnavailable) || !strings.Contains(err.Error(), "insecure = true") {
		t.Fatalf("pull from plain-HTTP registry not marked insecure = %v; want RegistryUnavailable that says to set insecure = true", err)
	}
	assertNothingStored(t, s)

	s2, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host)})
	img, err := s2.Pull(t.Context(), image, nil, PullOptions{})
	if err != nil {
		t.Fatalf("pull from insecure registry: %v", err)
	}
	if !slices.Contains(img.RepoTags, image) {
		t.Fatalf("RepoTags = %v, want %s", img.RepoTags, image)
	}
	// Acceptance 12, anonymous half.
	if len(img.Pulls) != 1 || !img.Pulls[0].Anonymous || img.Pulls[0].CredentialHash != "" {
		t.Fatalf("pull record = %+v, want one anonymous pull", img.Pulls)
	}
}

// Acceptance 2: a TLS registry with its own CA works through certs.d.
func TestTLSRegistryThroughCertsD(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true})
	push(t, reg, "app:v1", simpleImage(t, "v1"))
	image := reg.Host + "/app:v1"

	s, _ := testService(t, Options{CertsDir: t.TempDir()})
	_, err := s.Pull(t.Context(), image, nil, PullOptions{})
	if !errors.Is(err, ErrRegistryUnavailable) || !strings.Contains(err.Error(), "TLS") ||
		!strings.Contains(err.Error(), reg.Host+"/ca.crt") {
		t.Fatalf("pull without the CA = %v; want a TLS error pointing at certs.d/%s/ca.crt", err, reg.Host)
	}
	assertNothingStored(t, s)

	s2, _ := testService(t, Options{CertsDir: certsDir(t, reg)})
	if _, err := s2.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatalf("pull with certs.d: %v", err)
	}
}

// Acceptance 3 and 12: basic and token auth, right, wrong and missing
// credentials; no secret anywhere afterwards.
func TestAuthenticatedRegistries(t *testing.T) {
	users := map[string]string{"alice": "correct-horse-battery"}
	for _, tc := range []struct {
		name string
		opts registrytest.Options
	}{
		{"basic", registrytest.Options{TLS: true, Htpasswd: users}},
		{"token", registrytest.Options{TLS: true, Token: &registrytest.TokenOptions{Users: users}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t, tc.opts)
			push(t, reg, "private/app:v1", simpleImage(t, "private"))
			image := reg.Host + "/private/app:v1"
			root := t.TempDir()
			s, logs := testService(t, Options{Root: root, CertsDir: certsDir(t, reg)})
			var outputs []string

			wrong := keyring.Credential{Username: "alice", Password: "wrong-password-123", Source: keyring.Source{Kind: keyring.SourceSecret, Namespace: "team", Name: "stale", UID: "u-1"}}
			right := keyring.Credential{Username: "alice", Password: "correct-horse-battery", Source: keyring.Source{Kind: keyring.SourceSecret, Namespace: "team", Name: "regcred", UID: "u-2"}}

			_, err := s.Pull(t.Context(), image, nil, PullOptions{})
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), reg.Host) || !strings.Contains(err.Error(), "anonymous") {
				t.Fatalf("anonymous pull = %v; want unauthorized naming the registry and the anonymous attempt", err)
			}
			outputs = append(outputs, err.Error())

			_, err = s.Pull(t.Context(), image, []keyring.Credential{wrong}, PullOptions{})
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "secret team/stale") {
				t.Fatalf("pull with wrong credential = %v; want unauthorized naming secret team/stale", err)
			}
			outputs = append(outputs, err.Error())
			assertNothingStored(t, s)

			// The wrong one is tried first, then the right one.
			img, err := s.Pull(t.Context(), image, []keyring.Credential{wrong, right}, PullOptions{})
			if err != nil {
				t.Fatalf("pull with right credential: %v", err)
			}
			if len(img.Pulls) != 1 || img.Pulls[0].Anonymous || img.Pulls[0].Source != right.Source || img.Pulls[0].CredentialHash != right.Hash() {
				t.Fatalf("pull record = %+v, want secret team/regcred with its hash", img.Pulls)
			}
			node := keyring.Credential{Username: "alice", Password: "correct-horse-battery", Source: keyring.Source{Kind: keyring.SourceNode, Path: "/var/lib/peapod/config.json"}}
			img, err = s.Pull(t.Context(), image, []keyring.Credential{node}, PullOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Pulls) != 2 || img.Pulls[1].Source != node.Source {
				t.Fatalf("second pull record not appended: %+v", img.Pulls)
			}

			if err := s.CheckLogin(t.Context(), reg.Host, right); err != nil {
				t.Fatalf("CheckLogin(right) = %v", err)
			}
			err = s.CheckLogin(t.Context(), "https://"+reg.Host+"/v2/", wrong)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("CheckLogin(wrong) = %v, want ErrUnauthorized", err)
			}
			outputs = append(outputs, err.Error(), logs.String())
			var tokens []string
			if reg.TokenServer != nil {
				tokens = reg.TokenServer.Tokens()
				if len(tokens) == 0 {
					t.Fatal("token server issued no token: the test did not exercise token auth")
				}
			}
			s.Close()
			assertNoSecrets(t, root, outputs, "alice", append(tokens, "correct-horse-battery", "wrong-password-123")...)
		})
	}
}

// Acceptance 4: mirrors in order, then the registry itself.
func TestMirrorsInOrderThenRegistry(t *testing.T) {
	primary := registrytest.Start(t, registrytest.Options{})
	mirror := registrytest.Start(t, registrytest.Options{})
	img := simpleImage(t, "mirrored")
	push(t, primary, "app:v1", img)
	push(t, mirror, "app:v1", img)
	primaryProxy := registrytest.NewProxy(t, primary.Host, registrytest.ProxyOptions{})
	mirrorProxy := registrytest.NewProxy(t, mirror.Host, registrytest.ProxyOptions{})
	down := refusedAddr(t)
	image := primaryProxy.Host + "/app:v1"

	conf := func(mirrors ...string) string {
		e := registryEntry{Prefix: primaryProxy.Host, Location: primaryProxy.Host, Insecure: true}
		for _, m := range mirrors {
			e.Mirrors = append(e.Mirrors, mirrorEntry{Location: m, Insecure: true})
		}
		return writeRegistriesConf(t, e)
	}

	// First mirror down, second serves.
	s, _ := testService(t, Options{RegistriesConfig: conf(down, mirrorProxy.Host)})
	if _, err := s.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatalf("pull through mirrors: %v", err)
	}
	if blobGets(mirrorProxy) == 0 || blobGets(primaryProxy) != 0 {
		t.Fatalf("blob GETs: mirror %d, primary %d; want all from the mirror", blobGets(mirrorProxy), blobGets(primaryProxy))
	}

	// Every mirror down: the registry itself serves.
	s2, _ := testService(t, Options{RegistriesConfig: conf(down, refusedAddr(t))})
	if _, err := s2.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatalf("pull with all mirrors down: %v", err)
	}
	if blobGets(primaryProxy) == 0 {
		t.Fatal("registry itself not used when every mirror was down")
	}

	// Everything down: the error lists every endpoint and why.
	s3, _ := testService(t, Options{RegistriesConfig: writeRegistriesConf(t, registryEntry{Prefix: "127.0.0.1:1", Location: down, Insecure: true,
		Mirrors: []mirrorEntry{{Location: down, Insecure: true}}})})
	_, err := s3.Pull(t.Context(), "127.0.0.1:1/app:v1", nil, PullOptions{})
	if !errors.Is(err, ErrRegistryUnavailable) || strings.Count(err.Error(), "refused") < 2 || !strings.Contains(err.Error(), "(mirror)") {
		t.Fatalf("pull with everything down = %v; want every attempt listed", err)
	}
}

// Acceptance 5: an index resolves to amd64; Docker schema 2 and OCI; gzip
// and zstd.
func TestIndexSchemasAndCompressions(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host), Platform: amd64})
	archImage := func(f imagetest.Format, c imagetest.Compression, arch, content string) v1.Image {
		img, err := imagetest.Image(imagetest.ImageOptions{
			Layers:    []v1.Layer{layer(t, c, imagetest.Reg("arch", content))},
			MediaType: f,
			Platform:  &v1.Platform{OS: "linux", Architecture: arch},
		})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	// Each platform has its own layer, so the unpacked file shows which
	// one was chosen: an OCI index and a Docker manifest list.
	for repo, f := range map[string]imagetest.Format{"multi": imagetest.OCI, "multi-docker": imagetest.Docker} {
		idx, err := imagetest.Index(map[string]v1.Image{
			"linux/amd64": archImage(f, imagetest.Zstd, "amd64", repo+" amd64"),
			"linux/arm64": archImage(f, imagetest.Gzip, "arm64", repo+" arm64"),
		}, f)
		if err != nil {
			t.Fatal(err)
		}
		push(t, reg, repo+":v1", idx)
	}
	push(t, reg, "docker-gzip:v1", testImage(t, imagetest.Docker, layer(t, imagetest.Gzip, imagetest.Reg("arch", "docker gzip"))))
	push(t, reg, "oci-zstd:v1", testImage(t, imagetest.OCI, layer(t, imagetest.Zstd, imagetest.Reg("arch", "oci zstd"))))
	push(t, reg, "oci-gzip:v1", testImage(t, imagetest.OCI, layer(t, imagetest.Gzip, imagetest.Reg("arch", "oci gzip"))))

	for repo, want := range map[string]string{"multi": "multi amd64", "multi-docker": "multi-docker amd64", "docker-gzip": "docker gzip", "oci-zstd": "oci zstd", "oci-gzip": "oci gzip"} {
		image := reg.Host + "/" + repo + ":v1"
		img, err := s.Pull(t.Context(), image, nil, PullOptions{})
		if err != nil {
			t.Errorf("pull %s: %v", image, err)
			continue
		}
		dirs, err := s.LayerDirs(image)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dirs[0], "arch"))
		if err != nil || string(b) != want {
			t.Errorf("%s: /arch = %q, %v; want %q", image, b, err, want)
		}
		if img.Config.Architecture != "amd64" {
			t.Errorf("%s: config architecture %q", image, img.Config.Architecture)
		}
	}
	// The index's digest is the repo digest, as docker shows it.
	img, _ := s.Status(reg.Host + "/multi:v1")
	if len(img.RepoDigests) != 1 || !strings.HasPrefix(img.RepoDigests[0], reg.Host+"/multi@sha256:") {
		t.Errorf("RepoDigests = %v", img.RepoDigests)
	}
	if _, err := s.Status(img.RepoDigests[0]); err != nil {
		t.Errorf("Status(repo digest): %v", err)
	}

	s390, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host), Platform: v1.Platform{OS: "linux", Architecture: "s390x"}})
	_, err := s390.Pull(t.Context(), reg.Host+"/multi:v1", nil, PullOptions{})
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatalf("pull for s390x = %v, want ErrNoMatchingPlatform", err)
	}
	assertNothingStored(t, s390)
}

// Acceptance 7: a blob corrupted in transit fails the digest check and
// nothing is stored.
func TestCorruptedBlobIsRejected(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	big := strings.Repeat("0123456789abcdef", 64<<10)
	corrupt := layer(t, imagetest.Gzip, imagetest.Reg("big", big))
	push(t, reg, "app:v1", testImage(t, imagetest.Docker, layer(t, imagetest.Gzip, imagetest.Reg("base", "base")), corrupt))
	proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{})
	proxy.CorruptBlob(digestOf(t, corrupt))
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	_, err := s.Pull(t.Context(), proxy.Host+"/app:v1", nil, PullOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull through corrupting proxy = %v, want ErrDigestMismatch", err)
	}
	if proxy.BlobGets(digestOf(t, corrupt)) == 0 {
		t.Fatal("the corrupted blob was never fetched: the test did not exercise verification")
	}
	assertNothingStored(t, s)
}

// Acceptance 8: two concurrent pulls of one image fetch each blob once.
func TestConcurrentPullsShareDownloads(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	var layers []v1.Layer
	for _, body := range []string{"one", "two", "three"} {
		layers = append(layers, layer(t, imagetest.Gzip, imagetest.Reg(body, strings.Repeat(body, 200000))))
	}
	img := testImage(t, imagetest.Docker, layers...)
	push(t, reg, "app:v1", img)
	proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{})
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Pull(t.Context(), proxy.Host+"/app:v1", nil, PullOptions{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	config, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	blobs := []string{config.String()}
	for _, l := range layers {
		blobs = append(blobs, digestOf(t, l))
	}
	for _, d := range blobs {
		if n := proxy.BlobGets(d); n != 1 {
			t.Errorf("blob %s fetched %d times, want once", d, n)
		}
	}
}

// Acceptance 9: two images sharing a base layer store it once.
func TestSharedBaseLayerStoredOnce(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	base := layer(t, imagetest.Gzip, imagetest.Reg("etc/os-release", "ID=peapod"))
	push(t, reg, "a:v1", testImage(t, imagetest.Docker, base, layer(t, imagetest.Gzip, imagetest.Reg("a", "a"))))
	push(t, reg, "b:v1", testImage(t, imagetest.Docker, base, layer(t, imagetest.Gzip, imagetest.Reg("b", "b"))))
	proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{})
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	for _, r := range []string{"a:v1", "b:v1"} {
		if _, err := s.Pull(t.Context(), proxy.Host+"/"+r, nil, PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := proxy.BlobGets(digestOf(t, base)); n != 1 {
		t.Errorf("shared base layer downloaded %d times, want once", n)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Store().Dir(), "layers"))
	if len(entries) != 3 {
		t.Errorf("%d layer dirs, want 3 (base stored once)", len(entries))
	}
	da, _ := s.LayerDirs(proxy.Host + "/a:v1")
	db, _ := s.LayerDirs(proxy.Host + "/b:v1")
	if da[len(da)-1] != db[len(db)-1] {
		t.Errorf("base layer dirs differ: %s vs %s", da[len(da)-1], db[len(db)-1])
	}
	if err := s.Remove(proxy.Host + "/a:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(db[len(db)-1]); err != nil {
		t.Errorf("base layer gone after removing only one of its images: %v", err)
	}
	if _, err := os.Stat(da[0]); !os.IsNotExist(err) {
		t.Errorf("top layer of removed image still there: %v", err)
	}
	if _, err := s.Status(proxy.Host + "/a:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status(removed) = %v, want ErrNotFound", err)
	}
}

// Acceptance 10: the layers stacked with a real overlay mount give exactly
// the image's file tree, whiteouts and opaque directories applied.
func TestStackedLayersGiveTheImageTree(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	l1 := layer(t, imagetest.Gzip,
		imagetest.Dir("bin"),
		imagetest.Reg("bin/app", "v1", 0o755),
		imagetest.Dir("etc"),
		imagetest.Reg("etc/config", "old"),
		imagetest.Reg("etc/removed", "gone soon"),
		imagetest.Dir("cache"),
		imagetest.Reg("cache/a", "a"),
		imagetest.Reg("cache/b", "b"),
		imagetest.Symlink("link", "bin/app"),
	)
	l2 := layer(t, imagetest.Zstd,
		imagetest.Reg("bin/app", "v2", 0o755),
		imagetest.Whiteout("etc/removed"),
		imagetest.File{Name: "cache/", Type: tar.TypeDir, Mode: 0o700},
		imagetest.OpaqueDir("cache"),
		imagetest.Reg("cache/c", "c"),
		imagetest.File{Name: "bin/hard", Type: tar.TypeLink, Linkname: "bin/app"},
	)
	push(t, reg, "app:v1", testImage(t, imagetest.OCI, l1, l2))
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host)})
	if _, err := s.Pull(t.Context(), reg.Host+"/app:v1", nil, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	dirs, err := s.LayerDirs(reg.Host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	got := mergedTree(t, dirs)
	want := map[string]string{
		"/bin":        "d 755 0:0",
		"/bin/app":    "f 755 0:0 " + sha4("v2"),
		"/bin/hard":   "f 755 0:0 " + sha4("v2"),
		"/etc":        "d 755 0:0",
		"/etc/config": "f 644 0:0 " + sha4("old"),
		"/cache":      "d 700 0:0",
		"/cache/c":    "f 644 0:0 " + sha4("c"),
		"/link":       "l 777 0:0 -> bin/app",
	}
	for _, k := range sortedKeys(want) {
		if got[k] != want[k] {
			t.Errorf("%s: got %q, want %q", k, got[k], want[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s (%s) in the stacked tree", k, got[k])
		}
	}
}

func sha4(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

// pullRun is a pull running in its own goroutine; done closes when it ends.
type pullRun struct {
	done chan struct{}
	err  error
}

// startPull pulls image in the background with the test's context. The
// test does not end (and the service does not close) before it returns.
func startPull(t *testing.T, s *Service, image string) *pullRun {
	t.Helper()
	r := &pullRun{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_, r.err = s.Pull(t.Context(), image, nil, PullOptions{})
	}()
	t.Cleanup(func() { <-r.done })
	return r
}

func (r *pullRun) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// finishedOrWaitingForSlot reports whether run finishes (true) or parks
// waiting for a pull slot (false), whichever happens first. Waiting is seen
// in the goroutine dump — a goroutine blocked in Service.acquire — so the
// answer never depends on how long anything takes.
func finishedOrWaitingForSlot(t *testing.T, run *pullRun) bool {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 60000 {
		if run.finished() {
			return true
		}
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			header, _, _ := strings.Cut(g, "\n")
			if strings.Contains(header, "[select") && strings.Contains(g, "image.(*Service).acquire(") {
				return false
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the pull neither finished nor waited for a pull slot")
	return false
}

// One slow image does not hold up the pull of another image, up to
// max_parallel_pulls; beyond the bound a pull waits for a slot and runs
// when one frees. "Slow" is the slow image's layer held at a proxy until
// the test releases it, so every assertion follows from that ordering.
func TestSlowImageDoesNotBlockOtherPulls(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	slowLayer := layer(t, imagetest.Gzip, imagetest.Reg("slow", "slow"))
	push(t, reg, "slow:v1", testImage(t, imagetest.Docker, slowLayer))
	push(t, reg, "fast:v1", testImage(t, imagetest.Docker, layer(t, imagetest.Gzip, imagetest.Reg("fast", "fast"))))
	for _, tc := range []struct {
		name     string
		max      int
		fastWait bool // whether the second pull must wait for the slow one
	}{
		{"two slots: the other image is pulled meanwhile", 2, false},
		{"one slot: the other image waits for it", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := registrytest.NewProxy(t, reg.Host, registrytest.ProxyOptions{})
			s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host), MaxParallelPulls: tc.max})
			held := proxy.Hold(digestOf(t, slowLayer))
			slow := startPull(t, s, proxy.Host+"/slow:v1")
			select {
			case <-held:
			case <-slow.done:
				t.Fatalf("slow pull ended (err = %v) before fetching its held layer", slow.err)
			}

			fast := startPull(t, s, proxy.Host+"/fast:v1")
			fastFinished := finishedOrWaitingForSlot(t, fast)
			switch {
			case !tc.fastWait && !fastFinished:
				t.Fatalf("with max_parallel_pulls = %d the pull of another image waited for the slow one", tc.max)
			case !tc.fastWait && fast.err != nil:
				t.Fatalf("pull of another image while the slow one is held: %v", fast.err)
			case tc.fastWait && fastFinished:
				t.Fatalf("with max_parallel_pulls = 1 the pull of another image ran (err = %v) while the slow one held the slot", fast.err)
			}
			if slow.finished() {
				t.Fatalf("slow pull finished (err = %v) while its layer was held", slow.err)
			}
			if tc.fastWait {
				for _, r := range proxy.Requests() {
					if strings.Contains(r, "/v2/fast/") {
						t.Errorf("the waiting pull reached the registry (%s) before a slot was free", r)
					}
				}
			}

			proxy.Release(digestOf(t, slowLayer))
			<-slow.done
			if slow.err != nil {
				t.Fatalf("slow pull after release: %v", slow.err)
			}
			<-fast.done
			if fast.err != nil {
				t.Fatalf("pull of the other image after the slot freed: %v", fast.err)
			}
			for _, image := range []string{"slow:v1", "fast:v1"} {
				if _, err := s.Status(proxy.Host + "/" + image); err != nil {
					t.Errorf("Status(%s) after both pulls: %v", image, err)
				}
			}
		})
	}
}
