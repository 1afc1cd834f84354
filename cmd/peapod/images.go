package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/api"
	"github.com/peapod/peapod/internal/image/authfile"
	"github.com/peapod/peapod/internal/image/keyring"
	"github.com/peapod/peapod/internal/image/reference"
)

func newPullCmd(g *globals) *cobra.Command {
	var creds, authFile string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an image into the daemon's store",
		Long: "Pull an image through the daemon. Credentials come from --creds, or else from the\n" +
			"login file (--authfile, default ~/.docker/config.json); the daemon then tries its own\n" +
			"node-level auth files.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := reference.Parse(args[0])
			if err != nil {
				return err
			}
			req := api.PullRequest{Image: args[0]}
			if creds != "" {
				user, pass, ok := strings.Cut(creds, ":")
				if !ok || user == "" {
					return fmt.Errorf("--creds must be USER:PASSWORD")
				}
				req.Credentials = []api.Credential{{Username: user, Password: pass}}
			} else {
				if authFile == "" {
					if authFile, err = authfile.DefaultPath(); err != nil {
						return err
					}
				}
				kr, err := keyring.FromConfigFile(authFile)
				if err != nil {
					return err
				}
				for _, c := range kr.Lookup(ref.Name()) {
					req.Credentials = append(req.Credentials, api.Credential{
						Username: c.Username, Password: c.Password,
						IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken,
						AuthFile: authFile,
					})
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			var prog *progress
			if !quiet && isTerminal(os.Stderr) {
				prog = newProgress(os.Stderr)
			}
			img, err := c.Pull(cmd.Context(), req, func(ev api.PullEvent) {
				if prog != nil {
					prog.update(ev)
				}
			})
			if prog != nil {
				prog.finish()
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringVar(&creds, "creds", "", "registry credentials USER:PASSWORD")
	cmd.Flags().StringVar(&authFile, "authfile", "", "Docker config.json to read credentials from (default ~/.docker/config.json)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

func newImagesCmd(g *globals) *cobra.Command {
	var quiet, digests bool
	cmd := &cobra.Command{
		Use:     "images",
		Aliases: []string{"image", "img"},
		Short:   "List images",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			printImages(cmd.OutOrStdout(), imgs, quiet, digests)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only image IDs")
	cmd.Flags().BoolVar(&digests, "digests", false, "show repo digests")
	return cmd
}

// printImages prints one row per tag (and one for an untagged image), as
// crictl and podman do.
func printImages(w io.Writer, imgs []api.Image, quiet, digests bool) {
	if quiet {
		for _, img := range imgs {
			fmt.Fprintln(w, shortID(img.ID))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	if digests {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tSIZE")
	} else {
		fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tSIZE")
	}
	for _, img := range imgs {
		digest := "<none>"
		if len(img.RepoDigests) > 0 {
			if _, d, ok := strings.Cut(img.RepoDigests[0], "@"); ok {
				digest = d
			}
		}
		tags := img.RepoTags
		if len(tags) == 0 {
			repo := "<none>"
			if len(img.RepoDigests) > 0 {
				repo, _, _ = strings.Cut(img.RepoDigests[0], "@")
			}
			tags = []string{repo + ":<none>"}
		}
		for _, t := range tags {
			i := strings.LastIndex(t, ":")
			repo, tag := t[:i], t[i+1:]
			if digests {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, digest, shortID(img.ID), humanSize(img.Size))
			} else {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", repo, tag, shortID(img.ID), humanSize(img.Size))
			}
		}
	}
	tw.Flush()
}

func newRmiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images (by name, ID or digest)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			var failed []string
			for _, name := range args {
				if err := c.RemoveImage(cmd.Context(), name); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "Error: %v\n", err)
					failed = append(failed, name)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", name)
			}
			if len(failed) > 0 {
				return fmt.Errorf("could not remove %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
}

func newInspectCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show details of an object as JSON",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "image IMAGE",
		Short: "Show an image's record as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			img, err := c.Image(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(img)
		},
	})
	cmd.AddCommand(newInspectPodCmd(g))
	return cmd
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.3g%cB", float64(n)/float64(div), "kMGTPE"[exp])
}
