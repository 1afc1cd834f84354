package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/peapod/peapod/internal/image/keyring"
)

// writeFile writes a manifest into the daemon's directory.
func writeFile(t *testing.T, d *Daemon, name, content string) string {
	t.Helper()
	p := filepath.Join(d.Dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustFail runs the CLI, requires a non-zero exit and returns stderr.
func mustFail(t *testing.T, d *Daemon, args ...string) string {
	t.Helper()
	out, errOut, err := d.Run(args...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("peapod %s: want a non-zero exit, got %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return errOut
}

const goodConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: good
data:
  key: value
`

// Issue 5, acceptance 6: one bad document means nothing of the file is
// applied, and the error says which document and line.
func TestApplyBadInputAppliesNothing(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"malformed YAML", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   labels: [\n",
			[]string{"document 2 (line 8)", "error converting YAML to JSON"}},
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n  - name: a\n    image: busybox\n    imagePullPolic: Always\n",
			[]string{"document 2 (line 8)", `unknown field "spec.containers[0].imagePullPolic"`}},
		{"invalid name", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: a\n    image: busybox\n",
			[]string{"document 2 (line 8)", `The Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain`}},
		{"wrong Secret type", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: reg\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  password: hunter2\n",
			[]string{"document 2 (line 8)", `The Secret "reg" is invalid: data[.dockerconfigjson]: Required value`}},
		{"unknown kind", "apiVersion: v1\nkind: Pood\nmetadata:\n  name: x\n",
			[]string{"document 2 (line 8)", `no matches for kind "Pood" in version "v1"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, d, "bad.yaml", goodConfigMap+"---\n"+tc.doc)
			stderr := mustFail(t, d, "apply", "-f", f)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("the error shows secret data:\n%s", stderr)
			}
			if e := mustFail(t, d, "get", "configmap", "good"); !strings.Contains(e, `configmaps "good" not found`) {
				t.Errorf("the good document was applied: %s", e)
			}
		})
	}
}

const latestPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: app
    image: busybox
    ports:
    - containerPort: 80
`

func TestApplyDefaultsUnchangedConfiguredForbidden(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	f := writeFile(t, d, "pod.yaml", latestPod)
	if out := d.MustRun("apply", "-f", f); out != "pod/web created\n" {
		t.Fatalf("first apply: %q", out)
	}
	y := d.MustRun("get", "pod", "web", "-o", "yaml")
	for _, w := range []string{"imagePullPolicy: Always", "restartPolicy: Always", "terminationGracePeriodSeconds: 30", "phase: Pending", "kubectl.kubernetes.io/last-applied-configuration"} {
		if !strings.Contains(y, w) {
			t.Errorf("get -o yaml lacks %q:\n%s", w, y)
		}
	}
	if out := d.MustRun("apply", "-f", f); out != "pod/web unchanged\n" {
		t.Errorf("second apply: %q", out)
	}
	writeFile(t, d, "pod.yaml", strings.Replace(latestPod, "image: busybox", "image: busybox:1.36", 1))
	if out := d.MustRun("apply", "-f", f); out != "pod/web configured\n" {
		t.Errorf("apply with a new image: %q", out)
	}
	if img := d.MustRun("get", "pod/web", "-o", "jsonpath={.spec.containers[0].image}"); img != "busybox:1.36" {
		t.Errorf("image after apply: %q", img)
	}
	table := d.MustRun("get", "pods")
	// The pod worker runs the pod (its public image cannot be pulled here),
	// so only the table's shape is asserted; statuses have their own tests.
	if !strings.Contains(table, "NAME   READY   STATUS") || !strings.Contains(table, "RESTARTS   AGE") || !strings.Contains(table, "web    0/1") {
		t.Errorf("get pods:\n%s", table)
	}
	writeFile(t, d, "pod.yaml", strings.Replace(latestPod, "containerPort: 80", "containerPort: 8080", 1))
	stderr := mustFail(t, d, "apply", "-f", f)
	for _, w := range []string{
		`The Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than ` + "`spec.containers[*].image`",
		"containerPort: 80 -> 8080",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("forbidden update: stderr lacks %q:\n%s", w, stderr)
		}
	}
}

func TestApplyIntoMissingNamespace(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	f := writeFile(t, d, "pod.yaml", strings.Replace(latestPod, "  name: web\n", "  name: web\n  namespace: awesomeapps\n", 1))
	stderr := mustFail(t, d, "apply", "-f", f)
	for _, w := range []string{`namespaces "awesomeapps" not found`, "peapod create namespace awesomeapps"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}
	if out := d.MustRun("create", "namespace", "awesomeapps"); out != "namespace/awesomeapps created\n" {
		t.Errorf("create namespace: %q", out)
	}
	d.MustRun("apply", "-f", f)
	if out := d.MustRun("get", "pods", "-n", "awesomeapps", "-o", "name"); out != "pod/web\n" {
		t.Errorf("pods in awesomeapps: %q", out)
	}
	// A namespace and its content in one file work in one go.
	both := writeFile(t, d, "both.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: other\n---\n"+
		strings.Replace(goodConfigMap, "  name: good\n", "  name: good\n  namespace: other\n", 1))
	if out := d.MustRun("apply", "-f", both); out != "namespace/other created\nconfigmap/good created\n" {
		t.Errorf("namespace and content: %q", out)
	}
}

func TestDeleteNamespaceDeletesItsObjects(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	d.MustRun("create", "namespace", "doomed")
	d.MustRun("apply", "-n", "doomed", "-f", writeFile(t, d, "pod.yaml", latestPod))
	d.MustRun("create", "secret", "generic", "s", "-n", "doomed", "--from-literal=a=b")
	d.MustRun("apply", "-f", writeFile(t, d, "cm.yaml", goodConfigMap)) // in default, must survive
	if out := d.MustRun("delete", "namespace", "doomed"); out != "namespace \"doomed\" deleted\n" {
		t.Errorf("delete: %q", out)
	}
	// Pods go through graceful deletion by the pod worker, so the namespace
	// disappears once its last pod is gone.
	for _, args := range [][]string{{"get", "pods", "-A", "-o", "name"}, {"get", "secrets", "-A", "-o", "name"}} {
		waitFor(t, time.Minute, fmt.Sprintf("%v to list nothing", args), func() (bool, string) {
			out := d.MustRun(args...)
			return out == "", out
		})
	}
	waitFor(t, time.Minute, "namespace doomed to be gone", func() (bool, string) {
		_, e, err := d.Run("get", "namespace", "doomed")
		return err != nil && strings.Contains(e, `namespaces "doomed" not found`), e
	})
	d.MustRun("get", "configmap", "good")
	if e := mustFail(t, d, "delete", "namespace", "default"); !strings.Contains(e, `namespaces "default" is forbidden: this namespace may not be deleted`) {
		t.Errorf("delete default: %s", e)
	}
}

func TestDockerRegistrySecret(t *testing.T) {
	d := StartDaemon(t, DaemonOptions{})
	const password = "pa55-w0rd-e2e"
	out := d.MustRun("create", "secret", "docker-registry", "regcred", "--docker-server=127.0.0.1:5000",
		"--docker-username=alice", "--docker-password="+password, "--docker-email=a@example.com")
	if out != "secret/regcred created\n" {
		t.Errorf("create: %q", out)
	}
	var s corev1.Secret
	if err := json.Unmarshal([]byte(d.MustRun("get", "secret", "regcred", "-o", "json")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("type %q", s.Type)
	}
	if y := d.MustRun("get", "secret", "regcred", "-o", "yaml"); !strings.Contains(y, ".dockerconfigjson: ") {
		t.Errorf("get -o yaml lacks .dockerconfigjson:\n%s", y)
	}
	kr, err := keyring.FromSecrets([]corev1.Secret{s})
	if err != nil {
		t.Fatalf("keyring refuses the secret: %v", err)
	}
	creds := kr.Lookup("127.0.0.1:5000/app")
	if len(creds) != 1 || creds[0].Username != "alice" || creds[0].Password != password {
		t.Fatalf("keyring lookup: %v", creds)
	}
	desc := d.MustRun("describe", "secret", "regcred")
	if strings.Contains(desc, password) || strings.Contains(desc, "YWxpY2U6") {
		t.Errorf("describe shows the password:\n%s", desc)
	}
	if !strings.Contains(desc, "Type:  kubernetes.io/dockerconfigjson") || !strings.Contains(desc, ".dockerconfigjson:  ") || !strings.Contains(desc, " bytes") {
		t.Errorf("describe secret:\n%s", desc)
	}
	if table := d.MustRun("get", "secrets"); !strings.Contains(table, "regcred   kubernetes.io/dockerconfigjson   1") {
		t.Errorf("get secrets:\n%s", table)
	}
}
