package policy

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

const dg = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"

func TestDefault(t *testing.T) {
	tests := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"busybox", corev1.PullAlways},
		{"busybox:latest", corev1.PullAlways},
		{"docker.io/library/busybox", corev1.PullAlways},
		{"localhost:5000/app", corev1.PullAlways},
		{"127.0.0.1:5000/app:latest", corev1.PullAlways},
		{"busybox:latest@" + dg, corev1.PullAlways},
		{"busybox:1.36", corev1.PullIfNotPresent},
		{"busybox:Latest", corev1.PullIfNotPresent},
		{"busybox:latest1", corev1.PullIfNotPresent},
		{"busybox@" + dg, corev1.PullIfNotPresent},
		{"localhost:5000/app@" + dg, corev1.PullIfNotPresent},
		{"localhost:5000/app:v1@" + dg, corev1.PullIfNotPresent},
		// Unparsable images are left to validation, as the API server does.
		{"", corev1.PullIfNotPresent},
		{"Busybox", corev1.PullIfNotPresent},
		{"busybox@sha256:abc", corev1.PullIfNotPresent},
	}
	for _, tt := range tests {
		if got := Default(tt.image); got != tt.want {
			t.Errorf("Default(%q) = %s, want %s", tt.image, got, tt.want)
		}
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		policy   corev1.PullPolicy
		present  bool
		wantPull bool
		wantErr  error  // matched with errors.Is, nil for no error
		wantMsg  string // exact error text when set
	}{
		{corev1.PullAlways, false, true, nil, ""},
		{corev1.PullAlways, true, true, nil, ""},
		{corev1.PullIfNotPresent, false, true, nil, ""},
		{corev1.PullIfNotPresent, true, false, nil, ""},
		{corev1.PullNever, true, false, nil, ""},
		{corev1.PullNever, false, false, ErrImageNeverPull,
			`Container image "busybox:1.36" is not present with pull policy of Never`},
	}
	for _, tt := range tests {
		pull, err := Decide(tt.policy, "busybox:1.36", tt.present)
		if pull != tt.wantPull {
			t.Errorf("Decide(%s, present=%v) pull = %v, want %v", tt.policy, tt.present, pull, tt.wantPull)
		}
		switch {
		case tt.wantErr == nil && err != nil:
			t.Errorf("Decide(%s, present=%v) error = %v", tt.policy, tt.present, err)
		case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
			t.Errorf("Decide(%s, present=%v) error = %v, want %v", tt.policy, tt.present, err, tt.wantErr)
		case tt.wantMsg != "" && err.Error() != tt.wantMsg:
			t.Errorf("Decide(%s, present=%v) message = %q, want %q", tt.policy, tt.present, err, tt.wantMsg)
		}
	}
}

func TestDecideRejectsUnknownPolicy(t *testing.T) {
	for _, p := range []corev1.PullPolicy{"", "always", "Sometimes"} {
		for _, present := range []bool{false, true} {
			pull, err := Decide(p, "busybox", present)
			if err == nil || pull {
				t.Errorf("Decide(%q, present=%v) = %v, %v; want no pull and an error", p, present, pull, err)
			}
			if errors.Is(err, ErrImageNeverPull) {
				t.Errorf("Decide(%q) error %v must not claim ErrImageNeverPull", p, err)
			}
		}
	}
}

func TestApplyDefaultTag(t *testing.T) {
	tests := []struct {
		in, want string
		invalid  bool
	}{
		{in: "busybox", want: "busybox:latest"},
		{in: "busybox:1.36", want: "busybox:1.36"},
		{in: "busybox:latest", want: "busybox:latest"},
		{in: "busybox@" + dg, want: "busybox@" + dg},
		{in: "busybox:latest@" + dg, want: "busybox:latest@" + dg},
		{in: "localhost:5000/app", want: "localhost:5000/app:latest"},
		{in: "localhost:5000/app:latest", want: "localhost:5000/app:latest"},
		{in: "docker.io/library/busybox", want: "docker.io/library/busybox:latest"},
		{in: "Busybox", invalid: true},
		{in: "", invalid: true},
		{in: "busybox:", invalid: true},
	}
	for _, tt := range tests {
		got, err := ApplyDefaultTag(tt.in)
		if tt.invalid {
			if !errors.Is(err, ErrInvalidImageName) {
				t.Errorf("ApplyDefaultTag(%q) = %q, %v; want ErrInvalidImageName", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ApplyDefaultTag(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestReasonsAreKubeletStrings(t *testing.T) {
	for err, want := range map[error]string{
		ErrImagePull:        "ErrImagePull",
		ErrImagePullBackOff: "ImagePullBackOff",
		ErrImageNeverPull:   "ErrImageNeverPull",
		ErrInvalidImageName: "InvalidImageName",
		ErrImageInspect:     "ImageInspectError",
	} {
		if err.Error() != want {
			t.Errorf("reason %q, want %q", err, want)
		}
	}
	if InitialBackOff.Seconds() != 10 || MaxBackOff.Seconds() != 300 {
		t.Errorf("back-off %v..%v, want 10s..300s", InitialBackOff, MaxBackOff)
	}
}
