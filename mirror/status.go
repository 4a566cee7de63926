package mirror

import (
	"time"

	"github.com/replink/replink"
)

// LinkStatus is one link as /status shows it.
type LinkStatus struct {
	Name           string      `json:"name"`
	URL            string      `json:"url"`      // the first provider
	URLs           []string    `json:"urls"`     // every provider, in the order tried
	Provider       string      `json:"provider"` // the one in use, or tried next
	Base           string      `json:"base"`
	State          string      `json:"state"`
	Since          time.Time   `json:"since"`
	LastEvent      string      `json:"last_event,omitempty"`
	LastCause      string      `json:"last_cause,omitempty"`
	Entries        int         `json:"entries"`
	ChangesApplied int64       `json:"changes_applied"`
	CookieAge      float64     `json:"cookie_age_seconds"` // -1: none committed by this process
	HeldDeletions  *HeldStatus `json:"held_deletions,omitempty"`
	// Protocol is how the link replicates now: syncrepl, log (delta-
	// syncrepl), refresh (a first load before the log), fallback-refresh.
	Protocol string `json:"protocol"`
	// Fallbacks counts, by cause, the times a delta-syncrepl link gave up
	// on the log for a refresh since the process started.
	Fallbacks     map[string]int64 `json:"fallbacks,omitempty"`
	ReceivedBytes int64            `json:"received_bytes"`
	Recent        []Transition     `json:"recent"`
}

// HeldStatus is what the deletion guard holds: POST
// /links/NAME/approve-deletions (or replink approve-deletions) applies it.
type HeldStatus struct {
	Deletions int     `json:"deletions"`
	Copy      int     `json:"copy"`
	Share     float64 `json:"guard_share"`
	Floor     int     `json:"guard_floor"`
}

// Transition is one of a link's recent transitions.
type Transition struct {
	Time  time.Time `json:"time"`
	From  string    `json:"from"`
	To    string    `json:"to"`
	Event string    `json:"event"`
	Case  string    `json:"case"`
	Cause string    `json:"cause,omitempty"`
	Peer  string    `json:"provider,omitempty"`
}

// Status is every link's status, by name. A link whose store went away
// reads Failed, with that as its last cause, whatever its machine says.
func (m *Mirror) Status() []LinkStatus {
	var out []LinkStatus
	for _, l := range m.snapshot() {
		cfg := l.link.Config().LDAP
		s := LinkStatus{
			Name: l.link.Name(), URL: cfg.URL, URLs: cfg.URLs, Provider: l.link.Provider(), Base: cfg.BaseDN,
			State: l.link.State().String(), ChangesApplied: l.h.Applied(), CookieAge: -1,
		}
		if n, err := l.h.Len(); err == nil {
			s.Entries = n
		}
		if age := l.h.CookieAge(); age >= 0 {
			s.CookieAge = age.Seconds()
		}
		if h := l.link.HeldDeletions(); h != nil {
			s.HeldDeletions = &HeldStatus{Deletions: h.Deletions, Copy: h.Copy, Share: h.Guard.Share, Floor: h.Guard.Floor}
		}
		s.Protocol, s.ReceivedBytes = l.link.Protocol(), l.link.ReceivedBytes()
		for cause, n := range l.link.Fallbacks() {
			if s.Fallbacks == nil {
				s.Fallbacks = map[string]int64{}
			}
			s.Fallbacks[string(cause)] = n
		}
		for _, tr := range l.link.History() {
			t := Transition{Time: tr.Time, From: tr.From.String(), To: tr.To.String(), Event: tr.Event.String(), Case: tr.Case.String(), Peer: tr.Peer}
			if tr.Cause != nil {
				t.Cause = tr.Cause.Error()
			}
			s.Recent = append(s.Recent, t)
		}
		if n := len(s.Recent); n > 0 {
			last := s.Recent[n-1]
			s.Since, s.LastEvent, s.LastCause = last.Time, last.Event, last.Cause
		}
		if err := l.failure(); err != nil {
			s.State, s.LastEvent, s.LastCause = replink.Failed.String(), "store-gone", err.Error()
		}
		out = append(out, s)
	}
	return out
}

// failed names the links that are Failed.
func (m *Mirror) failed() []string {
	var out []string
	for _, l := range m.snapshot() {
		if l.link.State() == replink.Failed || l.failure() != nil {
			out = append(out, l.link.Name())
		}
	}
	return out
}
