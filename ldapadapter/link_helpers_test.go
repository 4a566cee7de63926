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
// every transition from the first. The link is a Consumer's, as the
// daemon's are, so a persisting link waits in the Consumer's poller (see
// TestPollerHandsOverAllButProbeAnswers); tests that call NewLink keep
// the standalone path, where each link waits on its own.
func newLink(t *testing.T, cfg ldapadapter.LinkConfig, watch func(fsm.Transition)) *ldapadapter.Link {
	t.Helper()
	c := ldapadapter.NewConsumer(fsm.WithLogger(discard))
	l, err := c.Add(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Shutdown() })
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
