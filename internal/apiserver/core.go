package apiserver

// Kubernetes objects on Kubernetes' paths: /api/v1/namespaces,
// /api/v1/namespaces/NS/{pods,secrets,configmaps,events}[/NAME] and
// /api/v1/{resource} across namespaces. Bodies are k8s.io/api JSON;
// errors are metav1.Status with Kubernetes' reasons and codes.
//
// Each write decodes strictly, defaults and validates with package
// objects, then goes to the object store. PATCH takes a strategic merge
// patch (what `peapod apply` computes on the client, as kubectl's
// client-side apply) or a JSON merge patch, applied here to the live
// object. `?dryRun=All` runs every check without storing, which the CLI
// uses to check a whole file before applying any of it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/peapod/peapod/internal/objects"
	objstore "github.com/peapod/peapod/internal/store"
)

// maxObjectBody bounds a request body: a 1 MiB Secret in base64 and JSON.
const maxObjectBody = 3 << 20

// patchRetries is how often a PATCH is recomputed when the object changed
// between reading and writing it.
const patchRetries = 5

// SetObjectStore gives the server its object store; without one the
// object paths answer 503.
func (s *Server) SetObjectStore(st *objstore.Store) { s.objects = st }

func (s *Server) routeCore() {
	s.mux.HandleFunc("GET /api/v1/{resource}", s.coreList)
	s.mux.HandleFunc("POST /api/v1/namespaces", s.coreCreate)
	s.mux.HandleFunc("GET /api/v1/namespaces/{name}", s.coreGet)
	s.mux.HandleFunc("PUT /api/v1/namespaces/{name}", s.coreUpdate)
	s.mux.HandleFunc("PATCH /api/v1/namespaces/{name}", s.corePatch)
	s.mux.HandleFunc("DELETE /api/v1/namespaces/{name}", s.coreDelete)
	s.mux.HandleFunc("GET /api/v1/namespaces/{ns}/{resource}", s.coreList)
	s.mux.HandleFunc("POST /api/v1/namespaces/{ns}/{resource}", s.coreCreate)
	s.mux.HandleFunc("GET /api/v1/namespaces/{ns}/{resource}/{name}", s.coreGet)
	s.mux.HandleFunc("PUT /api/v1/namespaces/{ns}/{resource}/{name}", s.coreUpdate)
	s.mux.HandleFunc("PATCH /api/v1/namespaces/{ns}/{resource}/{name}", s.corePatch)
	s.mux.HandleFunc("DELETE /api/v1/namespaces/{ns}/{resource}/{name}", s.coreDelete)
}

// target is what a request's path names.
type target struct {
	kind objects.Kind
	ns   string // "" for cluster-scoped kinds and all-namespace lists
	name string
}

// resolve reads the kind, namespace and name from the path. Namespace
// paths have no {resource}.
func (s *Server) resolve(w http.ResponseWriter, r *http.Request) (target, bool) {
	if s.objects == nil {
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "the object store is not available")
		return target{}, false
	}
	res := r.PathValue("resource")
	if res == "" {
		res = "namespaces"
	}
	k, err := objects.ForResource(res)
	if err != nil || k.Resource != res {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
		return target{}, false
	}
	t := target{kind: k, ns: r.PathValue("ns"), name: r.PathValue("name")}
	if t.ns != "" && !k.Namespaced {
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
		return target{}, false
	}
	return t, true
}

// writeError answers with the Status of a Kubernetes API error, or a 500.
func writeError(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		status := st.Status()
		status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		status.Status = metav1.StatusFailure
		writeJSON(w, int(status.Code), status)
		return
	}
	writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
}

func dryRun(r *http.Request) []objstore.Option {
	if r.URL.Query().Get("dryRun") == "All" {
		return []objstore.Option{objstore.DryRun()}
	}
	return nil
}

func listOptions(r *http.Request) (objstore.ListOptions, error) {
	q := r.URL.Query()
	var lo objstore.ListOptions
	if v := q.Get("labelSelector"); v != "" {
		sel, err := labels.Parse(v)
		if err != nil {
			return lo, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
		lo.Labels = sel
	}
	if v := q.Get("fieldSelector"); v != "" {
		sel, err := fields.ParseSelector(v)
		if err != nil {
			return lo, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector: %v", err))
		}
		lo.Fields = sel
	}
	lo.ResourceVersion = q.Get("resourceVersion")
	return lo, nil
}

// objectList is the JSON of a Kubernetes list (PodList, SecretList, ...).
type objectList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`
	Items           []objects.Object `json:"items"`
}

// watchEvent is one line of a watch stream, as Kubernetes' WatchEvent.
type watchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

func (s *Server) coreList(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	lo, err := listOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if watch, _ := strconv.ParseBool(r.URL.Query().Get("watch")); watch {
		s.coreWatch(w, r, t, lo)
		return
	}
	items, rv, err := s.objects.List(r.Context(), t.kind.Resource, t.ns, lo)
	if err != nil {
		writeError(w, err)
		return
	}
	if items == nil {
		items = []objects.Object{}
	}
	writeJSON(w, http.StatusOK, objectList{
		TypeMeta: metav1.TypeMeta{Kind: t.kind.GVK.Kind + "List", APIVersion: t.kind.APIVersion()},
		ListMeta: metav1.ListMeta{ResourceVersion: rv},
		Items:    items,
	})
}

// coreWatch streams watch events, one JSON object per line, until the
// client goes away or the store ends the watch.
func (s *Server) coreWatch(w http.ResponseWriter, r *http.Request, t target, lo objstore.ListOptions) {
	ctx := r.Context()
	wi, err := s.objects.Watch(ctx, t.kind.Resource, t.ns, lo)
	if err != nil {
		writeError(w, err)
		return
	}
	defer wi.Stop()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	for ev := range wi.ResultChan() {
		if err := enc.Encode(watchEvent{Type: string(ev.Type), Object: ev.Object}); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

func (s *Server) coreGet(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	o, err := s.objects.Get(r.Context(), t.kind.Resource, t.ns, t.name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxObjectBody))
	if err != nil {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("read request body: %v", err))
	}
	return b, nil
}

// decodeFor decodes a request body strictly as an object of t's kind and
// reconciles its namespace with the path's.
func decodeFor(t target, body []byte) (objects.Object, error) {
	o, err := objects.DecodeStrict(t.kind, body)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	if t.kind.Namespaced {
		switch o.GetNamespace() {
		case "":
			o.SetNamespace(t.ns)
		case t.ns:
		default:
			return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	}
	return o, nil
}

func (s *Server) coreCreate(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	if t.kind.Namespaced && t.ns == "" {
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "create needs a namespace in the path")
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	o, err := decodeFor(t, body)
	if err != nil {
		writeError(w, err)
		return
	}
	objects.SetDefaults(o)
	if err := objects.Validate(o); err != nil {
		writeError(w, err)
		return
	}
	created, err := s.objects.Create(r.Context(), o, dryRun(r)...)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, created)
}

func (s *Server) coreUpdate(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	o, err := decodeFor(t, body)
	if err != nil {
		writeError(w, err)
		return
	}
	if o.GetName() != t.name {
		writeError(w, apierrors.NewBadRequest("the name of the object ("+o.GetName()+") does not match the name on the URL ("+t.name+")"))
		return
	}
	updated, err := s.update(r, t, o)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, updated)
}

// update validates o as a change of the stored object and stores it.
func (s *Server) update(r *http.Request, t target, o objects.Object) (objects.Object, error) {
	old, err := s.objects.Get(r.Context(), t.kind.Resource, t.ns, t.name)
	if err != nil {
		return nil, err
	}
	objects.PrepareForUpdate(o, old)
	objects.SetDefaults(o)
	if err := objects.ValidateUpdate(o, old); err != nil {
		return nil, err
	}
	return s.objects.Update(r.Context(), o, dryRun(r)...)
}

func (s *Server) corePatch(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != objects.StrategicMergePatchType && ct != objects.MergePatchType {
		writeStatus(w, http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %s, %s", objects.StrategicMergePatchType, objects.MergePatchType))
		return
	}
	patch, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	for attempt := 0; ; attempt++ {
		live, err := s.objects.Get(r.Context(), t.kind.Resource, t.ns, t.name)
		if err != nil {
			writeError(w, err)
			return
		}
		liveJSON, err := json.Marshal(live)
		if err != nil {
			writeError(w, err)
			return
		}
		patched, err := objects.ApplyPatchBody(t.kind, ct, liveJSON, patch)
		if err != nil {
			writeError(w, apierrors.NewBadRequest(err.Error()))
			return
		}
		o, err := decodeFor(t, patched)
		if err != nil {
			writeError(w, err)
			return
		}
		if bytes.Equal(bytes.TrimSpace(patch), []byte("{}")) {
			writeJSON(w, http.StatusOK, live)
			return
		}
		objects.PrepareForUpdate(o, live)
		objects.SetDefaults(o)
		if err := objects.ValidateUpdate(o, live); err != nil {
			writeError(w, err)
			return
		}
		updated, err := s.objects.Update(r.Context(), o, dryRun(r)...)
		if apierrors.IsConflict(err) && attempt < patchRetries && o.GetResourceVersion() == live.GetResourceVersion() {
			continue // someone else wrote in between: patch the new state
		}
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, updated)
		return
	}
}

func (s *Server) coreDelete(w http.ResponseWriter, r *http.Request) {
	t, ok := s.resolve(w, r)
	if !ok {
		return
	}
	var opts metav1.DeleteOptions
	if body, err := readBody(r); err != nil {
		writeError(w, err)
		return
	} else if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("decode DeleteOptions: %v", err)))
			return
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds %q is not a number", v)))
			return
		}
		opts.GracePeriodSeconds = &g
	}
	do := objstore.DeleteOptions{GracePeriodSeconds: opts.GracePeriodSeconds, DryRun: q.Get("dryRun") == "All" || len(opts.DryRun) > 0}
	if opts.Preconditions != nil {
		do.Preconditions = *opts.Preconditions
	}
	last, _, err := s.objects.Delete(r.Context(), t.kind.Resource, t.ns, t.name, do)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, last)
}
