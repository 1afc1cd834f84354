package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/peapod/peapod/internal/objects"
)

// ObjectPath is the API path of a kind's collection in namespace ns ("" for
// cluster-scoped kinds or all namespaces), or of one object when name is
// set: /api/v1/namespaces/NS/pods/NAME.
func ObjectPath(k objects.Kind, ns, name string) string {
	p := "/api/" + k.APIVersion()
	if k.GVK.Group != "" {
		p = "/apis/" + k.APIVersion()
	}
	if k.Namespaced && ns != "" {
		p += "/namespaces/" + url.PathEscape(ns)
	}
	p += "/" + k.Resource
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// doRaw sends a request with a raw body and content type and returns the
// answer's body, or the daemon's Status as a *StatusError.
func (c *Client) doRaw(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the peapod daemon at %s (is `peapod daemon` running?): %w", c.host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, decodeStatus(resp)
	}
	return io.ReadAll(resp.Body)
}

func decodeObject(k objects.Kind, data []byte) (objects.Object, error) {
	o := k.NewObject()
	if err := json.Unmarshal(data, o); err != nil {
		return nil, fmt.Errorf("bad %s from the daemon: %w", k.Resource, err)
	}
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	return o, nil
}

// GetRaw returns an object's JSON as stored.
func (c *Client) GetRaw(ctx context.Context, k objects.Kind, ns, name string) ([]byte, error) {
	return c.doRaw(ctx, http.MethodGet, ObjectPath(k, ns, name), "", nil)
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, k objects.Kind, ns, name string) (objects.Object, error) {
	data, err := c.GetRaw(ctx, k, ns, name)
	if err != nil {
		return nil, err
	}
	return decodeObject(k, data)
}

// ListOptions select what List and Watch return, as Kubernetes' query
// parameters.
type ListOptions struct {
	LabelSelector   string
	FieldSelector   string
	ResourceVersion string // Watch only
}

func (o ListOptions) query(watch bool) string {
	q := url.Values{}
	if o.LabelSelector != "" {
		q.Set("labelSelector", o.LabelSelector)
	}
	if o.FieldSelector != "" {
		q.Set("fieldSelector", o.FieldSelector)
	}
	if watch {
		q.Set("watch", "true")
		if o.ResourceVersion != "" {
			q.Set("resourceVersion", o.ResourceVersion)
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// List returns the objects of a kind in namespace ns ("" for all) and the
// list's resourceVersion.
func (c *Client) List(ctx context.Context, k objects.Kind, ns string, opts ListOptions) ([]objects.Object, string, error) {
	data, err := c.doRaw(ctx, http.MethodGet, ObjectPath(k, ns, "")+opts.query(false), "", nil)
	if err != nil {
		return nil, "", err
	}
	var l struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, "", fmt.Errorf("bad %s list from the daemon: %w", k.Resource, err)
	}
	out := make([]objects.Object, 0, len(l.Items))
	for _, it := range l.Items {
		o, err := decodeObject(k, it)
		if err != nil {
			return nil, "", err
		}
		out = append(out, o)
	}
	return out, l.Metadata.ResourceVersion, nil
}

func dryRunQuery(dryRun bool) string {
	if dryRun {
		return "?dryRun=All"
	}
	return ""
}

// Create sends an object's JSON to be created in namespace ns. With dryRun
// the daemon checks everything and stores nothing.
func (c *Client) Create(ctx context.Context, k objects.Kind, ns string, body []byte, dryRun bool) (objects.Object, error) {
	data, err := c.doRaw(ctx, http.MethodPost, ObjectPath(k, ns, "")+dryRunQuery(dryRun), "application/json", body)
	if err != nil {
		return nil, err
	}
	return decodeObject(k, data)
}

// Update replaces an object (PUT); a resourceVersion in body makes it
// conditional.
func (c *Client) Update(ctx context.Context, k objects.Kind, ns, name string, body []byte) (objects.Object, error) {
	data, err := c.doRaw(ctx, http.MethodPut, ObjectPath(k, ns, name), "application/json", body)
	if err != nil {
		return nil, err
	}
	return decodeObject(k, data)
}

// Patch patches an object; patchType is objects.StrategicMergePatchType or
// objects.MergePatchType.
func (c *Client) Patch(ctx context.Context, k objects.Kind, ns, name, patchType string, patch []byte, dryRun bool) (objects.Object, error) {
	data, err := c.doRaw(ctx, http.MethodPatch, ObjectPath(k, ns, name)+dryRunQuery(dryRun), patchType, patch)
	if err != nil {
		return nil, err
	}
	return decodeObject(k, data)
}

// Delete deletes an object; grace, when not nil, overrides a pod's
// terminationGracePeriodSeconds. It returns the object's last state.
func (c *Client) Delete(ctx context.Context, k objects.Kind, ns, name string, grace *int64) (objects.Object, error) {
	q := ""
	if grace != nil {
		q = "?gracePeriodSeconds=" + strconv.FormatInt(*grace, 10)
	}
	data, err := c.doRaw(ctx, http.MethodDelete, ObjectPath(k, ns, name)+q, "", nil)
	if err != nil {
		return nil, err
	}
	return decodeObject(k, data)
}

// Watch calls fn for every event of a watch until ctx ends, the daemon
// ends the stream, or fn returns an error (returned, unless it is
// io.EOF, which stops the watch quietly).
func (c *Client) Watch(ctx context.Context, k objects.Kind, ns string, opts ListOptions, fn func(eventType string, o objects.Object) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+ObjectPath(k, ns, "")+opts.query(true), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach the peapod daemon at %s (is `peapod daemon` running?): %w", c.host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeStatus(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 8<<20)
	for sc.Scan() {
		var ev struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("watch %s: bad event from the daemon: %w", k.Resource, err)
		}
		if ev.Type == "ERROR" {
			var st StatusError
			_ = json.Unmarshal(ev.Object, &st.Status)
			return &st
		}
		o, err := decodeObject(k, ev.Object)
		if err != nil {
			return err
		}
		if err := fn(ev.Type, o); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
