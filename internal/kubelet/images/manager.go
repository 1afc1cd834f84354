// Package images makes sure a container's image is on the node before the
// container starts, the way kubelet's image manager does
// (pkg/kubelet/images): the pod's pull policy decides, the pod's
// imagePullSecrets and then the node's auth files supply credentials, each
// credential is tried in order, failures back off per pod and image, and
// the events and waiting reasons are kubelet's word for word.
//
// It also enforces "ensure secret pulled images" (KEP-2535): an image that
// came onto the node with a pod's Secret is handed to another pod under
// IfNotPresent or Never only when that pod presents a matching credential;
// any other pod pulls it itself, so the registry decides, and under Never it
// gets the same "not present" answer as for an absent image.
package images

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/policy"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/store"
	"github.com/peapod/peapod/internal/kubelet/backoff"
)

// Service is what the manager needs from the image service
// (*image.Service).
type Service interface {
	Pull(ctx context.Context, ref string, creds []keyring.Credential, opts image.PullOptions) (*store.Image, error)
	Status(nameOrID string) (*store.Image, error)
}

var _ Service = (*image.Service)(nil)

// Recorder records an event about a pod (fieldPath names the container,
// e.g. "spec.containers{app}").
type Recorder interface {
	Event(pod *corev1.Pod, fieldPath, eventType, reason, message string)
}

// VerificationPolicy is kubelet's imagePullCredentialsVerificationPolicy:
// which images already on the node a pod may use without proving it could
// pull them.
type VerificationPolicy string

// The values and their kubelet meaning. "Preloaded" images are those the
// kubelet has no pull record for: put on the node some other way (peapod
// pull, the CRI, a node image).
const (
	// NeverVerify: any image on the node goes to any pod (Kubernetes
	// before KEP-2535).
	NeverVerify VerificationPolicy = "NeverVerify"
	// NeverVerifyPreloadedImages (the default): images pulled by the
	// kubelet with a Secret need a matching credential; preloaded ones
	// do not.
	NeverVerifyPreloadedImages VerificationPolicy = "NeverVerifyPreloadedImages"
	// NeverVerifyAllowlistedImages: like NeverVerifyPreloadedImages, but
	// only preloaded images named in the allowlist are exempt.
	NeverVerifyAllowlistedImages VerificationPolicy = "NeverVerifyAllowlistedImages"
	// AlwaysVerify: every image needs a kubelet pull record the pod
	// matches (anonymous and node-credential pulls match every pod).
	AlwaysVerify VerificationPolicy = "AlwaysVerify"
)

// DefaultVerificationPolicy is kubelet's default with the feature on.
const DefaultVerificationPolicy = NeverVerifyPreloadedImages

// ParseVerificationPolicy checks a configured value ("" is the default).
func ParseVerificationPolicy(s string) (VerificationPolicy, error) {
	switch p := VerificationPolicy(s); p {
	case "":
		return DefaultVerificationPolicy, nil
	case NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages, AlwaysVerify:
		return p, nil
	}
	return "", fmt.Errorf("imagePullCredentialsVerificationPolicy %q: want one of %s, %s, %s, %s",
		s, NeverVerify, NeverVerifyPreloadedImages, NeverVerifyAllowlistedImages, AlwaysVerify)
}

// Waiting reasons for a container whose image is not ready, besides the
// policy package's.
const (
	ReasonErrImagePull      = policy.ReasonErrImagePull
	ReasonImagePullBackOff  = policy.ReasonImagePullBackOff
	ReasonErrImageNeverPull = policy.ReasonErrImageNeverPull
	ReasonInvalidImageName  = policy.ReasonInvalidImageName
	ReasonImageInspectError = policy.ReasonImageInspectError
)

// Error is why a container's image is not ready: a kubelet waiting reason
// and the message the container status shows.
type Error struct {
	Reason  string
	Message string
}

func (e *Error) Error() string { return e.Reason + ": " + e.Message }

// Options configure a Manager.
type Options struct {
	Images Service
	// NodeKeyring returns the node-level credentials (auth files), read
	// at every pull so that a login takes effect at once. Nil: none.
	NodeKeyring func() *keyring.Keyring
	Recorder    Recorder
	// Policy is the credential verification policy ("" = default).
	Policy VerificationPolicy
	// Allowlist is preloadedImagesVerificationAllowlist: repositories
	// without tag or digest, a trailing "/*" matching everything below.
	Allowlist []string
	// InitialBackOff and MaxBackOff: zero means kubelet's 10s and 300s.
	InitialBackOff, MaxBackOff time.Duration
	Clock                      clock.PassiveClock
	Logger                     *slog.Logger
}

// Manager ensures images for containers. It is safe for concurrent use;
// the caller runs the pulls of one pod one after the other (a pod never
// pulls several images at once), the image service bounds pulls across
// pods.
type Manager struct {
	opts    Options
	clock   clock.PassiveClock
	backOff *backoff.Backoff
	log     *slog.Logger

	mu      sync.Mutex
	lastErr map[string]string // back-off key -> "Reason: detail" of the last failed pull
}

// New returns a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Images == nil {
		return nil, errors.New("image manager: no image service")
	}
	p, err := ParseVerificationPolicy(string(opts.Policy))
	if err != nil {
		return nil, err
	}
	opts.Policy = p
	for _, a := range opts.Allowlist {
		if err := validateAllowlistEntry(a); err != nil {
			return nil, err
		}
	}
	if opts.InitialBackOff <= 0 {
		opts.InitialBackOff = policy.InitialBackOff
	}
	if opts.MaxBackOff <= 0 {
		opts.MaxBackOff = policy.MaxBackOff
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	if opts.Recorder == nil {
		opts.Recorder = nopRecorder{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{opts: opts, clock: clk, backOff: backoff.New(opts.InitialBackOff, opts.MaxBackOff, clk), log: log, lastErr: map[string]string{}}, nil
}

type nopRecorder struct{}

func (nopRecorder) Event(*corev1.Pod, string, string, string, string) {}

// Pull is one request: a container of a pod and the pod's pull secrets as
// found in its namespace (missing ones already reported by the caller).
type Pull struct {
	Pod       *corev1.Pod
	Container *corev1.Container
	// FieldPath names the container in events ("spec.containers{app}").
	FieldPath string
	// Secrets are the pod's imagePullSecrets that exist, in order.
	Secrets []corev1.Secret
}

// EnsureImage makes the container's image available to the pod and returns
// it, or an *Error with the waiting reason and message.
func (m *Manager) EnsureImage(ctx context.Context, p Pull) (*store.Image, error) {
	pod, c := p.Pod, p.Container
	ev := func(typ, reason, msg string) { m.opts.Recorder.Event(pod, p.FieldPath, typ, reason, msg) }

	img, err := policy.ApplyDefaultTag(c.Image)
	if err != nil {
		msg := fmt.Sprintf(policy.MsgInvalidImageName, c.Image, err)
		ev(corev1.EventTypeWarning, policy.EventInspectFailed, msg)
		return nil, &Error{Reason: ReasonInvalidImageName, Message: msg}
	}
	ref, err := reference.Parse(img)
	if err != nil {
		msg := fmt.Sprintf(policy.MsgInvalidImageName, c.Image, err)
		ev(corev1.EventTypeWarning, policy.EventInspectFailed, msg)
		return nil, &Error{Reason: ReasonInvalidImageName, Message: msg}
	}
	pullPolicy := c.ImagePullPolicy
	if pullPolicy == "" {
		pullPolicy = policy.Default(c.Image)
	}

	secretKeyring, err := keyring.FromSecrets(p.Secrets)
	if err != nil {
		// kubelet refuses the whole keyring of a pod whose secret does not
		// parse, and pulls without it.
		m.log.Warn("image pull secrets unusable", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		secretKeyring = &keyring.Keyring{}
	}
	secretCreds := secretKeyring.Lookup(ref.Name())

	var present *store.Image
	if pullPolicy != corev1.PullAlways {
		present, err = m.opts.Images.Status(img)
		if err != nil && !errors.Is(err, image.ErrNotFound) {
			msg := fmt.Sprintf(policy.MsgInspectFailed, c.Image, err)
			ev(corev1.EventTypeWarning, policy.EventInspectFailed, msg)
			return nil, &Error{Reason: ReasonImageInspectError, Message: msg}
		}
		if err != nil {
			present = nil
		}
	}
	accessible := present != nil && m.Accessible(present, ref, pod.Namespace, secretCreds)
	pull, err := policy.Decide(pullPolicy, c.Image, accessible)
	if err != nil {
		var never *policy.NeverPullError
		if errors.As(err, &never) {
			ev(corev1.EventTypeWarning, policy.EventErrImageNeverPull, err.Error())
			return nil, &Error{Reason: ReasonErrImageNeverPull, Message: err.Error()}
		}
		return nil, &Error{Reason: ReasonErrImagePull, Message: err.Error()}
	}
	if !pull {
		ev(corev1.EventTypeNormal, policy.EventPulled, fmt.Sprintf(policy.MsgAlreadyPresentPod, c.Image))
		return present, nil
	}

	key := string(pod.UID) + "_" + c.Image
	if m.backOff.InBackOffSinceUpdate(key, m.clock.Now()) {
		msg := fmt.Sprintf(policy.MsgBackOff, c.Image)
		ev(corev1.EventTypeNormal, policy.EventBackOff, msg)
		if prev := m.lastError(key); prev != "" {
			msg += ": " + prev
		}
		return nil, &Error{Reason: ReasonImagePullBackOff, Message: msg}
	}

	creds := append([]keyring.Credential(nil), secretCreds...)
	if m.opts.NodeKeyring != nil {
		creds = append(creds, m.opts.NodeKeyring().Lookup(ref.Name())...)
	}
	ev(corev1.EventTypeNormal, policy.EventPulling, fmt.Sprintf(policy.MsgPulling, c.Image))
	start := m.clock.Now()
	pulled, err := m.opts.Images.Pull(ctx, img, creds, image.PullOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		reason, detail := classify(err)
		ev(corev1.EventTypeWarning, policy.EventFailed, fmt.Sprintf(policy.MsgFailedToPull, c.Image, detail))
		m.backOff.Next(key, m.clock.Now())
		m.setLastError(key, reason+": "+detail)
		return nil, &Error{Reason: reason, Message: detail}
	}
	m.backOff.Reset(key)
	m.setLastError(key, "")
	d := m.clock.Since(start)
	ev(corev1.EventTypeNormal, policy.EventPulled, fmt.Sprintf(policy.MsgPulled, c.Image, d.Round(time.Millisecond), d.Round(time.Millisecond), pulled.Size))
	return pulled, nil
}

// classify maps a pull error to kubelet's waiting reason and the message it
// keeps (evalCRIPullErr): an unreachable registry gets kubelet's sentence,
// everything else is ErrImagePull with the error itself.
func classify(err error) (reason, message string) {
	switch {
	case errors.Is(err, image.ErrInvalidImageName):
		return ReasonInvalidImageName, err.Error()
	case errors.Is(err, image.ErrRegistryUnavailable):
		return ReasonErrImagePull, fmt.Sprintf("image pull failed for %s because the registry is unavailable: %v", imageOf(err), err)
	}
	return ReasonErrImagePull, err.Error()
}

func imageOf(err error) string {
	var pe *image.PullError
	if errors.As(err, &pe) {
		return pe.Image
	}
	return "the image"
}

// ForgetPod drops the back-off state of a pod that is gone.
func (m *Manager) ForgetPod(uid types.UID) {
	m.backOff.DeletePrefix(string(uid) + "_")
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.lastErr {
		if strings.HasPrefix(k, string(uid)+"_") {
			delete(m.lastErr, k)
		}
	}
}

func (m *Manager) lastError(key string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastErr[key]
}

func (m *Manager) setLastError(key, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if msg == "" {
		delete(m.lastErr, key)
		return
	}
	m.lastErr[key] = msg
}

// Accessible reports whether a pod in namespace ns holding secretCreds (its
// pull-secret credentials that match the image) may use img, already on the
// node, without pulling it: KEP-2535 under the manager's policy.
func (m *Manager) Accessible(img *store.Image, ref reference.Reference, ns string, secretCreds []keyring.Credential) bool {
	if m.opts.Policy == NeverVerify {
		return true
	}
	var kubeletPulls []store.PullRecord
	for _, r := range img.Pulls {
		if !sameRepository(r.Reference, ref) {
			continue
		}
		if r.Anonymous || r.Source.Kind == keyring.SourceSecret || r.Source.Kind == keyring.SourceNode {
			kubeletPulls = append(kubeletPulls, r)
		}
	}
	if len(kubeletPulls) == 0 {
		// Preloaded: on the node, but not by a pod's pull.
		switch m.opts.Policy {
		case NeverVerifyPreloadedImages:
			return true
		case NeverVerifyAllowlistedImages:
			return allowlisted(m.opts.Allowlist, ref.Name())
		}
		return false
	}
	hashes := map[string]bool{}
	for _, c := range secretCreds {
		hashes[c.Hash()] = true
	}
	for _, r := range kubeletPulls {
		switch {
		case r.Anonymous, r.Source.Kind == keyring.SourceNode:
			// Pulled without a pod's secret: every pod could have.
			return true
		case r.CredentialHash != "" && hashes[r.CredentialHash]:
			return true
		}
		for _, c := range secretCreds {
			s := c.Source
			if s.Kind == keyring.SourceSecret && s.Namespace == r.Source.Namespace && s.Name == r.Source.Name &&
				(r.Source.UID == "" || s.UID == r.Source.UID) && s.Namespace == ns {
				return true
			}
		}
	}
	return false
}

// sameRepository: a pull record counts for the repository it was pulled
// from (kubelet keys its records by image name without tag).
func sameRepository(recorded string, ref reference.Reference) bool {
	if recorded == "" {
		return true
	}
	r, err := reference.Parse(recorded)
	if err != nil {
		return false
	}
	return r.Name() == ref.Name()
}

// ValidateAllowlistEntry checks one preloadedImagesVerificationAllowlist
// entry: an image name without tag or digest, optionally ending in "/*".
func ValidateAllowlistEntry(a string) error { return validateAllowlistEntry(a) }

func validateAllowlistEntry(a string) error {
	name := strings.TrimSuffix(a, "/*")
	r, err := reference.Parse(name)
	if err != nil {
		return fmt.Errorf("preloadedImagesVerificationAllowlist entry %q: %w", a, err)
	}
	if strings.ContainsAny(name, "*@") || r.Digest != "" || strings.HasSuffix(name, ":"+r.Tag) {
		return fmt.Errorf("preloadedImagesVerificationAllowlist entry %q: no tag, digest or wildcard other than a trailing /*", a)
	}
	return nil
}

func allowlisted(list []string, repo string) bool {
	for _, a := range list {
		if prefix, ok := strings.CutSuffix(a, "/*"); ok {
			p, err := reference.Parse(prefix)
			if err == nil && strings.HasPrefix(repo, p.Name()+"/") {
				return true
			}
			continue
		}
		if r, err := reference.Parse(a); err == nil && r.Name() == repo {
			return true
		}
	}
	return false
}
