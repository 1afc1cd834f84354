// Package objects turns the Kubernetes manifests a user writes into the
// objects peapod stores, with the API server's rules: strict decoding into
// the real k8s.io/api types, defaulting, validation with Kubernetes'
// messages and field paths, the Pod update rules, and kubectl's client-side
// apply (a three-way strategic merge against the last-applied annotation).
//
// Keeping these rules in one package lets the CLI check a whole file before
// sending anything and lets the API server enforce the same rules on every
// request, so both give the same answer.
package objects

import (
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is a Kubernetes object: its metadata and its type.
// Every *corev1.Pod, *corev1.Secret, ... satisfies it.
type Object interface {
	metav1.Object
	runtime.Object
}

// Kind describes one type of object peapod stores.
type Kind struct {
	// GVK is the group, version and kind ("v1", "Pod").
	GVK schema.GroupVersionKind
	// Resource is the plural, lower-case name in API paths ("pods").
	Resource string
	// Singular is what kubectl prints before the slash ("pod/foo").
	Singular string
	// ShortNames are the abbreviations kubectl accepts ("po").
	ShortNames []string
	// Namespaced is false for cluster-scoped kinds (Namespace).
	Namespaced bool
	// HasGeneration is true for kinds whose metadata.generation the API
	// server maintains (it counts spec changes).
	HasGeneration bool
	// New returns an empty object of the kind.
	New func() Object
}

// APIVersion is the GVK's "group/version" ("v1" for the core group).
func (k Kind) APIVersion() string { return k.GVK.GroupVersion().String() }

// GroupResource is the resource for API errors (`pods "x" not found`).
func (k Kind) GroupResource() schema.GroupResource {
	return schema.GroupResource{Group: k.GVK.Group, Resource: k.Resource}
}

// GroupKind is the kind for API errors (`Pod "x" is invalid`).
func (k Kind) GroupKind() schema.GroupKind { return k.GVK.GroupKind() }

// NewObject returns an empty object with apiVersion and kind set.
func (k Kind) NewObject() Object {
	o := k.New()
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o
}

var kinds = []Kind{
	{GVK: corev1.SchemeGroupVersion.WithKind("Namespace"), Resource: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
		New: func() Object { return &corev1.Namespace{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Pod"), Resource: "pods", Singular: "pod", ShortNames: []string{"po"}, Namespaced: true, HasGeneration: true,
		New: func() Object { return &corev1.Pod{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Secret"), Resource: "secrets", Singular: "secret", Namespaced: true,
		New: func() Object { return &corev1.Secret{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("ConfigMap"), Resource: "configmaps", Singular: "configmap", ShortNames: []string{"cm"}, Namespaced: true,
		New: func() Object { return &corev1.ConfigMap{} }},
	{GVK: corev1.SchemeGroupVersion.WithKind("Event"), Resource: "events", Singular: "event", ShortNames: []string{"ev"}, Namespaced: true,
		New: func() Object { return &corev1.Event{} }},
	{GVK: appsv1.SchemeGroupVersion.WithKind("Deployment"), Resource: "deployments", Singular: "deployment", ShortNames: []string{"deploy"}, Namespaced: true, HasGeneration: true,
		New: func() Object { return &appsv1.Deployment{} }},
}

// Kinds returns every kind peapod stores.
func Kinds() []Kind { return append([]Kind(nil), kinds...) }

// ForResource finds a kind by any name kubectl accepts for it: plural,
// singular, short name or kind, in any case ("pods", "pod", "po", "Pod").
func ForResource(name string) (Kind, error) {
	n := strings.ToLower(name)
	if i := strings.IndexByte(n, '.'); i > 0 { // "pods.v1", "deployments.apps"
		n = n[:i]
	}
	for _, k := range kinds {
		if n == k.Resource || n == k.Singular || strings.EqualFold(name, k.GVK.Kind) {
			return k, nil
		}
		for _, s := range k.ShortNames {
			if n == s {
				return k, nil
			}
		}
	}
	return Kind{}, fmt.Errorf("the server doesn't have a resource type %q", name)
}

// ForObject returns the kind of a Go object (*corev1.Pod → Pod).
func ForObject(o runtime.Object) (Kind, error) {
	t := fmt.Sprintf("%T", o)
	for _, k := range kinds {
		if fmt.Sprintf("%T", k.New()) == t {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("no kind for Go type %s", t)
}

// ForGVK finds the kind for an apiVersion and kind as written in a
// manifest. The error is the one kubectl gives for an unknown kind.
func ForGVK(apiVersion, kind string) (Kind, error) {
	for _, k := range kinds {
		if k.APIVersion() == apiVersion && k.GVK.Kind == kind {
			return k, nil
		}
	}
	return Kind{}, fmt.Errorf("no matches for kind %q in version %q", kind, apiVersion)
}

// ResourceNames lists the plural names, for help texts.
func ResourceNames() []string {
	var out []string
	for _, k := range kinds {
		out = append(out, k.Resource)
	}
	sort.Strings(out)
	return out
}
