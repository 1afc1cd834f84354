package objects

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodUpdateForbidden is the start of Kubernetes' message for a Pod update
// that changes an immutable field.
const PodUpdateForbidden = "pod updates may not change fields other than `spec.containers[*].image`," +
	"`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations)," +
	"`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"

// PrepareForUpdate copies into newObj what a client cannot change with an
// update, as the API server does before validating: the system metadata
// (uid, creationTimestamp, deletion fields, generation; the resourceVersion
// when the update gives none, which makes it unconditional) and, for kinds with
// a status, the status (it changes only through the status path).
func PrepareForUpdate(newObj, oldObj Object) {
	newObj.SetUID(oldObj.GetUID())
	newObj.SetCreationTimestamp(oldObj.GetCreationTimestamp())
	newObj.SetDeletionTimestamp(oldObj.GetDeletionTimestamp())
	newObj.SetDeletionGracePeriodSeconds(oldObj.GetDeletionGracePeriodSeconds())
	newObj.SetGeneration(oldObj.GetGeneration())
	if newObj.GetResourceVersion() == "" {
		newObj.SetResourceVersion(oldObj.GetResourceVersion())
	}
	if newObj.GetNamespace() == "" {
		newObj.SetNamespace(oldObj.GetNamespace())
	}
	switch n := newObj.(type) {
	case *corev1.Pod:
		n.Status = *oldObj.(*corev1.Pod).Status.DeepCopy()
	case *corev1.Namespace:
		n.Status = *oldObj.(*corev1.Namespace).Status.DeepCopy()
	case *appsv1.Deployment:
		n.Status = *oldObj.(*appsv1.Deployment).Status.DeepCopy()
	}
}

// ValidateUpdate checks newObj (defaulted and prepared) both on its own and
// as a change of oldObj: immutable metadata, the Pod update rules, Secret
// type and immutable Secrets and ConfigMaps. The error is an Invalid
// StatusError with Kubernetes' message.
func ValidateUpdate(newObj, oldObj Object) error {
	k, err := ForObject(newObj)
	if err != nil {
		return err
	}
	errs := apivalidation.ValidateObjectMetaAccessorUpdate(newObj, oldObj, field.NewPath("metadata"))
	errs = append(errs, validateObject(k, newObj)...)
	switch n := newObj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodUpdate(n, oldObj.(*corev1.Pod))...)
	case *corev1.Secret:
		o := oldObj.(*corev1.Secret)
		errs = append(errs, apivalidation.ValidateImmutableField(n.Type, o.Type, field.NewPath("type"))...)
		errs = append(errs, immutableData(o.Immutable, n.Immutable, reflect.DeepEqual(n.Data, o.Data))...)
	case *corev1.ConfigMap:
		o := oldObj.(*corev1.ConfigMap)
		same := reflect.DeepEqual(n.Data, o.Data) && reflect.DeepEqual(n.BinaryData, o.BinaryData)
		errs = append(errs, immutableData(o.Immutable, n.Immutable, same)...)
	case *appsv1.Deployment:
		errs = append(errs, validateDeploymentUpdate(n, oldObj.(*appsv1.Deployment))...)
	}
	return invalid(k, newObj.GetName(), errs)
}

func immutableData(oldImm, newImm *bool, sameData bool) field.ErrorList {
	if oldImm == nil || !*oldImm {
		return nil
	}
	var errs field.ErrorList
	if newImm == nil || !*newImm {
		errs = append(errs, field.Forbidden(field.NewPath("immutable"), "field is immutable when `immutable` is set"))
	}
	if !sameData {
		errs = append(errs, field.Forbidden(field.NewPath("data"), "field is immutable when `immutable` is set"))
	}
	return errs
}

func validatePodUpdate(n, o *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	sp := field.NewPath("spec")
	if na, oa := n.Spec.ActiveDeadlineSeconds, o.Spec.ActiveDeadlineSeconds; oa != nil {
		switch {
		case na == nil:
			errs = append(errs, field.Invalid(sp.Child("activeDeadlineSeconds"), na, "must not update from a positive integer to nil value"))
		case *na > *oa:
			errs = append(errs, field.Invalid(sp.Child("activeDeadlineSeconds"), *na, "must be less than or equal to previous value"))
		}
	}
	// Compare the specs with the mutable fields taken from the old spec.
	m := n.Spec.DeepCopy()
	for i := range m.Containers {
		if i < len(o.Spec.Containers) {
			m.Containers[i].Image = o.Spec.Containers[i].Image
		}
	}
	for i := range m.InitContainers {
		if i < len(o.Spec.InitContainers) {
			m.InitContainers[i].Image = o.Spec.InitContainers[i].Image
		}
	}
	m.ActiveDeadlineSeconds = o.Spec.ActiveDeadlineSeconds
	if tolerationsAdded(o.Spec.Tolerations, m.Tolerations) {
		m.Tolerations = o.Spec.Tolerations
	}
	if og, ng := o.Spec.TerminationGracePeriodSeconds, m.TerminationGracePeriodSeconds; og != nil && *og < 0 && ng != nil && *ng == 1 {
		m.TerminationGracePeriodSeconds = og
	}
	if !equality.Semantic.DeepEqual(*m, o.Spec) {
		msg := PodUpdateForbidden
		if d := specDiff(o.Spec, *m); d != "" {
			msg += "\n" + d
		}
		errs = append(errs, field.Forbidden(sp, msg))
	}
	return errs
}

// tolerationsAdded reports whether next keeps every toleration of prev
// (possibly adding some).
func tolerationsAdded(prev, next []corev1.Toleration) bool {
	for _, p := range prev {
		found := false
		for _, n := range next {
			if equality.Semantic.DeepEqual(p, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// specDiff lists the changed fields of a pod spec, one per line
// (`  spec.containers[0].ports[0].containerPort: 80 -> 8080`), so the user
// sees what the forbidden change was.
func specDiff(old, cur corev1.PodSpec) string {
	var a, b any
	ja, _ := json.Marshal(old)
	jb, _ := json.Marshal(cur)
	_ = json.Unmarshal(ja, &a)
	_ = json.Unmarshal(jb, &b)
	var lines []string
	diffJSON("spec", a, b, &lines)
	sort.Strings(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("  ... and %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

func diffJSON(path string, a, b any, out *[]string) {
	switch av := a.(type) {
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			keys := map[string]bool{}
			for k := range av {
				keys[k] = true
			}
			for k := range bv {
				keys[k] = true
			}
			for k := range keys {
				diffJSON(path+"."+k, av[k], bv[k], out)
			}
			return
		}
	case []any:
		if bv, ok := b.([]any); ok && len(av) == len(bv) {
			for i := range av {
				diffJSON(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], out)
			}
			return
		}
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, fmt.Sprintf("  %s: %s -> %s", path, short(a), short(b)))
	}
}

func short(v any) string {
	if v == nil {
		return "<unset>"
	}
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
