package objects

import (
	"encoding/json"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// MaxSecretSize is the limit on a Secret's or ConfigMap's data (1 MiB).
const MaxSecretSize = 1 << 20

// redacted stands in for secret data in error messages.
const redacted = "<secret contents redacted>"

// Validate checks a defaulted object with the API server's rules. The
// error is a Kubernetes Invalid StatusError listing every problem:
// `Pod "Bad_Name" is invalid: metadata.name: Invalid value: ...`.
func Validate(obj Object) error {
	k, err := ForObject(obj)
	if err != nil {
		return err
	}
	return invalid(k, obj.GetName(), validateObject(k, obj))
}

func invalid(k Kind, name string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return apierrors.NewInvalid(k.GroupKind(), name, errs)
}

func validateObject(k Kind, obj Object) field.ErrorList {
	nameFn := apivalidation.NameIsDNSSubdomain
	if k.GVK.Kind == "Namespace" {
		nameFn = apivalidation.ValidateNamespaceName
	}
	errs := apivalidation.ValidateObjectMetaAccessor(obj, k.Namespaced, nameFn, field.NewPath("metadata"))
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodSpec(&o.Spec, field.NewPath("spec"))...)
	case *corev1.Secret:
		errs = append(errs, validateSecret(o)...)
	case *corev1.ConfigMap:
		errs = append(errs, validateConfigMap(o)...)
	case *corev1.Event:
		errs = append(errs, validateEvent(o)...)
	case *appsv1.Deployment:
		errs = append(errs, validateDeployment(o)...)
	}
	return errs
}

func validatePodSpec(s *corev1.PodSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	vols, vErrs := validateVolumes(s.Volumes, p.Child("volumes"))
	errs = append(errs, vErrs...)
	names := sets.New[string]()
	errs = append(errs, validateContainers(s.InitContainers, true, vols, names, p.Child("initContainers"))...)
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	errs = append(errs, validateContainers(s.Containers, false, vols, names, p.Child("containers"))...)
	errs = append(errs, enum(p.Child("restartPolicy"), string(s.RestartPolicy),
		corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever)...)
	errs = append(errs, enum(p.Child("dnsPolicy"), string(s.DNSPolicy),
		corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	if s.TerminationGracePeriodSeconds != nil && *s.TerminationGracePeriodSeconds < 0 {
		errs = append(errs, field.Invalid(p.Child("terminationGracePeriodSeconds"), *s.TerminationGracePeriodSeconds, "must be greater than or equal to 0"))
	}
	if s.ActiveDeadlineSeconds != nil && *s.ActiveDeadlineSeconds < 1 {
		errs = append(errs, field.Invalid(p.Child("activeDeadlineSeconds"), *s.ActiveDeadlineSeconds, "must be between 1 and 2147483647, inclusive"))
	}
	if s.Hostname != "" {
		for _, msg := range validation.IsDNS1123Label(s.Hostname) {
			errs = append(errs, field.Invalid(p.Child("hostname"), s.Hostname, msg))
		}
	}
	if s.Subdomain != "" {
		for _, msg := range validation.IsDNS1123Label(s.Subdomain) {
			errs = append(errs, field.Invalid(p.Child("subdomain"), s.Subdomain, msg))
		}
	}
	for i, ref := range s.ImagePullSecrets {
		if ref.Name == "" {
			errs = append(errs, field.Required(p.Child("imagePullSecrets").Index(i).Child("name"), ""))
		}
	}
	return errs
}

// enum reports a value outside the allowed set, with Kubernetes' wording
// ("Required value" when empty, "Unsupported value" otherwise).
func enum[T ~string](p *field.Path, v string, allowed ...T) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	vals := make([]string, len(allowed))
	for i, a := range allowed {
		if string(a) == v {
			return nil
		}
		vals[i] = string(a)
	}
	return field.ErrorList{field.NotSupported(p, v, vals)}
}

func validateVolumes(vols []corev1.Volume, p *field.Path) (sets.Set[string], field.ErrorList) {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, v := range vols {
		ip := p.Index(i)
		if v.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Label(v.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), v.Name, msg))
			}
			if names.Has(v.Name) {
				errs = append(errs, field.Duplicate(ip.Child("name"), v.Name))
			}
			names.Insert(v.Name)
		}
		switch n := countSources(&v.VolumeSource); {
		case n == 0:
			errs = append(errs, field.Required(ip, "must specify a volume type"))
		case n > 1:
			errs = append(errs, field.Forbidden(ip, "may not specify more than 1 volume type"))
		}
		src := v.VolumeSource
		switch {
		case src.HostPath != nil && src.HostPath.Path == "":
			errs = append(errs, field.Required(ip.Child("hostPath", "path"), ""))
		case src.Secret != nil && src.Secret.SecretName == "":
			errs = append(errs, field.Required(ip.Child("secret", "secretName"), ""))
		case src.ConfigMap != nil && src.ConfigMap.Name == "":
			errs = append(errs, field.Required(ip.Child("configMap", "name"), ""))
		case src.EmptyDir != nil && src.EmptyDir.Medium != corev1.StorageMediumDefault && src.EmptyDir.Medium != corev1.StorageMediumMemory &&
			!strings.HasPrefix(string(src.EmptyDir.Medium), string(corev1.StorageMediumHugePages)):
			errs = append(errs, field.NotSupported(ip.Child("emptyDir", "medium"), src.EmptyDir.Medium, []string{"", "Memory"}))
		}
		for _, m := range []*int32{modeOf(src)} {
			if m != nil && (*m < 0 || *m > 0o777) {
				errs = append(errs, field.Invalid(ip.Child(sourceName(src), "defaultMode"), *m, "must be a number between 0 and 0777 (octal), both inclusive"))
			}
		}
	}
	return names, errs
}

// countSources counts the non-nil members of a VolumeSource through its
// JSON form, so that every source kind Kubernetes adds is counted.
func countSources(src *corev1.VolumeSource) int {
	b, _ := json.Marshal(src)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	return len(m)
}

func sourceName(src corev1.VolumeSource) string {
	b, _ := json.Marshal(src)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	for k := range m {
		return k
	}
	return ""
}

func modeOf(src corev1.VolumeSource) *int32 {
	switch {
	case src.Secret != nil:
		return src.Secret.DefaultMode
	case src.ConfigMap != nil:
		return src.ConfigMap.DefaultMode
	case src.DownwardAPI != nil:
		return src.DownwardAPI.DefaultMode
	case src.Projected != nil:
		return src.Projected.DefaultMode
	}
	return nil
}

// validateContainers checks app or init containers. A container's
// restartPolicy follows Kubernetes with the ContainerRestartRules feature
// gate off (its default): only Always, and only on an init container (a
// sidecar); only sidecars may have probes among init containers.
func validateContainers(cs []corev1.Container, init bool, vols, names sets.Set[string], p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		c := &cs[i]
		ip := p.Index(i)
		errs = append(errs, validateRestartPolicy(c, init, ip)...)
		if c.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Label(c.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), c.Name, msg))
			}
			if names.Has(c.Name) {
				errs = append(errs, field.Duplicate(ip.Child("name"), c.Name))
			}
			names.Insert(c.Name)
		}
		if strings.TrimSpace(c.Image) == "" {
			errs = append(errs, field.Required(ip.Child("image"), ""))
		} else if c.Image != strings.TrimSpace(c.Image) {
			errs = append(errs, field.Invalid(ip.Child("image"), c.Image, "must not have leading or trailing whitespace"))
		}
		errs = append(errs, enum(ip.Child("imagePullPolicy"), string(c.ImagePullPolicy),
			corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)...)
		errs = append(errs, enum(ip.Child("terminationMessagePolicy"), string(c.TerminationMessagePolicy),
			corev1.TerminationMessageReadFile, corev1.TerminationMessageFallbackToLogsOnError)...)
		errs = append(errs, validatePorts(c.Ports, ip.Child("ports"))...)
		errs = append(errs, validateEnv(c.Env, ip.Child("env"))...)
		for j, ef := range c.EnvFrom {
			jp := ip.Child("envFrom").Index(j)
			n := 0
			if ef.ConfigMapRef != nil {
				n++
			}
			if ef.SecretRef != nil {
				n++
			}
			switch n {
			case 0:
				errs = append(errs, field.Invalid(jp, "", "must specify one of: `configMapRef` or `secretRef`"))
			case 2:
				errs = append(errs, field.Invalid(jp, "", "may not have more than one field specified at a time"))
			}
		}
		mounts := sets.New[string]()
		for j, m := range c.VolumeMounts {
			jp := ip.Child("volumeMounts").Index(j)
			if m.Name == "" {
				errs = append(errs, field.Required(jp.Child("name"), ""))
			} else if !vols.Has(m.Name) {
				errs = append(errs, field.NotFound(jp.Child("name"), m.Name))
			}
			if m.MountPath == "" {
				errs = append(errs, field.Required(jp.Child("mountPath"), ""))
			} else if mounts.Has(m.MountPath) {
				errs = append(errs, field.Invalid(jp.Child("mountPath"), m.MountPath, "must be unique"))
			}
			mounts.Insert(m.MountPath)
		}
	}
	return errs
}

func validatePorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), port.Name, msg))
			}
			if names.Has(port.Name) {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names.Insert(port.Name)
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			for _, msg := range validation.IsValidPortNum(int(port.ContainerPort)) {
				errs = append(errs, field.Invalid(ip.Child("containerPort"), port.ContainerPort, msg))
			}
		}
		if port.HostPort != 0 {
			for _, msg := range validation.IsValidPortNum(int(port.HostPort)) {
				errs = append(errs, field.Invalid(ip.Child("hostPort"), port.HostPort, msg))
			}
		}
		errs = append(errs, enum(ip.Child("protocol"), string(port.Protocol),
			corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
	}
	return errs
}

func validateEnv(env []corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, e := range env {
		ip := p.Index(i)
		if e.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			for _, msg := range validation.IsRelaxedEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), e.Name, msg))
			}
		}
		if f := e.ValueFrom; f != nil {
			if e.Value != "" {
				errs = append(errs, field.Invalid(ip.Child("valueFrom"), "", "may not be specified when `value` is not empty"))
			}
			n := 0
			for _, set := range []bool{f.FieldRef != nil, f.ResourceFieldRef != nil, f.ConfigMapKeyRef != nil, f.SecretKeyRef != nil, f.FileKeyRef != nil} {
				if set {
					n++
				}
			}
			switch n {
			case 0:
				errs = append(errs, field.Invalid(ip.Child("valueFrom"), "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
			case 1:
			default:
				errs = append(errs, field.Invalid(ip.Child("valueFrom"), "", "may not have more than one field specified at a time"))
			}
			if r := f.SecretKeyRef; r != nil && r.Key == "" {
				errs = append(errs, field.Required(ip.Child("valueFrom", "secretKeyRef", "key"), ""))
			}
			if r := f.ConfigMapKeyRef; r != nil && r.Key == "" {
				errs = append(errs, field.Required(ip.Child("valueFrom", "configMapKeyRef", "key"), ""))
			}
		}
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	dp := field.NewPath("data")
	total := 0
	for key, v := range s.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(dp.Key(key), key, msg))
		}
		total += len(v)
	}
	if total > MaxSecretSize {
		errs = append(errs, field.TooLong(dp, "", MaxSecretSize))
	}
	requireKey := func(key string) bool {
		if _, ok := s.Data[key]; !ok {
			errs = append(errs, field.Required(dp.Key(key), ""))
			return false
		}
		return true
	}
	switch s.Type {
	case corev1.SecretTypeDockercfg:
		if requireKey(corev1.DockerConfigKey) {
			var m map[string]any
			if err := json.Unmarshal(s.Data[corev1.DockerConfigKey], &m); err != nil {
				errs = append(errs, field.Invalid(dp.Key(corev1.DockerConfigKey), redacted, err.Error()))
			}
		}
	case corev1.SecretTypeDockerConfigJson:
		if requireKey(corev1.DockerConfigJsonKey) {
			var m map[string]any
			if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &m); err != nil {
				errs = append(errs, field.Invalid(dp.Key(corev1.DockerConfigJsonKey), redacted, err.Error()))
			}
		}
	case corev1.SecretTypeServiceAccountToken:
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			errs = append(errs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeBasicAuth:
		_, u := s.Data[corev1.BasicAuthUsernameKey]
		_, pw := s.Data[corev1.BasicAuthPasswordKey]
		if !u && !pw {
			errs = append(errs, field.Required(dp.Key(corev1.BasicAuthUsernameKey), ""),
				field.Required(dp.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			errs = append(errs, field.Required(dp.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		requireKey(corev1.TLSCertKey)
		requireKey(corev1.TLSPrivateKeyKey)
	case corev1.SecretTypeOpaque, "":
	default:
		for _, msg := range validation.IsQualifiedName(string(s.Type)) {
			errs = append(errs, field.Invalid(field.NewPath("type"), s.Type, msg))
		}
	}
	return errs
}

func validateConfigMap(c *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	total := 0
	for key, v := range c.Data {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(field.NewPath("data").Key(key), key, msg))
		}
		total += len(v)
	}
	for key, v := range c.BinaryData {
		for _, msg := range validation.IsConfigMapKey(key) {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(key), key, msg))
		}
		if _, ok := c.Data[key]; ok {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(key), key, "duplicate of key present in data"))
		}
		total += len(v)
	}
	if total > MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath(""), "", MaxSecretSize))
	}
	return errs
}

func validateEvent(e *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if e.InvolvedObject.Namespace != "" && e.InvolvedObject.Namespace != e.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), e.InvolvedObject.Namespace, "does not match event.namespace"))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.NotSupported(field.NewPath("type"), e.Type, []string{corev1.EventTypeNormal, corev1.EventTypeWarning}))
	}
	return errs
}

func validateRestartPolicy(c *corev1.Container, init bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(c.RestartPolicyRules) > 0 {
		errs = append(errs, field.Forbidden(p.Child("restartPolicyRules"), "may not be set (feature gate ContainerRestartRules is off)"))
	}
	if !init {
		if c.RestartPolicy != nil {
			errs = append(errs, field.Forbidden(p.Child("restartPolicy"), "may not be set for non-init containers"))
		}
		return errs
	}
	if c.RestartPolicy != nil && *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		errs = append(errs, field.NotSupported(p.Child("restartPolicy"), *c.RestartPolicy, []corev1.ContainerRestartPolicy{corev1.ContainerRestartPolicyAlways}))
	}
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		for _, f := range []struct {
			name string
			set  bool
		}{{"lifecycle", c.Lifecycle != nil}, {"livenessProbe", c.LivenessProbe != nil}, {"readinessProbe", c.ReadinessProbe != nil}, {"startupProbe", c.StartupProbe != nil}} {
			if f.set {
				errs = append(errs, field.Forbidden(p.Child(f.name), "may not be set for init containers without restartPolicy=Always"))
			}
		}
	}
	return errs
}
