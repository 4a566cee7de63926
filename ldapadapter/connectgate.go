package ldapadapter

import (
	"context"
	"sync"
)

// connectsPerProvider is how many connections the links of one Consumer
// set up at once to one provider address: dial, TLS, bind and the base
// check. Past it a connection waits its turn, parked, within its connect
// timeout.
const connectsPerProvider = 128

// connectGates bound the connection set-ups of a Consumer's links per
// provider address. When thousands of links lose a provider together, their
// reconnects would otherwise all run at once and take the cores from the
// links still persisting, whose keepalive checks then run late; with the
// provider hung, every one of them would only wait for its connect timeout
// anyway. A limit per address, not per consumer, so a hung provider never
// holds up the connections to another. The waiting happens on the
// connection's own goroutine, never on a machine's.
type connectGates struct {
	limit int
	mu    sync.Mutex
	gates map[string]chan struct{} // by provider URL; as many as the URLs configured
}

func newConnectGates(limit int) *connectGates {
	return &connectGates{limit: limit, gates: map[string]chan struct{}{}}
}

// enter waits for a turn to connect to url, or for ctx to end; it returns
// the function that gives the turn back, or ctx's error.
func (g *connectGates) enter(ctx context.Context, url string) (leave func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err // given up on already: take no turn
	}
	g.mu.Lock()
	gate, ok := g.gates[url]
	if !ok {
		gate = make(chan struct{}, g.limit)
		g.gates[url] = gate
	}
	g.mu.Unlock()
	select {
	case gate <- struct{}{}:
		return func() { <-gate }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
