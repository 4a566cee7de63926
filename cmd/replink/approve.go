package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// approveCommand asks a running daemon, through its HTTP address, to apply
// the deletions its deletion guard holds for one link.
func approveCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("approve-deletions", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "", "the daemon's status address (its --http), host:port")
	link := fs.String("link", "", "the link whose held deletions to apply")
	tokenFile := fs.String("http-token-file", "", "the daemon's bearer token, in a file (its http-token-file)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *addr == "" || *link == "" || fs.NArg() > 0 {
		return usageError{errors.New("approve-deletions needs --http ADDR and --link NAME, and nothing else")}
	}
	u := url.URL{Scheme: "http", Host: *addr, Path: "/links/" + url.PathEscape(*link) + "/approve-deletions"}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return usageError{err}
	}
	if *tokenFile != "" {
		token, err := readToken(*tokenFile)
		if err != nil {
			return usageError{err}
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}
