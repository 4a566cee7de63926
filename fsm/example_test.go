package fsm_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/replink/replink"
	"github.com/replink/replink/fsm"
	"github.com/replink/replink/sim"
)

// A link against the simulated provider: it connects, refreshes, persists,
// and is stopped by an admin. Observers see every transition in order.
func Example() {
	target := sim.NewTarget(3)
	cfg := fsm.DefaultConfig()
	m, err := fsm.New(cfg, target.Adapter(),
		fsm.WithName("provider-a"),
		fsm.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()

	persisting := make(chan struct{})
	m.Observe(func(t fsm.Transition) {
		fmt.Printf("%s -> %s on %s\n", t.From, t.To, t.Event)
		if t.To == replink.Persisting {
			close(persisting)
		}
	})
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	select {
	case <-persisting:
	case <-time.After(5 * time.Second):
		fmt.Println("timed out")
		return
	}
	_ = m.Stop(ctx)
	m.Close() // waits for the observer too
	// Output:
	// Stopped -> Connecting on start
	// Connecting -> Refreshing on connected
	// Refreshing -> Persisting on refresh-done
	// Persisting -> Stopped on stop
}

// Invalid settings are reported with the field at fault.
func ExampleConfig_Validate() {
	cfg := fsm.DefaultConfig()
	cfg.KeepaliveInterval = time.Second
	cfg.KeepaliveTimeout = 5 * time.Second
	fmt.Println(cfg.Validate())
	// Output:
	// replink: invalid configuration: KeepaliveTimeout: 5s exceeds the interval 1s: a second probe would be due before the first is judged
}
