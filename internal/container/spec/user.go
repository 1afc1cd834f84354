package spec

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ErrUserNotFound is wrapped by errors about a user or group name that the
// image's /etc/passwd or /etc/group does not define.
var ErrUserNotFound = errors.New("not found")

// Accounts answers user and group questions about an image. RootfsAccounts
// reads them from the image's root filesystem; tests and callers with a
// cache may supply their own.
type Accounts interface {
	// Users returns the entries of the image's /etc/passwd (none if the
	// file does not exist).
	Users() ([]User, error)
	// Groups returns the entries of the image's /etc/group (none if the
	// file does not exist).
	Groups() ([]Group, error)
}

// User is one /etc/passwd entry.
type User struct {
	Name string
	UID  uint32
	GID  uint32
}

// Group is one /etc/group entry.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// RootfsAccounts reads /etc/passwd and /etc/group inside the root filesystem
// at dir. The files are opened through os.Root, so a symbolic link in the
// image cannot make the daemon read a file of the host.
type RootfsAccounts string

// Users implements Accounts.
func (r RootfsAccounts) Users() ([]User, error) {
	var out []User
	err := r.read("etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 == nil && err2 == nil {
			out = append(out, User{Name: f[0], UID: uid, GID: gid})
		}
	})
	return out, err
}

// Groups implements Accounts.
func (r RootfsAccounts) Groups() ([]Group, error) {
	var out []Group
	err := r.read("etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		g := Group{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			for m := range strings.SplitSeq(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					g.Members = append(g.Members, m)
				}
			}
		}
		out = append(out, g)
	})
	return out, err
}

// maxAccountsFile bounds what a hostile image can make the daemon read.
const maxAccountsFile = 16 << 20

func (r RootfsAccounts) read(name string, line func([]string)) error {
	root, err := os.OpenRoot(string(r))
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", string(r), err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read /%s of the image: %w", name, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("read /%s of the image: not a regular file", name)
	}
	sc := bufio.NewScanner(io.LimitReader(f, maxAccountsFile))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		line(strings.Split(t, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read /%s of the image: %w", name, err)
	}
	return nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	return uint32(n), err
}

// userRequest is who the container should run as, before resolution.
type userRequest struct {
	// spec is "user[:group]" with numbers or names; "" means root.
	spec string
	// group overrides the primary group (CRI run_as_group).
	group *int64
	// supplemental are added to the resolved groups (CRI supplemental_groups).
	supplemental []int64
	// strict ignores /etc/group membership (SupplementalGroupsPolicy Strict).
	strict bool
}

// criUser builds the request from a CRI security context and the image's
// User: run_as_username wins over run_as_user, both over the image; the
// image's "user:group" keeps its group only when the CRI names no user.
// run_as_group replaces the primary group whichever user was chosen (CRI-O's
// behaviour; containerd refuses a group without a user, which breaks pods
// that set only runAsGroup).
func criUser(username string, uid, gid *runtime.Int64Value, supplemental []int64, policy runtime.SupplementalGroupsPolicy, imageUser string) (userRequest, error) {
	r := userRequest{spec: imageUser, supplemental: supplemental}
	switch {
	case username != "":
		r.spec = username
	case uid != nil:
		if uid.GetValue() < 0 || uid.GetValue() > 1<<32-2 {
			return r, fmt.Errorf("run_as_user %d: out of range", uid.GetValue())
		}
		r.spec = strconv.FormatInt(uid.GetValue(), 10)
	}
	if gid != nil {
		if gid.GetValue() < 0 || gid.GetValue() > 1<<32-2 {
			return r, fmt.Errorf("run_as_group %d: out of range", gid.GetValue())
		}
		v := gid.GetValue()
		r.group = &v
	}
	switch policy {
	case runtime.SupplementalGroupsPolicy_Merge:
	case runtime.SupplementalGroupsPolicy_Strict:
		r.strict = true
	default:
		return r, fmt.Errorf("supplemental groups policy %d: not supported", policy)
	}
	for _, g := range supplemental {
		if g < 0 || g > 1<<32-2 {
			return r, fmt.Errorf("supplemental group %d: out of range", g)
		}
	}
	return r, nil
}

// resolveUser turns the request into uid, gid and additional gids.
//
//   - "uid": the uid; the primary gid of its /etc/passwd entry, else 0.
//   - "name": must exist in /etc/passwd.
//   - "…:gid" / "…:group": the group, a name looked up in /etc/group.
//   - then run_as_group replaces the primary gid;
//   - additional gids: the primary gid, the groups that list the user's name
//     as a member (unless Strict), and supplemental_groups, without
//     duplicates, in that order.
func resolveUser(req userRequest, acc Accounts) (specs.User, error) {
	var u specs.User
	userPart, groupPart, hasGroup := strings.Cut(req.spec, ":")
	if userPart == "" && !hasGroup {
		userPart = "0"
	}
	if userPart == "" {
		return u, fmt.Errorf("user %q: empty user name", req.spec)
	}
	var users []User
	var groups []Group
	var loaded bool
	load := func() error {
		if loaded || acc == nil {
			return nil
		}
		loaded = true
		var err error
		if users, err = acc.Users(); err != nil {
			return err
		}
		groups, err = acc.Groups()
		return err
	}
	if err := load(); err != nil {
		return u, fmt.Errorf("resolve user %q: %w", req.spec, err)
	}

	username := ""
	if id, err := parseID(userPart); err == nil {
		u.UID = id
		for _, e := range users {
			if e.UID == id {
				u.GID, username = e.GID, e.Name
				break
			}
		}
	} else {
		found := false
		for _, e := range users {
			if e.Name == userPart {
				u.UID, u.GID, username, found = e.UID, e.GID, e.Name, true
				break
			}
		}
		if !found {
			return u, fmt.Errorf("resolve user %q: user %q %w in the image's /etc/passwd", req.spec, userPart, ErrUserNotFound)
		}
	}
	if hasGroup {
		if id, err := parseID(groupPart); err == nil {
			u.GID = id
		} else {
			found := false
			for _, g := range groups {
				if g.Name == groupPart {
					u.GID, found = g.GID, true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("resolve user %q: group %q %w in the image's /etc/group", req.spec, groupPart, ErrUserNotFound)
			}
		}
	}
	if req.group != nil {
		u.GID = uint32(*req.group)
	}

	add := func(g uint32) {
		for _, x := range u.AdditionalGids {
			if x == g {
				return
			}
		}
		u.AdditionalGids = append(u.AdditionalGids, g)
	}
	add(u.GID)
	if !req.strict && username != "" {
		for _, g := range groups {
			for _, m := range g.Members {
				if m == username {
					add(g.GID)
					break
				}
			}
		}
	}
	for _, g := range req.supplemental {
		add(uint32(g))
	}
	return u, nil
}
