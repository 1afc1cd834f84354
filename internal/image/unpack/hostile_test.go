package unpack

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestApplyRefusesHostileLayers unpacks layers that try to write outside
// the layer directory. Each must fail naming the offending entry, and
// nothing beside the layer directory (a canary tree in the same sandbox)
// may change.
func TestApplyRefusesHostileLayers(t *testing.T) {
	requireRoot(t)
	// sandbox is the same for every case so the absolute names below
	// point at the canary tree; each case gets a fresh canary and layer.
	sandbox := t.TempDir()
	canary := filepath.Join(sandbox, "canary")
	outside := func(rel string) string { return filepath.Join(canary, rel) }

	tests := []struct {
		name    string
		entries []entry
		bad     string // entry the error must name
		unsafe  bool   // error must wrap ErrUnsafe
	}{
		{"dotdot file", []entry{file("../canary/evil", "x")}, "../canary/evil", true},
		{"dotdot inside name", []entry{file("a/../../canary/evil", "x")}, "a/../../canary/evil", true},
		{"dotdot dir", []entry{dir("../canary/newdir/")}, "../canary/newdir/", true},
		{"absolute file", []entry{file(outside("evil"), "x")}, outside("evil"), true},
		{"absolute dir", []entry{dir(outside("newdir") + "/")}, outside("newdir") + "/", true},
		{"overwrite canary by absolute name", []entry{file(outside("file"), "pwned")}, outside("file"), true},
		{"file through absolute symlink", []entry{symlink("a", canary), file("a/evil", "x")}, "a/evil", true},
		{"file through relative symlink", []entry{symlink("a", "../canary"), file("a/evil", "x")}, "a/evil", true},
		{"overwrite through symlink", []entry{symlink("a", "../canary"), file("a/file", "pwned")}, "a/file", true},
		{"file through symlink to /", []entry{symlink("a", "/"), file("a"+outside("evil"), "x")}, "a" + outside("evil"), true},
		{"file through symlink chain", []entry{symlink("b", "../canary"), symlink("a", "b"), file("a/evil", "x")}, "a/evil", true},
		{"file through symlink inside the layer", []entry{dir("d/"), symlink("a", "d"), file("a/x", "x")}, "a/x", true},
		{"dir through symlink", []entry{symlink("a", "../canary"), dir("a/newdir/")}, "a/newdir/", true},
		{"dir replaced by symlink, then written through", []entry{dir("d/"), symlink("d", "../canary"), file("d/evil", "x")}, "d/evil", true},
		{"deep parent through symlink", []entry{symlink("a", "../canary"), file("a/sub/deeper/evil", "x")}, "a/sub/deeper/evil", true},
		{"device through symlink", []entry{symlink("a", "../canary"), chardev("a/null", 1, 3)}, "a/null", true},
		{"fifo through symlink", []entry{symlink("a", "../canary"), {name: "a/fifo", typ: tar.TypeFifo}}, "a/fifo", true},
		{"symlink created through symlink", []entry{symlink("a", "../canary"), symlink("a/link", "/etc/shadow")}, "a/link", true},
		{"whiteout through symlink", []entry{symlink("a", "../canary"), file("a/.wh.file", "")}, "a/.wh.file", true},
		{"opaque through symlink", []entry{symlink("a", "../canary"), file("a/.wh..wh..opq", "")}, "a/.wh..wh..opq", true},
		{"whiteout of dotdot", []entry{dir("d/"), file("d/.wh...", "")}, "d/.wh...", true},
		{"hardlink escaping", []entry{hardlink("l", "../canary/file")}, "l", true},
		{"hardlink absolute", []entry{hardlink("l", outside("file"))}, "l", true},
		{"hardlink to a file not in this layer", []entry{hardlink("l", "etc/passwd")}, "l", true},
		{"hardlink through symlink", []entry{symlink("a", "../canary"), hardlink("l", "a/file")}, "l", true},
		{"hardlink to a whited-out file", []entry{file("f", "x"), file(".wh.f", ""), hardlink("l", "f")}, "l", true},
		{"hardlink to a file removed with its dir", []entry{file("d/f", "x"), file("d", "now a file"), dir("d/"), hardlink("l", "d/f")}, "l", false},
		{"root replaced by a file", []entry{file("./.", "x")}, "./.", true},
		{"root replaced by a symlink", []entry{symlink(".", "../canary")}, ".", true},
		{"empty name", []entry{file("", "x")}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(canary)
			if err := os.MkdirAll(filepath.Join(canary, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(canary, "file"), []byte("canary"), 0o644); err != nil {
				t.Fatal(err)
			}
			layer := filepath.Join(sandbox, "layer")
			os.RemoveAll(layer)
			t.Cleanup(func() { os.RemoveAll(layer) })
			// Created first, so that the sandbox's own mtime is not
			// what the snapshot sees change.
			if err := os.Mkdir(layer, 0o755); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, sandbox, layer)

			_, err := Apply(t.Context(), layer, bytes.NewReader(tarBytes(t, tc.entries...)))
			if err == nil {
				t.Fatalf("Apply succeeded; want an error naming entry %q", tc.bad)
			}
			if !strings.Contains(err.Error(), "entry \""+tc.bad+"\"") {
				t.Errorf("error %q does not name entry %q", err, tc.bad)
			}
			if tc.unsafe && !errors.Is(err, ErrUnsafe) {
				t.Errorf("error %q does not wrap ErrUnsafe", err)
			}
			after := snapshot(t, sandbox, layer)
			for p, want := range before {
				if got, ok := after[p]; !ok {
					t.Errorf("%s was removed", p)
				} else if got != want {
					t.Errorf("%s changed:\n before %s\n after  %s", p, want, got)
				}
			}
			for p := range after {
				if _, ok := before[p]; !ok {
					t.Errorf("%s was created outside the layer", p)
				}
			}
		})
	}
}

// TestApplySymlinkReplacedNotFollowed checks that an entry replacing a
// symlink replaces the link itself instead of writing to its target.
func TestApplySymlinkReplacedNotFollowed(t *testing.T) {
	requireRoot(t)
	sandbox := t.TempDir()
	canary := filepath.Join(sandbox, "canary")
	if err := os.MkdirAll(canary, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(canary, "file"), []byte("canary"), 0o644); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(sandbox, "layer")
	if err := os.Mkdir(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, sandbox, layer)
	_, err := Apply(t.Context(), layer, bytes.NewReader(tarBytes(t,
		symlink("f", filepath.Join(canary, "file")),
		file("f", "mine"),
		symlink("d", "../canary"),
		dir("d/"),
		symlink("n", "../canary/file"),
		chardev("n", 1, 3),
	)))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(layer, "f")); err != nil || string(b) != "mine" {
		t.Errorf("layer f = %q, %v; want the layer's own file", b, err)
	}
	if fi, err := os.Lstat(filepath.Join(layer, "d")); err != nil || !fi.IsDir() {
		t.Errorf("layer d = %v, %v; want a directory", fi, err)
	}
	after := snapshot(t, sandbox, layer)
	for p, want := range before {
		if after[p] != want {
			t.Errorf("%s changed:\n before %s\n after  %s", p, want, after[p])
		}
	}
}
