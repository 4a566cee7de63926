package mirror

import (
	"encoding/json"
	"fmt"
	"net/http"
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
		var entries []*ldap.Entry
		err := db.Each(l.cfg.Name, func(e *ldap.Entry) error { entries = append(entries, e); return nil })
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
		var err error
		switch r.PathValue("action") {
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
				m.log.Warn("deletions approved over HTTP", "link", l.cfg.Name, "deletions", held.Deletions, "copy", held.Copy, "remote", r.RemoteAddr)
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
		json.NewEncoder(w).Encode(map[string]string{"link": l.cfg.Name, "state": l.link.State().String()})
	})
	return mux
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
