package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peapod/peapod/internal/api"
	"github.com/peapod/peapod/internal/image/authfile"
)

func newLoginCmd(g *globals) *cobra.Command {
	var user, pass, file string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login REGISTRY",
		Short: "Log in to a registry and save the credential in a Docker config.json",
		Long: "Check the credential against the registry through the daemon (with its registries\n" +
			"and TLS configuration), then store it in the login file, mode 0600. The file is a\n" +
			"Docker config.json: `base64 -w0` of it is the .dockerconfigjson of a Kubernetes Secret.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			registry := args[0]
			if user == "" {
				return fmt.Errorf("login %s: --username is required", registry)
			}
			switch {
			case passStdin && pass != "":
				return fmt.Errorf("login %s: --password and --password-stdin are mutually exclusive", registry)
			case passStdin:
				p, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("login %s: %w", registry, err)
				}
				pass = p
			case pass != "":
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			default:
				return fmt.Errorf("login %s: give the password with --password-stdin", registry)
			}
			if file == "" {
				var err error
				if file, err = authfile.DefaultPath(); err != nil {
					return err
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			if err := c.Login(cmd.Context(), api.LoginRequest{
				Registry:   registry,
				Credential: api.Credential{Username: user, Password: pass},
			}); err != nil {
				return err
			}
			f, err := authfile.Load(file)
			if err != nil {
				return err
			}
			if err := f.Set(registry, user, pass); err != nil {
				return fmt.Errorf("login %s: %w", registry, err)
			}
			if err := f.Save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Login Succeeded (credentials saved in %s)\n", file)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "read the password from standard input")
	cmd.Flags().StringVar(&file, "authfile", "", "login file (default ~/.docker/config.json)")
	return cmd
}

func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty password on stdin")
	}
	return line, nil
}

func newLogoutCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove a registry's credential from the login file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				var err error
				if file, err = authfile.DefaultPath(); err != nil {
					return err
				}
			}
			f, err := authfile.Load(file)
			if err != nil {
				return err
			}
			if !f.Remove(args[0]) {
				return fmt.Errorf("logout %s: not logged in (no entry in %s)", args[0], file)
			}
			if err := f.Save(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed login credentials for %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "authfile", "", "login file (default ~/.docker/config.json)")
	return cmd
}
