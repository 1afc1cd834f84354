package objects

import (
	"bytes"
	"encoding/json"
	"fmt"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// LastAppliedAnnotation holds, on an object made or changed by apply, the
// configuration the user applied last: kubectl's client-side apply compares
// against it to tell the fields the user removed from those others set.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// Patch content types the API server accepts on PATCH.
const (
	StrategicMergePatchType = "application/strategic-merge-patch+json"
	MergePatchType          = "application/merge-patch+json"
)

// ModifiedConfiguration returns what apply sends for a document: the
// document (with namespace set when ns is not empty) carrying the
// last-applied annotation, whose value is that same document without the
// annotation. Both are compact JSON with sorted keys, as kubectl writes them.
func ModifiedConfiguration(raw []byte, ns string) (modified []byte, err error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		obj["metadata"] = meta
	}
	if ns != "" {
		meta["namespace"] = ns
	}
	ann, _ := meta["annotations"].(map[string]any)
	if ann != nil {
		delete(ann, LastAppliedAnnotation)
		if len(ann) == 0 {
			delete(meta, "annotations")
		}
	}
	applied, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if ann == nil {
		ann = map[string]any{}
	}
	ann[LastAppliedAnnotation] = string(applied) + "\n"
	meta["annotations"] = ann
	return json.Marshal(obj)
}

// ApplyPatch is kubectl's client-side apply: the three-way strategic merge
// patch that turns live into modified, where fields present in the last
// applied configuration (read from live's annotation) but absent from
// modified are deleted and fields set by others are kept. An empty patch
// is `{}`: the object is unchanged.
func ApplyPatch(k Kind, modified, live []byte) ([]byte, error) {
	var cur struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(live, &cur); err != nil {
		return nil, fmt.Errorf("apply: live object: %w", err)
	}
	var original []byte
	if s := cur.Metadata.Annotations[LastAppliedAnnotation]; s != "" {
		original = []byte(s)
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(k.New())
	if err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, live, meta, true)
	if err != nil {
		return nil, fmt.Errorf("apply: compute patch for %s: %w", k.GVK.Kind, err)
	}
	return patch, nil
}

// IsEmptyPatch reports whether a patch changes nothing.
func IsEmptyPatch(p []byte) bool {
	return string(bytes.TrimSpace(p)) == "{}"
}

// ApplyPatchBody applies a PATCH body of the given content type to the
// JSON of the live object and returns the patched JSON.
func ApplyPatchBody(k Kind, contentType string, live, patch []byte) ([]byte, error) {
	switch contentType {
	case StrategicMergePatchType:
		return strategicpatch.StrategicMergePatch(live, patch, k.New())
	case MergePatchType:
		return jsonpatch.MergePatch(live, patch)
	}
	return nil, fmt.Errorf("the body of the request was in an unknown format - accepted media types include: %s, %s", StrategicMergePatchType, MergePatchType)
}
