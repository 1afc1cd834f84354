// Package policy decides whether an image must be pulled, with the rules,
// reasons and messages of Kubernetes, so that a pod run by peapod reports
// the same ErrImagePull, ImagePullBackOff and ErrImageNeverPull a user
// already knows from a kubelet.
//
// Two steps, as in Kubernetes: Default fills in an empty imagePullPolicy when
// a pod is created (the API server does this, not the kubelet), and Decide
// applies the policy each time a container is about to start.
package policy

import (
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/image/reference"
)

// Waiting reasons a container shows while its image is not there. The
// strings are kubelet's (pkg/kubelet/images/types.go); tools and people
// grep for them.
const (
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonInvalidImageName  = "InvalidImageName"
	ReasonImageInspectError = "ImageInspectError"
)

// Errors carrying the reasons above, for errors.Is. ErrInvalidImageName is
// the one the reference package returns, so a parse error needs no mapping.
var (
	ErrImagePull        = errors.New(ReasonErrImagePull)
	ErrImagePullBackOff = errors.New(ReasonImagePullBackOff)
	ErrImageNeverPull   = errors.New(ReasonErrImageNeverPull)
	ErrInvalidImageName = reference.ErrInvalidImageName
	ErrImageInspect     = errors.New(ReasonImageInspectError)
)

// Event reasons kubelet records around image pulls
// (pkg/kubelet/events/event.go), and the one for missing pull secrets.
const (
	EventPulling                         = "Pulling"
	EventPulled                          = "Pulled"
	EventFailed                          = "Failed"
	EventInspectFailed                   = "InspectFailed"
	EventErrImageNeverPull               = "ErrImageNeverPull"
	EventBackOff                         = "BackOff"
	EventFailedToRetrieveImagePullSecret = "FailedToRetrieveImagePullSecret"
)

// Event message formats, each taking the image as the pod spec wrote it
// (%q) unless stated otherwise.
const (
	MsgPulling            = "Pulling image %q"
	MsgAlreadyPresent     = "Container image %q already present on machine"
	MsgAlreadyPresentPod  = "Container image %q already present on machine and can be accessed by the pod"
	MsgPulled             = "Successfully pulled image %q in %v (%v including waiting). Image size: %v bytes."
	MsgFailedToPull       = "Failed to pull image %q: %v"
	MsgBackOff            = "Back-off pulling image %q"
	MsgNeverPull          = "Container image %q is not present with pull policy of Never"
	MsgInspectFailed      = "Failed to inspect image %q: %v"
	MsgInvalidImageName   = "Failed to apply default image tag %q: %v"
	MsgMissingPullSecrets = "Unable to retrieve some image pull secrets (%s); attempting to pull the image may not succeed."
)

// Image pull back-off per pod and image (kubelet's imageBackOffPeriod and
// MaxImageBackOff): the delay starts at InitialBackOff and doubles after
// each failed pull up to MaxBackOff.
const (
	InitialBackOff = 10 * time.Second
	MaxBackOff     = 300 * time.Second
)

// Default is the pull policy the Kubernetes API server gives a container
// whose imagePullPolicy is empty: Always when the image's tag is "latest",
// which includes an image with neither tag nor digest (it means :latest)
// and "name:latest@digest"; IfNotPresent otherwise, including "name@digest"
// and images that do not parse (validation reports those separately).
func Default(image string) corev1.PullPolicy {
	r, err := reference.Parse(image)
	if err == nil && r.Tag == reference.DefaultTag {
		return corev1.PullAlways
	}
	return corev1.PullIfNotPresent
}

// NeverPullError is returned by Decide for an absent image under the Never
// policy. Its message is kubelet's, word for word; errors.Is matches
// ErrImageNeverPull.
type NeverPullError struct {
	Image string // as written in the pod spec
}

func (e *NeverPullError) Error() string { return fmt.Sprintf(MsgNeverPull, e.Image) }

// Is makes errors.Is(err, ErrImageNeverPull) true.
func (e *NeverPullError) Is(target error) bool { return target == ErrImageNeverPull }

// Decide reports whether image must be pulled before a container can start,
// given its policy and whether the image is already on the node (for KEP-2535
// "present" means present and accessible to this pod, so a pod without the
// right credentials gets the same answer as if the image were absent).
//
// An empty policy is an error rather than a silent default: the policy
// should have been filled in by Default when the pod was created.
func Decide(p corev1.PullPolicy, image string, present bool) (pull bool, err error) {
	switch p {
	case corev1.PullAlways:
		return true, nil
	case corev1.PullIfNotPresent:
		return !present, nil
	case corev1.PullNever:
		if !present {
			return false, &NeverPullError{Image: image}
		}
		return false, nil
	case "":
		return false, fmt.Errorf("image %q: empty pull policy (apply policy.Default when the pod is created)", image)
	default:
		return false, fmt.Errorf("image %q: unknown pull policy %q (want %s, %s or %s)",
			image, p, corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)
	}
}

// ApplyDefaultTag appends ":latest" to an image with neither tag nor digest
// and leaves everything else as written, as kubelet does before asking the
// runtime: the name is not expanded to docker.io/library/..., so the runtime
// stays free to resolve short names. A reference that does not parse is
// returned as an error wrapping ErrInvalidImageName.
func ApplyDefaultTag(image string) (string, error) {
	r, err := reference.Parse(image)
	if err != nil {
		return "", err
	}
	if r.Digest == "" && r.Tag == reference.DefaultTag && !hasExplicitTag(image) {
		return image + ":" + reference.DefaultTag, nil
	}
	return image, nil
}

// hasExplicitTag reports whether a parsed, digest-free image spells out a
// tag: a colon after the last slash (a colon before it is a registry port).
func hasExplicitTag(image string) bool {
	for i := len(image) - 1; i >= 0; i-- {
		switch image[i] {
		case ':':
			return true
		case '/':
			return false
		}
	}
	return false
}
