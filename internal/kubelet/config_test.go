package kubelet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	tests := map[string]string{
		"$(A)-$(B)":  "1-two",
		"$(C)":       "$(C)",
		"$$(A)":      "$(A)",
		"cost $5":    "cost $5",
		"$(A":        "$(A",
		"plain":      "plain",
		"x$(A)$(A)y": "x11y",
	}
	for in, want := range tests {
		if got := Expand(in, vars); got != want {
			t.Errorf("Expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvAndContainerConfig(t *testing.T) {
	h := newHarness(t)
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default"}, Data: map[string][]byte{"token": []byte("t0k")}})
	h.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "default"}, Data: map[string]string{"LEVEL": "debug", "bad-key": "x"}})
	p := simplePod("env", corev1.RestartPolicyAlways, "c")
	c := &p.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "GREETING", Value: "hello"},
		{Name: "MSG", Value: "$(GREETING) from $(POD)"},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "token"}}},
		{Name: "LVL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}, Key: "LEVEL"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
	}
	c.Command = []string{"echo", "$(MSG)"}
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}
	priv, ro, esc := true, true, false
	uid := int64(1000)
	c.SecurityContext = &corev1.SecurityContext{Privileged: &priv, ReadOnlyRootFilesystem: &ro, AllowPrivilegeEscalation: &esc, RunAsUser: &uid,
		Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}}}
	h.create(p)
	h.sync("env")
	var fc *fakeContainer
	for _, x := range h.rt.containers {
		fc = x
	}
	if fc == nil {
		t.Fatalf("no container; status %+v events %v", h.pod("env").Status, h.events("env"))
	}
	env := map[string]string{}
	var names []string
	for _, kv := range fc.cfg.Envs {
		env[kv.Key] = string(kv.Value)
		names = append(names, kv.Key)
	}
	want := map[string]string{"CM_LEVEL": "debug", "GREETING": "hello", "MSG": "hello from $(POD)", "POD": "env", "IP": "10.88.0.5", "TOKEN": "t0k", "LVL": "debug", "MEM": "64"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	// envFrom first (sorted keys), then env in order; Kubernetes now
	// accepts any printable name without "=".
	if strings.Join(names, ",") != "CM_LEVEL,CM_bad-key,GREETING,MSG,POD,IP,TOKEN,LVL,MEM" {
		t.Errorf("env order %v", names)
	}
	if strings.Join(fc.cfg.Command, " ") != "echo hello from $(POD)" {
		t.Errorf("command %v", fc.cfg.Command)
	}
	r := fc.cfg.Linux.Resources
	if r.CpuShares != 512 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || r.MemoryLimitInBytes != 64<<20 {
		t.Errorf("resources %v", r)
	}
	sc := fc.cfg.Linux.SecurityContext
	if !sc.Privileged || !sc.ReadonlyRootfs || !sc.NoNewPrivs || sc.RunAsUser.GetValue() != 1000 ||
		strings.Join(sc.Capabilities.AddCapabilities, ",") != "NET_ADMIN" || strings.Join(sc.Capabilities.DropCapabilities, ",") != "ALL" ||
		sc.Seccomp.ProfileType.String() != "Unconfined" {
		t.Errorf("security context %v", sc)
	}
}

func TestMissingSecretIsConfigError(t *testing.T) {
	h := newHarness(t)
	p := simplePod("cfgerr", corev1.RestartPolicyAlways, "c")
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}
	h.create(p)
	h.sync("cfgerr")
	s := h.status("cfgerr", "c")
	if s.State.Waiting == nil || s.State.Waiting.Reason != "CreateContainerConfigError" || s.State.Waiting.Message != `secret "nope" not found` {
		t.Errorf("state %+v", s.State)
	}
	if !h.hasEvent("cfgerr", `Warning Failed Error: secret "nope" not found`) {
		t.Errorf("events %v", h.events("cfgerr"))
	}
}

func TestOOMScoreAdj(t *testing.T) {
	mem := func(req, lim string) *corev1.Pod {
		c := corev1.Container{Name: "c"}
		if req != "" {
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(req)}
		}
		if lim != "" {
			c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(lim), corev1.ResourceCPU: resource.MustParse("1")}
			c.Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(lim), corev1.ResourceCPU: resource.MustParse("1")}
		}
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	}
	for _, tt := range []struct {
		pod  *corev1.Pod
		want int64
	}{
		{mem("", ""), 1000},
		{mem("", "1Gi"), -997},
		{mem("1Gi", ""), 1000 - 1000/4},
		{mem("4Gi", ""), 3},
	} {
		if got := oomScoreAdj(tt.pod, &tt.pod.Spec.Containers[0], 4<<30); got != tt.want {
			t.Errorf("oomScoreAdj = %d, want %d", got, tt.want)
		}
	}
}

func TestDNSConfig(t *testing.T) {
	dir := t.TempDir()
	hostResolvConf = filepath.Join(dir, "resolv.conf")
	t.Cleanup(func() { hostResolvConf = "/etc/resolv.conf" })
	if err := os.WriteFile(hostResolvConf, []byte("nameserver 192.0.2.53\nsearch example.com\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	five := "5"
	p := &corev1.Pod{Spec: corev1.PodSpec{DNSPolicy: corev1.DNSClusterFirst}}
	if dnsConfig(p) != nil {
		t.Error("no dnsConfig: want the runtime's copy of the host's resolv.conf")
	}
	p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"192.0.2.1"}, Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &five}}}
	c := dnsConfig(p)
	if strings.Join(c.Servers, ",") != "192.0.2.53,192.0.2.1" || strings.Join(c.Searches, ",") != "example.com" || strings.Join(c.Options, ",") != "ndots:5" {
		t.Errorf("merged %v", c)
	}
	p.Spec.DNSPolicy = corev1.DNSNone
	if c := dnsConfig(p); strings.Join(c.Servers, ",") != "192.0.2.1" || len(c.Searches) != 0 {
		t.Errorf("None: %v", c)
	}
}

func TestReadLogs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	log := "2026-11-26T12:00:00.000000001Z stdout F one\n" +
		"2026-11-26T12:00:01.000000000Z stderr F oops\n" +
		"2026-11-26T12:00:02.000000000Z stdout P par\n" +
		"2026-11-26T12:00:02.100000000Z stdout F tial\n" +
		"2026-11-26T12:00:03.000000000Z stdout F three\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(o LogOptions) (string, string) {
		var out, errb bytes.Buffer
		if err := ReadLogs(context.Background(), path, o, &out, &errb, func() bool { return false }); err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String()
	}
	if out, errs := read(LogOptions{TailLines: -1}); out != "one\npartial\nthree\n" || errs != "oops\n" {
		t.Errorf("all: %q %q", out, errs)
	}
	if out, _ := read(LogOptions{TailLines: 2}); out != "partial\nthree\n" {
		t.Errorf("tail 2: %q", out)
	}
	if out, _ := read(LogOptions{TailLines: 1, Timestamps: true}); out != "2026-11-26T12:00:03Z three\n" {
		t.Errorf("timestamps: %q", out)
	}
	if out, _ := read(LogOptions{TailLines: -1, SinceTime: time.Date(2026, 11, 26, 12, 0, 2, 0, time.UTC)}); out != "partial\nthree\n" {
		t.Errorf("since: %q", out)
	}
	if out, errs := read(LogOptions{TailLines: -1, LimitBytes: 6}); out != "one\n" || errs != "oo" {
		t.Errorf("limit: %q %q", out, errs)
	}
}

func TestLogsPreviousAndErrors(t *testing.T) {
	h := newHarness(t)
	h.create(simplePod("logs", corev1.RestartPolicyAlways, "c"))
	h.sync("logs")
	if _, _, err := h.k.ContainerLogPath(h.ctx, "default", "logs", "c", true); err == nil || !strings.Contains(err.Error(), `previous terminated container "c" in pod "logs" not found`) {
		t.Errorf("previous without one: %v", err)
	}
	h.clk.Step(time.Second)
	h.rt.exit("c", 1)
	h.sync("logs")
	cur, _, err := h.k.ContainerLogPath(h.ctx, "default", "logs", "", false)
	if err != nil || !strings.HasSuffix(cur, "/c/1.log") {
		t.Errorf("current log %s, %v", cur, err)
	}
	prev, _, err := h.k.ContainerLogPath(h.ctx, "default", "logs", "c", true)
	if err != nil || !strings.HasSuffix(prev, "/c/0.log") {
		t.Errorf("previous log %s, %v", prev, err)
	}
	if _, _, err := h.k.ContainerLogPath(h.ctx, "default", "logs", "nope", false); err == nil || !strings.Contains(err.Error(), "container nope is not valid for pod logs") {
		t.Errorf("unknown container: %v", err)
	}
}
