package store_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/internal/slapdtest"
	"github.com/replink/replink/ldapadapter"
	"github.com/replink/replink/store"
)

// TestMeasureRefresh times one initial refresh from a real slapd into the
// memory store and into a bbolt store, in the same run, and counts the
// store's commits. It is a measurement, not a check of speed: it runs only
// with REPLINK_MEASURE_ENTRIES set, e.g.
//
//	REPLINK_MEASURE_ENTRIES=50000 go test -run TestMeasureRefresh -v ./store/
func TestMeasureRefresh(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("REPLINK_MEASURE_ENTRIES"))
	if n == 0 {
		t.Skip("set REPLINK_MEASURE_ENTRIES=50000 to measure")
	}
	srv := slapdtest.Start(t, slapdtest.WithPeople(n))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	refresh := func(h ldapadapter.Handler) time.Duration {
		m := fsm.DefaultConfig()
		m.Mode, m.RefreshInterval = replink.RefreshOnly, time.Hour
		l, err := ldapadapter.NewLink(ldapadapter.LinkConfig{Name: "m", Machine: m, LDAP: ldapadapter.Config{
			URL: srv.URL(), BindDN: slapdtest.ReplicatorDN, Password: slapdtest.ReplicatorPW,
			BaseDN: slapdtest.PeopleDN, Handler: h, Logger: quiet,
		}}, fsm.WithLogger(quiet))
		require.NoError(t, err)
		defer l.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		require.NoError(t, l.Start(ctx))
		_, err = l.WaitFor(ctx, replink.Polling)
		require.NoError(t, err)
		return time.Since(start)
	}
	mem := ldapadapter.NewMemoryStore()
	dMem := refresh(mem)
	db, err := store.Open(filepath.Join(t.TempDir(), "r.db"), nil)
	require.NoError(t, err)
	defer db.Close()
	sl, err := db.Link("m", store.Content{BaseDN: slapdtest.PeopleDN, Scope: "sub", Filter: "(objectClass=*)"})
	require.NoError(t, err)
	dBolt := refresh(sl)
	held, err := sl.Len()
	require.NoError(t, err)
	require.Equal(t, n+1, held)
	rate := func(d time.Duration) float64 { return float64(n+1) / d.Seconds() }
	t.Logf("refresh of %d entries: memory store %v (%.0f entries/s), bbolt store %v (%.0f entries/s, %.2f of memory); bbolt commits %d (each commit is two fdatasyncs in bbolt)",
		n+1, dMem.Round(time.Millisecond), rate(dMem), dBolt.Round(time.Millisecond), rate(dBolt), rate(dBolt)/rate(dMem), sl.Commits())
}
