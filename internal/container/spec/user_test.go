package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fixtureRootfs writes an image root filesystem with a passwd and group file.
func fixtureRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "etc/passwd"), `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
app:x:1000:1000:App:/home/app:/bin/sh
web:x:33:33:www:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
broken-line
`)
	write(t, filepath.Join(dir, "etc/group"), `root:x:0:
daemon:x:1:
www-data:x:33:
app:x:1000:
staff:x:50:app,web
video:x:44:app
audio:x:29:web
nogroup:x:65534:
`)
	return dir
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func i64(v int64) *runtime.Int64Value { return &runtime.Int64Value{Value: v} }

func TestResolveUser(t *testing.T) {
	root := fixtureRootfs(t)
	tests := []struct {
		name       string
		username   string
		uid, gid   *runtime.Int64Value
		supp       []int64
		policy     runtime.SupplementalGroupsPolicy
		imageUser  string
		wantUID    uint32
		wantGID    uint32
		wantGroups []uint32
		wantErr    string
	}{
		{name: "nothing set is root", wantUID: 0, wantGID: 0, wantGroups: []uint32{0}},
		{name: "image uid in passwd", imageUser: "1000", wantUID: 1000, wantGID: 1000, wantGroups: []uint32{1000, 50, 44}},
		{name: "image uid not in passwd", imageUser: "4242", wantUID: 4242, wantGID: 0, wantGroups: []uint32{0}},
		{name: "image name", imageUser: "web", wantUID: 33, wantGID: 33, wantGroups: []uint32{33, 50, 29}},
		{name: "image uid:gid", imageUser: "1000:44", wantUID: 1000, wantGID: 44, wantGroups: []uint32{44, 50}},
		{name: "image name:group", imageUser: "app:staff", wantUID: 1000, wantGID: 50, wantGroups: []uint32{50, 44}},
		{name: "image numeric uid with group name", imageUser: "4242:video", wantUID: 4242, wantGID: 44, wantGroups: []uint32{44}},
		{name: "run_as_user overrides image user and its group", uid: i64(33), imageUser: "app:staff", wantUID: 33, wantGID: 33, wantGroups: []uint32{33, 50, 29}},
		{name: "run_as_username wins over run_as_user", username: "app", uid: i64(33), wantUID: 1000, wantGID: 1000, wantGroups: []uint32{1000, 50, 44}},
		{name: "run_as_group replaces the primary group", uid: i64(1000), gid: i64(3000), wantUID: 1000, wantGID: 3000, wantGroups: []uint32{3000, 50, 44}},
		{name: "run_as_group alone keeps the image user", gid: i64(7), imageUser: "web", wantUID: 33, wantGID: 7, wantGroups: []uint32{7, 50, 29}},
		{name: "supplemental groups merged", uid: i64(1000), supp: []int64{2000, 50}, wantUID: 1000, wantGID: 1000, wantGroups: []uint32{1000, 50, 44, 2000}},
		{name: "strict policy ignores /etc/group", uid: i64(1000), supp: []int64{2000}, policy: runtime.SupplementalGroupsPolicy_Strict, wantUID: 1000, wantGID: 1000, wantGroups: []uint32{1000, 2000}},
		{name: "unknown user name", imageUser: "ghost", wantErr: `user "ghost" not found`},
		{name: "unknown run_as_username", username: "ghost", wantErr: `user "ghost" not found`},
		{name: "unknown group name", imageUser: "app:ghosts", wantErr: `group "ghosts" not found`},
		{name: "negative uid", uid: i64(-1), wantErr: "out of range"},
		{name: "empty user with group", imageUser: ":50", wantErr: "empty user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := criUser(tt.username, tt.uid, tt.gid, tt.supp, tt.policy, tt.imageUser)
			var u specs.User
			if err == nil {
				u, err = resolveUser(req, RootfsAccounts(root))
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.UID != tt.wantUID || u.GID != tt.wantGID {
				t.Fatalf("uid:gid = %d:%d, want %d:%d", u.UID, u.GID, tt.wantUID, tt.wantGID)
			}
			if !slices.Equal(u.AdditionalGids, tt.wantGroups) {
				t.Fatalf("additional gids = %v, want %v", u.AdditionalGids, tt.wantGroups)
			}
		})
	}
}

func TestUnknownUserIsErrUserNotFound(t *testing.T) {
	req, _ := criUser("ghost", nil, nil, nil, 0, "")
	_, err := resolveUser(req, RootfsAccounts(fixtureRootfs(t)))
	if !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("err = %v, want ErrUserNotFound", err)
	}
}

func TestNoPasswdFile(t *testing.T) {
	root := t.TempDir()
	req, _ := criUser("", i64(123), nil, nil, 0, "")
	u, err := resolveUser(req, RootfsAccounts(root))
	if err != nil || u.UID != 123 || u.GID != 0 {
		t.Fatalf("numeric uid without /etc/passwd: %+v, %v", u, err)
	}
	req, _ = criUser("", nil, nil, nil, 0, "app")
	if _, err := resolveUser(req, RootfsAccounts(root)); !errors.Is(err, ErrUserNotFound) {
		t.Fatalf("name without /etc/passwd: err = %v", err)
	}
}

// An image whose /etc/passwd is a link out of its root filesystem must not
// make the daemon read the host's file.
func TestAccountsDoNotEscapeRootfs(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "hostonly:x:4321:4321::/:/bin/sh\n")
	for name, target := range map[string]string{
		"absolute": filepath.Join(outside, "passwd"),
		"relative": "../../../../../../../../" + strings.TrimPrefix(filepath.Join(outside, "passwd"), "/"),
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(root, "etc/passwd")); err != nil {
				t.Fatal(err)
			}
			users, err := RootfsAccounts(root).Users()
			if err == nil {
				for _, u := range users {
					if u.Name == "hostonly" {
						t.Fatalf("read a file outside the rootfs through %s", target)
					}
				}
			}
			req, _ := criUser("hostonly", nil, nil, nil, 0, "")
			if _, err := resolveUser(req, RootfsAccounts(root)); err == nil {
				t.Fatal("resolved a user from outside the rootfs")
			}
		})
	}
}

// A link inside the image stays usable.
func TestAccountsFollowLinksInsideRootfs(t *testing.T) {
	root := fixtureRootfs(t)
	if err := os.Rename(filepath.Join(root, "etc/passwd"), filepath.Join(root, "etc/passwd.real")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("passwd.real", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	req, _ := criUser("app", nil, nil, nil, 0, "")
	u, err := resolveUser(req, RootfsAccounts(root))
	if err != nil || u.UID != 1000 {
		t.Fatalf("user through in-image link: %+v, %v", u, err)
	}
}
