package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/go-digest"
)

// layerMeta is layers/<hex>/layer.json.
type layerMeta struct {
	DiffID digest.Digest `json:"diffID"`
	// Size is the unpacked size in bytes (the sum of regular file sizes).
	Size int64 `json:"size"`
}

func (s *Store) layerPath(diffID digest.Digest) string {
	return filepath.Join(s.dir, "layers", diffID.Encoded())
}

// LayerDir is the unpacked file tree of a layer: the directory an overlay
// mount takes as a lower dir. It exists only if HasLayer is true.
func (s *Store) LayerDir(diffID digest.Digest) string {
	return filepath.Join(s.layerPath(diffID), "fs")
}

// HasLayer reports whether the layer is stored, complete.
func (s *Store) HasLayer(diffID digest.Digest) bool {
	if diffID.Validate() != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.layerPath(diffID), "layer.json"))
	return err == nil
}

// LayerSize returns the unpacked size of a stored layer.
func (s *Store) LayerSize(diffID digest.Digest) (int64, error) {
	b, err := os.ReadFile(filepath.Join(s.layerPath(diffID), "layer.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("layer %s: %w", diffID, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("layer %s: %w", diffID, err)
	}
	var m layerMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return 0, fmt.Errorf("layer %s: bad metadata: %w", diffID, err)
	}
	return m.Size, nil
}

// LayerIngest is a layer being unpacked. Unpack into Dir, then Commit with
// the diffID computed while unpacking, or Abort. It is invisible until Commit.
type LayerIngest struct {
	s    *Store
	tmp  string
	done bool
}

// NewLayerIngest creates an empty directory for a layer under the store's
// tmp directory, on the same filesystem as the layers, so that Commit is a
// rename.
func (s *Store) NewLayerIngest() (*LayerIngest, error) {
	tmp, err := os.MkdirTemp(s.tmpDir(), "layer-")
	if err != nil {
		return nil, fmt.Errorf("new layer ingest: %w", err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "fs"), 0o755); err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("new layer ingest: %w", err)
	}
	return &LayerIngest{s: s, tmp: tmp}, nil
}

// Dir is where the layer's files go.
func (li *LayerIngest) Dir() string { return filepath.Join(li.tmp, "fs") }

// Commit makes the unpacked layer visible under diffID. The caller has
// verified that the uncompressed stream hashes to diffID. If the layer
// already exists (another pull committed it first) this ingest is discarded
// and Commit succeeds: the first one wins.
func (li *LayerIngest) Commit(diffID digest.Digest, size int64) error {
	if li.done {
		return fmt.Errorf("commit layer %s: ingest already finished", diffID)
	}
	li.done = true
	if err := diffID.Validate(); err != nil {
		os.RemoveAll(li.tmp)
		return fmt.Errorf("commit layer %q: %w", diffID, err)
	}
	meta, _ := json.Marshal(layerMeta{DiffID: diffID, Size: size})
	if err := os.WriteFile(filepath.Join(li.tmp, "layer.json"), meta, 0o600); err != nil {
		os.RemoveAll(li.tmp)
		return fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	err := os.Rename(li.tmp, li.s.layerPath(diffID))
	if err != nil {
		os.RemoveAll(li.tmp)
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return nil
		}
		return fmt.Errorf("commit layer %s: %w", diffID, err)
	}
	return nil
}

// Abort removes the ingest. It is safe to call after Commit (then a no-op),
// so callers can defer it.
func (li *LayerIngest) Abort() {
	if li.done {
		return
	}
	li.done = true
	os.RemoveAll(li.tmp)
}
