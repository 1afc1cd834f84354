package objects

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const goodPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: app
    image: busybox
`

func TestDecodeMultiDocument(t *testing.T) {
	in := "# leading comment\n" + goodPod + "---\n---  # empty\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n"
	docs, err := Decode("f.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 3 {
		t.Fatalf("got %d documents, want 3", len(docs))
	}
	want := []struct {
		kind        string
		index, line int
	}{{"Pod", 1, 1}, {"ConfigMap", 3, 12}, {"Secret", 3, 12}}
	for i, w := range want {
		d := docs[i]
		if d.Kind.GVK.Kind != w.kind || d.Index != w.index || d.Line != w.line {
			t.Errorf("doc %d: got %s index %d line %d, want %+v", i, d.Kind.GVK.Kind, d.Index, d.Line, w)
		}
	}
	if got := string(docs[0].Raw); got != `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{"containers":[{"image":"busybox","name":"app"}]}}` {
		t.Errorf("raw: %s", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"malformed YAML, line counted from the file start", goodPod + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   bad: [\n", []string{"f.yaml: document 2 (line 10)", "error converting YAML to JSON", "line 1"}},
		{"unknown field names its path", strings.Replace(goodPod, "image: busybox", "image: busybox\n    imagePullPolic: Always", 1),
			[]string{"document 1 (line 1)", `Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagePullPolic"`}},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n", []string{`key "name" already set in map`}},
		{"wrong type", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: hello\n", []string{"cannot unmarshal string", "spec.containers"}},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"kind not set"}},
		{"missing apiVersion and kind", "metadata: {name: a}\n", []string{"[apiVersion not set, kind not set]"}},
		{"unknown kind", "apiVersion: v1\nkind: Foo\nmetadata: {name: x}\n", []string{`resource mapping not found for name: "x" namespace: "" from "f.yaml": no matches for kind "Foo" in version "v1"`}},
		{"wrong version", "apiVersion: v2\nkind: Pod\nmetadata: {name: x}\n", []string{`no matches for kind "Pod" in version "v2"`}},
		{"not a mapping", "- a\n- b\n", []string{"not a Kubernetes object"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Decode("f.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; docs %v", docs)
			}
			if docs != nil {
				t.Errorf("documents returned with an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func decodeOne(t *testing.T, in string) Object {
	t.Helper()
	docs, err := Decode("t.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return docs[0].Object
}

func TestPodDefaults(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"busybox", "Always"},
		{"busybox:latest", "Always"},
		{"busybox:1.36", "IfNotPresent"},
		{"127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), "IfNotPresent"},
	} {
		p := decodeOne(t, strings.Replace(goodPod, "busybox", tc.image, 1)).(*corev1.Pod)
		SetDefaults(p)
		if got := string(p.Spec.Containers[0].ImagePullPolicy); got != tc.want {
			t.Errorf("%s: imagePullPolicy %s, want %s", tc.image, got, tc.want)
		}
	}
	p := decodeOne(t, goodPod+"    ports: [{containerPort: 80}]\n  volumes:\n  - name: s\n    secret: {secretName: s}\n  - name: e\n").(*corev1.Pod)
	SetDefaults(p)
	s, c := p.Spec, p.Spec.Containers[0]
	checks := map[string]bool{
		"restartPolicy Always":           s.RestartPolicy == corev1.RestartPolicyAlways,
		"dnsPolicy ClusterFirst":         s.DNSPolicy == corev1.DNSClusterFirst,
		"grace 30":                       *s.TerminationGracePeriodSeconds == 30,
		"scheduler":                      s.SchedulerName == "default-scheduler",
		"securityContext {}":             s.SecurityContext != nil,
		"enableServiceLinks":             *s.EnableServiceLinks,
		"priority 0":                     s.Priority != nil && *s.Priority == 0,
		"termination path":               c.TerminationMessagePath == "/dev/termination-log",
		"termination policy":             c.TerminationMessagePolicy == corev1.TerminationMessageReadFile,
		"port protocol TCP":              c.Ports[0].Protocol == corev1.ProtocolTCP,
		"secret defaultMode 420":         *s.Volumes[0].Secret.DefaultMode == 420,
		"volume without source emptyDir": s.Volumes[1].EmptyDir != nil,
		"phase Pending":                  p.Status.Phase == corev1.PodPending,
		"qos BestEffort":                 p.Status.QOSClass == corev1.PodQOSBestEffort,
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied", name)
		}
	}
	sec := &corev1.Secret{StringData: map[string]string{"a": "b"}}
	SetDefaults(sec)
	if sec.Type != corev1.SecretTypeOpaque || string(sec.Data["a"]) != "b" || sec.StringData != nil {
		t.Errorf("secret defaults: %+v", sec)
	}
}

func validated(t *testing.T, in string) error {
	t.Helper()
	o := decodeOne(t, in)
	if _, ok := o.(*corev1.Namespace); !ok {
		o.SetNamespace("default")
	}
	SetDefaults(o)
	return Validate(o)
}

func dockerConfigJSON(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestValidate(t *testing.T) {
	pod := func(name, container string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n  containers:\n" + container
	}
	for _, tc := range []struct {
		name, in string
		want     string // "" means valid
	}{
		{"good pod", goodPod, ""},
		{"bad pod name", pod("Bad_Name", "  - {name: a, image: busybox}\n"), `Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of`},
		{"no containers", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {}\n", `spec.containers: Required value`},
		{"no image", pod("p", "  - {name: a}\n"), `spec.containers[0].image: Required value`},
		{"bad container name", pod("p", "  - {name: A_b, image: x}\n"), `spec.containers[0].name: Invalid value: "A_b": a lowercase RFC 1123 label`},
		{"duplicate container", pod("p", "  - {name: a, image: x}\n  - {name: a, image: z}\n"), `spec.containers[1].name: Duplicate value: "a"`},
		{"bad pull policy", pod("p", "  - {name: a, image: x, imagePullPolicy: Sometimes}\n"), `spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"`},
		{"bad restart policy", pod("p", "  - {name: a, image: x}\n  restartPolicy: Maybe\n"), `spec.restartPolicy: Unsupported value: "Maybe"`},
		{"port out of range", pod("p", "  - {name: a, image: x, ports: [{containerPort: 70000}]}\n"), `spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive`},
		{"bad env name", pod("p", "  - {name: a, image: x, env: [{name: 'A=B', value: v}]}\n"), `spec.containers[0].env[0].name: Invalid value: "A=B"`},
		{"mount of missing volume", pod("p", "  - {name: a, image: x, volumeMounts: [{name: v, mountPath: /v}]}\n"), `spec.containers[0].volumeMounts[0].name: Not found: "v"`},
		{"duplicate volume", pod("p", "  - {name: a, image: x}\n  volumes: [{name: v, emptyDir: {}}, {name: v, emptyDir: {}}]\n"), `spec.volumes[1].name: Duplicate value: "v"`},
		{"two volume sources", pod("p", "  - {name: a, image: x}\n  volumes: [{name: v, emptyDir: {}, hostPath: {path: /tmp}}]\n"), `spec.volumes[0]: Forbidden: may not specify more than 1 volume type`},
		{"sidecar init container", pod("p", "  - {name: a, image: x}\n  initContainers:\n  - {name: s, image: x, restartPolicy: Always, readinessProbe: {exec: {command: [ls]}}}\n"), ""},
		{"init restartPolicy not Always", pod("p", "  - {name: a, image: x}\n  initContainers:\n  - {name: s, image: x, restartPolicy: OnFailure}\n"), `spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"`},
		{"restartPolicy on an app container", pod("p", "  - {name: a, image: x, restartPolicy: Always}\n"), `spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers`},
		{"probe on a regular init container", pod("p", "  - {name: a, image: x}\n  initContainers:\n  - {name: s, image: x, startupProbe: {exec: {command: [ls]}}}\n"), `spec.initContainers[0].startupProbe: Forbidden: may not be set for init containers without restartPolicy=Always`},
		{"namespace name is a label", "apiVersion: v1\nkind: Namespace\nmetadata: {name: Bad_NS}\n", `Namespace "Bad_NS" is invalid: metadata.name: Invalid value: "Bad_NS": a lowercase RFC 1123 label`},
		{"dockerconfigjson without its key", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\ndata: {x: eA==}\n", `Secret "s" is invalid: data[.dockerconfigjson]: Required value`},
		{"dockerconfigjson bad JSON hides content", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: " + dockerConfigJSON("hunter2 not json") + "}\n", `data[.dockerconfigjson]: Invalid value: "<secret contents redacted>"`},
		{"dockercfg without its key", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/dockercfg\nstringData: {.dockerconfigjson: '{}'}\n", `data[.dockercfg]: Required value`},
		{"good dockerconfigjson", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: '{\"auths\":{}}'}\n", ""},
		{"bad secret key", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {'a b': x}\n", `data[a b]: Invalid value: "a b": a valid config key must consist of`},
		{"secret too large", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: " + strings.Repeat("x", MaxSecretSize+1) + "}\n", `data: Too long: may not be more than 1048576 bytes`},
		{"configmap bad key", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {'/x': z}\n", `data[/x]: Invalid value: "/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validated(t, tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !apierrors.IsInvalid(err) {
				t.Errorf("error is not Invalid: %T", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nlacks\n  %s", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows secret data: %s", err)
			}
		})
	}
}

func TestValidatePodUpdate(t *testing.T) {
	base := func() *corev1.Pod {
		p := decodeOne(t, goodPod+"    ports: [{containerPort: 80}]\n  tolerations: [{key: a, operator: Exists}]\n").(*corev1.Pod)
		SetDefaults(p)
		p.UID = "u1"
		p.Namespace = "default"
		p.ResourceVersion = "7"
		p.CreationTimestamp = metav1.Now()
		return p
	}
	for _, tc := range []struct {
		name   string
		change func(p *corev1.Pod)
		want   string
	}{
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "busybox:1.36" }, ""},
		{"labels", func(p *corev1.Pod) { p.Labels = map[string]string{"a": "b"} }, ""},
		{"activeDeadlineSeconds set", func(p *corev1.Pod) { v := int64(5); p.Spec.ActiveDeadlineSeconds = &v }, ""},
		{"toleration added", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "b", Operator: corev1.TolerationOpExists})
		}, ""},
		{"toleration removed", func(p *corev1.Pod) { p.Spec.Tolerations = nil }, "spec: Forbidden: " + PodUpdateForbidden},
		{"port", func(p *corev1.Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 8080 }, "spec.containers[0].ports[0].containerPort: 80 -> 8080"},
		{"container added", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "x", ImagePullPolicy: "Always", TerminationMessagePolicy: "File"})
		}, `Pod "web" is invalid: spec: Forbidden: pod updates may not change fields other than`},
		{"restartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever }, "Forbidden"},
		{"name", func(p *corev1.Pod) { p.Name = "other" }, "metadata.name: Invalid value: \"other\": field is immutable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := base()
			cur := old.DeepCopy()
			tc.change(cur)
			err := ValidateUpdate(cur, old)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSecretUpdate(t *testing.T) {
	yes := true
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "d"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a": []byte("1")}, Immutable: &yes}
	cur := old.DeepCopy()
	cur.Type = corev1.SecretTypeDockercfg
	cur.Data["a"] = []byte("2")
	err := ValidateUpdate(cur, old)
	for _, w := range []string{"type: Invalid value", "field is immutable", "data: Forbidden: field is immutable when `immutable` is set"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

func TestApplyThreeWay(t *testing.T) {
	k, _ := ForResource("pod")
	apply := func(doc, live string) (string, string) {
		docs, err := Decode("a.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		mod, err := ModifiedConfiguration(docs[0].Raw, "default")
		if err != nil {
			t.Fatal(err)
		}
		if live == "" {
			return string(mod), ""
		}
		patch, err := ApplyPatch(k, mod, []byte(live))
		if err != nil {
			t.Fatal(err)
		}
		out, err := ApplyPatchBody(k, StrategicMergePatchType, []byte(live), patch)
		if err != nil {
			t.Fatal(err)
		}
		return string(patch), string(out)
	}
	withLabel := strings.Replace(goodPod, "name: web\n", "name: web\n  labels: {app: web, tier: x}\n", 1)
	created, _ := apply(withLabel, "")
	if !strings.Contains(created, LastAppliedAnnotation) || !strings.Contains(created, `\"namespace\":\"default\"`) {
		t.Fatalf("created object lacks the annotation: %s", created)
	}
	// The live object has defaults and fields set by others.
	var live corev1.Pod
	if err := json.Unmarshal([]byte(created), &live); err != nil {
		t.Fatal(err)
	}
	SetDefaults(&live)
	live.Labels["other"] = "kept"
	liveJSON, _ := json.Marshal(&live)

	if patch, _ := apply(withLabel, string(liveJSON)); !IsEmptyPatch([]byte(patch)) {
		t.Errorf("re-apply of the same file: patch %s, want {}", patch)
	}
	changed := strings.Replace(strings.Replace(withLabel, "busybox", "busybox:1.36", 1), ", tier: x", "", 1)
	patch, out := apply(changed, string(liveJSON))
	if IsEmptyPatch([]byte(patch)) {
		t.Fatal("changed image gave an empty patch")
	}
	var got corev1.Pod
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.Containers[0].Image != "busybox:1.36" {
		t.Errorf("image %q", got.Spec.Containers[0].Image)
	}
	if _, ok := got.Labels["tier"]; ok {
		t.Errorf("label removed from the file is still there: %v", got.Labels)
	}
	if got.Labels["other"] != "kept" || got.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		t.Errorf("fields not managed by apply were lost: %v %q", got.Labels, got.Spec.RestartPolicy)
	}
}
