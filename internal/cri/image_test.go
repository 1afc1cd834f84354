package cri

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/imagetest"
	"github.com/peapod/peapod/internal/registrytest"
)

func waitABit() { time.Sleep(10 * time.Millisecond) }

// testImages is a real image service under a temporary root, trusting the
// CAs written to its certs dir.
type testImages struct {
	*image.Service
	root, certs string
}

func newTestImages(t *testing.T) *testImages {
	t.Helper()
	dir := t.TempDir()
	ti := &testImages{root: filepath.Join(dir, "root"), certs: filepath.Join(dir, "certs.d")}
	svc, err := image.New(context.Background(), image.Options{Root: ti.root, CertsDir: ti.certs, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	ti.Service = svc
	return ti
}

func smallImage(t *testing.T, content string, user string) v1.Image {
	t.Helper()
	l, err := imagetest.Layer([]imagetest.File{imagetest.Reg("hello", content)}, imagetest.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagetest.Image(imagetest.ImageOptions{Layers: []v1.Layer{l}, Config: v1.Config{User: user, Cmd: []string{"/hello"}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCredentialsFromAuthConfig(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cri := keyring.Source{Kind: keyring.SourceCRI}
	for _, tc := range []struct {
		name string
		auth *runtimeapi.AuthConfig
		host string
		want []keyring.Credential
		code codes.Code
	}{
		{"nil is anonymous", nil, "r.io", nil, codes.OK},
		{"empty is anonymous", &runtimeapi.AuthConfig{}, "r.io", nil, codes.OK},
		{"username and password", &runtimeapi.AuthConfig{Username: "u", Password: "p"}, "r.io",
			[]keyring.Credential{{Username: "u", Password: "p", Source: cri}}, codes.OK},
		{"auth is base64 user:password", &runtimeapi.AuthConfig{Auth: b64("u:p:with:colons")}, "r.io",
			[]keyring.Credential{{Username: "u", Password: "p:with:colons", Source: cri}}, codes.OK},
		{"username wins over auth", &runtimeapi.AuthConfig{Username: "u", Password: "p", Auth: b64("x:y")}, "r.io",
			[]keyring.Credential{{Username: "u", Password: "p", Source: cri}}, codes.OK},
		{"identity token", &runtimeapi.AuthConfig{IdentityToken: "idt"}, "r.io",
			[]keyring.Credential{{IdentityToken: "idt", Source: cri}}, codes.OK},
		{"registry token", &runtimeapi.AuthConfig{RegistryToken: "rt"}, "r.io",
			[]keyring.Credential{{RegistryToken: "rt", Source: cri}}, codes.OK},
		{"matching server address", &runtimeapi.AuthConfig{Username: "u", Password: "p", ServerAddress: "https://r.io/v2/"}, "r.io",
			[]keyring.Credential{{Username: "u", Password: "p", Source: cri}}, codes.OK},
		{"docker hub aliases match", &runtimeapi.AuthConfig{Username: "u", Password: "p", ServerAddress: "https://index.docker.io/v1/"}, "docker.io",
			[]keyring.Credential{{Username: "u", Password: "p", Source: cri}}, codes.OK},
		{"another registry's server address: no credentials", &runtimeapi.AuthConfig{Username: "u", Password: "p", ServerAddress: "other.io"}, "r.io",
			nil, codes.OK},
		{"auth not base64", &runtimeapi.AuthConfig{Auth: "s3cr3t!!"}, "r.io", nil, codes.InvalidArgument},
		{"auth without colon", &runtimeapi.AuthConfig{Auth: b64("s3cr3t")}, "r.io", nil, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := credentials(tc.auth, tc.host)
			if status.Code(err) != tc.code {
				t.Fatalf("err = %v, want code %v", err, tc.code)
			}
			if err != nil && strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes the secret: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("credential %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestImageServiceAgainstPrivateRegistry(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Htpasswd: map[string]string{"alice": "s3cr3t-pw"}})
	ti := newTestImages(t)
	if err := reg.WriteCertsDir(ti.certs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img := smallImage(t, "v1", "1000:1000")
	if err := reg.Push(ctx, "team/app:v1", img); err != nil {
		t.Fatal(err)
	}
	if err := reg.Push(ctx, "team/app:also", img); err != nil {
		t.Fatal(err)
	}
	named := smallImage(t, "named", "nobody")
	if err := reg.Push(ctx, "team/named:v1", named); err != nil {
		t.Fatal(err)
	}
	_, c, _ := serve(t, Options{Images: ti, ImageFsDir: ti.root})
	ref := reg.Ref("team/app:v1")
	pull := func(ref string, auth *runtimeapi.AuthConfig) (*runtimeapi.PullImageResponse, error) {
		return c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, Auth: auth})
	}

	// Refused: anonymous, wrong password, credentials for another registry.
	for name, auth := range map[string]*runtimeapi.AuthConfig{
		"anonymous":        nil,
		"wrong password":   {Username: "alice", Password: "wrong-s3cr3t"},
		"another registry": {Username: "alice", Password: "s3cr3t-pw", ServerAddress: "registry.example.com"},
	} {
		_, err := pull(ref, auth)
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("pull as %s: %v, want Unauthenticated", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("pull as %s: error shows the password: %v", name, err)
		}
	}

	// Accepted: username/password (crictl pull --creds) and auth (--auth).
	resp, err := pull(ref, &runtimeapi.AuthConfig{Username: "alice", Password: "s3cr3t-pw"})
	if err != nil {
		t.Fatalf("pull with credentials: %v", err)
	}
	wantID, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ImageRef != wantID.String() {
		t.Errorf("ImageRef = %q, want the image ID %q", resp.ImageRef, wantID)
	}
	if _, err := pull(reg.Ref("team/app:also"), &runtimeapi.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("alice:s3cr3t-pw"))}); err != nil {
		t.Fatalf("pull with auth: %v", err)
	}
	if _, err := pull(reg.Ref("team/named:v1"), &runtimeapi.AuthConfig{Username: "alice", Password: "s3cr3t-pw"}); err != nil {
		t.Fatal(err)
	}

	// Listed and described by every name.
	list, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Images) != 2 {
		t.Fatalf("ListImages: %d images, want 2: %v", len(list.Images), list.Images)
	}
	for _, name := range []string{ref, reg.Ref("team/app:also"), wantID.String(), wantID.Hex[:12]} {
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}, Verbose: true})
		if err != nil {
			t.Fatalf("ImageStatus %s: %v", name, err)
		}
		im := st.GetImage()
		if im.GetId() != wantID.String() || len(im.RepoTags) != 2 || len(im.RepoDigests) == 0 || im.Size == 0 {
			t.Errorf("ImageStatus %s = %v", name, im)
		}
		if im.GetUid().GetValue() != 1000 || im.Username != "" {
			t.Errorf("ImageStatus %s: uid %v username %q, want uid 1000", name, im.GetUid(), im.Username)
		}
		var info struct {
			ImageSpec struct {
				Config struct{ Cmd []string }
			}
			Pulls []struct{ Source string }
		}
		if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
			t.Fatalf("verbose info: %v in %q", err, st.Info["info"])
		}
		if len(info.ImageSpec.Config.Cmd) != 1 || info.ImageSpec.Config.Cmd[0] != "/hello" || len(info.Pulls) == 0 || info.Pulls[0].Source != "CRI request auth" {
			t.Errorf("verbose info = %s", st.Info["info"])
		}
		if strings.Contains(st.Info["info"], "s3cr3t") {
			t.Errorf("verbose info shows the password")
		}
	}
	st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref("team/named:v1")}})
	if err != nil || st.GetImage().GetUsername() != "nobody" || st.GetImage().GetUid() != nil {
		t.Errorf("image with a named user: %v, %v", st, err)
	}
	filtered, err := c.img.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: ref}}})
	if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != wantID.String() {
		t.Errorf("ListImages filtered by %s: %v, %v", ref, filtered, err)
	}

	fs, err := c.img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() == 0 || fs.ImageFilesystems[0].InodesUsed.GetValue() == 0 ||
		fs.ImageFilesystems[0].FsId.GetMountpoint() != ti.root {
		t.Errorf("ImageFsInfo = %v", fs)
	}

	// Removing by one tag removes the image with all its tags; again is fine.
	for i := 0; i < 2; i++ {
		if _, err := c.img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
			t.Fatalf("RemoveImage #%d: %v", i+1, err)
		}
	}
	for _, name := range []string{ref, reg.Ref("team/app:also"), wantID.String()} {
		st, err := c.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: name}})
		if err != nil || st.Image != nil {
			t.Errorf("ImageStatus %s after RemoveImage: %v, %v; want an empty answer", name, st, err)
		}
	}
}

func TestPullErrorsCarryCodes(t *testing.T) {
	reg := registrytest.Start(t, registrytest.Options{})
	ti := newTestImages(t)
	_, c, _ := serve(t, Options{Images: ti})
	ctx := context.Background()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		ref  string
		code codes.Code
		want string
	}{
		{refused + "/app:v1", codes.Unavailable, "RegistryUnavailable"},
		// Plain HTTP registry not marked insecure: unavailable, with advice.
		{reg.Ref("app:v1"), codes.Unavailable, "insecure"},
		{"team/UPPER:v1", codes.InvalidArgument, "lowercase"},
	} {
		_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: tc.ref}})
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pull %s: %v, want %v mentioning %q", tc.ref, err, tc.code, tc.want)
		}
	}
}
