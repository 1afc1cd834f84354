package objects

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: busybox
`

func decodeDeployment(t *testing.T, in string) *appsv1.Deployment {
	t.Helper()
	d := decodeOne(t, in).(*appsv1.Deployment)
	d.Namespace = "default"
	return d
}

func TestDeploymentKind(t *testing.T) {
	for _, name := range []string{"deployments", "deployment", "deploy", "Deployment", "deployments.apps"} {
		k, err := ForResource(name)
		if err != nil || k.GVK.Kind != "Deployment" {
			t.Errorf("ForResource(%q) = %v, %v", name, k.GVK, err)
		}
	}
	k, _ := ForResource("deploy")
	if k.APIVersion() != "apps/v1" || !k.Namespaced || !k.HasGeneration {
		t.Errorf("deployment kind: %+v", k)
	}
	if _, err := Decode("d.yaml", []byte(strings.Replace(goodDeployment, "replicas", "replica", 1)+"  replicaz: 3\n")); err == nil ||
		!strings.Contains(err.Error(), `unknown field "spec.replicaz"`) {
		t.Errorf("strict decoding of a Deployment: %v", err)
	}
}

func TestDeploymentDefaults(t *testing.T) {
	d := decodeDeployment(t, goodDeployment)
	SetDefaults(d)
	s := d.Spec
	ru := s.Strategy.RollingUpdate
	checks := map[string]bool{
		"replicas 1":                         s.Replicas != nil && *s.Replicas == 1,
		"strategy RollingUpdate":             s.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType,
		"maxSurge 25%":                       ru != nil && ru.MaxSurge != nil && *ru.MaxSurge == intstr.FromString("25%"),
		"maxUnavailable 25%":                 ru != nil && ru.MaxUnavailable != nil && *ru.MaxUnavailable == intstr.FromString("25%"),
		"revisionHistoryLimit 10":            s.RevisionHistoryLimit != nil && *s.RevisionHistoryLimit == 10,
		"progressDeadlineSeconds 600":        s.ProgressDeadlineSeconds != nil && *s.ProgressDeadlineSeconds == 600,
		"template restartPolicy Always":      s.Template.Spec.RestartPolicy == corev1.RestartPolicyAlways,
		"template grace 30":                  *s.Template.Spec.TerminationGracePeriodSeconds == 30,
		"template pull policy of a bare tag": s.Template.Spec.Containers[0].ImagePullPolicy == corev1.PullAlways,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied", name)
		}
	}

	rc := decodeDeployment(t, strings.Replace(goodDeployment, "  selector:", "  replicas: 0\n  strategy: {type: Recreate}\n  selector:", 1))
	SetDefaults(rc)
	if *rc.Spec.Replicas != 0 || rc.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("explicit replicas 0 / Recreate changed by defaulting: %+v", rc.Spec)
	}
}

func TestValidateDeployment(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           string // "" means valid
	}{
		{"good", "", "", ""},
		{"selector does not match template labels", "labels: {app: web}", "labels: {app: other}",
			"Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`"},
		{"selector missing", "  selector:\n    matchLabels: {app: web}\n", "", `spec.selector: Required value`},
		{"selector empty", "matchLabels: {app: web}", "matchLabels: {}", `spec.selector: Invalid value: {}: empty selector is invalid for deployment`},
		{"negative replicas", "  selector:", "  replicas: -1\n  selector:", `spec.replicas: Invalid value: -1: must be greater than or equal to 0`},
		{"restartPolicy Never", "      containers:", "      restartPolicy: Never\n      containers:", `spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"`},
		{"bad container in the template", "name: app", "name: App_1", `spec.template.spec.containers[0].name: Invalid value: "App_1"`},
		{"Recreate with rollingUpdate", "  selector:", "  strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}\n  selector:", "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"},
		{"both 0", "  selector:", "  strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}\n  selector:", "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"},
		{"unavailable over 100%", "  selector:", "  strategy: {rollingUpdate: {maxUnavailable: 150%}}\n  selector:", `spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%`},
		{"bad percent", "  selector:", "  strategy: {rollingUpdate: {maxSurge: lots}}\n  selector:", `spec.strategy.rollingUpdate.maxSurge: Invalid value: "lots": a valid percent string must be`},
		{"unknown strategy", "  selector:", "  strategy: {type: BlueGreen}\n  selector:", `spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"`},
		{"deadline not above minReady", "  selector:", "  minReadySeconds: 30\n  progressDeadlineSeconds: 30\n  selector:", `spec.progressDeadlineSeconds: Invalid value: 30: must be greater than minReadySeconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := goodDeployment
			if tc.from != "" {
				if !strings.Contains(in, tc.from) {
					t.Fatalf("test input lacks %q", tc.from)
				}
				in = strings.Replace(in, tc.from, tc.to, 1)
			}
			d := decodeDeployment(t, in)
			SetDefaults(d)
			err := Validate(d)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !apierrors.IsInvalid(err) {
				t.Fatalf("error %v, want Invalid %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nlacks\n  %s", err, tc.want)
			}
		})
	}
}

func TestDeploymentUpdate(t *testing.T) {
	old := decodeDeployment(t, goodDeployment)
	SetDefaults(old)
	old.Status.Replicas = 1
	old.ResourceVersion = "7"

	scaled := old.DeepCopy()
	three := int32(3)
	scaled.Spec.Replicas = &three
	scaled.Status = appsv1.DeploymentStatus{Replicas: 99}
	PrepareForUpdate(scaled, old)
	if err := ValidateUpdate(scaled, old); err != nil {
		t.Errorf("scaling: %v", err)
	}
	if scaled.Status.Replicas != 1 {
		t.Errorf("an update changed status.replicas to %d; status is the controller's", scaled.Status.Replicas)
	}

	moved := old.DeepCopy()
	moved.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
	moved.Spec.Template.Labels = map[string]string{"app": "other"}
	err := ValidateUpdate(moved, old)
	if err == nil || !strings.Contains(err.Error(), "spec.selector: Invalid value:") || !strings.Contains(err.Error(), "field is immutable") {
		t.Errorf("selector change: %v", err)
	}
}

func TestPodTemplateHash(t *testing.T) {
	d := decodeDeployment(t, goodDeployment)
	SetDefaults(d)
	h := PodTemplateHash(&d.Spec.Template, nil)
	if h == "" || len(h) > 10 || strings.ContainsAny(h, "aeiou013") {
		t.Errorf("hash %q is not in Kubernetes' safe alphabet", h)
	}
	if again := PodTemplateHash(d.Spec.Template.DeepCopy(), nil); again != h {
		t.Errorf("hash not stable: %s then %s", h, again)
	}
	changed := d.Spec.Template.DeepCopy()
	changed.Spec.Containers[0].Image = "busybox:1.36"
	if PodTemplateHash(changed, nil) == h {
		t.Errorf("an image change kept hash %s", h)
	}
	one := int32(1)
	if PodTemplateHash(&d.Spec.Template, &one) == h {
		t.Errorf("a collision count kept hash %s", h)
	}
	// The replica count is not part of the template: scaling keeps the hash.
	three := int32(3)
	d.Spec.Replicas = &three
	if PodTemplateHash(&d.Spec.Template, nil) != h {
		t.Errorf("scaling changed the hash")
	}
}
