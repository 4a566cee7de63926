package replink_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
)

func TestTableIsValid(t *testing.T) {
	require.NoError(t, replink.ValidateTable(replink.Table))
}

func TestValidateTableCatchesMistakes(t *testing.T) {
	without := func(drop func(replink.Transition) bool) []replink.Transition {
		return slices.DeleteFunc(slices.Clone(replink.Table), drop)
	}
	for _, tc := range []struct {
		name  string
		table []replink.Transition
		want  string
	}{
		{"duplicate row", append(slices.Clone(replink.Table), replink.Transition{From: replink.Polling, Event: replink.RetryTimer, To: replink.Failed}), "duplicate Polling on retry-timer"},
		{"unreachable state", without(func(t replink.Transition) bool { return t.To == replink.Persisting }), "state Persisting unreachable"},
		{"dead end", without(func(t replink.Transition) bool { return t.From == replink.Failed }), "state Failed cannot return to Stopped"},
		{"unused event", without(func(t replink.Transition) bool { return t.Event == replink.KeepaliveMiss }), "event keepalive-miss appears in no row"},
		{"unknown state", append(slices.Clone(replink.Table), replink.Transition{From: 42, Event: replink.Start, To: replink.Stopped}), "unknown state or event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := replink.ValidateTable(tc.table)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEveryCaseIsServed(t *testing.T) {
	served := map[replink.Case]bool{}
	for _, tr := range replink.Table {
		served[tr.Case] = true
	}
	for c := replink.CaseShutdown; c <= replink.CaseException; c++ {
		require.True(t, served[c], "%s (%s) has no transition", c, c.Title())
	}
}

func TestRefreshDoneDependsOnMode(t *testing.T) {
	tr, err := replink.Lookup(replink.Refreshing, replink.RefreshDone, replink.RefreshAndPersist)
	require.NoError(t, err)
	require.Equal(t, replink.Persisting, tr.To)
	tr, err = replink.Lookup(replink.Refreshing, replink.RefreshDone, replink.RefreshOnly)
	require.NoError(t, err)
	require.Equal(t, replink.Polling, tr.To)
}

func TestLookupMissingPair(t *testing.T) {
	_, err := replink.Lookup(replink.Stopped, replink.KeepaliveMiss, replink.RefreshAndPersist)
	require.ErrorIs(t, err, replink.ErrNoTransition)
	var te *replink.TransitionError
	require.True(t, errors.As(err, &te))
	require.Equal(t, replink.Stopped, te.From)
}

func TestNamesRoundTrip(t *testing.T) {
	for _, s := range replink.States {
		got, err := replink.ParseState(s.String())
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	for _, e := range replink.Events {
		got, err := replink.ParseEvent(e.String())
		require.NoError(t, err)
		require.Equal(t, e, got)
	}
	for _, m := range []replink.Mode{replink.RefreshAndPersist, replink.RefreshOnly} {
		got, err := replink.ParseMode(m.String())
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	_, err := replink.ParseEvent("explode")
	var une *replink.UnknownNameError
	require.ErrorAs(t, err, &une)
	require.Equal(t, "event", une.Kind)
	require.Equal(t, "State(99)", replink.State(99).String())
	require.Equal(t, "Event(0)", replink.Event(0).String())
}
