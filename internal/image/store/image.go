package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/peapod/peapod/internal/image/keyring"
	bolt "go.etcd.io/bbolt"
)

var bucketImages = []byte("images")

// Image is the record of one image on this node, keyed by its ID.
type Image struct {
	// ID is the digest of the image config, as docker and the CRI use it.
	ID digest.Digest `json:"id"`
	// RepoTags are normalised names with a tag, e.g.
	// "docker.io/library/busybox:latest". A tag names one image at a time.
	RepoTags []string `json:"repoTags,omitempty"`
	// RepoDigests are normalised names with the digest the registry served
	// for the tag (an index digest for a multi-platform image).
	RepoDigests []string `json:"repoDigests,omitempty"`
	// Size is the unpacked size of all layers, in bytes.
	Size int64 `json:"size"`
	// Layers are the diffIDs, bottom layer first, as in the config.
	Layers []digest.Digest `json:"layers"`
	// ManifestDigest is the platform-specific manifest the layers came from.
	ManifestDigest digest.Digest `json:"manifestDigest"`
	// Config is the image configuration (entrypoint, env, user, ...).
	Config ocispec.Image `json:"config"`
	// Pulls records every pull of this image and the credential it used, so
	// that an image pulled with one pod's secret is not handed to a pod
	// without matching credentials (KEP-2535).
	Pulls []PullRecord `json:"pulls,omitempty"`
	// Created is when this node first stored the image (the image's own
	// creation time is Config.Created).
	Created time.Time `json:"created"`
}

// PullRecord says how one pull of the image was authorised. It never holds
// the secret itself.
type PullRecord struct {
	// Anonymous is true when the registry served the image without a
	// credential.
	Anonymous bool `json:"anonymous,omitempty"`
	// Source is where the credential came from (Secret or config.json);
	// zero when anonymous.
	Source keyring.Source `json:"source,omitzero"`
	// CredentialHash is a hash of the credential (keyring.Credential.Hash),
	// so that two pods holding the same credential in different Secrets
	// match; empty when anonymous.
	CredentialHash string `json:"credentialHash,omitempty"`
	// Reference is the name the image was pulled by.
	Reference string    `json:"reference,omitempty"`
	Time      time.Time `json:"time"`
}

// references lists the content and layer digests the record keeps alive.
func (img *Image) references() []digest.Digest {
	out := []digest.Digest{img.ID, img.ManifestDigest}
	out = append(out, img.Layers...)
	for _, rd := range img.RepoDigests {
		if i := strings.LastIndexByte(rd, '@'); i >= 0 {
			out = append(out, digest.Digest(rd[i+1:]))
		}
	}
	return out
}

// Put stores an image record. If a record with the same ID exists, the names
// are merged and the pull records appended. A tag held by another image
// moves to this one; that image keeps its other names or becomes dangling
// (no tags), as with docker. The layers and content the record names must be
// stored already.
func (s *Store) Put(img *Image) error {
	if err := img.ID.Validate(); err != nil {
		return fmt.Errorf("store image %q: %w", img.ID, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		rec := *img
		if old := b.Get([]byte(img.ID)); old != nil {
			var prev Image
			if err := json.Unmarshal(old, &prev); err != nil {
				return fmt.Errorf("store image %s: decode record: %w", img.ID, err)
			}
			rec = prev
			rec.RepoTags = union(prev.RepoTags, img.RepoTags)
			rec.RepoDigests = union(prev.RepoDigests, img.RepoDigests)
			rec.Pulls = append(slices.Clone(prev.Pulls), img.Pulls...)
			if img.ManifestDigest != "" {
				rec.ManifestDigest = img.ManifestDigest
			}
		}
		if rec.Created.IsZero() {
			rec.Created = time.Now().UTC()
		}
		// Move tags away from other images.
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(k) == string(img.ID) {
				continue
			}
			var other Image
			if err := json.Unmarshal(v, &other); err != nil {
				return fmt.Errorf("store image %s: decode record %s: %w", img.ID, k, err)
			}
			kept := slices.DeleteFunc(slices.Clone(other.RepoTags), func(t string) bool {
				return slices.Contains(img.RepoTags, t)
			})
			if len(kept) == len(other.RepoTags) {
				continue
			}
			other.RepoTags = kept
			if err := putRecord(b, &other); err != nil {
				return err
			}
		}
		return putRecord(b, &rec)
	})
}

func putRecord(b *bolt.Bucket, img *Image) error {
	v, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("store image %s: %w", img.ID, err)
	}
	return b.Put([]byte(img.ID), v)
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// List returns every image record, in ID order.
func (s *Store) List() ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("decode image record %s: %w", k, err)
			}
			out = append(out, &img)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// match says how a lookup string names images.
type match struct {
	name     string // normalised repo tag or repo digest
	idPrefix string // lowercase hex, possibly full
}

// parseLookup accepts an ID ("sha256:<hex>", "<hex>", or a prefix of at
// least 12 hex digits), a repo digest, a full or familiar name with or
// without a tag (":latest" is implied, as docker does).
func parseLookup(s string) (match, error) {
	var m match
	hexPart := strings.TrimPrefix(s, "sha256:")
	if isHex(hexPart) && len(hexPart) >= 12 && len(hexPart) <= 64 {
		m.idPrefix = hexPart
	}
	if !strings.HasPrefix(s, "sha256:") {
		if ref, err := reference.ParseNormalizedNamed(s); err == nil {
			if c, ok := ref.(reference.Canonical); ok {
				m.name = reference.TrimNamed(c).Name() + "@" + c.Digest().String()
			} else {
				m.name = reference.TagNameOnly(ref).String()
			}
		}
	}
	if m.name == "" && m.idPrefix == "" {
		return m, fmt.Errorf("image %q: not a valid image name or ID", s)
	}
	return m, nil
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Get finds an image by full or familiar name (tag or digest), ID, or ID
// prefix of at least 12 hex digits. It returns ErrNotFound when none
// matches. A name takes precedence over an ID prefix, as with docker.
func (s *Store) Get(nameOrID string) (*Image, error) {
	m, err := parseLookup(nameOrID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrNotFound)
	}
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	if m.idPrefix != "" && len(m.idPrefix) == 64 {
		for _, img := range imgs {
			if img.ID.Encoded() == m.idPrefix {
				return img, nil
			}
		}
	}
	if m.name != "" {
		for _, img := range imgs {
			if slices.Contains(img.RepoTags, m.name) || slices.Contains(img.RepoDigests, m.name) {
				return img, nil
			}
		}
	}
	if m.idPrefix != "" {
		var found *Image
		for _, img := range imgs {
			if strings.HasPrefix(img.ID.Encoded(), m.idPrefix) {
				if found != nil {
					return nil, fmt.Errorf("image %q: ambiguous ID prefix, matches %s and %s", nameOrID, found.ID, img.ID)
				}
				found = img
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("image %q: %w", nameOrID, ErrNotFound)
}

// Removal says what Remove did.
type Removal struct {
	// Untagged are the names removed.
	Untagged []string
	// Deleted is the ID of the deleted record, empty if the image is still
	// there under other names.
	Deleted digest.Digest
}

// Remove removes a name, or a whole image. By tag or repo digest it removes
// that name; the image record is deleted when no tag is left. By ID it
// deletes the record with all its names. Then layers and content no image
// uses any more are collected.
func (s *Store) Remove(nameOrID string) (Removal, error) {
	img, err := s.Get(nameOrID)
	if err != nil {
		return Removal{}, fmt.Errorf("remove image: %w", err)
	}
	m, _ := parseLookup(nameOrID)
	var rm Removal
	byName := m.name != "" && (slices.Contains(img.RepoTags, m.name) || slices.Contains(img.RepoDigests, m.name))
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		v := b.Get([]byte(img.ID))
		if v == nil {
			return fmt.Errorf("image %q: %w", nameOrID, ErrNotFound)
		}
		var cur Image
		if err := json.Unmarshal(v, &cur); err != nil {
			return err
		}
		if byName {
			cur.RepoTags = slices.DeleteFunc(cur.RepoTags, func(t string) bool { return t == m.name })
			cur.RepoDigests = slices.DeleteFunc(cur.RepoDigests, func(t string) bool { return t == m.name })
			rm.Untagged = []string{m.name}
			if len(cur.RepoTags) > 0 {
				return putRecord(b, &cur)
			}
		}
		for _, n := range append(cur.RepoTags, cur.RepoDigests...) {
			if !slices.Contains(rm.Untagged, n) {
				rm.Untagged = append(rm.Untagged, n)
			}
		}
		rm.Deleted = cur.ID
		return b.Delete([]byte(cur.ID))
	})
	if err != nil {
		return Removal{}, fmt.Errorf("remove image %q: %w", nameOrID, err)
	}
	if err := s.GC(); err != nil {
		return rm, err
	}
	return rm, nil
}
