package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/replink/replink/feed"
	"github.com/replink/replink/mirror"
)

// runCommand is `replink run`: validate everything, open the stores, start
// the links, serve HTTP, and react to signals until told to stop.
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML configuration file (several links)")
	httpAddr := fs.String("http", "", "serve /status, /metrics, /healthz and admin actions on ADDR (loopback only by default)")
	allowExternal := fs.Bool("http-allow-external", false, "allow --http on a non-loopback address (needs --http-token-file)")
	tokenFile := fs.String("http-token-file", "", "require the bearer token in FILE on every HTTP request")
	redact := fs.String("http-redact", "", "comma-separated attributes /links/NAME/ldif redacts (default: the usual password attributes)")
	changes := fs.String("changes", "", "write every applied change as a JSON line to FILE (- for stdout)")
	logFormat := fs.String("log-format", "text", "text or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	view := fs.String("view", "auto", "live view of the links on a terminal: auto, on or off")
	links := newFlagConfig(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	switch *view {
	case "auto", "on", "off":
	default:
		return usageError{fmt.Errorf("--view %q: want auto, on or off", *view)}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *logLevel)}
	}
	var cfg *config
	var err error
	var fileTop string
	switch {
	case *cfgPath != "" && links.used():
		return usageError{errors.New("give --config or link flags, not both")}
	case *cfgPath != "":
		cfg, err = loadConfig(*cfgPath)
		if err == nil {
			fileTop = cfg.top()
			// Flags given explicitly win over the file's top-level settings.
			fs.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "http":
					cfg.HTTP = *httpAddr
				case "http-allow-external":
					cfg.AllowExternal = *allowExternal
				case "http-token-file":
					cfg.HTTPTokenFile = *tokenFile
				case "http-redact":
					cfg.HTTPRedact = splitList(*redact)
				case "changes":
					cfg.Changes = *changes
				case "log-format":
					cfg.LogFormat = *logFormat
				case "log-level":
					cfg.LogLevel = level
				}
			})
		}
	case links.used():
		top := config{HTTP: *httpAddr, AllowExternal: *allowExternal, HTTPTokenFile: *tokenFile, Changes: *changes, LogFormat: *logFormat, LogLevel: level}
		if *redact != "" {
			top.HTTPRedact = splitList(*redact)
		}
		cfg, err = links.config(top)
	default:
		return usageError{errors.New("run needs --config FILE, or --url, --base and --store for one link")}
	}
	if err != nil {
		return usageError{err}
	}
	if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		return usageError{fmt.Errorf("--log-format %q: want text or json", cfg.LogFormat)}
	}

	var live *liveView
	logOut := stderr
	if wantView(*view, cfg.LogFormat, stderr) {
		live = newLiveView(stderr)
		logOut = live
	}
	log := newLogger(logOut, cfg.LogFormat, cfg.LogLevel)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}

	var token string
	if cfg.HTTPTokenFile != "" {
		if token, err = readToken(cfg.HTTPTokenFile); err != nil {
			return usageError{err}
		}
		if fi, err := os.Stat(cfg.HTTPTokenFile); err == nil && fi.Mode().Perm()&0o044 != 0 {
			log.Warn("token file is readable by other users: chmod 600 it", "file", cfg.HTTPTokenFile, "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
		}
	}
	var f mirror.Feed
	switch cfg.Changes {
	case "":
	case "-":
		f = feed.NewStream(stdout)
	default:
		w, err := feed.Open(cfg.Changes, feed.WithLogger(log))
		if err != nil {
			return usageError{fmt.Errorf("changes: %w", err)}
		}
		f = w
	}
	var ln net.Listener
	if cfg.HTTP != "" { // bound before anything starts, served once the links exist
		if ln, err = listenHTTP(cfg.HTTP, cfg.AllowExternal, token != ""); err != nil {
			if f != nil {
				f.Close()
			}
			return usageError{err}
		}
		defer ln.Close()
	}
	mcfg := cfg.mirror(log, f)
	mcfg.HTTP.Token = token
	if ln != nil {
		mcfg.HTTP.Addr = ln.Addr().String()
	}
	m, err := mirror.New(mcfg)
	if err != nil { // a store that cannot be opened, or holds another content: nothing started
		if f != nil {
			f.Close()
		}
		return usageError{err}
	}

	// A feed reader that goes away (--changes - | head) must be an EPIPE
	// the mirror sees and logs, not a SIGPIPE that kills the process
	// without a word.
	signal.Ignore(syscall.SIGPIPE)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- m.Run(runCtx) }()
	var srv *http.Server
	if ln != nil {
		srv = &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		log.Info("http listening", "addr", ln.Addr().String())
	}
	log.Info("started", "links", len(cfg.Links))
	if live != nil {
		go live.run(runCtx, m)
	}
	stop := func() error {
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(ctx)
			cancel()
		}
		cancel()
		err := <-ran
		if live != nil {
			live.close()
		}
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return stop()
		case err := <-ran: // ended by itself: its feed's reader is gone
			ran <- err
			log.Error("stopping", "err", err)
			return stop()
		case s := <-sigs:
			if s != syscall.SIGHUP {
				log.Info("stopping", "signal", s.String())
				failed := permanentlyFailed(m.Status())
				err := stop()
				if len(failed) > 0 {
					err = errors.Join(err, fmt.Errorf("stopped with links failed for good: %s", strings.Join(failed, ", ")))
				}
				return err
			}
			if *cfgPath == "" {
				log.Error("configuration rejected; the running links are left as they are", "err", "configured from flags: nothing to re-read")
				continue
			}
			next, err := loadConfig(*cfgPath)
			if err == nil {
				err = m.Reload(ctx, next.mirror(log, nil))
			}
			if err != nil {
				log.Error("configuration rejected; the running links are left as they are", "err", err)
				continue
			}
			if next.top() != fileTop {
				log.Warn("http, changes and log settings take effect at the next start")
			}
			fileTop = next.top()
			log.Info("configuration reloaded", "links", len(m.Status()))
		}
	}
}

// mirror is the mirror.Config of c, logging to log and feeding f.
func (c *config) mirror(log *slog.Logger, f mirror.Feed) mirror.Config {
	return mirror.Config{Links: c.Links, Feed: f, Logger: log, HTTP: mirror.HTTPConfig{Redact: c.HTTPRedact}}
}

func splitList(s string) []string {
	out := []string{}
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// permanentCauses are the events after which a link waits in Failed for
// an admin instead of retrying.
var permanentCauses = map[string]bool{"connect-refused": true, "retries-exhausted": true, "deletions-held": true, "store-gone": true}

// permanentlyFailed names the links in Failed for a permanent cause, with
// the cause: a daemon stopped with any of them did not do its job, and its
// exit status says so.
func permanentlyFailed(links []mirror.LinkStatus) []string {
	var out []string
	for _, l := range links {
		if l.State == "Failed" && permanentCauses[l.LastEvent] {
			out = append(out, fmt.Sprintf("%s (%s)", l.Name, l.LastEvent))
		}
	}
	return out
}
