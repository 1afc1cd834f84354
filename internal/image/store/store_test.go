package store

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/peapod/peapod/internal/image/keyring"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

func TestContentRoundTripAndVerification(t *testing.T) {
	s, _ := openStore(t)
	data := []byte(`{"schemaVersion":2}`)
	d := digest.FromBytes(data)
	if err := s.WriteContent(d, data); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadContent(d)
	if err != nil || string(got) != string(data) {
		t.Fatalf("ReadContent = %q, %v", got, err)
	}
	wrong := digest.FromString("something else")
	if err := s.WriteContent(wrong, data); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("WriteContent under wrong digest: %v, want ErrDigestMismatch", err)
	}
	if s.HasContent(wrong) {
		t.Fatal("content stored despite digest mismatch")
	}
	if _, err := s.ReadContent(wrong); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadContent(missing) = %v, want ErrNotFound", err)
	}
	// Corruption on disk is detected on read.
	p, _ := s.contentPath(d)
	os.WriteFile(p, []byte("tampered"), 0o600)
	if _, err := s.ReadContent(d); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ReadContent(tampered) = %v, want ErrDigestMismatch", err)
	}
	assertTmpEmpty(t, s)
}

func assertTmpEmpty(t *testing.T, s *Store) {
	t.Helper()
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("tmp dir not empty: %v", entries)
	}
}

func ingestLayer(t *testing.T, s *Store, content string) digest.Digest {
	t.Helper()
	li, err := s.NewLayerIngest()
	if err != nil {
		t.Fatal(err)
	}
	defer li.Abort()
	if err := os.WriteFile(filepath.Join(li.Dir(), "file"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	d := digest.FromString(content)
	if err := li.Commit(d, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestLayerIngestCommitAbortAndConcurrency(t *testing.T) {
	s, _ := openStore(t)
	d := ingestLayer(t, s, "hello")
	if !s.HasLayer(d) {
		t.Fatal("layer missing after commit")
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(d), "file")); err != nil || string(b) != "hello" {
		t.Fatalf("layer file = %q, %v", b, err)
	}
	if n, err := s.LayerSize(d); err != nil || n != 5 {
		t.Fatalf("LayerSize = %d, %v", n, err)
	}

	li, err := s.NewLayerIngest()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(li.Dir(), "x"), []byte("x"), 0o644)
	li.Abort()
	if s.HasLayer(digest.FromString("x")) {
		t.Fatal("aborted layer visible")
	}

	// Many ingests of one diffID at once: all succeed, one copy remains.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			li, err := s.NewLayerIngest()
			if err != nil {
				errs <- err
				return
			}
			os.WriteFile(filepath.Join(li.Dir(), "file"), []byte("same"), 0o644)
			errs <- li.Commit(digest.FromString("same"), 4)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent commit: %v", err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(digest.FromString("same")), "file")); err != nil || string(b) != "same" {
		t.Fatalf("layer file = %q, %v", b, err)
	}
	assertTmpEmpty(t, s)
}

func TestOpenRemovesStaleIngests(t *testing.T) {
	s, root := openStore(t)
	li, err := s.NewLayerIngest()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(li.Dir(), "half"), []byte("x"), 0o644)
	s.Close() // simulated crash: the ingest was never committed
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	assertTmpEmpty(t, s2)
}

func TestOpenTwiceFailsClearly(t *testing.T) {
	_, root := openStore(t)
	if _, err := Open(root); err == nil {
		t.Fatal("second Open of the same root succeeded")
	}
}

func testImage(id string, tags []string, layers ...digest.Digest) *Image {
	return &Image{ID: digest.FromString(id), RepoTags: tags, Layers: layers, ManifestDigest: digest.FromString("m" + id)}
}

func TestGetByNameFamiliarNameDigestAndID(t *testing.T) {
	s, _ := openStore(t)
	img := testImage("a", []string{"docker.io/library/busybox:latest", "127.0.0.1:5000/app:v1"})
	md := digest.FromString("manifest")
	img.RepoDigests = []string{"127.0.0.1:5000/app@" + md.String()}
	if err := s.Put(img); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(testImage("b", []string{"docker.io/library/other:1"})); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"docker.io/library/busybox:latest",
		"busybox",
		"busybox:latest",
		"library/busybox",
		"127.0.0.1:5000/app:v1",
		"127.0.0.1:5000/app@" + md.String(),
		img.ID.String(),
		img.ID.Encoded(),
		img.ID.Encoded()[:12],
		"sha256:" + img.ID.Encoded()[:12],
	} {
		got, err := s.Get(q)
		if err != nil {
			t.Errorf("Get(%q): %v", q, err)
			continue
		}
		if got.ID != img.ID {
			t.Errorf("Get(%q) = %s, want %s", q, got.ID, img.ID)
		}
	}
	for _, q := range []string{"busybox:1", "127.0.0.1:5000/app", img.ID.Encoded()[:11], "Not/Valid", "sha256:zz"} {
		if _, err := s.Get(q); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", q, err)
		}
	}
}

func TestTagMovesToNewImage(t *testing.T) {
	s, _ := openStore(t)
	old := testImage("old", []string{"docker.io/library/app:v1", "docker.io/library/app:stable"})
	s.Put(old)
	s.Put(testImage("new", []string{"docker.io/library/app:v1"}))
	got, err := s.Get("app:v1")
	if err != nil || got.ID != digest.FromString("new") {
		t.Fatalf("app:v1 = %v, %v; want new image", got, err)
	}
	o, err := s.Get(old.ID.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.RepoTags, []string{"docker.io/library/app:stable"}) {
		t.Fatalf("old image tags = %v, want only app:stable", o.RepoTags)
	}
	s.Put(testImage("newer", []string{"docker.io/library/app:stable"}))
	o, _ = s.Get(old.ID.String())
	if len(o.RepoTags) != 0 {
		t.Fatalf("old image should be dangling, tags = %v", o.RepoTags)
	}
}

func TestPutMergesNamesAndPulls(t *testing.T) {
	s, _ := openStore(t)
	a := testImage("a", []string{"docker.io/library/a:1"})
	a.Pulls = []PullRecord{{Anonymous: true}}
	s.Put(a)
	b := testImage("a", []string{"docker.io/library/a:2"})
	b.Pulls = []PullRecord{{Source: keyring.Source{Kind: "secret", Namespace: "ns", Name: "s"}, CredentialHash: "h"}}
	s.Put(b)
	got, _ := s.Get("a:1")
	if !slices.Equal(got.RepoTags, []string{"docker.io/library/a:1", "docker.io/library/a:2"}) {
		t.Fatalf("tags = %v", got.RepoTags)
	}
	if len(got.Pulls) != 2 || !got.Pulls[0].Anonymous || got.Pulls[1].CredentialHash != "h" {
		t.Fatalf("pulls = %+v", got.Pulls)
	}
}

func TestRemoveUntagsThenDeletesAndCollectsUnsharedLayers(t *testing.T) {
	s, _ := openStore(t)
	base := ingestLayer(t, s, "base")
	topA := ingestLayer(t, s, "topA")
	topB := ingestLayer(t, s, "topB")
	cfgA := []byte(`{"a":1}`)
	idA := digest.FromBytes(cfgA)
	s.WriteContent(idA, cfgA)
	a := &Image{ID: idA, RepoTags: []string{"docker.io/library/a:1", "docker.io/library/a:2"}, Layers: []digest.Digest{base, topA}}
	b := &Image{ID: digest.FromString("b"), RepoTags: []string{"docker.io/library/b:1"}, Layers: []digest.Digest{base, topB}}
	s.Put(a)
	s.Put(b)

	rm, err := s.Remove("a:1")
	if err != nil || rm.Deleted != "" || !slices.Equal(rm.Untagged, []string{"docker.io/library/a:1"}) {
		t.Fatalf("Remove(a:1) = %+v, %v; want untag only", rm, err)
	}
	if !s.HasLayer(topA) {
		t.Fatal("layer of a still-tagged image collected")
	}
	rm, err = s.Remove("a:2")
	if err != nil || rm.Deleted != idA {
		t.Fatalf("Remove(a:2) = %+v, %v; want deletion", rm, err)
	}
	if s.HasLayer(topA) || s.HasContent(idA) {
		t.Fatal("layer/config of removed image not collected")
	}
	if !s.HasLayer(base) || !s.HasLayer(topB) {
		t.Fatal("layer still used by image b was collected")
	}
	if _, err := s.Remove(b.ID.Encoded()[:12]); err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(base) {
		t.Fatal("base layer not collected after last user removed")
	}
	if _, err := s.Remove("b:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove(missing) = %v, want ErrNotFound", err)
	}
	assertTmpEmpty(t, s)
}

func TestLeaseProtectsFromGC(t *testing.T) {
	s, _ := openStore(t)
	l := s.NewLease()
	d := digest.FromString("leased")
	l.Add(d)
	ingestLayer(t, s, "leased")
	if err := s.GC(); err != nil {
		t.Fatal(err)
	}
	if !s.HasLayer(d) {
		t.Fatal("leased layer collected")
	}
	l.Release()
	if err := s.GC(); err != nil {
		t.Fatal(err)
	}
	if s.HasLayer(d) {
		t.Fatal("unleased unused layer not collected")
	}
}
