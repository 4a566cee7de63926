package fsm_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	lfsm "github.com/looplab/fsm"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
)

// nopAdapter connects instantly and never reports anything by itself.
type nopAdapter struct{}
type nopConn struct{}

func (nopAdapter) Connect(context.Context, fsm.Sink) fsm.Conn { return nopConn{} }
func (nopConn) Sync(fsm.SyncRequest)                          {}
func (nopConn) Probe()                                        {}
func (nopConn) LastRead() time.Time                           { return time.Now() }
func (nopConn) Close(bool)                                    {}

// BenchmarkLooplabEvent is the baseline: looplab/fsm alone, one transition.
func BenchmarkLooplabEvent(b *testing.B) {
	f := lfsm.NewFSM("Persisting", lfsm.Events{
		{Name: "refresh-required", Src: []string{"Persisting"}, Dst: "Refreshing"},
		{Name: "refresh-done", Src: []string{"Refreshing"}, Dst: "Persisting"},
	}, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := "refresh-required"
		if i%2 == 1 {
			ev = "refresh-done"
		}
		if err := f.Event(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispatch is one event end to end: mailbox, looplab/fsm, exit and
// entry actions (sync request, keepalive timer re-armed), history, and the
// caller's reply. The machine alternates Persisting and Refreshing.
func BenchmarkDispatch(b *testing.B) {
	m, err := fsm.New(fsm.DefaultConfig(), nopAdapter{}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, ev := range []replink.Event{replink.Start, replink.Connected, replink.RefreshDone} {
		if _, err := m.Fire(ctx, ev, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := replink.RefreshRequired
		if i%2 == 1 {
			ev = replink.RefreshDone
		}
		if _, err := m.Fire(ctx, ev, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPost is the adapter's path: fire and forget.
func BenchmarkPost(b *testing.B) {
	m, err := fsm.New(fsm.DefaultConfig(), nopAdapter{}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for _, ev := range []replink.Event{replink.Start, replink.Connected, replink.RefreshDone} {
		m.Fire(ctx, ev, nil)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := replink.RefreshRequired
		if i%2 == 1 {
			ev = replink.RefreshDone
		}
		m.Post(ev, nil)
	}
	m.Fire(ctx, replink.Stop, nil) // drain
}

// BenchmarkIdleMachines reports the memory of 10,000 machines, heap and
// goroutine stacks together, Stopped and Persisting (keepalive armed).
func BenchmarkIdleMachines(b *testing.B) {
	const n = 10000
	for _, persist := range []bool{false, true} {
		name := "Stopped"
		if persist {
			name = "Persisting"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				before := mem()
				ms := make([]*fsm.Machine, n)
				for i := range ms {
					m, err := fsm.New(fsm.DefaultConfig(), nopAdapter{}, quiet)
					if err != nil {
						b.Fatal(err)
					}
					if persist {
						for _, ev := range []replink.Event{replink.Start, replink.Connected, replink.RefreshDone} {
							m.Fire(context.Background(), ev, nil)
						}
					}
					ms[i] = m
				}
				after := mem()
				b.ReportMetric(float64(after-before)/n, "bytes/machine")
				for _, m := range ms {
					m.Close()
				}
			}
		})
	}
}

func mem() uint64 {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return s.HeapAlloc + s.StackInuse
}
