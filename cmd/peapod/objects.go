package main

// Shared plumbing of the object commands (apply, create, get, describe,
// delete): reading manifests, namespaces, and checking a whole set of
// documents before any of them is sent for real.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/peapod/peapod/internal/client"
	"github.com/peapod/peapod/internal/objects"
)

// readManifests decodes every -f source: a file, a directory (its .yaml,
// .yml and .json files, sorted) or "-" for standard input. Every decoding
// problem of every file is reported together; on any, nothing is returned.
func readManifests(stdin io.Reader, sources []string) ([]objects.Document, error) {
	if len(sources) == 0 {
		return nil, errors.New("must specify one of -f and -k\nerror: you must specify at least one -f FILE, DIR or -")
	}
	var (
		docs []objects.Document
		errs []error
	)
	for _, src := range sources {
		var files []string
		if src == "-" {
			data, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			d, err := objects.Decode("STDIN", data)
			if err != nil {
				errs = append(errs, err)
			}
			docs = append(docs, d...)
			continue
		}
		fi, err := os.Stat(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("the path %q does not exist", src))
			continue
		}
		if fi.IsDir() {
			ents, err := os.ReadDir(src)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, e := range ents {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					if e.Type().IsRegular() {
						files = append(files, filepath.Join(src, e.Name()))
					}
				}
			}
			sort.Strings(files)
		} else {
			files = []string{src}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			d, err := objects.Decode(f, data)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			docs = append(docs, d...)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(docs) == 0 {
		return nil, errors.New("no objects passed to apply")
	}
	return docs, nil
}

// nsFlags are -n/--namespace and, for get, -A/--all-namespaces.
type nsFlags struct {
	namespace string
	explicit  bool
}

func (n *nsFlags) ns() string {
	if n.namespace == "" {
		return "default"
	}
	return n.namespace
}

// docNamespace decides a document's namespace: its own, or -n's; both
// given and different is kubectl's error.
func docNamespace(d *objects.Document, flags *nsFlags) (string, error) {
	if !d.Kind.Namespaced {
		return "", nil
	}
	own := d.Object.GetNamespace()
	switch {
	case own == "":
		return flags.ns(), nil
	case flags.explicit && flags.namespace != own:
		//lint:ignore ST1005 kubectl's wording, which users search for
		return "", fmt.Errorf("%s: the namespace from the provided object %q does not match the namespace %q. You must pass '--namespace=%s' to perform this operation.",
			d.Where(), own, flags.namespace, own)
	}
	return own, nil
}

// docError puts the document's place and the operation before a daemon
// error, in kubectl's words where kubectl has some.
func docError(d *objects.Document, op string, err error) error {
	msg := err.Error()
	if apierrors.IsInvalid(asAPI(err)) {
		msg = "The " + unqualifiedInvalid(asAPI(err), msg)
	}
	if nf, ns := missingNamespace(err); nf {
		msg += fmt.Sprintf("\n  create the namespace first: peapod create namespace %s", ns)
	}
	return fmt.Errorf("%s: error when %s %q: %s", d.Where(), op, d.Source, msg)
}

// missingNamespace reports whether err is `namespaces "X" not found`.
func missingNamespace(err error) (bool, string) {
	err = asAPI(err)
	var ae apierrors.APIStatus
	if errors.As(err, &ae) && apierrors.IsNotFound(err) {
		if d := ae.Status().Details; d != nil && d.Kind == "namespaces" {
			return true, d.Name
		}
	}
	return false, ""
}

// ref is kubectl's lower-case `kind/name` form.
func ref(k objects.Kind, name string) string { return qualified(k) + "/" + name }

// planned is one document's change: create, patch or nothing.
type planned struct {
	doc      *objects.Document
	ns       string
	body     []byte // create: the object; patch: the patch
	create   bool
	noChange bool
}

// planApply turns documents into creates and patches as kubectl apply
// does, checks each locally (defaults and validation) and against the
// daemon (dry run), and returns the plan only when every document passed.
// nsCreated are the namespaces the same set creates, which the dry run of
// their content cannot see yet.
func planApply(ctx context.Context, c *client.Client, docs []objects.Document, flags *nsFlags, createOnly bool) ([]planned, error) {
	var (
		plan []planned
		errs []error
	)
	nsCreated := map[string]bool{}
	for i := range docs {
		d := &docs[i]
		if d.Kind.GVK.Kind == "Namespace" {
			nsCreated[d.Object.GetName()] = true
		}
	}
	checkedNS := map[string]error{}
	for i := range docs {
		d := &docs[i]
		ns, err := docNamespace(d, flags)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Local checks: the same rules the daemon applies.
		local := d.Object.DeepCopyObject().(objects.Object)
		local.SetNamespace(ns)
		objects.SetDefaults(local)
		if err := objects.Validate(local); err != nil {
			errs = append(errs, docError(d, "creating", err))
			continue
		}
		if ns != "" && !nsCreated[ns] {
			nerr, seen := checkedNS[ns]
			if !seen {
				nk, _ := objects.ForResource("namespaces")
				_, nerr = c.Get(ctx, nk, "", ns)
				checkedNS[ns] = nerr
			}
			if nerr != nil {
				errs = append(errs, docError(d, "creating", nerr))
				continue
			}
		}
		modified, err := objects.ModifiedConfiguration(d.Raw, ns)
		if err != nil {
			errs = append(errs, docError(d, "creating", err))
			continue
		}
		p := planned{doc: d, ns: ns}
		live, err := c.GetRaw(ctx, d.Kind, ns, d.Object.GetName())
		switch {
		case apierrors.IsNotFound(asAPI(err)) || (err != nil && nsCreated[ns]):
			p.create, p.body = true, modified
			if createOnly {
				p.body = d.Raw
			}
		case err != nil:
			errs = append(errs, docError(d, "retrieving current configuration of", err))
			continue
		case createOnly:
			errs = append(errs, docError(d, "creating", apierrors.NewAlreadyExists(d.Kind.GroupResource(), d.Object.GetName())))
			continue
		default:
			patch, err := objects.ApplyPatch(d.Kind, modified, live)
			if err != nil {
				errs = append(errs, docError(d, "patching", err))
				continue
			}
			p.body, p.noChange = patch, objects.IsEmptyPatch(patch)
		}
		// The daemon's dry run sees what local checks cannot: names taken,
		// forbidden updates. A namespace made by this same set does not
		// exist yet, so its content was checked locally only.
		switch {
		case p.noChange:
		case p.create && nsCreated[ns]:
		case p.create:
			if _, err := c.Create(ctx, d.Kind, ns, p.body, true); err != nil {
				errs = append(errs, docError(d, "creating", err))
				continue
			}
		default:
			if _, err := c.Patch(ctx, d.Kind, ns, d.Object.GetName(), objects.StrategicMergePatchType, p.body, true); err != nil {
				errs = append(errs, docError(d, "patching", err))
				continue
			}
		}
		plan = append(plan, p)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("nothing was applied:\n%w", errors.Join(errs...))
	}
	return plan, nil
}

// asAPI returns err's Kubernetes status error form, so apierrors
// predicates work on a *client.StatusError.
func asAPI(err error) error {
	var se *client.StatusError
	if errors.As(err, &se) {
		return &apierrors.StatusError{ErrStatus: se.Status}
	}
	return err
}

func isNotFound(err error) bool {
	return apierrors.IsNotFound(asAPI(err))
}
