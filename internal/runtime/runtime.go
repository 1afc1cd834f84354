package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/peapod/peapod/internal/config"
	"github.com/peapod/peapod/internal/container/runc"
	"github.com/peapod/peapod/internal/container/spec"
	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/sandbox/cni"
)

// Errors the runtime wraps, so that the CRI server can map them to status
// codes with errors.Is.
var (
	// ErrNotFound: no sandbox or container with that ID (for this owner).
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a container with the same name and attempt already
	// exists in the sandbox.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotReady: the operation needs a ready sandbox or a running
	// container, and it is not (FailedPrecondition in gRPC terms).
	ErrNotReady = errors.New("not ready")
)

// Images is what the runtime needs from the image service
// (*image.Service): the image config and layer directories of a container's
// image, and a pull for a configured pause image that is not present.
type Images interface {
	Status(nameOrID string) (*store.Image, error)
	LayerDirs(nameOrID string) ([]string, error)
	Pull(ctx context.Context, ref string, creds []keyring.Credential, opts image.PullOptions) (*store.Image, error)
}

var _ Images = (*image.Service)(nil)

// leaser is implemented by image services that can protect layers from
// garbage collection while containers use them (*image.Service through its
// store): removing an image must not delete the lower dirs of a running
// container's overlay.
type leaser interface{ Store() *store.Store }

// Options configure a Runtime.
type Options struct {
	// Root holds persistent data (records, container upper dirs, CNI
	// cache and leases); State holds what dies with the machine (runc
	// state, pinned namespaces, exit files, sockets). The runtime uses
	// ROOT/runtime and STATE/runtime. Keep STATE short: attach socket
	// paths (STATE/runtime/a/<64 hex>/attach) must fit in 108 bytes.
	Root, State string
	// Network is the [network] section of peapod.toml.
	Network config.Network
	// Runc and Conmon are the binaries (paths or names in $PATH).
	Runc, Conmon string
	// PauseImage is the infra container's image; empty means the local
	// pause built from Debian's static catatonit (CatatonitBinary).
	PauseImage string
	// Images resolves container images.
	Images Images
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// CatatonitBinary is the static pause process the local pause image holds.
const CatatonitBinary = "/usr/bin/catatonit"

// LocalPauseImage is the name the local pause image carries in annotations
// and statuses.
const LocalPauseImage = "localhost/peapod-pause:catatonit"

// Runtime runs pod sandboxes and their containers. Use For to get the view
// of one owner; the Runtime itself only opens, recovers and closes.
type Runtime struct {
	opts Options
	log  *slog.Logger
	db   *bolt.DB
	runc *runc.Runc
	net  *cni.Network
	host spec.Host
	dirs dirs

	pauseMu sync.Mutex // serialises building/pulling the pause image

	mu         sync.RWMutex // guards the maps only
	sandboxes  map[string]*sandbox
	containers map[string]*container
}

type dirs struct {
	root, state            string
	sandboxes, containers  string
	pause, cniCache, ipam  string
	runcRoot, netns, exits string
	sockets                string
}

// New opens the runtime's state under opts.Root and opts.State and finds the
// sandboxes and containers of an earlier run again: containers that exited
// meanwhile get their exit code from conmon's exit file, sandboxes whose
// pause process is gone are NOTREADY.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Root == "" || opts.State == "" {
		return nil, errors.New("runtime: root and state directories are required")
	}
	if opts.Images == nil {
		return nil, errors.New("runtime: an image service is required")
	}
	if opts.Runc == "" {
		opts.Runc = "runc"
	}
	if opts.Conmon == "" {
		opts.Conmon = "conmon"
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	root := filepath.Join(opts.Root, "runtime")
	state := filepath.Join(opts.State, "runtime")
	d := dirs{
		root: root, state: state,
		sandboxes:  filepath.Join(root, "sandboxes"),
		containers: filepath.Join(root, "containers"),
		pause:      filepath.Join(root, "pause"),
		cniCache:   filepath.Join(root, "cni", "cache"),
		ipam:       filepath.Join(root, "cni", "ipam"),
		runcRoot:   filepath.Join(state, "runc"),
		netns:      filepath.Join(state, "netns"),
		exits:      filepath.Join(state, "exits"),
		sockets:    filepath.Join(state, "a"),
	}
	for _, dir := range []string{d.sandboxes, d.containers, d.runcRoot, d.netns, d.exits, d.sockets} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
	}
	host, err := spec.DetectHost()
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	n, err := cni.New(cni.Options{
		ConfDir:     opts.Network.CNIConfDir,
		BinDirs:     opts.Network.CNIBinDirs,
		CacheDir:    d.cniCache,
		Bridge:      opts.Network.Bridge,
		Subnet:      opts.Network.Subnet,
		IPAMDataDir: d.ipam,
	})
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	db, err := bolt.Open(filepath.Join(root, "state.db"), 0o600, &bolt.Options{Timeout: timeoutOpen})
	if err != nil {
		return nil, fmt.Errorf("runtime: open %s: %w", filepath.Join(root, "state.db"), err)
	}
	r := &Runtime{
		opts: opts, log: log, db: db, net: n, host: host, dirs: d,
		runc:       runc.New(opts.Runc, d.runcRoot),
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
	}
	if err := r.recover(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("runtime: recover: %w", err)
	}
	return r, nil
}

// Close releases the state database. Sandboxes and containers keep running:
// a daemon that stops does not stop its pods.
func (r *Runtime) Close() error {
	r.mu.Lock()
	for _, c := range r.containers {
		if c.lease != nil {
			c.lease.Release()
		}
	}
	r.mu.Unlock()
	return r.db.Close()
}

// NetworkReady reports why pods cannot get a network (nil: they can), for
// the CRI's NetworkReady condition.
func (r *Runtime) NetworkReady() error { return r.net.Ready() }

// For returns the view of one owner ("cri", "kubelet"): its List calls see
// only that owner's sandboxes and containers, and every other call treats
// the others as not found.
func (r *Runtime) For(owner string) *View { return &View{r: r, owner: owner} }

// View is one owner's window on the runtime. Its methods are the CRI
// RuntimeService's. It is safe for concurrent use.
type View struct {
	r     *Runtime
	owner string
}

// Owner is the owner this view belongs to.
func (v *View) Owner() string { return v.owner }

// newID returns a container/sandbox ID: 64 hex digits, as containerd's.
func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// lookupSandbox finds a sandbox of owner by ID or unique ID prefix.
func (r *Runtime) lookupSandbox(owner, id string) (*sandbox, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if id == "" {
		return nil, fmt.Errorf("sandbox ID is empty: %w", ErrNotFound)
	}
	if s, ok := r.sandboxes[id]; ok && s.owner == owner {
		return s, nil
	}
	var found *sandbox
	for sid, s := range r.sandboxes {
		if s.owner == owner && strings.HasPrefix(sid, id) {
			if found != nil {
				return nil, fmt.Errorf("sandbox ID prefix %q is ambiguous: %w", id, ErrNotFound)
			}
			found = s
		}
	}
	if found == nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, ErrNotFound)
	}
	return found, nil
}

// lookupContainer finds a container of owner by ID or unique ID prefix.
func (r *Runtime) lookupContainer(owner, id string) (*container, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if id == "" {
		return nil, fmt.Errorf("container ID is empty: %w", ErrNotFound)
	}
	if c, ok := r.containers[id]; ok && c.owner == owner {
		return c, nil
	}
	var found *container
	for cid, c := range r.containers {
		if c.owner == owner && strings.HasPrefix(cid, id) {
			if found != nil {
				return nil, fmt.Errorf("container ID prefix %q is ambiguous: %w", id, ErrNotFound)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotFound)
	}
	return found, nil
}

// snapshot returns the current sandboxes and containers of owner.
func (r *Runtime) snapshot(owner string) ([]*sandbox, []*container) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var ss []*sandbox
	for _, s := range r.sandboxes {
		if s.owner == owner {
			ss = append(ss, s)
		}
	}
	var cs []*container
	for _, c := range r.containers {
		if c.owner == owner {
			cs = append(cs, c)
		}
	}
	return ss, cs
}

// containersOf returns the containers of sandbox id.
func (r *Runtime) containersOf(id string) []*container {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var cs []*container
	for _, c := range r.containers {
		if c.sandboxID == id {
			cs = append(cs, c)
		}
	}
	return cs
}
