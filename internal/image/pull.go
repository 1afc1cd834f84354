package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/registries"
	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/image/unpack"
)

// LayerState is where a layer is in a pull, for progress displays.
type LayerState string

// Layer states, in the order a layer goes through them.
const (
	LayerWaiting     LayerState = "waiting"
	LayerDownloading LayerState = "downloading"
	// LayerExtracting: every byte is downloaded; unpacking finishes and the
	// digests are checked. (Unpacking runs while downloading.)
	LayerExtracting LayerState = "extracting"
	LayerDone       LayerState = "done"
	// LayerExists: the layer was already stored; nothing is downloaded.
	LayerExists LayerState = "already exists"
)

// ProgressEvent reports one layer's progress.
type ProgressEvent struct {
	Image  string        // the reference being pulled
	Digest digest.Digest // the layer's (compressed) blob digest
	State  LayerState
	Done   int64 // compressed bytes downloaded so far
	Total  int64 // compressed size from the manifest
}

// PullOptions tune one pull.
type PullOptions struct {
	// Progress, when set, receives per-layer events. Calls are serialised.
	Progress func(ProgressEvent)
}

// Attempt is one (endpoint, credential) try of a pull.
type Attempt struct {
	Endpoint   string // host/repository
	Mirror     bool
	Credential string // the credential's source, or "anonymous"; never the secret
	Err        error
}

// PullError is returned when no endpoint and credential worked. It says what
// every attempt got; errors.Is sees the error of the last endpoint tried
// (the registry itself, after its mirrors), which is the authoritative one.
type PullError struct {
	Image    string
	Attempts []Attempt
}

func (e *PullError) decisive() error {
	if len(e.Attempts) == 0 {
		return errors.New("no endpoint to pull from")
	}
	return e.Attempts[len(e.Attempts)-1].Err
}

func (e *PullError) Unwrap() error { return e.decisive() }

func (e *PullError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pull %s: ", e.Image)
	d := e.decisive()
	b.WriteString(d.Error())
	if errors.Is(d, ErrUnauthorized) {
		last := e.Attempts[len(e.Attempts)-1]
		var tried []string
		for _, a := range e.Attempts {
			if a.Endpoint == last.Endpoint {
				tried = append(tried, a.Credential)
			}
		}
		host, _, _ := strings.Cut(last.Endpoint, "/")
		fmt.Fprintf(&b, " for every credential tried (%s): check the pod's imagePullSecrets, the node's config.json, or `peapod login %s`", strings.Join(tried, "; "), host)
	}
	if len(e.Attempts) > 1 {
		b.WriteString("; attempts:")
		for i, a := range e.Attempts {
			kind := ""
			if a.Mirror {
				kind = " (mirror)"
			}
			fmt.Fprintf(&b, " [%d] %s%s as %s: %v", i+1, a.Endpoint, kind, a.Credential, a.Err)
			if i < len(e.Attempts)-1 {
				b.WriteString(";")
			}
		}
	}
	return b.String()
}

func anonymous(c keyring.Credential) bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

func credName(c keyring.Credential) string {
	if anonymous(c) {
		return "anonymous"
	}
	return c.Source.String()
}

func authFor(c keyring.Credential) authn.Authenticator {
	if anonymous(c) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      c.Username,
		Password:      c.Password,
		IdentityToken: c.IdentityToken,
		RegistryToken: c.RegistryToken,
	})
}

// Pull fetches an image and stores it. Each endpoint from registries.conf
// (mirrors in order, then the registry itself) is tried; on each, the
// credentials are tried in order until one is accepted (nil or empty creds
// means anonymous). The image record notes which credential pulled it.
//
// Nothing partial is left behind on failure: layers are unpacked into the
// store's tmp directory and renamed into place only when verified, and the
// record is written last.
func (s *Service) Pull(ctx context.Context, image string, creds []keyring.Credential, opts PullOptions) (*store.Image, error) {
	ref, err := reference.Parse(image)
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	start := time.Now()
	release, err := s.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	defer release()
	waited := time.Since(start)

	endpoints, err := s.endpoints(ref)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref, err)
	}
	if len(creds) == 0 {
		creds = []keyring.Credential{{}}
	}
	if opts.Progress != nil {
		var mu sync.Mutex
		f := opts.Progress
		opts.Progress = func(ev ProgressEvent) {
			mu.Lock()
			defer mu.Unlock()
			f(ev)
		}
	} else {
		opts.Progress = func(ProgressEvent) {}
	}

	pe := &PullError{Image: ref.String()}
	for _, ep := range endpoints {
		for _, cred := range creds {
			img, err := s.pullFrom(ctx, ref, ep, cred, opts)
			if err == nil {
				s.log.Info("pulled image", "image", ref.String(), "id", img.ID,
					"endpoint", ep.Host+"/"+ep.Repository, "mirror", ep.Mirror,
					"credential", credName(cred), "duration", time.Since(start), "waited", waited)
				return img, nil
			}
			pe.Attempts = append(pe.Attempts, Attempt{
				Endpoint: ep.Host + "/" + ep.Repository, Mirror: ep.Mirror,
				Credential: credName(cred), Err: err,
			})
			s.log.Debug("pull attempt failed", "image", ref.String(), "endpoint", ep.Host+"/"+ep.Repository,
				"credential", credName(cred), "error", err)
			if ctx.Err() != nil {
				return nil, s.failed(ref, pe, start)
			}
			// Another credential only helps against a refusal.
			if !errors.Is(err, ErrUnauthorized) {
				break
			}
		}
	}
	return nil, s.failed(ref, pe, start)
}

func (s *Service) failed(ref reference.Reference, pe *PullError, start time.Time) error {
	// Layers committed by a failed pull are not used by any record; collect
	// them so nothing of the failure remains.
	if err := s.store.GC(); err != nil {
		s.log.Warn("image gc after failed pull", "image", ref.String(), "error", err)
	}
	s.log.Warn("pull failed", "image", ref.String(), "duration", time.Since(start), "error", pe.Error())
	return pe
}

// pullFrom pulls ref from one endpoint with one credential.
func (s *Service) pullFrom(ctx context.Context, ref reference.Reference, ep registries.Endpoint, cred keyring.Credential, opts PullOptions) (*store.Image, error) {
	base, rt, err := s.endpointTransport(ep)
	if err != nil {
		return nil, err
	}
	defer base.CloseIdleConnections()
	fail := func(err error) error { return endpointError(ep.Host, s.opts.CertsDir, err) }
	if _, err := probe(ctx, rt, ep); err != nil {
		return nil, fail(err)
	}
	var nameOpts []name.Option
	if ep.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	repo, err := name.NewRepository(ep.Host+"/"+ep.Repository, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s/%s: %w", ep.Host, ep.Repository, err)
	}
	puller, err := remote.NewPuller(
		remote.WithTransport(rt),
		remote.WithAuth(authFor(cred)),
		remote.WithUserAgent("peapod"),
		remote.WithRetryBackoff(retryBackoff),
	)
	if err != nil {
		return nil, err
	}
	blobs := newBlobClient(repo, authFor(cred), rt)
	var target name.Reference = repo.Tag(ref.Tag)
	if ref.Digest != "" {
		target = repo.Digest(ref.Digest.String())
	}

	top, err := puller.Get(ctx, target)
	if err != nil {
		return nil, fail(err)
	}
	topDigest := digest.FromBytes(top.Manifest)
	if ref.Digest != "" && topDigest != ref.Digest {
		return nil, fmt.Errorf("%w: %s served a manifest hashing to %s for %s", ErrDigestMismatch, ep.Host, topDigest, ref.Digest)
	}
	manifestBytes, mediaType := top.Manifest, top.MediaType
	manifestDigest := topDigest
	var indexBytes []byte
	if mediaType.IsIndex() {
		indexBytes = manifestBytes
		idx, err := v1.ParseIndexManifest(strings.NewReader(string(indexBytes)))
		if err != nil {
			return nil, fmt.Errorf("parse index %s: %w", topDigest, err)
		}
		child, err := s.pickPlatform(idx)
		if err != nil {
			return nil, err
		}
		desc, err := puller.Get(ctx, repo.Digest(child.Digest.String()))
		if err != nil {
			return nil, fail(err)
		}
		manifestBytes, mediaType = desc.Manifest, desc.MediaType
		manifestDigest = digest.FromBytes(manifestBytes)
		if manifestDigest.String() != child.Digest.String() || int64(len(manifestBytes)) != child.Size {
			return nil, fmt.Errorf("%w: manifest %s from %s is %s, %d bytes (index says %d bytes)", ErrDigestMismatch, child.Digest, ep.Host, manifestDigest, len(manifestBytes), child.Size)
		}
	}
	switch mediaType {
	case types.DockerManifestSchema1, types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("%s uses a Docker schema 1 manifest, which peapod does not support: push it again with a current tool", ref)
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
	default:
		return nil, fmt.Errorf("%s: %s is not an image manifest (media type %q)", ref, manifestDigest, mediaType)
	}
	m, err := v1.ParseManifest(strings.NewReader(string(manifestBytes)))
	if err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", manifestDigest, err)
	}

	configDigest := digest.Digest(m.Config.Digest.String())
	lease := s.store.NewLease()
	defer lease.Release()
	lease.Add(configDigest, manifestDigest, topDigest)
	configBytes, err := s.fetchConfig(ctx, blobs, m.Config)
	if err != nil {
		return nil, fail(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(configBytes, &cfg); err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s is inconsistent: its config lists %d layers (rootfs.diff_ids), its manifest %d", ref, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	lease.Add(cfg.RootFS.DiffIDs...)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.opts.MaxConcurrentDownloads)
	var todo []int
	for i, l := range m.Layers {
		d := digest.Digest(l.Digest.String())
		if s.store.HasLayer(cfg.RootFS.DiffIDs[i]) {
			opts.Progress(ProgressEvent{Image: ref.String(), Digest: d, State: LayerExists, Done: l.Size, Total: l.Size})
			continue
		}
		opts.Progress(ProgressEvent{Image: ref.String(), Digest: d, State: LayerWaiting, Total: l.Size})
		todo = append(todo, i)
	}
	for _, i := range todo {
		l, diffID := m.Layers[i], cfg.RootFS.DiffIDs[i]
		g.Go(func() error {
			return s.fetchLayer(gctx, blobs, ref.String(), l, diffID, opts.Progress)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fail(err)
	}

	if indexBytes != nil {
		if err := s.store.WriteContent(topDigest, indexBytes); err != nil {
			return nil, fail(err)
		}
	}
	if err := s.store.WriteContent(manifestDigest, manifestBytes); err != nil {
		return nil, fail(err)
	}
	var size int64
	for _, d := range cfg.RootFS.DiffIDs {
		n, err := s.store.LayerSize(d)
		if err != nil {
			return nil, err
		}
		size += n
	}
	rec := store.PullRecord{Reference: ref.String(), Time: time.Now().UTC()}
	if anonymous(cred) {
		rec.Anonymous = true
	} else {
		rec.Source = cred.Source
		rec.CredentialHash = cred.Hash()
	}
	img := &store.Image{
		ID:             configDigest,
		RepoDigests:    []string{ref.Name() + "@" + topDigest.String()},
		Size:           size,
		Layers:         cfg.RootFS.DiffIDs,
		ManifestDigest: manifestDigest,
		Config:         cfg,
		Pulls:          []store.PullRecord{rec},
	}
	if ref.Digest == "" {
		img.RepoTags = []string{ref.Name() + ":" + ref.Tag}
	}
	if err := s.store.Put(img); err != nil {
		return nil, fail(err)
	}
	return s.store.Get(configDigest.String())
}

func (s *Service) pickPlatform(idx *v1.IndexManifest) (v1.Descriptor, error) {
	want := s.opts.Platform
	var have []string
	for _, d := range idx.Manifests {
		p := d.Platform
		if p == nil {
			continue
		}
		if p.OS == want.OS && p.Architecture == want.Architecture && (want.Variant == "" || p.Variant == want.Variant) {
			if d.MediaType.IsIndex() {
				return v1.Descriptor{}, fmt.Errorf("nested index for %s is not supported", p)
			}
			return d, nil
		}
		have = append(have, p.String())
	}
	return v1.Descriptor{}, fmt.Errorf("%w: the image is built for %s, this node is %s", ErrNoMatchingPlatform, strings.Join(have, ", "), want.String())
}

// fetchConfig returns the image config, from the store when an earlier or
// concurrent pull already fetched it, else from the registry (once, however
// many pulls ask at the same time). It is stored as soon as it is verified;
// the caller's lease keeps it until the image record refers to it.
func (s *Service) fetchConfig(ctx context.Context, blobs *blobClient, desc v1.Descriptor) ([]byte, error) {
	d := digest.Digest(desc.Digest.String())
	for {
		if b, err := s.store.ReadContent(d); err == nil {
			return b, nil
		}
		v, err := s.flights.do(ctx, "config "+d.String(), func() (any, error) {
			b, err := fetchSmallBlob(ctx, blobs, desc)
			if err != nil {
				return nil, err
			}
			return b, s.store.WriteContent(d, b)
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return v.([]byte), nil
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fetchSmallBlob fetches a config blob, verifying size and digest.
func fetchSmallBlob(ctx context.Context, blobs *blobClient, desc v1.Descriptor) ([]byte, error) {
	const limit = 8 << 20
	if desc.Size > limit {
		return nil, fmt.Errorf("blob %s: %d bytes is too large for an image config", desc.Digest, desc.Size)
	}
	d := digest.Digest(desc.Digest.String())
	rc, err := blobs.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	v := newVerifier(rc, d, desc.Size, nil)
	b, readErr := io.ReadAll(v)
	if err := v.verify(readErr); err != nil {
		return nil, err
	}
	return b, nil
}

// fetchLayer makes sure the layer is stored, downloading it at most once
// however many pulls want it at the same time.
func (s *Service) fetchLayer(ctx context.Context, blobs *blobClient, image string, desc v1.Descriptor, diffID digest.Digest, progress func(ProgressEvent)) error {
	d := digest.Digest(desc.Digest.String())
	for {
		var ran bool
		_, err := s.flights.do(ctx, "layer "+d.String(), func() (any, error) {
			ran = true
			if s.store.HasLayer(diffID) {
				return nil, nil
			}
			return nil, s.downloadLayer(ctx, blobs, image, desc, diffID, progress)
		})
		if errors.Is(err, errRetry) {
			continue
		}
		if err == nil && !ran {
			progress(ProgressEvent{Image: image, Digest: d, State: LayerDone, Done: desc.Size, Total: desc.Size})
		}
		return err
	}
}

// downloadLayer streams one layer: compressed stream → digest and size
// check → decompress → diffID hash → unpack into an ingest directory, then
// commits it under its diffID. The compressed stream is hashed once, by the
// verifier (blobClient fetches it without go-containerregistry's check).
func (s *Service) downloadLayer(ctx context.Context, blobs *blobClient, image string, desc v1.Descriptor, diffID digest.Digest, progress func(ProgressEvent)) error {
	d := digest.Digest(desc.Digest.String())
	ingest, err := s.store.NewLayerIngest()
	if err != nil {
		return err
	}
	defer ingest.Abort()
	rc, err := blobs.open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	var last int64
	v := newVerifier(rc, d, desc.Size, func(n int64, eof bool) {
		if eof {
			progress(ProgressEvent{Image: image, Digest: d, State: LayerExtracting, Done: n, Total: desc.Size})
			return
		}
		if n-last >= 512<<10 || last == 0 {
			last = n
			progress(ProgressEvent{Image: image, Digest: d, State: LayerDownloading, Done: n, Total: desc.Size})
		}
	})
	stats, err := s.unpackStream(ctx, ingest.Dir(), v, diffID)
	if err != nil {
		// A corrupted stream usually breaks decompression before its digest
		// can be checked; the wrong digest is the real cause, so check it
		// first (the rest of the stream is at most desc.Size bytes).
		if !errors.Is(err, syscall.ENOSPC) && ctx.Err() == nil && !errors.Is(err, ErrDigestMismatch) {
			if verr := v.verify(drain(v)); errors.Is(verr, ErrDigestMismatch) {
				return verr
			}
		}
		return err
	}
	if err := v.verify(drain(v)); err != nil {
		return err
	}
	if err := ingest.Commit(diffID, stats.Size); err != nil {
		return err
	}
	progress(ProgressEvent{Image: image, Digest: d, State: LayerDone, Done: desc.Size, Total: desc.Size})
	return nil
}

// unpackStream decompresses r, unpacks it into dir and checks that the
// uncompressed stream hashes to diffID.
func (s *Service) unpackStream(ctx context.Context, dir string, r io.Reader, diffID digest.Digest) (unpack.Stats, error) {
	dr, err := unpack.Decompress(r)
	if err != nil {
		return unpack.Stats{}, fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer dr.Close()
	h := digest.SHA256.Digester()
	tee := io.TeeReader(dr, h.Hash())
	stats, err := unpack.Apply(ctx, dir, tee)
	if err != nil {
		return stats, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	// The diffID covers the whole uncompressed stream, tar padding included.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return stats, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if got := h.Digest(); got != diffID {
		return stats, fmt.Errorf("%w: layer uncompresses to %s but the image config says %s", ErrDigestMismatch, got, diffID)
	}
	return stats, nil
}

func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// verifier counts and hashes a blob as it is read. At most size+1 bytes are
// read, so a registry cannot stream forever.
type verifier struct {
	r        io.Reader
	h        hash.Hash
	want     digest.Digest
	size, n  int64
	err      error // first read error other than EOF
	progress func(n int64, eof bool)
	eof      bool
}

func newVerifier(r io.Reader, want digest.Digest, size int64, progress func(int64, bool)) *verifier {
	algo := want.Algorithm()
	if !algo.Available() {
		algo = digest.SHA256
	}
	return &verifier{r: io.LimitReader(r, size+1), h: algo.Hash(), want: want, size: size, progress: progress}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.eof {
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		v.eof = true
	} else if err != nil && v.err == nil {
		v.err = err
	}
	if v.progress != nil && (n > 0 || v.eof) {
		v.progress(v.n, v.eof)
	}
	return n, err
}

// verify checks what was read so far against the descriptor. readErr is
// the error that ended reading (nil or io.EOF when the stream ended).
func (v *verifier) verify(readErr error) error {
	if v.n > v.size {
		return fmt.Errorf("%w: blob %s is longer than the %d bytes its descriptor says", ErrDigestMismatch, v.want, v.size)
	}
	if v.n == v.size {
		// All bytes are here: whatever else failed (decompression, the
		// diffID), a wrong hash is the error to report.
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			return fmt.Errorf("%w: blob %s arrived with digest %s: the registry, a mirror or a proxy altered it; nothing was stored", ErrDigestMismatch, v.want, got)
		}
		return nil
	}
	if readErr != nil && readErr != io.EOF {
		return readErr
	}
	if v.err != nil {
		return v.err
	}
	return fmt.Errorf("%w: blob %s ended after %d of %d bytes", ErrDigestMismatch, v.want, v.n, v.size)
}
