package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/replink/replink"
)

// linkStatus is one link in /status.
type linkStatus struct {
	Name           string       `json:"name"`
	URL            string       `json:"url"`      // the first provider
	URLs           []string     `json:"urls"`     // every provider, in the order tried
	Provider       string       `json:"provider"` // the one in use, or tried next
	Base           string       `json:"base"`
	State          string       `json:"state"`
	Since          time.Time    `json:"since"`
	LastEvent      string       `json:"last_event,omitempty"`
	LastCause      string       `json:"last_cause,omitempty"`
	Entries        int          `json:"entries"`
	ChangesApplied int64        `json:"changes_applied"`
	CookieAge      float64      `json:"cookie_age_seconds"` // -1: none committed by this process
	HeldDeletions  *heldStatus  `json:"held_deletions,omitempty"`
	Recent         []transition `json:"recent"`
}

// heldStatus is what the deletion guard holds: POST
// /links/NAME/approve-deletions (or replink approve-deletions) applies it.
type heldStatus struct {
	Deletions int     `json:"deletions"`
	Copy      int     `json:"copy"`
	Share     float64 `json:"guard_share"`
	Floor     int     `json:"guard_floor"`
}

type transition struct {
	Time  time.Time `json:"time"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Event string    `json:"event"`
	Case  string    `json:"case"`
	Cause string    `json:"cause,omitempty"`
	Peer  string    `json:"provider,omitempty"`
}

func (d *daemon) status() []linkStatus {
	var out []linkStatus
	for _, r := range d.snapshot() {
		s := linkStatus{
			Name: r.spec.Name, URL: r.link.Config().LDAP.URL, URLs: r.link.Config().LDAP.URLs, Provider: r.link.Provider(), Base: r.spec.LDAP.BaseDN,
			State: r.link.State().String(), ChangesApplied: r.h.Applied(), CookieAge: -1,
		}
		if n, err := r.h.Len(); err == nil {
			s.Entries = n
		}
		if age := r.h.CookieAge(); age >= 0 {
			s.CookieAge = age.Seconds()
		}
		if h := r.link.HeldDeletions(); h != nil {
			s.HeldDeletions = &heldStatus{Deletions: h.Deletions, Copy: h.Copy, Share: h.Guard.Share, Floor: h.Guard.Floor}
		}
		for _, tr := range r.link.History() {
			t := transition{Time: tr.Time, From: tr.From.String(), To: tr.To.String(), Event: tr.Event.String(), Case: tr.Case.String(), Peer: tr.Peer}
			if tr.Cause != nil {
				t.Cause = tr.Cause.Error()
			}
			s.Recent = append(s.Recent, t)
		}
		if n := len(s.Recent); n > 0 {
			last := s.Recent[n-1]
			s.Since, s.LastEvent, s.LastCause = last.Time, last.Event, last.Cause
		}
		out = append(out, s)
	}
	return out
}

// handler serves /status, /healthz, /metrics and the admin actions
// POST /links/{name}/{stop,start,reload,approve-deletions}.
func (d *daemon) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"links": d.status()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		var failed []string
		for _, l := range d.snapshot() {
			if l.link.State() == replink.Failed {
				failed = append(failed, l.spec.Name)
			}
		}
		if len(failed) > 0 {
			http.Error(w, "failed: "+strings.Join(failed, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{Registry: d.metrics.reg}))
	mux.HandleFunc("GET /links/{name}/ldif", func(w http.ResponseWriter, r *http.Request) {
		l, ok := d.running(r.PathValue("name"))
		if !ok {
			http.Error(w, "no such link", http.StatusNotFound)
			return
		}
		var entries []*ldap.Entry
		err := d.storeOf(l).Each(l.spec.Name, func(e *ldap.Entry) error { entries = append(entries, e); return nil })
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		writeLDIF(w, entries)
	})
	mux.HandleFunc("POST /links/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		l, ok := d.running(r.PathValue("name"))
		if !ok {
			http.Error(w, "no such link", http.StatusNotFound)
			return
		}
		var err error
		switch r.PathValue("action") {
		case "stop":
			err = l.link.Stop(r.Context())
		case "start":
			err = l.link.Start(r.Context())
		case "reload":
			err = l.link.Reload(r.Context())
		case "approve-deletions":
			held := l.link.HeldDeletions()
			if err = l.link.ApproveDeletions(r.Context()); err == nil {
				d.log.Warn("deletions approved over HTTP", "link", l.spec.Name, "deletions", held.Deletions, "copy", held.Copy, "remote", r.RemoteAddr)
			}
		default:
			http.Error(w, "action is stop, start, reload or approve-deletions", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"link": l.spec.Name, "state": l.link.State().String()})
	})
	return mux
}

// ErrExternalHTTP refuses to serve status and admin actions beyond this
// machine without an explicit http-allow-external.
var ErrExternalHTTP = errors.New("refusing to serve HTTP on a non-loopback address (its admin actions have no authentication); set http-allow-external to insist")

// listenHTTP binds addr, loopback only unless allowed.
func listenHTTP(addr string, allowExternal bool) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: %w", addr, err)
	}
	if !allowExternal && !loopback(host) {
		return nil, fmt.Errorf("--http %q: %w", addr, ErrExternalHTTP)
	}
	return net.Listen("tcp", addr)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
