package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/client"
)

// cpSpec is one side of `peapod cp`: POD:PATH or a local path.
type cpSpec struct {
	pod, path string
}

func parseCpSpec(s string) cpSpec {
	// A local path may hold a colon only after a slash (./a:b).
	if i := strings.Index(s, ":"); i > 0 && !strings.Contains(s[:i], "/") {
		return cpSpec{pod: podName(s[:i]), path: s[i+1:]}
	}
	return cpSpec{path: s}
}

func newCpCmd(g *globals) *cobra.Command {
	var ns nsFlags
	var container string
	cmd := &cobra.Command{
		Use:   "cp SRC DEST",
		Short: "Copy files between a pod's container and the local host (needs tar in the image)",
		Long: "Copy files and directories to and from a container, as kubectl cp does:\n" +
			"  peapod cp POD:/path/in/container /local/path\n" +
			"  peapod cp /local/path POD:/path/in/container\n" +
			"The copy runs `tar` inside the container through exec.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, dst := parseCpSpec(args[0]), parseCpSpec(args[1])
			c, err := g.client()
			if err != nil {
				return err
			}
			switch {
			case src.pod != "" && dst.pod == "":
				return cpFromPod(cmd, c, ns.ns(), container, src, dst.path)
			case src.pod == "" && dst.pod != "":
				return cpToPod(cmd, c, ns.ns(), container, src.path, dst)
			default:
				return errors.New("one of src or dest must be a local file specification and the other a remote one (POD:PATH)")
			}
		},
	}
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default \"default\")")
	cmd.Flags().StringVarP(&container, "container", "c", "", "container name (default: the pod's only container)")
	return cmd
}

// execTar runs tar in the container and turns its failure into an error
// that carries what tar said.
func execTar(cmd *cobra.Command, c *client.Client, ns, pod, container string, tarArgs []string, in io.Reader, out io.Writer) error {
	var stderr bytes.Buffer
	err := c.Exec(cmd.Context(), ns, pod, append([]string{"tar"}, tarArgs...), client.StreamOptions{
		Container: container, Stdin: in, Stdout: out, Stderr: &stderr,
	})
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s", msg)
		}
		return err
	}
	return nil
}

// cpToPod tars the local file or directory under the name the destination
// gives it and unpacks it in the destination's directory.
func cpToPod(cmd *cobra.Command, c *client.Client, ns, container, local string, dst cpSpec) error {
	if _, err := os.Stat(local); err != nil {
		return fmt.Errorf("%s doesn't exist in local filesystem", local)
	}
	dir, name := path.Split(path.Clean(dst.path))
	if dir == "" {
		dir = "."
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, local, name)) }()
	return execTar(cmd, c, ns, dst.pod, container, []string{"-xmf", "-", "-C", dir}, pr, io.Discard)
}

func writeTar(w io.Writer, local, name string) error {
	tw := tar.NewWriter(w)
	root := filepath.Clean(local)
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = path.Join(name, filepath.ToSlash(rel))
		if de.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// cpFromPod tars the path in the container and unpacks it at local: a file
// becomes local, a directory's content goes under local.
func cpFromPod(cmd *cobra.Command, c *client.Client, ns, container string, src cpSpec, local string) error {
	clean := path.Clean(src.path)
	dir, name := path.Split(clean)
	if dir == "" {
		dir = "."
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := readTar(pr, name, local)
		_, _ = io.Copy(io.Discard, pr)
		done <- err
	}()
	err := execTar(cmd, c, ns, src.pod, container, []string{"cf", "-", "-C", dir, name}, nil, pw)
	pw.Close()
	terr := <-done
	if err != nil {
		return err
	}
	return terr
}

// readTar unpacks entries under prefix to local; an entry that would land
// outside local is refused (a container's tar is not trusted).
func readTar(r io.Reader, prefix, local string) error {
	tr := tar.NewReader(r)
	found := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read the archive from the container: %w", err)
		}
		rel := strings.TrimPrefix(path.Clean(hdr.Name), prefix)
		if rel != "" && !strings.HasPrefix(rel, "/") {
			continue
		}
		target := filepath.Join(local, filepath.FromSlash(rel))
		if target != filepath.Clean(local) && !strings.HasPrefix(target, filepath.Clean(local)+string(filepath.Separator)) {
			return fmt.Errorf("archive entry %q is outside the destination", hdr.Name)
		}
		found = true
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(hdr.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		}
	}
	if !found {
		return fmt.Errorf("%s: no such file or directory in the container", prefix)
	}
	return nil
}
