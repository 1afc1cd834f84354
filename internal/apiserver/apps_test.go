package apiserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	objstore "github.com/peapod/peapod/internal/store"
)

func appsServer(t *testing.T) *httptest.Server {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := objstore.Open(filepath.Join(t.TempDir(), "objects.db"), objstore.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(nil, nil, log)
	s.SetObjectStore(st)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, ts *httptest.Server, method, path, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const deploymentJSON = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
 "spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
 "spec":{"containers":[{"name":"app","image":"busybox"}]}}}}`

func TestAppsDeployments(t *testing.T) {
	ts := appsServer(t)
	const coll = "/apis/apps/v1/namespaces/default/deployments"

	code, body := call(t, ts, "POST", coll, "application/json", strings.Replace(deploymentJSON, `"labels":{"app":"web"}`, `"labels":{"app":"other"}`, 1))
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "spec.template.metadata.labels: Invalid value: {\\\"app\\\":\\\"other\\\"}: `selector` does not match template `labels`") {
		t.Errorf("selector mismatch: %d %s", code, body)
	}
	code, body = call(t, ts, "POST", coll, "application/json", strings.Replace(deploymentJSON, `"selector"`, `"replicaz":2,"selector"`, 1))
	if code != http.StatusBadRequest || !strings.Contains(body, `unknown field \"spec.replicaz\"`) {
		t.Errorf("unknown field: %d %s", code, body)
	}

	code, body = call(t, ts, "POST", coll, "application/json", deploymentJSON)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	var d appsv1.Deployment
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.APIVersion != "apps/v1" || *d.Spec.Replicas != 1 || d.Spec.Strategy.RollingUpdate == nil || d.Generation != 1 || d.UID == "" {
		t.Errorf("created deployment not defaulted: %+v", d)
	}

	code, body = call(t, ts, "PATCH", coll+"/web", "application/merge-patch+json", `{"spec":{"replicas":3}}`)
	if code != http.StatusOK || !strings.Contains(body, `"replicas":3`) || !strings.Contains(body, `"generation":2`) {
		t.Errorf("scale by patch: %d %s", code, body)
	}
	code, body = call(t, ts, "PATCH", coll+"/web", "application/merge-patch+json",
		`{"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}}}}}`)
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "spec.selector: Invalid value:") || !strings.Contains(body, "field is immutable") {
		t.Errorf("selector change: %d %s", code, body)
	}

	code, body = call(t, ts, "GET", "/apis/apps/v1/deployments", "", "")
	if code != http.StatusOK || !strings.Contains(body, `"kind":"DeploymentList"`) || !strings.Contains(body, `"name":"web"`) {
		t.Errorf("list across namespaces: %d %s", code, body)
	}
	if code, body = call(t, ts, "GET", "/apis/apps/v1/namespaces/default/pods", "", ""); code != http.StatusNotFound {
		t.Errorf("pods under apps/v1: %d %s", code, body)
	}
	if code, body = call(t, ts, "DELETE", coll+"/web", "", ""); code != http.StatusOK {
		t.Errorf("delete: %d %s", code, body)
	}
	if code, _ = call(t, ts, "GET", coll+"/web", "", ""); code != http.StatusNotFound {
		t.Errorf("get after delete: %d", code)
	}
}
