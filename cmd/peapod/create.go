package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/peapod/peapod/internal/objects"
)

func newCreateCmd(g *globals) *cobra.Command {
	var (
		files []string
		ns    nsFlags
	)
	cmd := &cobra.Command{
		Use:   "create -f FILENAME",
		Short: "Create objects from a file or stdin, or a namespace or secret",
		Long: "Create objects from manifests. Every document is checked first; if one is wrong\n" +
			"or already exists, nothing is created.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns.explicit = cmd.Flags().Changed("namespace")
			docs, err := readManifests(cmd.InOrStdin(), files)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			plan, err := planApply(cmd.Context(), c, docs, &ns, true)
			if err != nil {
				return err
			}
			for _, p := range plan {
				if _, err := c.Create(cmd.Context(), p.doc.Kind, p.ns, p.body, false); err != nil {
					return docError(p.doc, "creating", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s created\n", ref(p.doc.Kind, p.doc.Object.GetName()))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) with the manifests; repeatable")
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace for objects that name none (default \"default\")")
	cmd.AddCommand(newCreateNamespaceCmd(g), newCreateSecretCmd(g))
	return cmd
}

// createObject sends one object built from flags and prints kubectl's line.
func createObject(cmd *cobra.Command, g *globals, o objects.Object, ns string) error {
	k, err := objects.ForObject(o)
	if err != nil {
		return err
	}
	o.GetObjectKind().SetGroupVersionKind(k.GVK)
	body, err := json.Marshal(o)
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if _, err := c.Create(cmd.Context(), k, ns, body, false); err != nil {
		if nf, name := missingNamespace(err); nf {
			return fmt.Errorf("%w\n  create the namespace first: peapod create namespace %s", err, name)
		}
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s created\n", ref(k, o.GetName()))
	return nil
}

func newCreateNamespaceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "namespace NAME",
		Aliases: []string{"ns"},
		Short:   "Create a namespace",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return createObject(cmd, g, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: args[0]}}, "")
		},
	}
}

func newCreateSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Create a secret: docker-registry or generic",
	}
	cmd.AddCommand(newCreateDockerRegistrySecretCmd(g), newCreateGenericSecretCmd(g))
	return cmd
}

// DefaultDockerServer is kubectl's --docker-server default: Docker Hub.
const DefaultDockerServer = "https://index.docker.io/v1/"

func newCreateDockerRegistrySecretCmd(g *globals) *cobra.Command {
	var server, user, password, email, ns string
	cmd := &cobra.Command{
		Use:   "docker-registry NAME --docker-username=USER --docker-password=PASSWORD [--docker-server=SERVER] [--docker-email=EMAIL]",
		Short: "Create a kubernetes.io/dockerconfigjson secret for pulling images from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return fmt.Errorf("required flag(s) \"docker-username\" not set")
			}
			if password == "" {
				return fmt.Errorf("required flag(s) \"docker-password\" not set")
			}
			entry := map[string]string{
				"username": user,
				"password": password,
				"auth":     base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
			}
			if email != "" {
				entry["email"] = email
			}
			cfg, err := json.Marshal(map[string]any{"auths": map[string]any{server: entry}})
			if err != nil {
				return err
			}
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: nsOrDefault(ns)},
				Type:       corev1.SecretTypeDockerConfigJson,
				Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
			}
			return createObject(cmd, g, s, nsOrDefault(ns))
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "docker-server", DefaultDockerServer, "registry server")
	f.StringVar(&user, "docker-username", "", "user name for the registry")
	f.StringVar(&password, "docker-password", "", "password for the registry")
	f.StringVar(&email, "docker-email", "", "email for the registry (optional)")
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func newCreateGenericSecretCmd(g *globals) *cobra.Command {
	var (
		typ, ns           string
		fromFile, fromLit []string
	)
	cmd := &cobra.Command{
		Use:   "generic NAME [--type=TYPE] [--from-file=[KEY=]PATH] [--from-literal=KEY=VALUE]",
		Short: "Create a secret from files, directories or literal values",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data := map[string][]byte{}
			add := func(k string, v []byte) error {
				if _, dup := data[k]; dup {
					return fmt.Errorf("cannot add key %s, another key by that name already exists in Data for Secret %q", k, args[0])
				}
				data[k] = v
				return nil
			}
			for _, spec := range fromFile {
				key, path, hasKey := strings.Cut(spec, "=")
				if !hasKey {
					path, key = spec, ""
				}
				fi, err := os.Stat(path)
				if err != nil {
					return fmt.Errorf("error reading %s: %w", path, err)
				}
				if fi.IsDir() {
					if hasKey {
						return fmt.Errorf("cannot give a key name for a directory path")
					}
					ents, err := os.ReadDir(path)
					if err != nil {
						return err
					}
					for _, e := range ents {
						if !e.Type().IsRegular() {
							continue
						}
						b, err := os.ReadFile(filepath.Join(path, e.Name()))
						if err != nil {
							return err
						}
						if err := add(e.Name(), b); err != nil {
							return err
						}
					}
					continue
				}
				if key == "" {
					key = filepath.Base(path)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if err := add(key, b); err != nil {
					return err
				}
			}
			for _, lit := range fromLit {
				k, v, ok := strings.Cut(lit, "=")
				if !ok || k == "" {
					return fmt.Errorf("invalid literal source %s, expected key=value", lit)
				}
				if err := add(k, []byte(v)); err != nil {
					return err
				}
			}
			s := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: args[0], Namespace: nsOrDefault(ns)},
				Type:       corev1.SecretType(typ),
				Data:       data,
			}
			return createObject(cmd, g, s, nsOrDefault(ns))
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "the type of secret to create (default Opaque)")
	f.StringArrayVar(&fromFile, "from-file", nil, "[KEY=]PATH: a file (key defaults to its base name) or a directory; repeatable")
	f.StringArrayVar(&fromLit, "from-literal", nil, "KEY=VALUE; repeatable")
	f.StringVarP(&ns, "namespace", "n", "", "namespace (default \"default\")")
	return cmd
}

func nsOrDefault(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}
