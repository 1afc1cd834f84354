// Package store keeps the images of one node on disk: content (manifests,
// indexes, configs) by digest, layers unpacked by diffID, and image records in
// a bbolt database.
//
// Layout under ROOT/image:
//
//	content/sha256/<hex>   manifests, indexes and configs, written atomically
//	layers/<hex>/fs        an unpacked layer, used as an overlay lower dir
//	layers/<hex>/layer.json its metadata (diffID, unpacked size)
//	tmp/                   ingests in progress; emptied at Open
//	images.db              image records (bbolt)
//
// Compressed layer blobs are not kept: a layer is only ever needed unpacked
// (as an overlay lower dir), so keeping the tarball as well would roughly
// double the disk used per image, as containers-storage also concluded. The
// cost is that an image cannot be pushed or exported byte for byte; peapod
// only runs images.
//
// Everything becomes visible by a rename on the same filesystem, after it was
// verified, so a crash or a failed pull never leaves a partial blob, layer or
// record behind; leftovers in tmp/ are removed at the next Open.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrNotFound is returned when no image, layer or blob matches.
var ErrNotFound = errors.New("not found")

// Store is the on-disk image state under one root. It is safe for concurrent
// use; only one Store may have a root open at a time (the database is locked).
type Store struct {
	dir string // ROOT/image
	db  *bolt.DB

	// mu orders garbage collection against leases: a collection computes the
	// set of unused items and removes them while holding mu, and a lease adds
	// its digests under mu, so an item a pull is about to rely on is never
	// collected between the pull's "is it there?" and its image record.
	mu     sync.Mutex
	leases map[*Lease]struct{}
}

// Open opens (creating if needed) the image store under root/image and
// removes what interrupted ingests left in its tmp directory.
func Open(root string) (*Store, error) {
	dir := filepath.Join(root, "image")
	for _, d := range []string{
		filepath.Join(dir, "content", "sha256"),
		filepath.Join(dir, "layers"),
		filepath.Join(dir, "tmp"),
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store: %w", err)
		}
	}
	if err := cleanTmp(filepath.Join(dir, "tmp")); err != nil {
		return nil, fmt.Errorf("open image store: clean stale ingests: %w", err)
	}
	dbPath := filepath.Join(dir, "images.db")
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open image store %s: database is in use by another process (is another peapod daemon using root %s?)", dbPath, root)
		}
		return nil, fmt.Errorf("open image store %s: %w", dbPath, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketImages)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("open image store %s: %w", dbPath, err)
	}
	return &Store{dir: dir, db: db, leases: map[*Lease]struct{}{}}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// Dir is ROOT/image.
func (s *Store) Dir() string { return s.dir }

func (s *Store) tmpDir() string { return filepath.Join(s.dir, "tmp") }

func cleanTmp(tmp string) error {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(tmp, e.Name())
		slog.Info("removing stale image ingest", "path", p)
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// Lease protects content and layers from garbage collection while a pull
// works with them, before its image record exists. Release it when done.
type Lease struct {
	s       *Store
	digests map[digest.Digest]struct{}
}

// NewLease starts a lease holding nothing yet.
func (s *Store) NewLease() *Lease {
	l := &Lease{s: s, digests: map[digest.Digest]struct{}{}}
	s.mu.Lock()
	s.leases[l] = struct{}{}
	s.mu.Unlock()
	return l
}

// Add protects the given content digests or layer diffIDs. Call it before
// checking whether they exist.
func (l *Lease) Add(ds ...digest.Digest) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	for _, d := range ds {
		l.digests[d] = struct{}{}
	}
}

// Release ends the lease; what it protected is collectable again unless an
// image record uses it.
func (l *Lease) Release() {
	l.s.mu.Lock()
	delete(l.s.leases, l)
	l.s.mu.Unlock()
}

// leasedLocked returns every digest held by a lease; s.mu must be held.
func (s *Store) leasedLocked() map[digest.Digest]struct{} {
	out := map[digest.Digest]struct{}{}
	for l := range s.leases {
		for d := range l.digests {
			out[d] = struct{}{}
		}
	}
	return out
}

// GC removes the layers and content that no image record and no lease uses.
// It is called after every Remove; callers may also run it after a failed
// pull.
func (s *Store) GC() error {
	s.mu.Lock()
	used := s.leasedLocked()
	imgs, err := s.List()
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("image gc: %w", err)
	}
	for _, img := range imgs {
		for _, d := range img.references() {
			used[d] = struct{}{}
		}
	}
	var trash []string
	var errs []error
	layers, err := os.ReadDir(filepath.Join(s.dir, "layers"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range layers {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if _, ok := used[d]; ok {
			continue
		}
		// Move out of sight first: the slow removal then happens outside
		// the lock and a half-removed layer is never visible as a layer.
		t, err := os.MkdirTemp(s.tmpDir(), "gc-")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Rename(filepath.Join(s.dir, "layers", e.Name()), filepath.Join(t, "layer")); err != nil {
			errs = append(errs, err)
		}
		trash = append(trash, t)
		slog.Debug("image gc: layer", "diffID", d)
	}
	blobs, err := os.ReadDir(filepath.Join(s.dir, "content", "sha256"))
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range blobs {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if _, ok := used[d]; ok {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, "content", "sha256", e.Name())); err != nil {
			errs = append(errs, err)
		}
		slog.Debug("image gc: content", "digest", d)
	}
	s.mu.Unlock()
	for _, t := range trash {
		if err := os.RemoveAll(t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("image gc: %w", err)
	}
	return nil
}
