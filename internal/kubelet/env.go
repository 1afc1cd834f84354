package kubelet

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/peapod/peapod/internal/kubelet/volumes"
)

// configError is a container configuration that cannot be made
// (CreateContainerConfigError): a missing Secret, ConfigMap or key.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

type envVar struct{ name, value string }

// makeEnv resolves a container's envFrom and env the way kubelet's
// makeEnvironmentVariables does: envFrom sources first, then env entries
// (later ones win), values expanded with $(VAR) against what is defined so
// far. Missing non-optional sources are configuration errors with kubelet's
// messages; keys of envFrom that are not valid variable names are skipped
// and reported (the second result).
func (k *Kubelet) makeEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container) ([]envVar, []string, error) {
	var (
		order   []string
		vals    = map[string]string{}
		skipped []string
	)
	set := func(n, v string) {
		if _, ok := vals[n]; !ok {
			order = append(order, n)
		}
		vals[n] = v
	}
	for _, ef := range c.EnvFrom {
		var (
			data       map[string]string
			kind, name string
			optional   bool
		)
		switch {
		case ef.ConfigMapRef != nil:
			kind, name = "ConfigMap", ef.ConfigMapRef.Name
			optional = ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
			cm, err := k.objects.ConfigMap(ctx, pod.Namespace, name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{err.Error()}
			}
			data = cm.Data
		case ef.SecretRef != nil:
			kind, name = "Secret", ef.SecretRef.Name
			optional = ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
			s, err := k.objects.Secret(ctx, pod.Namespace, name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{err.Error()}
			}
			data = map[string]string{}
			for key, v := range s.Data {
				data[key] = string(v)
			}
		default:
			continue
		}
		keys := make([]string, 0, len(data))
		for key := range data {
			keys = append(keys, key)
		}
		sort.Strings(keys)
		var bad []string
		for _, key := range keys {
			n := ef.Prefix + key
			if len(validation.IsEnvVarName(n)) > 0 {
				bad = append(bad, n)
				continue
			}
			set(n, data[key])
		}
		if len(bad) > 0 {
			skipped = append(skipped, fmt.Sprintf("Keys [%s] from the EnvFrom %s %s/%s were skipped since they are considered invalid environment variable names.",
				strings.Join(bad, ", "), strings.ToLower(kind), pod.Namespace, name))
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			set(e.Name, Expand(e.Value, vals))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := volumes.FieldValue(pod, vf.FieldRef.FieldPath)
			if err != nil {
				return nil, nil, &configError{err.Error()}
			}
			set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			target := c
			if n := vf.ResourceFieldRef.ContainerName; n != "" && n != c.Name {
				target = findContainer(pod, n)
				if target == nil {
					return nil, nil, &configError{fmt.Sprintf("resourceFieldRef: no container %q", n)}
				}
			}
			v, err := volumes.ResourceValue(target, vf.ResourceFieldRef)
			if err != nil {
				return nil, nil, &configError{err.Error()}
			}
			set(e.Name, v)
		case vf.ConfigMapKeyRef != nil:
			r := vf.ConfigMapKeyRef
			optional := r.Optional != nil && *r.Optional
			cm, err := k.objects.ConfigMap(ctx, pod.Namespace, r.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{err.Error()}
			}
			v, ok := cm.Data[r.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, nil, &configError{fmt.Sprintf("couldn't find key %v in ConfigMap %v/%v", r.Key, pod.Namespace, r.Name)}
			}
			set(e.Name, v)
		case vf.SecretKeyRef != nil:
			r := vf.SecretKeyRef
			optional := r.Optional != nil && *r.Optional
			s, err := k.objects.Secret(ctx, pod.Namespace, r.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && optional {
					continue
				}
				return nil, nil, &configError{err.Error()}
			}
			v, ok := s.Data[r.Key]
			if !ok {
				if optional {
					continue
				}
				return nil, nil, &configError{fmt.Sprintf("couldn't find key %v in Secret %v/%v", r.Key, pod.Namespace, r.Name)}
			}
			set(e.Name, string(v))
		}
	}
	out := make([]envVar, 0, len(order))
	for _, n := range order {
		out = append(out, envVar{n, vals[n]})
	}
	return out, skipped, nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// Expand replaces $(VAR) with vars["VAR"] as Kubernetes does for env
// values, command and args: an unknown $(VAR) stays as written, "$$"
// escapes a "$", and any other "$" is kept.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
