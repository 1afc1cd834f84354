package objects

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Document is one object decoded from a manifest stream.
type Document struct {
	// Source names the stream: a file name, or "STDIN".
	Source string
	// Index is the 1-based position of the YAML document in the stream.
	Index int
	// Item is the 1-based position inside a `kind: List`, 0 otherwise.
	Item int
	// Line is the 1-based line where the document starts.
	Line int
	// Kind is the object's kind.
	Kind Kind
	// Object is the decoded object, exactly as written (no defaults).
	Object Object
	// Raw is the document as compact JSON with sorted keys: what kubectl
	// records in the last-applied-configuration annotation.
	Raw []byte
}

// Where names the document for error messages: `pod.yaml: document 2
// (line 14)`.
func (d *Document) Where() string { return where(d.Source, d.Index, d.Item, d.Line) }

func where(source string, index, item, line int) string {
	s := fmt.Sprintf("%s: document %d", source, index)
	if item > 0 {
		s += fmt.Sprintf(", item %d", item)
	}
	return s + fmt.Sprintf(" (line %d)", line)
}

// DocumentError is an error about one document of a stream.
type DocumentError struct {
	Source string
	Index  int
	Item   int
	Line   int
	Err    error
}

func (e *DocumentError) Error() string {
	return where(e.Source, e.Index, e.Item, e.Line) + ": " + e.Err.Error()
}

func (e *DocumentError) Unwrap() error { return e.Err }

type rawDocument struct {
	index, line int
	data        []byte
}

// splitDocuments splits a YAML stream at `---` lines (a separator may be
// followed by a comment), keeping each document's first line number.
func splitDocuments(data []byte) []rawDocument {
	var (
		docs  []rawDocument
		cur   bytes.Buffer
		start = 1
		n     = 0
	)
	flush := func(next int) {
		docs = append(docs, rawDocument{index: len(docs) + 1, line: start, data: append([]byte(nil), cur.Bytes()...)})
		cur.Reset()
		start = next
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), len(data)+1)
	for sc.Scan() {
		n++
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "---"); ok {
			rest = strings.TrimSpace(rest)
			if rest == "" || strings.HasPrefix(rest, "#") {
				flush(n + 1)
				continue
			}
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush(n + 1)
	return docs
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// shiftLines makes the line numbers in a YAML error count from the start
// of the stream rather than of the document.
func shiftLines(msg string, offset int) string {
	return yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(m[len("line "):])
		if err != nil {
			return m
		}
		return fmt.Sprintf("line %d", n+offset)
	})
}

// Decode decodes every document of a YAML or JSON stream (documents
// separated by `---`; a `kind: List` contributes its items) strictly into
// the k8s.io/api types: unknown or duplicate fields, wrong types, missing
// or unknown apiVersion/kind are errors. Every problem in the stream is
// reported, each naming source, document and line; on any error no
// document is returned, so a caller cannot act on half a file.
func Decode(source string, data []byte) ([]Document, error) {
	var (
		out  []Document
		errs []error
	)
	for _, rd := range splitDocuments(data) {
		fail := func(item int, err error) {
			errs = append(errs, &DocumentError{Source: source, Index: rd.index, Item: item, Line: rd.line, Err: err})
		}
		js, err := yaml.YAMLToJSONStrict(rd.data)
		if err != nil {
			fail(0, fmt.Errorf("error converting YAML to JSON: %s", shiftLines(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "), rd.line-1)))
			continue
		}
		js = bytes.TrimSpace(js)
		if len(js) == 0 || string(js) == "null" {
			continue // only comments or blank lines
		}
		tm, err := peekType(js)
		if err != nil {
			fail(0, err)
			continue
		}
		if tm.Kind == "List" && (tm.APIVersion == "v1") {
			var list struct {
				Items []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(js, &list); err != nil {
				//lint:ignore ST1005 the API server's wording
				fail(0, fmt.Errorf("List in version \"v1\" cannot be handled: %v", err))
				continue
			}
			for i, item := range list.Items {
				doc, err := decodeObject(source, item)
				if err != nil {
					fail(i+1, err)
					continue
				}
				doc.Source, doc.Index, doc.Item, doc.Line = source, rd.index, i+1, rd.line
				out = append(out, doc)
			}
			continue
		}
		doc, err := decodeObject(source, js)
		if err != nil {
			fail(0, err)
			continue
		}
		doc.Source, doc.Index, doc.Line = source, rd.index, rd.line
		out = append(out, doc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

func peekType(js []byte) (typeMeta, error) {
	var tm typeMeta
	if len(js) == 0 || js[0] != '{' {
		return tm, errors.New("error validating data: the document is not a Kubernetes object (a YAML mapping with apiVersion and kind)")
	}
	// A lenient look at the type; the strict decode below reports bad
	// metadata with its path.
	_ = json.Unmarshal(js, &tm)
	var missing []string
	if tm.APIVersion == "" {
		missing = append(missing, "apiVersion not set")
	}
	if tm.Kind == "" {
		missing = append(missing, "kind not set")
	}
	if len(missing) > 0 {
		return tm, fmt.Errorf("error validating data: [%s]", strings.Join(missing, ", "))
	}
	return tm, nil
}

// decodeObject decodes one object's JSON strictly.
func decodeObject(source string, js []byte) (Document, error) {
	tm, err := peekType(js)
	if err != nil {
		return Document{}, err
	}
	k, err := ForGVK(tm.APIVersion, tm.Kind)
	if err != nil {
		return Document{}, fmt.Errorf("resource mapping not found for name: %q namespace: %q from %q: %w",
			tm.Metadata.Name, tm.Metadata.Namespace, source, err)
	}
	obj, err := DecodeStrict(k, js)
	if err != nil {
		return Document{}, err
	}
	raw, err := canonicalJSON(js)
	if err != nil {
		return Document{}, err
	}
	return Document{Kind: k, Object: obj, Raw: raw}, nil
}

// DecodeStrict decodes JSON into a new object of kind k the way the API
// server does for a request body: an unknown or duplicate field is an
// error naming its path (`unknown field "spec.containers[0].imagePullPolic"`).
func DecodeStrict(k Kind, js []byte) (Object, error) {
	obj := k.New()
	strict, err := sjson.UnmarshalStrict(js, obj, sjson.DisallowDuplicateFields, sjson.DisallowUnknownFields)
	if err == nil && len(strict) > 0 {
		msgs := make([]string, len(strict))
		for i, e := range strict {
			msgs[i] = e.Error()
		}
		err = fmt.Errorf("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	if err != nil {
		return nil, fmt.Errorf("%s in version %q cannot be handled as a %s: %w", k.GVK.Kind, k.APIVersion(), k.GVK.Kind, err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		obj.GetObjectKind().SetGroupVersionKind(k.GVK)
	} else if gvk != k.GVK {
		return nil, fmt.Errorf("%s in version %q cannot be handled as a %s: wrong apiVersion or kind %s", gvk.Kind, gvk.GroupVersion(), k.GVK.Kind, gvk)
	}
	return obj, nil
}

// canonicalJSON re-encodes JSON with sorted keys and no spaces, as kubectl
// does for the last-applied-configuration annotation.
func canonicalJSON(js []byte) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
