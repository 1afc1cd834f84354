package objects

// The apps/v1 Deployment: the API server's defaults (pkg/apis/apps/v1
// defaults.go) and validation (pkg/apis/apps/validation), with Kubernetes'
// messages, and the pod-template-hash the deployment controller labels its
// pods with.

import (
	"fmt"
	"hash/fnv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/dump"
)

// Defaults the API server gives a Deployment.
const (
	DefaultDeploymentReplicas                int32 = 1
	DefaultDeploymentRevisionHistoryLimit    int32 = 10
	DefaultDeploymentProgressDeadlineSeconds int32 = 600
	// DefaultMaxSurge and DefaultMaxUnavailable are a RollingUpdate's
	// defaults.
	DefaultMaxSurge       = "25%"
	DefaultMaxUnavailable = "25%"
)

func defaultDeployment(d *appsv1.Deployment) {
	s := &d.Spec
	if s.Replicas == nil {
		v := DefaultDeploymentReplicas
		s.Replicas = &v
	}
	if s.Strategy.Type == "" {
		s.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.Strategy.RollingUpdate == nil {
			s.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		ru := s.Strategy.RollingUpdate
		if ru.MaxUnavailable == nil {
			v := intstr.FromString(DefaultMaxUnavailable)
			ru.MaxUnavailable = &v
		}
		if ru.MaxSurge == nil {
			v := intstr.FromString(DefaultMaxSurge)
			ru.MaxSurge = &v
		}
	}
	if s.RevisionHistoryLimit == nil {
		v := DefaultDeploymentRevisionHistoryLimit
		s.RevisionHistoryLimit = &v
	}
	if s.ProgressDeadlineSeconds == nil {
		v := DefaultDeploymentProgressDeadlineSeconds
		s.ProgressDeadlineSeconds = &v
	}
	defaultPodTemplate(&s.Template)
}

// defaultPodTemplate defaults a template's pod spec exactly as a Pod's.
func defaultPodTemplate(t *corev1.PodTemplateSpec) {
	p := &corev1.Pod{Spec: t.Spec}
	defaultPod(p)
	t.Spec = p.Spec
}

func validateDeployment(d *appsv1.Deployment) field.ErrorList {
	var errs field.ErrorList
	s := &d.Spec
	sp := field.NewPath("spec")
	replicas := int32(0)
	if s.Replicas != nil {
		replicas = *s.Replicas
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(replicas), sp.Child("replicas"))...)
	if s.Selector == nil {
		errs = append(errs, field.Required(sp.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(s.Selector, metav1validation.LabelSelectorValidationOptions{}, sp.Child("selector"))...)
		if len(s.Selector.MatchLabels)+len(s.Selector.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(sp.Child("selector"), s.Selector, "empty selector is invalid for deployment"))
		}
	}
	if sel, err := metav1.LabelSelectorAsSelector(s.Selector); err != nil {
		errs = append(errs, field.Invalid(sp.Child("selector"), s.Selector, "invalid label selector"))
	} else {
		tp := sp.Child("template")
		if !sel.Empty() && !sel.Matches(labels.Set(s.Template.Labels)) {
			errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), s.Template.Labels, "`selector` does not match template `labels`"))
		}
		errs = append(errs, metav1validation.ValidateLabels(s.Template.Labels, tp.Child("metadata", "labels"))...)
		errs = append(errs, apivalidation.ValidateAnnotations(s.Template.Annotations, tp.Child("metadata", "annotations"))...)
		errs = append(errs, validatePodSpec(&s.Template.Spec, tp.Child("spec"))...)
		if rp := s.Template.Spec.RestartPolicy; rp != "" && rp != corev1.RestartPolicyAlways {
			errs = append(errs, field.NotSupported(tp.Child("spec", "restartPolicy"), rp, []string{string(corev1.RestartPolicyAlways)}))
		}
		if s.Template.Spec.ActiveDeadlineSeconds != nil {
			errs = append(errs, field.Forbidden(tp.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in ReplicaSet is not Supported"))
		}
	}
	errs = append(errs, validateStrategy(&s.Strategy, sp.Child("strategy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(s.MinReadySeconds), sp.Child("minReadySeconds"))...)
	if s.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.RevisionHistoryLimit), sp.Child("revisionHistoryLimit"))...)
	}
	if s.ProgressDeadlineSeconds != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*s.ProgressDeadlineSeconds), sp.Child("progressDeadlineSeconds"))...)
		if *s.ProgressDeadlineSeconds <= s.MinReadySeconds {
			errs = append(errs, field.Invalid(sp.Child("progressDeadlineSeconds"), *s.ProgressDeadlineSeconds, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateStrategy(st *appsv1.DeploymentStrategy, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch st.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(p.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		ru := st.RollingUpdate
		if ru == nil {
			return append(errs, field.Required(p.Child("rollingUpdate"), "this should be defaulted and never be nil"))
		}
		rp := p.Child("rollingUpdate")
		var mu, ms intstr.IntOrString
		if ru.MaxUnavailable != nil {
			mu = *ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			ms = *ru.MaxSurge
		}
		errs = append(errs, validateIntOrPercent(mu, rp.Child("maxUnavailable"))...)
		errs = append(errs, validateIntOrPercent(ms, rp.Child("maxSurge"))...)
		if intOrPercentValue(mu) == 0 && intOrPercentValue(ms) == 0 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), mu, "may not be 0 when `maxSurge` is 0"))
		}
		if v, pct := percentValue(mu); pct && v > 100 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), mu, "must not be greater than 100%"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("type"), st.Type, []string{string(appsv1.RecreateDeploymentStrategyType), string(appsv1.RollingUpdateDeploymentStrategyType)}))
	}
	return errs
}

func validateIntOrPercent(v intstr.IntOrString, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch v.Type {
	case intstr.String:
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(p, v, msg))
		}
	case intstr.Int:
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(v.IntValue()), p)...)
	}
	return errs
}

func percentValue(v intstr.IntOrString) (int, bool) {
	if v.Type != intstr.String || len(validation.IsValidPercent(v.StrVal)) != 0 {
		return 0, false
	}
	var n int
	_, _ = fmt.Sscanf(v.StrVal, "%d%%", &n)
	return n, true
}

func intOrPercentValue(v intstr.IntOrString) int {
	if n, ok := percentValue(v); ok {
		return n
	}
	return v.IntValue()
}

func validateDeploymentUpdate(n, o *appsv1.Deployment) field.ErrorList {
	// apps/v1 made the selector immutable: changing it would orphan the
	// pods the old one selected.
	return apivalidation.ValidateImmutableField(n.Spec.Selector, o.Spec.Selector, field.NewPath("spec", "selector"))
}

// PodTemplateHashLabel is the label, on every pod of a Deployment, holding
// the hash of the template the pod was made from.
const PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey

// PodTemplateHash is Kubernetes' pod-template-hash: the FNV-32a hash of
// the template as the deployment controller prints it for hashing, with
// the collision count appended when there is one, encoded with the
// alphabet Kubernetes uses for generated names. The same defaulted
// template gives the same hash as on a real cluster of this version.
func PodTemplateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%v", dump.ForHash(*t))
	if collisionCount != nil {
		b := make([]byte, 8)
		c := uint32(*collisionCount)
		b[0], b[1], b[2], b[3] = byte(c), byte(c>>8), byte(c>>16), byte(c>>24)
		_, _ = h.Write(b)
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}
