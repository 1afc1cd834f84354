package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/objects"
	"github.com/peapod/peapod/internal/registrytest"
)

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: %d
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web, tier: front}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: %s
        env: [{name: VERSION, value: %q}]
`

func getDeployment(t *testing.T, d *Daemon, name string) *appsv1.Deployment {
	t.Helper()
	out := d.MustRun("get", "deployment", name, "-o", "json")
	var dep appsv1.Deployment
	if err := json.Unmarshal([]byte(out), &dep); err != nil {
		t.Fatalf("get deployment %s: %v\n%s", name, err, out)
	}
	return &dep
}

// deploymentPods lists the pods labelled app=<app>.
func deploymentPods(t *testing.T, d *Daemon, app string) []corev1.Pod {
	t.Helper()
	out := d.MustRun("get", "pods", "-l", "app="+app, "-o", "json")
	var list struct {
		Items []corev1.Pod `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get pods: %v\n%s", err, out)
	}
	return list.Items
}

func podNames(pods []corev1.Pod) string {
	var s []string
	for _, p := range pods {
		st := string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			st = "Terminating"
		}
		s = append(s, p.Name+"("+p.Labels[objects.PodTemplateHashLabel]+","+st+")")
	}
	return strings.Join(s, " ")
}

// waitRolledOut waits until the deployment's only pods are `replicas`
// running pods of the current template and its status says so.
func waitRolledOut(t *testing.T, d *Daemon, replicas int) (*appsv1.Deployment, []corev1.Pod) {
	t.Helper()
	var (
		dep  *appsv1.Deployment
		pods []corev1.Pod
	)
	waitFor(t, 120*time.Second, fmt.Sprintf("deployment web rolled out with %d pods", replicas), func() (bool, string) {
		dep = getDeployment(t, d, "web")
		hash := objects.PodTemplateHash(&dep.Spec.Template, dep.Status.CollisionCount)
		pods = deploymentPods(t, d, "web")
		st := dep.Status
		ok := len(pods) == replicas && int(st.AvailableReplicas) == replicas && int(st.UpdatedReplicas) == replicas &&
			int(st.Replicas) == replicas && st.ObservedGeneration == dep.Generation
		for _, p := range pods {
			ok = ok && p.Labels[objects.PodTemplateHashLabel] == hash && p.Status.Phase == corev1.PodRunning
		}
		return ok, fmt.Sprintf("status %+v; pods %s (want hash %s)", st, podNames(pods), hash)
	})
	return dep, pods
}

// A Deployment applied from YAML gets its pods, run by the pod manager,
// named, labelled and owned as in Kubernetes; it scales, rolls to a new
// template, and takes its pods with it when deleted.
func TestDeploymentLifecycle(t *testing.T) {
	d := startPodDaemon(t)
	reg := busyboxRegistry(t, d, registrytest.Options{TLS: true}, "busybox:1")
	img := reg.Ref("busybox:1")
	cleanupPods(t, d, "default")
	// Runs before cleanupPods: without the Deployment nobody re-creates
	// the pods that cleanup deletes.
	t.Cleanup(func() { _, _, _ = d.Run("delete", "deployment", "web", "--ignore-not-found") })

	out := d.MustRun("apply", "-f", writeFile(t, d, "web.yaml", fmt.Sprintf(webDeployment, 3, img, "1")))
	if strings.TrimSpace(out) != "deployment.apps/web created" {
		t.Errorf("apply said %q", out)
	}
	dep, pods := waitRolledOut(t, d, 3)
	hash1 := dep.Labels[objects.PodTemplateHashLabel] // none on the Deployment itself
	if hash1 != "" {
		t.Errorf("the deployment carries a pod-template-hash label")
	}
	hash1 = objects.PodTemplateHash(&dep.Spec.Template, nil)
	name := regexp.MustCompile(`^web-` + hash1 + `-[bcdfghjklmnpqrstvwxz2456789]{5}$`)
	for _, p := range pods {
		if !name.MatchString(p.Name) {
			t.Errorf("pod %s is not named web-%s-xxxxx", p.Name, hash1)
		}
		if p.Labels["tier"] != "front" || p.Labels[objects.PodTemplateHashLabel] != hash1 {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		ref := metav1.GetControllerOf(&p)
		if ref == nil || ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != "web" || ref.UID != dep.UID {
			t.Errorf("pod %s ownerReferences %+v, want the Deployment (uid %s) as controller", p.Name, p.OwnerReferences, dep.UID)
		}
	}
	for _, typ := range []string{"deployments", "deployment", "deploy", "deployments.apps"} {
		out := d.MustRun("get", typ)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME READY UP-TO-DATE AVAILABLE AGE" ||
			!strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), "web 3/3 3 3 ") {
			t.Errorf("get %s:\n%s", typ, out)
		}
	}
	if c := deploymentCondition(dep, appsv1.DeploymentAvailable); c.Status != corev1.ConditionTrue || c.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available condition %+v", c)
	}
	if c := deploymentCondition(dep, appsv1.DeploymentProgressing); c.Status != corev1.ConditionTrue || c.Reason != "NewReplicaSetAvailable" {
		t.Errorf("Progressing condition %+v", c)
	}

	// A deleted pod is replaced.
	d.MustRun("delete", "pod", pods[0].Name)
	waitFor(t, 60*time.Second, "a replacement for "+pods[0].Name, func() (bool, string) {
		now := deploymentPods(t, d, "web")
		running := 0
		for _, p := range now {
			if p.Name == pods[0].Name {
				return false, podNames(now)
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == 3, podNames(now)
	})

	// Scale down and up.
	if out := d.MustRun("scale", "deployment", "web", "--replicas", "1"); strings.TrimSpace(out) != "deployment.apps/web scaled" {
		t.Errorf("scale said %q", out)
	}
	waitRolledOut(t, d, 1)
	d.MustRun("scale", "deploy/web", "--replicas=2")
	_, before := waitRolledOut(t, d, 2)

	// A template change rolls the pods to the new hash.
	out = d.MustRun("apply", "-f", writeFile(t, d, "web2.yaml", fmt.Sprintf(webDeployment, 2, img, "2")))
	if strings.TrimSpace(out) != "deployment.apps/web configured" {
		t.Errorf("apply of the new template said %q", out)
	}
	dep, after := waitRolledOut(t, d, 2)
	hash2 := objects.PodTemplateHash(&dep.Spec.Template, nil)
	if hash2 == hash1 {
		t.Fatalf("the template change kept hash %s", hash1)
	}
	for _, p := range after {
		for _, b := range before {
			if p.Name == b.Name {
				t.Errorf("pod %s of the old template survived the rollout", p.Name)
			}
		}
		if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "2" {
			t.Errorf("pod %s env %v, want VERSION=2", p.Name, env)
		}
	}
	desc := d.MustRun("describe", "deployment", "web")
	for _, want := range []string{"Replicas:", "2 desired | 2 updated | 2 total | 2 available | 0 unavailable", "RollingUpdateStrategy:", "25% max unavailable, 25% max surge",
		"NewReplicaSetAvailable", "web-" + hash2, "ScalingReplicaSet", "Scaled down replica set web-" + hash1} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe lacks %q:\n%s", want, desc)
		}
	}

	// Deleting the Deployment deletes its pods.
	if out := d.MustRun("delete", "deployment", "web"); strings.TrimSpace(out) != `deployment.apps "web" deleted` {
		t.Errorf("delete said %q", out)
	}
	waitFor(t, 60*time.Second, "the deployment's pods to go", func() (bool, string) {
		left := deploymentPods(t, d, "web")
		return len(left) == 0, podNames(left)
	})
}

func deploymentCondition(d *appsv1.Deployment, typ appsv1.DeploymentConditionType) appsv1.DeploymentCondition {
	for _, c := range d.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return appsv1.DeploymentCondition{}
}

// A Deployment whose selector does not match its template is refused with
// Kubernetes' message, and nothing of the file is applied.
func TestBadDeploymentAppliesNothing(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	bad := goodConfigMap + "---\n" + strings.Replace(fmt.Sprintf(webDeployment, 1, "busybox", "1"), "labels: {app: web, tier: front}", "labels: {app: other}", 1)
	errOut := mustFail(t, d, "apply", "-f", writeFile(t, d, "bad.yaml", bad))
	for _, want := range []string{"document 2 (line 8)", `The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: {"app":"other"}: ` + "`selector` does not match template `labels`"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	if out, _, _ := d.Run("get", "deployments,configmaps", "-o", "name"); strings.Contains(out, "web") || strings.Contains(out, "good") {
		t.Errorf("something was applied:\n%s", out)
	}

	// The selector cannot change once set.
	d.MustRun("apply", "-f", writeFile(t, d, "ok.yaml", fmt.Sprintf(webDeployment, 0, "busybox", "1")))
	moved := strings.NewReplacer("matchLabels: {app: web}", "matchLabels: {app: moved}", "labels: {app: web, tier: front}", "labels: {app: moved}").
		Replace(fmt.Sprintf(webDeployment, 0, "busybox", "1"))
	errOut = mustFail(t, d, "apply", "-f", writeFile(t, d, "moved.yaml", moved))
	if !strings.Contains(errOut, `The Deployment "web" is invalid: spec.selector: Invalid value:`) || !strings.Contains(errOut, "field is immutable") {
		t.Errorf("selector change: %s", errOut)
	}
}
