package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

// push uploads an image or index into reg as repoTag.
func push(t *testing.T, reg *registrytest.Registry, repoTag string, img registrytest.Pushable) {
	t.Helper()
	if err := reg.Push(t.Context(), repoTag, img); err != nil {
		t.Fatal(err)
	}
}

// certsDir returns a certs.d that trusts reg's CA.
func certsDir(t *testing.T, reg *registrytest.Registry) string {
	t.Helper()
	dir := t.TempDir()
	if err := reg.WriteCertsDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// refusedAddr is a loopback address where nothing listens: a mirror that
// is down.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// blobGets counts every blob GET the proxy has seen, whatever the blob.
func blobGets(p *registrytest.Proxy) int {
	n := 0
	for _, r := range p.Requests() {
		if strings.HasPrefix(r, http.MethodGet+" /v2/") && strings.Contains(r, "/blobs/sha256:") {
			n++
		}
	}
	return n
}

// layer builds an imagetest layer, failing the test on error.
func layer(t *testing.T, c imagetest.Compression, files ...imagetest.File) v1.Layer {
	t.Helper()
	l, err := imagetest.Layer(files, c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// amd64 is the platform every test image is built for (and the service
// pulls for, in the multi-arch test).
var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// testImage builds a linux/amd64 image of the given format, failing the
// test on error.
func testImage(t *testing.T, f imagetest.Format, layers ...v1.Layer) v1.Image {
	t.Helper()
	p := amd64
	img, err := imagetest.Image(imagetest.ImageOptions{Layers: layers, MediaType: f, Platform: &p})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// digestOf is d's digest as "sha256:…".
func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// registryEntry is one [[registry]] of a registries.conf the test writes.
type registryEntry struct {
	Prefix, Location string
	Insecure         bool
	Mirrors          []mirrorEntry
}

type mirrorEntry struct {
	Location string
	Insecure bool
}

func writeRegistriesConf(t *testing.T, entries ...registryEntry) string {
	t.Helper()
	var b strings.Builder
	for _, e := range entries {
		b.WriteString("[[registry]]\n")
		if e.Prefix != "" {
			fmt.Fprintf(&b, "prefix = %q\n", e.Prefix)
		}
		fmt.Fprintf(&b, "location = %q\ninsecure = %v\n", e.Location, e.Insecure)
		for _, m := range e.Mirrors {
			fmt.Fprintf(&b, "[[registry.mirror]]\nlocation = %q\ninsecure = %v\n", m.Location, m.Insecure)
		}
	}
	p := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testService starts a Service on a fresh root whose logs go to the returned
// buffer (so tests can search them for secrets).
func testService(t *testing.T, opts Options) (*Service, *bytes.Buffer) {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	logs := &bytes.Buffer{}
	opts.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// assertNoSecrets searches texts and every file under root for each secret,
// its base64 form and the base64 of "user:secret".
func assertNoSecrets(t *testing.T, root string, texts []string, user string, secrets ...string) {
	t.Helper()
	var needles []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		needles = append(needles, s, base64.StdEncoding.EncodeToString([]byte(s)),
			base64.StdEncoding.EncodeToString([]byte(user+":"+s)),
			base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	for i, text := range texts {
		for _, n := range needles {
			if strings.Contains(text, n) {
				t.Errorf("output %d contains a secret (%.6s...): %s", i, n, text)
			}
		}
	}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("file %s contains a secret (%.6s...)", p, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// mergedTree stacks layer directories (top first, as LayerDirs returns)
// with a real read-only overlay mount and describes the visible tree.
func mergedTree(t *testing.T, dirs []string) map[string]string {
	t.Helper()
	if len(dirs) == 1 {
		return describeTree(t, dirs[0])
	}
	mnt := t.TempDir()
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(dirs, ":")); err != nil {
		t.Fatalf("overlay mount of %d layers: %v", len(dirs), err)
	}
	defer func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	}()
	return describeTree(t, mnt)
}

// describeTree maps each path to "type mode uid:gid content-sha/link".
func describeTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %o %d:%d", typeChar(fi.Mode()), fi.Mode().Perm(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:4])
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		}
		out["/"+rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func typeChar(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "d"
	case m&fs.ModeSymlink != 0:
		return "l"
	case m&fs.ModeCharDevice != 0:
		return "c"
	case m&fs.ModeDevice != 0:
		return "b"
	case m&fs.ModeNamedPipe != 0:
		return "p"
	}
	return "f"
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
