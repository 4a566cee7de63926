package ldapadapter_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/ldapadapter"
)

// newLink makes a link the test closes at its end; watch, if set, sees
// every transition from the first.
func newLink(t *testing.T, cfg ldapadapter.LinkConfig, watch func(fsm.Transition)) *ldapadapter.Link {
	t.Helper()
	l, err := ldapadapter.NewLink(cfg, fsm.WithLogger(discard))
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	if watch != nil {
		l.Watch(watch)
	}
	return l
}

// startLink makes a link, starts it and waits until it is Persisting.
func startLink(t *testing.T, ctx context.Context, cfg ldapadapter.LinkConfig) *ldapadapter.Link {
	t.Helper()
	l := newLink(t, cfg, nil)
	require.NoError(t, l.Start(ctx))
	_, err := l.WaitFor(ctx, replink.Persisting)
	require.NoError(t, err)
	return l
}
