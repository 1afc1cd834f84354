package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ErrDigestMismatch is returned when data does not hash to the digest it was
// stored or fetched under.
var ErrDigestMismatch = errors.New("digest mismatch")

func (s *Store) contentPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("content %q: %w", d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("content %s: unsupported digest algorithm %s", d, d.Algorithm())
	}
	return filepath.Join(s.dir, "content", "sha256", d.Encoded()), nil
}

// WriteContent stores a manifest, index or config under its digest. The data
// is verified first and becomes visible by rename, so readers never see a
// partial or wrong blob. Writing existing content is a no-op.
func (s *Store) WriteContent(d digest.Digest, data []byte) error {
	p, err := s.contentPath(d)
	if err != nil {
		return err
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return fmt.Errorf("write content %s: got %s: %w", d, got, ErrDigestMismatch)
	}
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	f, err := os.CreateTemp(s.tmpDir(), "content-")
	if err != nil {
		return fmt.Errorf("write content %s: %w", d, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write content %s: %w", d, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write content %s: %w", d, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write content %s: %w", d, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write content %s: %w", d, err)
	}
	return nil
}

// ReadContent returns the stored blob, verified against its digest.
func (s *Store) ReadContent(d digest.Digest) ([]byte, error) {
	p, err := s.contentPath(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("content %s: %w", d, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(data); got != d {
		return nil, fmt.Errorf("read content %s: stored data hashes to %s: %w", d, got, ErrDigestMismatch)
	}
	return data, nil
}

// HasContent reports whether the blob is stored.
func (s *Store) HasContent(d digest.Digest) bool {
	p, err := s.contentPath(d)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}
