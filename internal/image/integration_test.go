package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/peapod/peapod/internal/image/keyring"
)

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	return freePort(t)
}

func insecureConf(t *testing.T, hosts ...string) string {
	var es []registryEntry
	for _, h := range hosts {
		es = append(es, registryEntry{Prefix: h, Location: h, Insecure: true})
	}
	return writeRegistriesConf(t, es...)
}

func simpleImage(t *testing.T, tag string) v1.Image {
	return testImage(t, false, "amd64", testLayer(t, "gzip", false, tfile{Name: "hello", Body: "hello from " + tag}))
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
	reg := startRegistry(t, regOptions{})
	reg.push(t, "app:v1", simpleImage(t, "v1"))
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
	reg := startRegistry(t, regOptions{TLS: true})
	reg.push(t, "app:v1", simpleImage(t, "v1"))
	image := reg.Host + "/app:v1"

	s, _ := testService(t, Options{CertsDir: t.TempDir()})
	_, err := s.Pull(t.Context(), image, nil, PullOptions{})
	if !errors.Is(err, ErrRegistryUnavailable) || !strings.Contains(err.Error(), "TLS") ||
		!strings.Contains(err.Error(), reg.Host+"/ca.crt") {
		t.Fatalf("pull without the CA = %v; want a TLS error pointing at certs.d/%s/ca.crt", err, reg.Host)
	}
	assertNothingStored(t, s)

	s2, _ := testService(t, Options{CertsDir: reg.CertsDir})
	if _, err := s2.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatalf("pull with certs.d: %v", err)
	}
}

// Acceptance 3 and 12: basic and token auth, right, wrong and missing
// credentials; no secret anywhere afterwards.
func TestAuthenticatedRegistries(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts regOptions
	}{
		{"basic", regOptions{TLS: true, Users: map[string]string{"alice": "correct-horse-battery"}}},
		{"token", regOptions{TLS: true, Token: true, Users: map[string]string{"alice": "correct-horse-battery"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := startRegistry(t, tc.opts)
			reg.push(t, "private/app:v1", simpleImage(t, "private"))
			image := reg.Host + "/private/app:v1"
			root := t.TempDir()
			s, logs := testService(t, Options{Root: root, CertsDir: reg.CertsDir})
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
			if tc.opts.Token && len(reg.tokens()) == 0 {
				t.Fatal("token server issued no token: the test did not exercise token auth")
			}
			s.Close()
			assertNoSecrets(t, root, outputs, "alice", append(reg.tokens(), "correct-horse-battery", "wrong-password-123")...)
		})
	}
}

// Acceptance 4: mirrors in order, then the registry itself.
func TestMirrorsInOrderThenRegistry(t *testing.T) {
	primary := startRegistry(t, regOptions{})
	mirror := startRegistry(t, regOptions{})
	img := simpleImage(t, "mirrored")
	primary.push(t, "app:v1", img)
	mirror.push(t, "app:v1", img)
	primaryProxy, mirrorProxy := newBlobProxy(t, primary), newBlobProxy(t, mirror)
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
	if mirrorProxy.total() == 0 || primaryProxy.total() != 0 {
		t.Fatalf("blob GETs: mirror %d, primary %d; want all from the mirror", mirrorProxy.total(), primaryProxy.total())
	}

	// Every mirror down: the registry itself serves.
	s2, _ := testService(t, Options{RegistriesConfig: conf(down, refusedAddr(t))})
	if _, err := s2.Pull(t.Context(), image, nil, PullOptions{}); err != nil {
		t.Fatalf("pull with all mirrors down: %v", err)
	}
	if primaryProxy.total() == 0 {
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
	reg := startRegistry(t, regOptions{})
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, reg.Host)})
	amd := testImage(t, true, "amd64", testLayer(t, "zstd", true, tfile{Name: "arch", Body: "amd64"}))
	arm := testImage(t, true, "arm64", testLayer(t, "gzip", true, tfile{Name: "arch", Body: "arm64"}))
	reg.push(t, "multi:v1", testIndex(t, map[string]v1.Image{"amd64": amd, "arm64": arm}))
	reg.push(t, "docker-gzip:v1", testImage(t, false, "amd64", testLayer(t, "gzip", false, tfile{Name: "arch", Body: "docker gzip"})))
	reg.push(t, "oci-zstd:v1", testImage(t, true, "amd64", testLayer(t, "zstd", true, tfile{Name: "arch", Body: "oci zstd"})))
	reg.push(t, "oci-gzip:v1", testImage(t, true, "amd64", testLayer(t, "gzip", true, tfile{Name: "arch", Body: "oci gzip"})))

	for repo, want := range map[string]string{"multi": "amd64", "docker-gzip": "docker gzip", "oci-zstd": "oci zstd", "oci-gzip": "oci gzip"} {
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
	reg := startRegistry(t, regOptions{})
	big := strings.Repeat("0123456789abcdef", 64<<10)
	layer := testLayer(t, "gzip", false, tfile{Name: "big", Body: big})
	reg.push(t, "app:v1", testImage(t, false, "amd64", testLayer(t, "gzip", false, tfile{Name: "base", Body: "base"}), layer))
	proxy := newBlobProxy(t, reg)
	proxy.CorruptBlob(mustDigest(t, layer.Digest))
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	_, err := s.Pull(t.Context(), proxy.Host+"/app:v1", nil, PullOptions{})
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull through corrupting proxy = %v, want ErrDigestMismatch", err)
	}
	assertNothingStored(t, s)
}

// Acceptance 8: two concurrent pulls of one image fetch each blob once.
func TestConcurrentPullsShareDownloads(t *testing.T) {
	reg := startRegistry(t, regOptions{})
	var layers []v1.Layer
	for _, body := range []string{"one", "two", "three"} {
		layers = append(layers, testLayer(t, "gzip", false, tfile{Name: body, Body: strings.Repeat(body, 200000)}))
	}
	img := testImage(t, false, "amd64", layers...)
	reg.push(t, "app:v1", img)
	proxy := newBlobProxy(t, reg)
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
	blobs := []string{mustDigest(t, img.ConfigName)}
	for _, l := range layers {
		blobs = append(blobs, mustDigest(t, l.Digest))
	}
	for _, d := range blobs {
		if n := proxy.BlobGets(d); n != 1 {
			t.Errorf("blob %s fetched %d times, want once", d, n)
		}
	}
}

// Acceptance 9: two images sharing a base layer store it once.
func TestSharedBaseLayerStoredOnce(t *testing.T) {
	reg := startRegistry(t, regOptions{})
	base := testLayer(t, "gzip", false, tfile{Name: "etc/os-release", Body: "ID=peapod"})
	reg.push(t, "a:v1", testImage(t, false, "amd64", base, testLayer(t, "gzip", false, tfile{Name: "a", Body: "a"})))
	reg.push(t, "b:v1", testImage(t, false, "amd64", base, testLayer(t, "gzip", false, tfile{Name: "b", Body: "b"})))
	proxy := newBlobProxy(t, reg)
	s, _ := testService(t, Options{RegistriesConfig: insecureConf(t, proxy.Host)})
	for _, r := range []string{"a:v1", "b:v1"} {
		if _, err := s.Pull(t.Context(), proxy.Host+"/"+r, nil, PullOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := proxy.BlobGets(mustDigest(t, base.Digest)); n != 1 {
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
	reg := startRegistry(t, regOptions{})
	l1 := testLayer(t, "gzip", false,
		tfile{Name: "bin/", Type: tar.TypeDir},
		tfile{Name: "bin/app", Body: "v1", Mode: 0o755},
		tfile{Name: "etc/", Type: tar.TypeDir},
		tfile{Name: "etc/config", Body: "old"},
		tfile{Name: "etc/removed", Body: "gone soon"},
		tfile{Name: "cache/", Type: tar.TypeDir},
		tfile{Name: "cache/a", Body: "a"},
		tfile{Name: "cache/b", Body: "b"},
		tfile{Name: "link", Type: tar.TypeSymlink, Link: "bin/app"},
	)
	l2 := testLayer(t, "zstd", true,
		tfile{Name: "bin/app", Body: "v2", Mode: 0o755},
		tfile{Name: "etc/.wh.removed"},
		tfile{Name: "cache/", Type: tar.TypeDir, Mode: 0o700},
		tfile{Name: "cache/.wh..wh..opq"},
		tfile{Name: "cache/c", Body: "c"},
		tfile{Name: "bin/hard", Type: tar.TypeLink, Link: "bin/app"},
	)
	reg.push(t, "app:v1", testImage(t, true, "amd64", l1, l2))
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
