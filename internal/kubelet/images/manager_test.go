package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/peapod/peapod/internal/image"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
	"github.com/peapod/peapod/internal/image/store"
)

const reg = "127.0.0.1:5000"

type fakeImages struct {
	present map[string]*store.Image // by normalised reference
	pullErr error
	pulls   [][]keyring.Credential // credentials of every Pull
}

func (f *fakeImages) Status(name string) (*store.Image, error) {
	r, err := reference.Parse(name)
	if err != nil {
		return nil, err
	}
	if img, ok := f.present[r.String()]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("image %s: %w", name, image.ErrNotFound)
}

func (f *fakeImages) Pull(_ context.Context, ref string, creds []keyring.Credential, _ image.PullOptions) (*store.Image, error) {
	f.pulls = append(f.pulls, creds)
	if f.pullErr != nil {
		return nil, f.pullErr
	}
	r, _ := reference.Parse(ref)
	img := &store.Image{ID: "sha256:1111111111111111111111111111111111111111111111111111111111111111", Size: 42}
	if f.present == nil {
		f.present = map[string]*store.Image{}
	}
	f.present[r.String()] = img
	return img, nil
}

type event struct{ typ, reason, msg string }

type recorder struct{ events []event }

func (r *recorder) Event(_ *corev1.Pod, _ string, typ, reason, msg string) {
	r.events = append(r.events, event{typ, reason, msg})
}

func (r *recorder) reasons() string {
	var out []string
	for _, e := range r.events {
		out = append(out, e.reason)
	}
	return strings.Join(out, ",")
}

func pod(ns string, policy corev1.PullPolicy, img string) (*corev1.Pod, *corev1.Container) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns, UID: types.UID("uid-" + ns)}}
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: img, ImagePullPolicy: policy}}
	return p, &p.Spec.Containers[0]
}

func dockerSecret(ns, name, uid, user, pass string) corev1.Secret {
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + uid)},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + reg + `":{"auth":"` + auth + `"}}}`)},
	}
}

func newManager(t *testing.T, f *fakeImages, p VerificationPolicy) (*Manager, *recorder, *clocktesting.FakeClock) {
	t.Helper()
	rec := &recorder{}
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	m, err := New(Options{Images: f, Recorder: rec, Policy: p, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return m, rec, clk
}

func TestPullPolicies(t *testing.T) {
	img := reg + "/app:v1"
	anon := []store.PullRecord{{Anonymous: true, Reference: reg + "/app:v1"}}
	tests := []struct {
		name       string
		policy     corev1.PullPolicy
		present    bool
		wantPull   bool
		wantReason string // "" for success
		wantEvents string
		wantMsg    string // exact waiting message when set
	}{
		{"Always present", corev1.PullAlways, true, true, "", "Pulling,Pulled", ""},
		{"Always absent", corev1.PullAlways, false, true, "", "Pulling,Pulled", ""},
		{"IfNotPresent present", corev1.PullIfNotPresent, true, false, "", "Pulled", ""},
		{"IfNotPresent absent", corev1.PullIfNotPresent, false, true, "", "Pulling,Pulled", ""},
		{"Never present", corev1.PullNever, true, false, "", "Pulled", ""},
		{"Never absent", corev1.PullNever, false, false, ReasonErrImageNeverPull, "ErrImageNeverPull",
			`Container image "127.0.0.1:5000/app:v1" is not present with pull policy of Never`},
		{"empty policy on a tagged image is IfNotPresent", "", true, false, "", "Pulled", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeImages{present: map[string]*store.Image{}}
			if tt.present {
				f.present[reg+"/app:v1"] = &store.Image{ID: "sha256:old", Pulls: anon}
			}
			m, rec, _ := newManager(t, f, "")
			p, c := pod("default", tt.policy, img)
			got, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
			if (len(f.pulls) > 0) != tt.wantPull {
				t.Errorf("pulled %d times, want pull=%v", len(f.pulls), tt.wantPull)
			}
			var ie *Error
			switch {
			case tt.wantReason == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.wantReason == "" && got == nil:
				t.Fatal("no image")
			case tt.wantReason != "" && (!errors.As(err, &ie) || ie.Reason != tt.wantReason):
				t.Fatalf("error %v, want reason %s", err, tt.wantReason)
			case tt.wantMsg != "" && ie.Message != tt.wantMsg:
				t.Errorf("message %q, want %q", ie.Message, tt.wantMsg)
			}
			if rec.reasons() != tt.wantEvents {
				t.Errorf("events %s, want %s", rec.reasons(), tt.wantEvents)
			}
		})
	}
}

func TestEventMessages(t *testing.T) {
	f := &fakeImages{present: map[string]*store.Image{reg + "/app:v1": {ID: "sha256:x", Pulls: []store.PullRecord{{Anonymous: true}}}}}
	m, rec, _ := newManager(t, f, "")
	p, c := pod("default", corev1.PullIfNotPresent, reg+"/app:v1")
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c}); err != nil {
		t.Fatal(err)
	}
	want := `Container image "127.0.0.1:5000/app:v1" already present on machine and can be accessed by the pod`
	if len(rec.events) != 1 || rec.events[0] != (event{"Normal", "Pulled", want}) {
		t.Errorf("events %+v, want Normal Pulled %q", rec.events, want)
	}

	rec.events = nil
	p, c = pod("default", corev1.PullAlways, reg+"/app")
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c}); err != nil {
		t.Fatal(err)
	}
	if rec.events[0].msg != `Pulling image "127.0.0.1:5000/app"` {
		t.Errorf("pulling message %q", rec.events[0].msg)
	}
	if !strings.HasPrefix(rec.events[1].msg, `Successfully pulled image "127.0.0.1:5000/app" in `) ||
		!strings.HasSuffix(rec.events[1].msg, "Image size: 42 bytes.") {
		t.Errorf("pulled message %q", rec.events[1].msg)
	}
}

func TestInvalidImageName(t *testing.T) {
	m, rec, _ := newManager(t, &fakeImages{}, "")
	p, c := pod("default", corev1.PullAlways, "Bad:Image")
	_, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
	var ie *Error
	if !errors.As(err, &ie) || ie.Reason != "InvalidImageName" || !strings.HasPrefix(ie.Message, `Failed to apply default image tag "Bad:Image": `) {
		t.Fatalf("error %v, want InvalidImageName", err)
	}
	if rec.reasons() != "InspectFailed" {
		t.Errorf("events %s", rec.reasons())
	}
}

// ErrImagePull, then ImagePullBackOff keeping the real error, 10s doubling.
func TestPullBackOff(t *testing.T) {
	detail := "pull 127.0.0.1:5000/app:v1: unauthorized: registry 127.0.0.1:5000 answered 401"
	f := &fakeImages{pullErr: fmt.Errorf("%s: %w", detail, image.ErrUnauthorized)}
	m, rec, clk := newManager(t, f, "")
	p, c := pod("default", corev1.PullIfNotPresent, reg+"/app:v1")
	ensure := func() *Error {
		_, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
		var ie *Error
		if !errors.As(err, &ie) {
			t.Fatalf("error %v", err)
		}
		return ie
	}
	if e := ensure(); e.Reason != "ErrImagePull" || e.Message != detail+": unauthorized" {
		t.Fatalf("first failure %+v", e)
	}
	if last := rec.events[len(rec.events)-1]; last.reason != "Failed" || last.msg != `Failed to pull image "127.0.0.1:5000/app:v1": `+detail+": unauthorized" {
		t.Errorf("failed event %+v", last)
	}
	e := ensure()
	want := `Back-off pulling image "127.0.0.1:5000/app:v1": ErrImagePull: ` + detail + ": unauthorized"
	if e.Reason != "ImagePullBackOff" || e.Message != want {
		t.Fatalf("during back-off %+v, want ImagePullBackOff %q", e, want)
	}
	if last := rec.events[len(rec.events)-1]; last != (event{"Normal", "BackOff", `Back-off pulling image "127.0.0.1:5000/app:v1"`}) {
		t.Errorf("back-off event %+v", last)
	}
	for _, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		n := len(f.pulls)
		clk.Step(wait - time.Second)
		if ensure().Reason != "ImagePullBackOff" || len(f.pulls) != n {
			t.Fatalf("pulled again %v before the %v back-off ended", wait-time.Second, wait)
		}
		clk.Step(time.Second)
		if ensure().Reason != "ErrImagePull" || len(f.pulls) != n+1 {
			t.Fatalf("no new pull after %v", wait)
		}
	}
	// Another pod has its own back-off.
	p2, c2 := pod("other", corev1.PullIfNotPresent, reg+"/app:v1")
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p2, Container: c2}); err == nil || !strings.HasPrefix(err.Error(), "ErrImagePull") {
		t.Fatalf("other pod: %v, want its own ErrImagePull", err)
	}
	// Success clears the back-off.
	f.pullErr = nil
	clk.Step(80 * time.Second)
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c}); err != nil {
		t.Fatal(err)
	}
	if m.backOff.Get(string(p.UID)+"_"+c.Image) != 0 {
		t.Error("back-off kept after a successful pull")
	}
}

func TestRegistryUnavailableMessage(t *testing.T) {
	f := &fakeImages{pullErr: &image.PullError{Image: reg + "/app:v1", Attempts: []image.Attempt{{Endpoint: reg + "/app", Err: fmt.Errorf("%w: connection to %s refused", image.ErrRegistryUnavailable, reg)}}}}
	m, _, _ := newManager(t, f, "")
	p, c := pod("default", corev1.PullAlways, reg+"/app:v1")
	_, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
	var ie *Error
	if !errors.As(err, &ie) || ie.Reason != "ErrImagePull" || !strings.HasPrefix(ie.Message, "image pull failed for 127.0.0.1:5000/app:v1 because the registry is unavailable") {
		t.Fatalf("error %v", err)
	}
}

// Pod secrets come first, then the node's credentials; all are passed.
func TestCredentialOrder(t *testing.T) {
	f := &fakeImages{}
	node := &keyring.Keyring{}
	if err := node.Add(reg, keyring.Credential{Username: "node", Password: "n", Source: keyring.Source{Kind: keyring.SourceNode}}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m, err := New(Options{Images: f, Recorder: rec, NodeKeyring: func() *keyring.Keyring { return node }})
	if err != nil {
		t.Fatal(err)
	}
	p, c := pod("ns", corev1.PullAlways, reg+"/app:v1")
	secrets := []corev1.Secret{dockerSecret("ns", "a", "a", "alice", "1"), dockerSecret("ns", "b", "b", "bob", "2")}
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c, Secrets: secrets}); err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, c := range f.pulls[0] {
		users = append(users, c.Username)
	}
	if strings.Join(users, ",") != "alice,bob,node" {
		t.Errorf("credentials tried %v, want alice,bob,node", users)
	}
}

// KEP-2535: who may use an image that is already on the node.
func TestAccessible(t *testing.T) {
	ref := reference.MustParse(reg + "/private:v1")
	alice := dockerSecret("a", "regcred", "1", "alice", "pw")
	aliceCopy := dockerSecret("b", "copy", "2", "alice", "pw") // same login, other namespace and name
	mallory := dockerSecret("b", "regcred", "3", "mallory", "x")
	credsOf := func(ss ...corev1.Secret) []keyring.Credential {
		k, err := keyring.FromSecrets(ss)
		if err != nil {
			t.Fatal(err)
		}
		return k.Lookup(ref.Name())
	}
	hash := credsOf(alice)[0].Hash()
	secretPull := store.PullRecord{Source: keyring.Source{Kind: keyring.SourceSecret, Namespace: "a", Name: "regcred", UID: "uid-1"}, CredentialHash: hash, Reference: ref.String()}
	anonPull := store.PullRecord{Anonymous: true, Reference: ref.String()}
	nodePull := store.PullRecord{Source: keyring.Source{Kind: keyring.SourceNode, Path: "/x"}, CredentialHash: "h", Reference: ref.String()}
	cliPull := store.PullRecord{Source: keyring.Source{Kind: keyring.SourceCLI}, CredentialHash: hash, Reference: ref.String()}
	otherRepoPull := store.PullRecord{Anonymous: true, Reference: reg + "/mirror-of-private:v1"}

	tests := []struct {
		name   string
		policy VerificationPolicy
		pulls  []store.PullRecord
		ns     string
		creds  []keyring.Credential
		want   bool
	}{
		{"pulled with a secret, same secret", "", []store.PullRecord{secretPull}, "a", credsOf(alice), true},
		{"pulled with a secret, no credentials", "", []store.PullRecord{secretPull}, "b", nil, false},
		{"pulled with a secret, other credential", "", []store.PullRecord{secretPull}, "b", credsOf(mallory), false},
		{"pulled with a secret, same credential in another secret", "", []store.PullRecord{secretPull}, "b", credsOf(aliceCopy), true},
		{"pulled with a secret, several creds one matches", "", []store.PullRecord{secretPull}, "b", credsOf(mallory, aliceCopy), true},
		{"pulled anonymously", "", []store.PullRecord{anonPull}, "b", nil, true},
		{"pulled with node credentials", "", []store.PullRecord{nodePull}, "b", nil, true},
		{"anonymous pull of another repository does not count", "", []store.PullRecord{secretPull, otherRepoPull}, "b", nil, false},
		{"NeverVerify", NeverVerify, []store.PullRecord{secretPull}, "b", nil, true},
		{"preloaded, default policy", "", nil, "b", nil, true},
		{"preloaded by peapod pull, default policy", "", []store.PullRecord{cliPull}, "b", nil, true},
		{"preloaded, AlwaysVerify", AlwaysVerify, nil, "b", nil, false},
		{"anonymous pull, AlwaysVerify", AlwaysVerify, []store.PullRecord{anonPull}, "b", nil, true},
		{"preloaded, allowlist policy, not listed", NeverVerifyAllowlistedImages, nil, "b", nil, false},
		{"secret pull, allowlist policy, same secret", NeverVerifyAllowlistedImages, []store.PullRecord{secretPull}, "a", credsOf(alice), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _, _ := newManager(t, &fakeImages{}, tt.policy)
			if got := m.Accessible(&store.Image{Pulls: tt.pulls}, ref, tt.ns, tt.creds); got != tt.want {
				t.Errorf("Accessible = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAllowlist(t *testing.T) {
	tests := []struct {
		list []string
		repo string
		want bool
	}{
		{[]string{reg + "/private"}, reg + "/private", true},
		{[]string{reg + "/private"}, reg + "/private2", false},
		{[]string{reg + "/team/*"}, reg + "/team/app", true},
		{[]string{reg + "/team/*"}, reg + "/team", false},
		{[]string{"busybox"}, "docker.io/library/busybox", true},
	}
	for _, tt := range tests {
		if got := allowlisted(tt.list, tt.repo); got != tt.want {
			t.Errorf("allowlisted(%v, %s) = %v, want %v", tt.list, tt.repo, got, tt.want)
		}
	}
	for _, bad := range []string{reg + "/private:v1", reg + "/p@sha256:" + strings.Repeat("a", 64), reg + "/*/x"} {
		if err := validateAllowlistEntry(bad); err == nil {
			t.Errorf("allowlist entry %q accepted", bad)
		}
	}
	if _, err := ParseVerificationPolicy("Sometimes"); err == nil {
		t.Error("unknown policy accepted")
	}
	if p, _ := ParseVerificationPolicy(""); p != NeverVerifyPreloadedImages {
		t.Errorf("default policy %s, want NeverVerifyPreloadedImages", p)
	}
}

// A pod without matching credentials pulls an image another pod pulled with
// a Secret, and under Never it is told the image is not present.
func TestEnsureSecretPulledImages(t *testing.T) {
	ref := reg + "/private:v1"
	alice := dockerSecret("a", "regcred", "1", "alice", "pw")
	k, _ := keyring.FromSecrets([]corev1.Secret{alice})
	rec := store.PullRecord{Source: keyring.Source{Kind: keyring.SourceSecret, Namespace: "a", Name: "regcred", UID: "uid-1"}, CredentialHash: k.Lookup(reg + "/private")[0].Hash(), Reference: ref}
	newFake := func() *fakeImages {
		return &fakeImages{present: map[string]*store.Image{ref: {ID: "sha256:p", Pulls: []store.PullRecord{rec}}}, pullErr: fmt.Errorf("pull %s: %w", ref, image.ErrUnauthorized)}
	}

	f := newFake()
	m, _, _ := newManager(t, f, "")
	p, c := pod("b", corev1.PullIfNotPresent, ref)
	_, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
	if err == nil || !strings.HasPrefix(err.Error(), "ErrImagePull") || len(f.pulls) != 1 {
		t.Fatalf("IfNotPresent without credentials: %v after %d pulls, want a refused pull of its own", err, len(f.pulls))
	}

	f = newFake()
	m, _, _ = newManager(t, f, "")
	p, c = pod("b", corev1.PullNever, ref)
	_, errPresent := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c})
	f.present = map[string]*store.Image{}
	p2, c2 := pod("c", corev1.PullNever, ref)
	_, errAbsent := m.EnsureImage(context.Background(), Pull{Pod: p2, Container: c2})
	if errPresent == nil || errAbsent == nil || errPresent.Error() != errAbsent.Error() || len(f.pulls) != 0 {
		t.Fatalf("Never: present-but-forbidden %v, absent %v; want the same ErrImageNeverPull and no pull", errPresent, errAbsent)
	}

	f = newFake()
	m, _, _ = newManager(t, f, "")
	p, c = pod("a", corev1.PullIfNotPresent, ref)
	if _, err := m.EnsureImage(context.Background(), Pull{Pod: p, Container: c, Secrets: []corev1.Secret{alice}}); err != nil || len(f.pulls) != 0 {
		t.Fatalf("same secret: %v after %d pulls, want the present image", err, len(f.pulls))
	}
}
