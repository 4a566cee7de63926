//go:build linux

package ldapadapter

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/replink/replink"
	"github.com/replink/replink/internal/slapdtest"
)

// chanSink records what a tap reports.
type chanSink chan event

func (s chanSink) Post(ev replink.Event, cause error) { s <- event{ev, cause} }

// whoAmIAnswer is a provider's answer to the probe with message ID id
// (4 bytes, as every probe ID is): 17 bytes.
func whoAmIAnswer(id int64) []byte {
	return []byte{0x30, 15, 0x02, 4, byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id),
		0x78, 7, 0x0a, 1, 0, 0x04, 0, 0x04, 0}
}

// searchDone is a SearchResultDone for message ID id < 128: 14 bytes,
// smaller than a probe's answer.
func searchDone(id byte) []byte {
	return []byte{0x30, 12, 0x02, 1, id, 0x65, 7, 0x0a, 1, 0, 0x04, 0, 0x04, 0}
}

// polledTap is a tap on a real loopback connection whose reader waits in
// its own poller, as a persisting link's does; srv is the provider's end.
type polledTap struct {
	*tap
	p        *poller
	srv      *net.TCPConn
	events   chanSink
	received atomic.Int64
}

func newPolledTap(t *testing.T) *polledTap {
	t.Helper()
	client, srv := tcpPair(t)
	pt := &polledTap{p: newPoller(), srv: srv, events: make(chanSink, 8)}
	pt.tap = newTap(client, pt.events, 1<<20, 1<<20, &pt.received, pt.p)
	t.Cleanup(func() { pt.shutdown(); pt.p.close() })
	pt.pollable.Store(true)
	pt.arm()
	pt.maxSent.Store(100) // as if go-ldap had sent requests up to ID 100
	// The reader began waiting before it was pollable: the first answer
	// wakes it there, and it waits in the poller from then on, where it
	// learns the length of the answer to a probe.
	pt.answerProbe(t)
	pt.waitParked(t)
	pt.answerProbe(t)
	require.Eventually(t, func() bool { return pt.answerLen.Load() == 17 && !pt.raised.Load() }, 5*time.Second, time.Millisecond)
	return pt
}

// answerProbe sends a probe and answers it as the provider.
func (pt *polledTap) answerProbe(t *testing.T) {
	t.Helper()
	pt.write(t, whoAmIAnswer(pt.probe(t)))
}

// probe sends a probe and returns its ID, as the provider read it.
func (pt *polledTap) probe(t *testing.T) int64 {
	t.Helper()
	var wg sync.WaitGroup
	pt.sendWhoAmI(&wg, time.Second)
	wg.Wait()
	req := make([]byte, whoAmILen)
	_, err := io.ReadFull(pt.srv, req)
	require.NoError(t, err)
	id, err := parseRequestID(req)
	require.NoError(t, err)
	return id
}

func (pt *polledTap) write(t *testing.T, b []byte) {
	t.Helper()
	_, err := pt.srv.Write(b)
	require.NoError(t, err)
}

func (pt *polledTap) parked() bool {
	pt.p.mu.Lock()
	defer pt.p.mu.Unlock()
	return pt.pw.key != 0
}

func (pt *polledTap) waitParked(t *testing.T) {
	t.Helper()
	require.Eventually(t, pt.parked, 5*time.Second, time.Millisecond, "the reader waits in the poller")
}

// readGoLDAP reads one message queued for go-ldap.
func (pt *polledTap) readGoLDAP(t *testing.T, n int) []byte {
	t.Helper()
	got := make([]byte, n)
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(pt.tap, got); done <- err }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached go-ldap")
	}
	return got
}

func (pt *polledTap) event(t *testing.T) event {
	t.Helper()
	select {
	case e := <-pt.events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return event{}
	}
}

// While a persisting link waits in the poller, whatever the provider does
// reaches the link as it would without one: keepalive answers are stamped
// and dropped there; anything else is handed to the reader with the bytes
// the poller read.
func TestPollerHandsOverAllButProbeAnswers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	msg := searchDone(7)
	for _, tc := range []struct {
		name    string
		provide func(t *testing.T, pt *polledTap)
		check   func(t *testing.T, pt *polledTap)
	}{
		{"probe answers stay in the poller", func(t *testing.T, pt *polledTap) {
			for range 3 {
				pt.answerProbe(t)
			}
		}, func(t *testing.T, pt *polledTap) {
			require.Eventually(t, func() bool { return pt.received.Load() == 5*17 }, 5*time.Second, time.Millisecond)
			require.True(t, pt.parked(), "the reader was not woken")
			require.Empty(t, pt.events)
		}},
		{"a message for go-ldap is handed over", func(t *testing.T, pt *polledTap) {
			pt.write(t, append(whoAmIAnswer(probeIDBase+1), msg...))
		}, func(t *testing.T, pt *polledTap) {
			require.Equal(t, msg, pt.readGoLDAP(t, len(msg)))
			// More may follow a change: the reader waits on its own until
			// a probe's answer comes alone.
			require.Never(t, pt.parked, 100*time.Millisecond, time.Millisecond, "parked again right after a change")
			pt.answerProbe(t)
			pt.waitParked(t)
		}},
		{"a message split across reads is whole", func(t *testing.T, pt *polledTap) {
			pt.write(t, msg[:5])
			time.Sleep(20 * time.Millisecond)
			pt.write(t, msg[5:])
		}, func(t *testing.T, pt *polledTap) {
			require.Equal(t, msg, pt.readGoLDAP(t, len(msg)))
		}},
		{"no mark is raised while the reader reads on its own", func(t *testing.T, pt *polledTap) {
			pt.write(t, msg[:5]) // handed over: the reader now waits for the rest itself
			require.Eventually(t, func() bool { return !pt.parked() }, 5*time.Second, time.Millisecond)
			pt.probe(t)
			require.False(t, pt.raised.Load(), "the rest of the message must not be held back")
			pt.write(t, msg[5:])
		}, func(t *testing.T, pt *polledTap) {
			require.Equal(t, msg, pt.readGoLDAP(t, len(msg)))
		}},
		{"an answer to no probe sent, or a long one, sets no mark", func(t *testing.T, pt *polledTap) {
			long := make([]byte, 300) // an extended response, 300 bytes: 0x30 0x82 len, ID, 0x78 0x82 len, result...
			copy(long, []byte{0x30, 0x82, 0x01, 0x28, 0x02, 4, 0x40, 0, 0x01, 0, 0x78, 0x82, 0x01, 0x1e, 0x0a, 1, 0, 0x04, 0, 0x04, 0x82, 0x01, 0x15})
			pt.write(t, long) // ID probeIDBase+256: never sent
			sent := pt.probeID.Load()
			long[6], long[7], long[8], long[9] = byte(sent>>24), byte(sent>>16), byte(sent>>8), byte(sent)
			pt.write(t, long) // the last probe's, but longer than any answer
		}, func(t *testing.T, pt *polledTap) {
			require.Eventually(t, func() bool { return pt.received.Load() == 2*17+600 }, 5*time.Second, time.Millisecond)
			require.True(t, pt.parked())
			require.EqualValues(t, 17, pt.answerLen.Load())
		}},
		{"a notice of disconnection", func(t *testing.T, pt *polledTap) {
			pt.write(t, slapdtest.NoticeOfDisconnection())
		}, func(t *testing.T, pt *polledTap) {
			e := pt.event(t)
			require.Equal(t, replink.DisconnectNotice, e.ev)
			require.ErrorIs(t, e.cause, ErrNotice)
		}},
		{"end of file", func(t *testing.T, pt *polledTap) {
			pt.srv.Close()
		}, func(t *testing.T, pt *polledTap) {
			e := pt.event(t)
			require.Equal(t, replink.ConnectionClosed, e.ev)
			require.ErrorIs(t, e.cause, ErrClosedByProvider)
		}},
		{"a reset", func(t *testing.T, pt *polledTap) {
			pt.srv.SetLinger(0)
			pt.srv.Close()
		}, func(t *testing.T, pt *polledTap) {
			e := pt.event(t)
			require.Equal(t, replink.ConnectionClosed, e.ev)
			require.ErrorIs(t, e.cause, syscall.ECONNRESET)
		}},
		{"garbage", func(t *testing.T, pt *polledTap) {
			pt.write(t, []byte{0x04, 0x02, 'h', 'i'})
		}, func(t *testing.T, pt *polledTap) {
			e := pt.event(t)
			require.Equal(t, replink.Exception, e.ev)
			require.ErrorIs(t, e.cause, ErrProtocol)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt := newPolledTap(t)
			tc.provide(t, pt)
			tc.check(t, pt)
		})
	}
}

// Once a probe's answer length is known, the probe raises the socket's
// low-water mark above it, so the answer wakes no one; the poller reads it
// a few milliseconds later. A message smaller than the answer, which the
// raised mark keeps quiet too, still reaches the link then.
func TestPollerDrainsWhatTheLowWaterMarkKeepsQuiet(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("the answer", func(t *testing.T) {
		pt := newPolledTap(t)
		before := pt.lastRead.Load()
		id := pt.probe(t)
		require.True(t, pt.raised.Load(), "the mark is raised for the answer")
		pt.write(t, whoAmIAnswer(id))
		require.Eventually(t, func() bool { return !pt.raised.Load() }, 5*time.Second, time.Millisecond, "drained, the mark is lowered")
		require.Greater(t, pt.lastRead.Load(), before, "the answer is life")
		require.EqualValues(t, 3*17, pt.received.Load())
		require.True(t, pt.parked())
		pt.write(t, searchDone(9))
		require.Equal(t, searchDone(9), pt.readGoLDAP(t, 14), "once drained, any byte wakes the poller again")
	})
	t.Run("a smaller message", func(t *testing.T) {
		pt := newPolledTap(t)
		pt.probe(t)
		require.True(t, pt.raised.Load())
		pt.write(t, searchDone(9)) // no answer: the provider says something short instead
		require.Equal(t, searchDone(9), pt.readGoLDAP(t, 14))
	})
}

// Shutting a tap down while its reader waits in the poller ends the
// reader, and the poller's goroutine with the last link; close returns
// once it has, a drain still pending included, with the epoll set
// released, and a later wait is refused.
func TestPollerEndsWithItsLinks(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	pt := newPolledTap(t)
	p := pt.p
	pt.probe(t) // a drain is due in a few milliseconds
	require.True(t, pt.raised.Load())
	done := make(chan struct{})
	go func() { pt.shutdown(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown waits for a reader parked in the poller")
	}
	p.close()
	p.mu.Lock()
	require.False(t, p.running, "close returns once the goroutine has ended")
	require.Nil(t, p.ep)
	p.mu.Unlock()
	require.False(t, p.drainLater(pt.tap), "a closed poller takes no socket")
}
