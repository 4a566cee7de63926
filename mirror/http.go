package mirror

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/replink/replink/store"
)

// Handler serves the mirror's status and admin surface:
//
//	GET  /status                  every link's LinkStatus, as JSON
//	GET  /healthz                 200 ok, or 503 naming the links Failed
//	GET  /metrics                 Prometheus exposition
//	GET  /links/{name}/ldif       the link's committed copy, sorted LDIF
//	POST /links/{name}/{action}   stop, start, reload or approve-deletions
//
// Every request is checked first (see HTTPConfig): a Host that is not the
// server's is refused (421), a missing token when one is set (401), a
// cross-origin POST (403) or one with a form body (415). The copy comes
// with its secrets redacted unless asked with ?secrets=1 and the token.
func (m *Mirror) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"links": m.Status()})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if failed := m.failed(); len(failed) > 0 {
			http.Error(w, "failed: "+strings.Join(failed, ", "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{Registry: m.metrics.reg}))
	mux.HandleFunc("GET /links/{name}/ldif", func(w http.ResponseWriter, r *http.Request) {
		l, ok := m.lookup(r.PathValue("name"))
		if !ok {
			http.Error(w, "no such link", http.StatusNotFound)
			return
		}
		db, ok := m.storeOf(l)
		if !ok {
			http.Error(w, "no such link", http.StatusNotFound)
			return
		}
		secrets := r.URL.Query().Get("secrets") == "1"
		if secrets && !m.guard.authenticated(r) {
			http.Error(w, "secrets=1 needs the token (http-token-file)", http.StatusForbidden)
			return
		}
		var entries []*ldap.Entry
		err := db.Each(l.link.Name(), func(e *ldap.Entry) error {
			if !secrets {
				for _, a := range e.Attributes {
					if m.guard.redacted(a.Name) {
						a.Values = slices.Repeat([]string{RedactedValue}, len(a.Values))
						a.ByteValues = nil
					}
				}
			}
			entries = append(entries, e)
			return nil
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		WriteLDIF(w, entries)
	})
	mux.HandleFunc("POST /links/{name}/{action}", func(w http.ResponseWriter, r *http.Request) {
		l, ok := m.lookup(r.PathValue("name"))
		if !ok {
			http.Error(w, "no such link", http.StatusNotFound)
			return
		}
		action := r.PathValue("action")
		if !slices.Contains([]string{"stop", "start", "reload", "approve-deletions"}, action) {
			http.Error(w, "action is stop, start, reload or approve-deletions", http.StatusNotFound)
			return
		}
		m.log.Info("admin action", append([]any{"action", action, "link", l.link.Name()}, m.guard.caller(r)...)...)
		var err error
		switch action {
		case "stop":
			err = l.link.Stop(r.Context())
		case "start":
			if err = l.failure(); err == nil {
				err = l.link.Start(r.Context())
			}
		case "reload":
			err = l.link.Reload(r.Context())
		case "approve-deletions":
			held := l.link.HeldDeletions()
			if err = l.link.ApproveDeletions(r.Context()); err == nil {
				m.log.Warn("deletions approved over HTTP", append([]any{"link", l.link.Name(), "deletions", held.Deletions, "copy", held.Copy}, m.guard.caller(r)...)...)
			}
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"link": l.link.Name(), "state": l.link.State().String()})
	})
	return m.guard.wrap(mux)
}

// storeOf is the store file l's copy is in.
func (m *Mirror) storeOf(l *link) (*store.DB, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.stores[l.key]
	if !ok || m.closed {
		return nil, false
	}
	return s.db, true
}
